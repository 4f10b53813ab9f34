"""Official checkpoint key maps: their names → ours (applied with `sonotok.core.hub.rename_keys`).

Reading, resolving, strict loading and writing are `sonotok.core.hub`'s (one implementation for
every model). Formats the tokenizer family reads through it:
- sonotok `save_pretrained` folders: config.json + model.safetensors.
- mispeech/dashengtokenizer: its config.json (model_type "dashengtokenizer") and
  model.safetensors with the official key names (`OFFICIAL_TOKENIZER_KEYS`).
- Dasheng encoders: Zenodo `.pt` files {"model": state_dict, "config": dict} and the
  HF repos mispeech/dasheng-{base,0.6B,1.2B} (keys prefixed "encoder."; `DASHENG_ENCODER_KEYS`).

Front-end buffers stored in official files (mel filterbanks, windows) are not parameters of
ours — we derive them — so they are checked against our own values instead of loaded.
"""

from __future__ import annotations

from sonotok.core.hub import rename_keys

__all__ = ["DASHENG_ENCODER_KEYS", "OFFICIAL_TOKENIZER_KEYS", "rename_keys"]

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
