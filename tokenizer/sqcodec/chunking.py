"""Bounded-memory encoding and decoding of long clips, equal to one pass.

Why it can be exact: the convolutions see a fixed number of frames on each side (`reach`), and
the local Transformer is causal within blocks of `window` frames, so a frame's output depends
on its own and the `depth` previous blocks. A chunk that starts on a block boundary and is run
with `depth` blocks plus the conv reach of left context, and the conv reach of right context,
gives exactly the one-pass frames (the GRN's clip-wide factor g / (g + eps) is 1.0 in float32
for any non-silent clip).

The one clip-global operation is the decoder's `EnhanceGate` instance norm (mean and variance
over the whole clip). Chunked decoding therefore makes one streaming pass per gate to collect
those statistics (float64 sums over each chunk's own frames; pass k runs the decoder only up
to gate k), then decodes with them: 2-3 × the work of one pass, in memory bounded by the chunk
size. The result equals one pass up to float rounding (which a decoder can amplify to ~1e-5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from .configs import SQCodecConfig
from .model import SQCodecModel

__all__ = ["Segment", "decode_chunked", "encode_chunked", "segments"]

Segment = tuple[int, int, int, int]  # (context start, chunk start, chunk stop, context stop)


def encoder_reach(c: SQCodecConfig) -> int:
    """Frames of the conv encoder's receptive field on either side (rounded up, + 1 spare)."""
    samples = 2 * (45 // 2) + 3  # TConvInput: max- then avg-pool of 45, conv k7
    rate = 1
    for stride, depth in zip(c.compress_rates, c.encoder_depths):
        samples += rate * (3 * depth + stride)  # k7 depth-wise convs; the strided conv
        rate *= stride
    samples += rate * (3 * c.encoder_depths[-1] + 1 + c.transformer_compress)
    return math.ceil(samples / c.hop_length) + 1


def decoder_reach(c: SQCodecConfig) -> int:
    """Frames of the conv decoder's receptive field on either side (rounded up, + 1 spare)."""
    interpolation = c.hop_length if c.transformer_compress > 1 else 0  # UpTrans, ±1 frame
    samples = c.conv_hop + interpolation  # + the k3 input conv
    rate = c.conv_hop  # samples per frame at the current stage
    for stride, depth in zip(c.decode_rates, c.decoder_depths):
        samples += rate * (3 * depth + 2 * (9 // 2) + 3 * 5 + 1)  # units; gate; upsampling
        rate //= stride
    samples += 3 * (1 + 3 + 9) + 3  # the output block's dilated units and k7 conv
    return math.ceil(samples / c.hop_length) + 1


def segments(frames: int, chunk: int, window: int, left: int, right: int) -> Iterator[Segment]:
    """Chunks of `chunk` frames (rounded up to whole blocks) covering `frames`, each with
    `left` (rounded up to whole blocks) and `right` frames of context, clipped to the clip."""
    chunk = max(window, math.ceil(chunk / window) * window)
    left = math.ceil(left / window) * window
    for start in range(0, frames, chunk):
        stop = min(frames, start + chunk)
        yield max(0, start - left), start, stop, min(frames, stop + right)


def encode_chunked(
    model: SQCodecModel, padded: torch.Tensor, chunk_frames: int, progress: Callable | None
) -> torch.Tensor:
    """(1, N') wave padded to hop × window → (1, N' / hop, D) pre-quantization features."""
    c, hop = model.config, model.config.hop_length
    frames = padded.shape[-1] // hop
    left = c.transformer_depth * c.transformer_window + encoder_reach(c)
    parts = []
    for a, s, e, b in segments(frames, chunk_frames, c.transformer_window, left, encoder_reach(c)):
        features = model.encode_features(padded[:, a * hop : b * hop])
        parts.append(features[:, s - a : e - a])
        if progress is not None:
            progress(e / frames)
    return torch.cat(parts, dim=1)


def _decoder_input(model: SQCodecModel, latents: torch.Tensor, seg: Segment) -> torch.Tensor:
    a, _, _, b = seg
    return model.en_decoder(latents[:, a:b])


def decode_chunked(
    model: SQCodecModel, latents: torch.Tensor, chunk_frames: int, progress: Callable | None
) -> torch.Tensor:
    """(B, T, D) quantized embeddings → (B, T · hop) audio, chunk by chunk (see the module)."""
    c = model.config
    frames, reach = latents.shape[1], decoder_reach(c)
    # + one block when the Transformer upsamples: its interpolation spills one frame of the
    # left edge's error into the next block
    blocks = c.transformer_depth + (c.transformer_compress > 1)
    left = blocks * c.transformer_window + reach
    segs = list(segments(frames, chunk_frames, c.transformer_window, left, reach))
    decoder, gates = model.decoder, model.decoder.gates
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    steps, done = (len(gates) + 1) * len(segs), 0
    for gate in gates:
        total = torch.zeros(latents.shape[0], 4, 2, dtype=torch.float64, device=latents.device)
        count = 0
        for seg in segs:
            h = decoder(_decoder_input(model, latents, seg), stats, stop=gate)
            per_frame = h.shape[-1] // (seg[3] - seg[0])
            feats = decoder.blocks[gate].features(h)
            own = feats[..., (seg[1] - seg[0]) * per_frame : (seg[2] - seg[0]) * per_frame]
            own = own.double()
            total += torch.stack([own.sum(-1), own.pow(2).sum(-1)], dim=-1)
            count += own.shape[-1]
            done += 1
            if progress is not None:
                progress(done / steps)
        mean = total[..., 0] / count
        var = (total[..., 1] / count - mean.pow(2)).clamp_min(0)
        stats[gate] = (mean[..., None].to(latents.dtype), var[..., None].to(latents.dtype))
    hop, parts = c.hop_length, []
    for seg in segs:
        audio = decoder(_decoder_input(model, latents, seg), stats)[:, 0]
        parts.append(audio[:, (seg[1] - seg[0]) * hop : (seg[2] - seg[0]) * hop])
        done += 1
        if progress is not None:
            progress(done / steps)
    return torch.cat(parts, dim=1)
