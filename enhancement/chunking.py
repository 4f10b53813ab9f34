"""Long inputs in bounded memory: overlapping latent chunks joined by a linear crossfade.

A chunk's "core" frames are the ones it contributes; neighbouring cores overlap by
`crossfade` frames where the two outputs are blended with weights that sum to 1, so
the result is continuous at every seam. Each core is computed with `context` extra
input frames per side. When the model's receptive field is finite and `context`
covers it (a denoiser with `attention_window`, the Vocos decoder), every chunk
reproduces the one-pass values on its core and the joined output equals one pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Span:
    start: int  # core [start, stop) in output frames
    stop: int
    left: int  # input frames [left, right) fed to the model
    right: int


def chunk_spans(length: int, chunk: int, crossfade: int, context: int) -> list[Span]:
    """Cores of `chunk` frames stepping by `chunk - crossfade`, covering [0, length)."""
    if chunk <= crossfade:
        raise ValueError(f"chunk ({chunk} frames) must be longer than the crossfade ({crossfade})")
    spans, start = [], 0
    while True:
        stop = min(start + chunk, length)
        spans.append(Span(start, stop, max(0, start - context), min(length, stop + context)))
        if stop >= length:
            return spans
        start += chunk - crossfade


def crossfade_weights(span: Span, spans: list[Span], crossfade: int) -> torch.Tensor:
    """(stop - start,) weights of one core: ramps where it overlaps a neighbour, else 1."""
    n = span.stop - span.start
    w = torch.ones(n)
    i = spans.index(span)
    ramp = (torch.arange(crossfade) + 0.5) / crossfade
    if i > 0:  # fade in over the overlap with the previous core
        k = min(crossfade, spans[i - 1].stop - span.start)
        w[:k] = ramp[:k]
    if i < len(spans) - 1:  # fade out over the overlap with the next core
        k = spans[i].stop - spans[i + 1].start
        w[n - k :] = torch.minimum(w[n - k :], 1 - ramp[:k])
    return w


def map_chunked(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    chunk: int | None,
    crossfade: int,
    context: int,
) -> torch.Tensor:
    """Apply a frame-to-frame map `fn` ((B, t, D) → (B, t, D')) to (B, T, D) chunk by chunk.

    chunk=None (or T ≤ chunk): one pass.
    """
    t = x.shape[1]
    if chunk is None or t <= chunk:
        return fn(x)
    spans = chunk_spans(t, chunk, crossfade, context)
    out = None
    for span in spans:
        y = fn(x[:, span.left : span.right])[:, span.start - span.left : span.stop - span.left]
        if out is None:
            out = y.new_zeros(x.shape[0], t, y.shape[-1])
        w = crossfade_weights(span, spans, crossfade).to(y)
        out[:, span.start : span.stop] += y * w[None, :, None]
    return out
