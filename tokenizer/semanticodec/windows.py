"""Long feature sequences → audio: the reference's windowing, batched over windows and clips.

As `SemantiCodec.decode` in the release: windows of `512 / K` tokens (K = 100 / token_rate,
10.24 s) that overlap by 6.25 % (32/16/8 tokens), the last one padded with -1 to full length;
each window is decoded to `window_samples` of audio and the windows are joined with a linear
cross-fade over `0.0625 × 1024 × 160` = 10240 samples, then trimmed. The release decodes one
window of one clip at a time; here every window of every clip goes through `generate` in
batches of `windows_per_pass`.

Lengths: the output has exactly T · 320 · K samples. (The release trims with a float expression
that drops one sample for about 0.4 % of lengths, e.g. T = 803; everything else is equal.)

Noise: window w of every clip draws x_T and its DDIM step noise from a generator seeded with
`base + w`, `base` drawn once from `generator`; so a clip decodes to the same audio alone or in
any batch, and with any `windows_per_pass`.
"""

from __future__ import annotations

import torch

from sonotok.core.errors import ConfigError
from sonotok.tokenizer.semanticodec.decoder import SemantiCodecDecoder
from sonotok.tokenizer.semanticodec.sampling import draw_noise, num_noise_draws

__all__ = ["OVERLAP", "decode_features", "overlap_add", "split_windows", "window_tokens"]

OVERLAP = 0.0625  # SEGMENT_OVERLAP_RATIO in semanticodec/main.py
WINDOW_TOKENS_AT_100 = 512  # int(512 / K) tokens per 10.24 s window, main.py


def window_tokens(token_rate: int) -> int:
    """Tokens per decoding window: 512 at 100 tokens/s, 256 at 50, 128 at 25."""
    if token_rate not in (25, 50, 100):
        raise ConfigError(f"token_rate={token_rate}: SemantiCodec has 25, 50 or 100 tokens/s")
    return int(WINDOW_TOKENS_AT_100 / (100 / token_rate))


def split_windows(length: int, window: int) -> list[tuple[int, int]]:
    """(start, end) token spans, as `long_token_split_window` cuts them."""
    hop = window - int(window * OVERLAP)
    spans, start = [], 0
    while start + window < length:
        spans.append((start, start + window))
        start += hop
    if length - start > 0:
        spans.append((start, length))
    return spans


def overlap_add(windows: torch.Tensor, overlap: int) -> torch.Tensor:
    """(B, n, S) window audio → (B, S + (n - 1)(S - overlap)), linear cross-fades.

    The fades are applied in float64 and rounded, as the reference's numpy in-place products."""
    batch, count, size = windows.shape
    hop = size - overlap
    out = windows.new_empty(batch, size + (count - 1) * hop)
    out[:, :size] = windows[:, 0]
    fade_in = torch.linspace(0, 1, overlap, dtype=torch.float64, device=windows.device)
    fade_out = fade_in.flip(0)
    for i in range(1, count):  # written in place: linear in the number of windows
        start, nxt = i * hop, windows[:, i]
        head = (nxt[:, :overlap].double() * fade_in).to(out.dtype)
        tail = out[:, start : start + overlap]
        out[:, start : start + overlap] = (tail.double() * fade_out).to(out.dtype) + head
        out[:, start + overlap : start + size] = nxt[:, overlap:]
    return out


def window_noise(
    decoder: SemantiCodecDecoder, base: int, indices: list[int], sampler: str, steps: int
) -> torch.Tensor:
    """(len(indices), draws, C, H, W): window w's noise from a generator seeded base + w."""
    draws = num_noise_draws(sampler, steps, decoder.config.timesteps)
    shape = (1, *decoder.latent_shape)
    return torch.cat(
        [draw_noise(shape, draws, torch.Generator().manual_seed(base + w)) for w in indices]
    )


@torch.no_grad()
def decode_features(
    decoder: SemantiCodecDecoder,
    features: torch.Tensor,
    token_rate: int,
    steps: int = 50,
    guidance: float = 2.0,
    sampler: str = "ddim",
    generator: torch.Generator | None = None,
    *,
    eta: float = 1.0,
    windows_per_pass: int = 8,
) -> torch.Tensor:
    """Quantized features (B, T, C) → audio (B, T · 320 · K) at 16 kHz (see the module doc)."""
    if features.dim() != 3 or features.shape[1] == 0:
        raise ConfigError(f"features must be (B, T > 0, C), got {tuple(features.shape)}")
    if windows_per_pass < 1:
        raise ConfigError(f"windows_per_pass={windows_per_pass}: use 1 or more")
    batch, length, width = features.shape
    window = window_tokens(token_rate)
    spans = split_windows(length, window)
    padded = features.new_full((batch, len(spans), window, width), -1.0)
    for w, (start, end) in enumerate(spans):
        padded[:, w, : end - start] = features[:, start:end]
    flat = padded.reshape(batch * len(spans), window, width)
    window_index = list(range(len(spans))) * batch
    base = int(torch.randint(0, 2**62, (1,), generator=generator))
    audio = []
    for lo in range(0, flat.shape[0], windows_per_pass):
        part = slice(lo, lo + windows_per_pass)
        noise = window_noise(decoder, base, window_index[part], sampler, steps)
        audio.append(
            decoder.generate(
                flat[part], steps=steps, guidance=guidance, sampler=sampler, eta=eta, noise=noise
            )
        )
    audio = torch.cat(audio).reshape(batch, len(spans), -1)
    cfg = decoder.config
    overlap = int(cfg.mel_frames * cfg.hop_length * OVERLAP)
    per_token = cfg.mel_frames * cfg.hop_length // window
    return overlap_add(audio, overlap)[:, : length * per_token]
