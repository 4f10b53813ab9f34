"""sonotok.generation: text-to-audio / text-to-music with a flow-matching DiT on tokenizer latents.

from sonotok.generation import TextToAudioPipeline
pipe = TextToAudioPipeline.from_pretrained("runs/generation-tiny/pipeline")
waves = pipe(["a dog barks twice"], seconds=5, num_steps=25, guidance_scale=5.0, seed=0)

One pipeline type, `TextToAudioPipeline` (pipeline.py), with two implementations: `DiTPipeline`
(dit_pipeline.py, sonotok's DiT) and `DashengAudioGenPipeline` (audiogen/, the official model);
`load_pipeline` (factory.py) picks one by the folder's type. Models live apart from pipelines
(dit.py; audiogen/model.py + loader.py). The names below are imported on first use, so that
`import sonotok.generation.prompts` (the CLI's parser) loads no model code.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it
_EXPORTS = {
    "AudioGenConfig": "audiogen",
    "DashengAudioGen": "audiogen",
    "DashengAudioGenPipeline": "audiogen",
    "DEFAULT_TEXT_ENCODER": "text",
    "DiT": "dit",
    "DiTConfig": "dit",
    "DiTPipeline": "dit_pipeline",
    "FlowMatchingObjective": "flow",
    "GenerationError": "errors",
    "GenerationTrainConfig": "config",
    "PipelineConfig": "pipeline",
    "TextEncoder": "text",
    "TextToAudioPipeline": "pipeline",
    "add_text_states": "text",
    "load_config": "config",
    "load_pipeline": "factory",
    "make_scheduler": "flow",
    "rae_shift_alpha": "flow",
    "sample": "flow",
    "set_sigmas": "flow",
    "sway_sigmas": "flow",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
