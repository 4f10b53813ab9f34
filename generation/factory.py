"""Which text-to-audio pipeline a folder holds, and the one loader for all of them.

A folder declares its type: `pipeline.json` is a sonotok pipeline (`sonotok train generation`),
a `config.json` whose `model_type` names a registered pipeline (`dasheng_audiogen`: the official
`mispeech/Dasheng-AudioGen`) is that model. Implementations are named here by module and class
and imported only when a folder of their type is loaded, so this module sits below every
pipeline and `TextToAudioPipeline.from_pretrained` can use it without an import cycle.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from sonotok.core.errors import ModelNotFoundError
from sonotok.core.hub import resolve

from .errors import GenerationError

PIPELINE_CONFIG = "pipeline.json"
SONOTOK_PIPELINE = "sonotok_pipeline"
# pipeline type -> (module, class) of its implementation
PIPELINE_TYPES: dict[str, tuple[str, str]] = {
    SONOTOK_PIPELINE: ("sonotok.generation.dit_pipeline", "DiTPipeline"),
    "dasheng_audiogen": ("sonotok.generation.audiogen.pipeline", "DashengAudioGenPipeline"),
}


def pipeline_class(pipeline_type: str) -> type:
    """The implementation registered for `pipeline_type` (imported on first use)."""
    if pipeline_type not in PIPELINE_TYPES:
        raise GenerationError(
            f"pipeline type {pipeline_type!r} is unknown; known: {sorted(PIPELINE_TYPES)}"
        )
    module, name = PIPELINE_TYPES[pipeline_type]
    return getattr(importlib.import_module(module), name)


def config_model_type(folder: Path) -> str | None:
    """`model_type` of `folder`/config.json, or None when there is none to read."""
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # the implementation's loader reports the damaged file
    return data.get("model_type") if isinstance(data, dict) else None


def pipeline_type(folder: str | os.PathLike) -> str:
    """The type of pipeline `folder` holds (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"{folder}: not a folder; pass a pipeline folder (from `sonotok train generation`) "
            "or a hub id such as mispeech/Dasheng-AudioGen"
        )
    if (folder / PIPELINE_CONFIG).exists():
        return SONOTOK_PIPELINE
    model_type = config_model_type(folder)
    if model_type in PIPELINE_TYPES:
        return model_type
    found = f"config.json has model_type {model_type!r}" if model_type else "no config.json"
    raise ModelNotFoundError(
        f"{folder}: not a text-to-audio pipeline (no {PIPELINE_CONFIG}, and {found}); pass a "
        "folder written by save_pretrained / `sonotok train generation`, or a Dasheng-AudioGen "
        "folder or hub id"
    )


def load_pipeline(
    name_or_path: str | os.PathLike,
    tokenizer: Any = None,
    text_encoder: Any = None,
    device: str | torch.device = "cpu",
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    expected: type | None = None,
) -> Any:
    """Load any text-to-audio pipeline from a folder or hub id, by the folder's type.

    `tokenizer`: a `Tokenizer`, a folder or hub id overriding the pipeline's own, or False for
    none (`generate_latents` only); `text_encoder`: a loaded text encoder to use instead of the
    one the pipeline names. The hub options apply to the pipeline's download and to the
    tokenizer and text encoder it names. `expected`: refuse folders of another class.
    """
    hub = {"cache_dir": cache_dir, "token": token, "local_files_only": local_files_only}
    folder = resolve(name_or_path, revision=revision, **hub)
    cls = pipeline_class(pipeline_type(folder))
    if expected is not None and not issubclass(cls, expected):
        raise GenerationError(
            f"{name_or_path}: holds a {cls.__name__}, not a {expected.__name__}; load it with "
            "TextToAudioPipeline.from_pretrained"
        )
    hub = {k: v for k, v in hub.items() if v not in (None, False)}
    return cls.from_folder(folder, tokenizer, text_encoder, hub).to(device)
