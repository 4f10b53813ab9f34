"""VGGish (Hershey et al., ICASSP 2017) for Fréchet Audio Distance (Kilgour et al., 2019).

Front end (AudioSet release ``vggish_params.py`` / ``mel_features.py``): 16 kHz mono,
25 ms periodic-Hann frames (400 samples) every 10 ms (160), 512-point FFT magnitude, 64 HTK-mel
bands from 125 to 7500 Hz (triangles on the mel axis, unnormalised, DC bin zeroed),
``log(mel + 0.01)``, then non-overlapping 0.96 s examples of 96 frames × 64 bands.
Clips shorter than one example are zero-padded to 0.975 s.

Network: the PyTorch port of the released weights (``harritaylor/torchvggish`` v0.1,
``vggish-10086976.pth``): four VGG conv stages → 4096 → 4096 → 128. Like the FAD reference
(``frechet_audio_distance``), the 128-d output is taken before the final ReLU and without PCA
whitening or 8-bit quantisation; FAD is fitted to the per-example (0.96 s) rows.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from .embedders import download_weights, load_local_weights

SAMPLE_RATE = 16000  # vggish_params.SAMPLE_RATE
WINDOW = 400  # STFT_WINDOW_LENGTH_SECONDS 0.025
HOP = 160  # STFT_HOP_LENGTH_SECONDS 0.010
N_FFT = 512  # 2 ** ceil(log2(400))
N_MELS = 64  # NUM_MEL_BINS
MEL_MIN_HZ, MEL_MAX_HZ = 125.0, 7500.0  # MEL_MIN_HZ / MEL_MAX_HZ
LOG_OFFSET = 0.01  # LOG_OFFSET
EXAMPLE_FRAMES = 96  # EXAMPLE_WINDOW_SECONDS 0.96 / hop
WEIGHTS_URL = (
    "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
)
WEIGHTS_FILE = "vggish-10086976.pth"


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    # HTK mel scale as in mel_features.hertz_to_mel: 1127 ln(1 + f / 700)
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


@lru_cache(maxsize=1)
def vggish_mel_matrix() -> torch.Tensor:
    """(N_FFT // 2 + 1, N_MELS) weights mapping FFT magnitudes to VGGish mel bands."""
    bins = N_FFT // 2 + 1
    bin_mels = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, bins))
    edges = np.linspace(_hz_to_mel(MEL_MIN_HZ), _hz_to_mel(MEL_MAX_HZ), N_MELS + 2)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mels[:, None] - left) / (centre - left)
    falling = (right - bin_mels[:, None]) / (right - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # the DC bin contributes to no band
    return torch.from_numpy(weights).float()


def vggish_examples(wave: torch.Tensor) -> torch.Tensor:
    """(L,) 16 kHz wave -> (E, 1, 96, 64) log-mel examples."""
    x = torch.as_tensor(wave, dtype=torch.float32).reshape(-1)
    min_len = WINDOW + HOP * (EXAMPLE_FRAMES - 1)
    if x.shape[0] < min_len:
        x = torch.nn.functional.pad(x, (0, min_len - x.shape[0]))
    frames = x.unfold(0, WINDOW, HOP)  # (F, 400), no centre padding
    window = torch.hann_window(WINDOW, periodic=True)
    magnitude = torch.fft.rfft(frames * window, n=N_FFT).abs()
    log_mel = torch.log(magnitude @ vggish_mel_matrix() + LOG_OFFSET)
    n = log_mel.shape[0] // EXAMPLE_FRAMES
    return log_mel[: n * EXAMPLE_FRAMES].reshape(n, 1, EXAMPLE_FRAMES, N_MELS)


class VGGish(nn.Module):
    """VGGish network; parameter names match ``vggish-10086976.pth``.

    forward: x (Tensor): (E, 1, 96, 64) log-mel examples -> (E, 128) embeddings.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for stage in ((64,), (128,), (256, 256), (512, 512)):
            for width in stage:
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 128),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (E, 512, 6, 4)
        # TF flattens channels-last: (E, 6, 4, 512)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return self.embeddings(x)


class VGGishEmbedder:
    """FAD embedder: one 128-d row per 0.96 s example."""

    name = "vggish"
    sample_rate = SAMPLE_RATE

    def __init__(self, model: VGGish, cache_id: str = "vggish-10086976") -> None:
        self.model = model.eval()
        self.cache_id = cache_id

    @classmethod
    def from_pretrained(cls, weights: str | None = None) -> VGGishEmbedder:
        """Released weights from a local .pth (``--vggish-weights``) or downloaded once."""
        state = (
            load_local_weights(weights, "VGGish")
            if weights
            else download_weights(WEIGHTS_URL, WEIGHTS_FILE, "VGGish", "--vggish-weights")
        )
        model = VGGish()
        model.load_state_dict(state, strict=True)
        return cls(model)

    @torch.no_grad()
    def embed(self, wave: torch.Tensor) -> dict[str, np.ndarray]:
        examples = vggish_examples(wave)
        rows = [self.model(examples[i : i + 64]) for i in range(0, examples.shape[0], 64)]
        return {"embedding": torch.cat(rows).numpy()}


def num_examples(num_samples: int) -> int:
    """Rows VGGish gives for a clip of ``num_samples`` at 16 kHz."""
    frames = 1 + (max(num_samples, WINDOW + HOP * (EXAMPLE_FRAMES - 1)) - WINDOW) // HOP
    return max(1, math.floor(frames / EXAMPLE_FRAMES))
