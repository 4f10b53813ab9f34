"""The official Dasheng-AudioGen (HF `mispeech/Dasheng-AudioGen`): `model.py` (config and
modules), `loader.py` (the official folder format: sniffing, config layout, weights, strict key
check) and `pipeline.py` (`DashengAudioGenPipeline`, a `TextToAudioPipeline`)."""

from .loader import OFFICIAL_MODEL_TYPE, is_official_folder, load_official_state
from .model import AudioGenConfig, DashengAudioGen, LayerFusionDiT, official_sigmas
from .pipeline import DashengAudioGenPipeline

__all__ = [
    "OFFICIAL_MODEL_TYPE",
    "AudioGenConfig",
    "DashengAudioGen",
    "DashengAudioGenPipeline",
    "LayerFusionDiT",
    "is_official_folder",
    "load_official_state",
    "official_sigmas",
]
