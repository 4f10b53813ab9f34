"""Finding, reading and writing checkpoints; mapping official key names onto ours.

Formats read:
- sonotok `save_pretrained` folders: config.json + model.safetensors.
- mispeech/dashengtokenizer: its config.json (model_type "dashengtokenizer") and
  model.safetensors with the official key names (`OFFICIAL_TOKENIZER_KEYS`).
- Dasheng encoders: Zenodo `.pt` files {"model": state_dict, "config": dict} and the
  HF repos mispeech/dasheng-{base,0.6B,1.2B} (keys prefixed "encoder.").

All loading is strict: a key the model does not have, or a parameter it has and
the file lacks, is an error. Front-end buffers stored in official files (mel
filterbanks, windows) are not parameters of ours — we derive them — so they are
checked against our own values instead of loaded.
Nothing is unpickled: safetensors, or `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sonotok.core.config import read_json_object
from sonotok.core.errors import CheckpointError, ModelNotFoundError
from sonotok.core.io import atomic_write

# Official DashengTokenizer key → ours (regex, replacement); None = a derived buffer to check.
OFFICIAL_TOKENIZER_KEYS: list[tuple[str, str | None]] = [
    (r"^encoder\.model\.front_end\.0\.spectrogram\.window$", "semantic.front_end.window"),
    (r"^encoder\.model\.front_end\.0\.mel_scale\.fb$", "semantic.front_end.fb"),
    (r"^encoder\.model\.init_bn\.1\.", "semantic.init_bn."),
    (r"^encoder\.model\.patch_embed\.proj\.", "semantic.patch_embed."),
    (r"^encoder\.model\.", "semantic."),
    (r"^encoder\.front_end\.mel_spec\.spectrogram\.window$", "acoustic.front_end.window"),
    (r"^encoder\.front_end\.mel_spec\.mel_scale\.fb$", "acoustic.front_end.fb"),
    (r"^encoder\.patch_embed\.", "acoustic.patch_embed."),
    (r"^encoder\.norm\.", "acoustic.norm."),
    (r"^upsampler\.", "upsampler."),
    (r"^decoder\.", "decoder."),
]

# Original Dasheng encoder key → ours (same for the Zenodo .pt and, after "encoder.", the HF repos).
DASHENG_ENCODER_KEYS: list[tuple[str, str]] = [
    (r"^front_end\.0\.spectrogram\.window$", "front_end.window"),
    (r"^front_end\.0\.mel_scale\.fb$", "front_end.fb"),
    (r"^init_bn\.1\.", "init_bn."),
    (r"^patch_embed\.proj\.", "patch_embed."),
]


def rename_keys(
    state: dict[str, torch.Tensor], rules: list[tuple[str, str]]
) -> dict[str, torch.Tensor]:
    """Apply the first matching (pattern, replacement) rule to each key."""
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            if re.search(pattern, key):
                key = re.sub(pattern, repl, key)
                break
        out[key] = value
    return out


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load `state` into `model` with no missing or unexpected keys.

    Keys naming one of the model's non-persistent buffers (derived front-end tables)
    are compared with the model's own values instead of loaded.
    """
    derived = dict(model.named_buffers())
    persistent = model.state_dict()
    state = dict(state)
    for key in [k for k in state if k in derived and k not in persistent]:
        stored, ours = state.pop(key), derived[key]
        if stored.shape != ours.shape or not torch.allclose(
            stored.float().cpu(), ours.float().cpu(), atol=1e-5
        ):
            raise CheckpointError(
                f"{source}: stored {key} {tuple(stored.shape)} differs from the one this configuration "
                "derives; the checkpoint was made with a different front end (sample rate, n_fft or mel bins)"
            )
    missing = sorted(set(persistent) - set(state))
    unexpected = sorted(set(state) - set(persistent))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: does not match the model: missing keys {missing[:8]}{'…' if len(missing) > 8 else ''}, "
            f"unexpected keys {unexpected[:8]}{'…' if len(unexpected) > 8 else ''}; check that the config "
            "(depth, widths) belongs to these weights"
        )
    wrong = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(persistent[k].shape)}"
        for k, v in state.items()
        if v.shape != persistent[k].shape
    ]
    if wrong:
        raise CheckpointError(f"{source}: tensor shapes do not match the config: {wrong[:4]}")
    model.load_state_dict(state, strict=True)


def is_hub_id(name: str) -> bool:
    """'owner/name' with no path-like prefix or file suffix."""
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name)) and not name.endswith(
        (".pt", ".bin", ".safetensors", ".json")
    )


def resolve(name_or_path: str | os.PathLike, allow_patterns: list[str] | None = None) -> Path:
    """A local file/folder as is; otherwise a Hugging Face Hub id, downloaded (or taken from the cache)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    name = str(name_or_path)
    if not is_hub_id(name):
        raise ModelNotFoundError(
            f"model {name!r}: no such file or folder; pass a folder written by save_pretrained, "
            "a downloaded checkpoint folder, or a Hugging Face Hub id like 'mispeech/dashengtokenizer'"
        )
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, allow_patterns=allow_patterns))
    except Exception as err:  # offline, unknown repo, gated, ...: one message with the fix
        raise ModelNotFoundError(
            f"model {name!r}: not a local folder, and it could not be fetched from the Hugging Face Hub "
            f"({type(err).__name__}). On a machine with internet run "
            f"`hf download {name} --local-dir DIR`, copy DIR here and pass it instead "
            "(--model DIR, or from_pretrained('DIR'))"
        ) from None


def read_config(folder: Path) -> dict:
    """config.json as a dict; a file that is not a JSON object is a ConfigError naming it."""
    file = folder / "config.json"
    if not file.is_file():
        raise ModelNotFoundError(f"{folder}: no config.json; this is not a model folder")
    return read_json_object(file)


def read_safetensors(file: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors file; an empty, truncated or foreign file is a
    CheckpointError naming it (safetensors parses a header only: nothing is executed)."""
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"{file}: not a readable safetensors file ({str(err).splitlines()[0]}); it is empty, "
            "truncated or not a model's weights — re-save or re-download it"
        ) from None


def read_torch_weights(file: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict saved with torch.save, read with weights_only=True: a pickle that would
    build any other object (or run code) is refused with a CheckpointError, never executed."""
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, EOFError, RuntimeError, ...: one message
        raise CheckpointError(
            f"{file}: refused to load ({type(err).__name__}): not a plain tensor checkpoint — "
            "sonotok never unpickles objects or code; convert the weights to model.safetensors"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{file}: expected a dict of tensors (a state_dict), got {type(state).__name__}"
        )
    return state


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """model.safetensors, else pytorch_model.bin read with weights_only=True."""
    st, pt = folder / "model.safetensors", folder / "pytorch_model.bin"
    if st.is_file():
        return read_safetensors(st)
    if pt.is_file():
        return read_torch_weights(pt)
    raise ModelNotFoundError(
        f"{folder}: no model.safetensors (or pytorch_model.bin) next to config.json"
    )


def write_pretrained(
    folder: str | os.PathLike, config: dict, state: dict[str, torch.Tensor]
) -> Path:
    """config.json + model.safetensors, each written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    atomic_write(folder / "model.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    text = json.dumps(config, indent=2) + "\n"
    atomic_write(folder / "config.json", lambda tmp: tmp.write_text(text))
    return folder
