"""Put generated audio into an original clip: the original outside a span, crossfades at its borders.

Inpainting and continuation regenerate latents, and decoding them re-synthesises the whole clip
(the tokenizer's reconstruction, not the input). Users expect their untouched audio back, so the
pipeline keeps the input's samples outside the edited span and fades between the two inside it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

# Crossfade length at each border of an edited span, in seconds: long enough to hide the seam
# (a few pitch periods), short enough to keep the edit where it was asked for.
DEFAULT_CROSSFADE = 0.05

FADE_SHAPES = ("equal_power", "linear")


def splice(
    original: Tensor,
    generated: Tensor,
    start: int,
    end: int,
    fade: int,
    shape: str = "equal_power",
) -> Tensor:
    """`original` (N,) outside samples [start, end), `generated` (N,) inside.

    Over the first and last `fade` samples inside the span (at most half the span each) the
    output fades from the original into the generated audio and back; no fade is applied at a
    border that is the clip's own edge. `shape`: "equal_power" (sin/cos gains, constant loudness
    for unrelated signals: new content replacing old) or "linear" (gains sum to 1: for signals
    that are nearly the same, e.g. a clip and its re-synthesis). Outside the span the output is
    the original, sample for sample.
    """
    import torch

    if shape not in FADE_SHAPES:
        raise ValueError(f"crossfade shape {shape!r}; expected one of {FADE_SHAPES}")
    n = original.shape[-1]
    if generated.shape[-1] != n or not 0 <= start < end <= n:
        raise ValueError(
            f"splice of {generated.shape[-1]} into {n} samples over [{start}, {end}): "
            "need equal lengths and 0 <= start < end <= N"
        )
    weight = torch.zeros(n, dtype=torch.float64)
    weight[start:end] = 1.0
    ramps = (start > 0) + (end < n)
    fade = max(0, min(fade, (end - start) // max(ramps, 1)))
    if fade:
        ramp = (torch.arange(fade, dtype=torch.float64) + 0.5) / fade
        if start > 0:
            weight[start : start + fade] = ramp
        if end < n:
            weight[end - fade : end] = ramp.flip(0)
    weight = weight.to(original.device)
    if shape == "equal_power":
        gain_new, gain_old = torch.sin(math.pi / 2 * weight), torch.cos(math.pi / 2 * weight)
    else:
        gain_new, gain_old = weight, 1.0 - weight
    mixed = (gain_old * original.double() + gain_new * generated.double()).to(original.dtype)
    out = torch.where(weight == 0, original, mixed)
    return torch.where(weight == 1, generated.to(original.dtype), out)
