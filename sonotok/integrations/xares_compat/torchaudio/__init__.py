"""The torchaudio calls X-ARES makes, for environments where torchaudio cannot be imported.

`python -m sonotok.integrations.xares_run` puts the folder above this one on sys.path only when `import
torchaudio` fails (the PyPI torchaudio wheels need a CUDA build of torch, so they do not import
beside the CPU torch wheel). X-ARES 0.1.3 uses torchaudio twice: `torchaudio.functional.resample`
(xares/audiowebdataset.py) and, through webdataset's `torch_audio` decoder, `torchaudio.load`.
Both are served here by soundfile and soxr, sonotok's own audio I/O.
"""

from __future__ import annotations

import soundfile as sf
import torch

from . import functional

__version__ = "0.0+sonotok.xares"
__all__ = ["functional", "load"]


def load(
    uri,
    frame_offset: int = 0,
    num_frames: int = -1,
    normalize: bool = True,
    channels_first: bool = True,
    format: str | None = None,
    **_,
) -> tuple[torch.Tensor, int]:
    """(wave (C, N) float32 in [-1, 1], sample rate), like torchaudio.load with defaults."""
    del normalize, format  # always float, the container is read from the file
    data, rate = sf.read(
        uri, start=frame_offset, frames=num_frames, dtype="float32", always_2d=True
    )
    wave = torch.from_numpy(data.T.copy() if channels_first else data)
    return wave, int(rate)
