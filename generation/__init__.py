"""sonotok.generation: text-to-audio / text-to-music with a flow-matching DiT on tokenizer latents.

from sonotok.generation import TextToAudioPipeline
pipe = TextToAudioPipeline.from_pretrained("runs/generation-tiny/pipeline")
waves = pipe(["a dog barks twice"], seconds=5, num_steps=25, guidance_scale=5.0, seed=0)
"""

from .audiogen import AudioGenConfig, DashengAudioGen, DashengAudioGenPipeline
from .config import GenerationTrainConfig, load_config
from .dit import DiT, DiTConfig
from .flow import (
    FlowMatchingObjective,
    make_scheduler,
    rae_shift_alpha,
    sample,
    set_sigmas,
    sway_sigmas,
)
from .hub import GenerationError
from .pipeline import PipelineConfig, TextToAudioPipeline
from .text import DEFAULT_TEXT_ENCODER, TextEncoder, add_text_states

__all__ = [
    "AudioGenConfig",
    "DashengAudioGen",
    "DashengAudioGenPipeline",
    "DEFAULT_TEXT_ENCODER",
    "DiT",
    "DiTConfig",
    "FlowMatchingObjective",
    "GenerationError",
    "GenerationTrainConfig",
    "PipelineConfig",
    "TextEncoder",
    "TextToAudioPipeline",
    "add_text_states",
    "load_config",
    "make_scheduler",
    "rae_shift_alpha",
    "sample",
    "set_sigmas",
    "sway_sigmas",
]
