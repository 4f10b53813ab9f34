"""The official Dasheng-AudioGen folder format (HF `mispeech/Dasheng-AudioGen`): sniffing, the
config.json layout, the weight files and the strict key check.

Key mapping: our module names equal the checkpoint's keys, so the mapping is the identity; the
only derived tensors, `*.rotary.inv_freq`, are taken from the model when a file lacks them.
This module knows the format only; `model.py` builds the model from it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from torch import Tensor, nn

from sonotok.core.config import read_json_object
from sonotok.core.hub import CONFIG_NAME, WEIGHTS_NAME, read_safetensors

from ..errors import GenerationError

OFFICIAL_MODEL_TYPE = "dasheng_audiogen"
SHARD_INDEX = "model.safetensors.index.json"
DERIVED_SUFFIX = "rotary.inv_freq"  # recomputable RoPE tables (1 / 10000^(2i / head_dim))
# Files a hub download of the official repository needs (weights, configs, the T5 tokenizer).
HUB_FILES = [CONFIG_NAME, "*.safetensors", SHARD_INDEX, "tokenizer*.json", "special_tokens*"]
# config.json keys the official code reads but this implementation derives or fixes; written
# back as the released model has them (a loaded folder keeps its own values).
FIXED_KEYS = {"dit_img_size": 1000, "dit_patch_size": 1, "dit_input_type": "1d"}
HEADER_KEYS = {"model_type": OFFICIAL_MODEL_TYPE, "architectures": ["DashengAudioGenModel"]}
# Keys of the official config.json that carry no information for this implementation.
IGNORED_KEYS = {
    "model_type",
    "architectures",
    "auto_map",
    "transformers_version",
    "torch_dtype",
    "dit_img_size",
    "dit_patch_size",
    "dit_in_chans",
    "dit_out_chans",
    "dit_input_type",
}


def is_official_folder(folder: str | os.PathLike) -> bool:
    """True for a folder holding the official Dasheng-AudioGen config.json."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file() or (Path(folder) / "pipeline.json").exists():
        return False
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("model_type") == OFFICIAL_MODEL_TYPE


def check_official(values: dict, where: str) -> None:
    """Refuse a config.json that is not Dasheng-AudioGen's."""
    if values.get("model_type") != OFFICIAL_MODEL_TYPE:
        raise GenerationError(
            f"{where}: model_type {values.get('model_type')!r} is not {OFFICIAL_MODEL_TYPE!r}"
        )


def official_config(fields: dict, kept: dict | None = None) -> dict:
    """config.json in the official layout from the config's `fields` (+ `kept`: the ignored
    keys of the folder the model came from, so a load/save round trip keeps them)."""
    channels = {"dit_in_chans": fields["latent_dim"], "dit_out_chans": fields["latent_dim"]}
    return {**HEADER_KEYS, **fields, **FIXED_KEYS, **channels, **(kept or {})}


def read_official_weights(folder: Path) -> dict[str, Tensor]:
    """model.safetensors, or every shard named by model.safetensors.index.json."""
    index = folder / SHARD_INDEX
    if (folder / WEIGHTS_NAME).is_file():
        files = [folder / WEIGHTS_NAME]
    elif index.is_file():
        weight_map = read_json_object(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise GenerationError(f"{index}: no 'weight_map' object; re-download the model")
        files = sorted({folder / str(name) for name in weight_map.values()})
    else:
        raise GenerationError(f"{folder}: no {WEIGHTS_NAME} (or sharded index) found")
    state: dict[str, Tensor] = {}
    for file in files:
        state.update(read_safetensors(file))
    return state


def load_official_state(model: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Strict load; only `*.rotary.inv_freq` (derived) may be absent from `state`."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(DERIVED_SUFFIX)]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        raise GenerationError(
            f"{source}: weights do not match Dasheng-AudioGen (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, wrong shape {shapes[:5]}); check config.json against the weights"
        )
    model.load_state_dict({**expected, **state}, strict=True)
