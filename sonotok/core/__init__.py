"""sonotok's core layer: what every subpackage may use and what imports none of them.

- `errors`: the one `SonotokError` tree (user errors name the input and the fix).
- `checkpointing`: training checkpoints written as safetensors + JSON and read without unpickling.
"""
