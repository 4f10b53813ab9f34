"""sonotok's core layer: what every subpackage may use and what imports none of them.

- `errors`: the one `SonotokError` tree (user errors name the input and the fix).
- `checkpointing`: training checkpoints written as safetensors + JSON and read without unpickling.
- `config`: the one typed-config checker (`dataclass_from_dict`: keys and value types of a
  config.json or training YAML, NaN refused) and the shared range checks (`check_numbers`).
- `options`: argparse validators for every numeric command option, and the one device resolver.
- `io`: the one atomic-write helper (umask permissions, stale-temporary cleanup, DiskFullError)
  and `check_finite`, which every model output passes before it is written.
- `latents`: `LatentFile`, the latent file format (save / load / validate against a model).
- `codes`: `CodeFile`, its sibling for a discrete tokenizer's integer codes, and `load_encoded`
  (either file, told apart by content).
"""
