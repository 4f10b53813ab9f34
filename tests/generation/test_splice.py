from __future__ import annotations

import math

import pytest
import torch

from sonotok.generation.splice import splice


def test_outside_the_span_is_the_original_and_inside_the_generated():
    g = torch.Generator().manual_seed(0)
    original, generated = torch.randn(1000, generator=g), torch.randn(1000, generator=g)
    out = splice(original, generated, 200, 700, 50)
    assert torch.equal(out[:200], original[:200]) and torch.equal(out[700:], original[700:])
    assert torch.equal(out[250:650], generated[250:650])
    # equal-power fade inside the span: gains cos/sin of (k + 0.5) / 50 * pi / 2
    k = torch.arange(50, dtype=torch.float64)
    phase = math.pi / 2 * (k + 0.5) / 50
    expected = (
        torch.cos(phase) * original[200:250].double()
        + torch.sin(phase) * generated[200:250].double()
    )
    torch.testing.assert_close(out[200:250], expected.float(), rtol=0, atol=1e-6)
    expected_out = torch.sin(phase).flip(0) * generated[650:700].double()
    expected_out += torch.cos(phase).flip(0) * original[650:700].double()
    torch.testing.assert_close(out[650:700], expected_out.float(), rtol=0, atol=1e-6)


def test_linear_fade_of_a_signal_into_itself_changes_nothing():
    wave = torch.randn(400, generator=torch.Generator().manual_seed(1))
    out = splice(wave, wave.clone(), 100, 300, 80, shape="linear")
    torch.testing.assert_close(out, wave, rtol=0, atol=1e-6)
    ramp = splice(torch.zeros(400), torch.ones(400), 100, 300, 80, shape="linear")
    assert ramp[100] == pytest.approx(0.5 / 80) and ramp[179] == pytest.approx(79.5 / 80)


def test_no_fade_at_the_clips_own_edges_and_fades_fit_short_spans():
    original, generated = torch.zeros(100), torch.ones(100)
    tail = splice(original, generated, 60, 100, 30)
    assert torch.equal(tail[:60], original[:60]) and tail[99] == 1 and tail[60] < 0.1
    head = splice(original, generated, 0, 40, 30)
    assert head[0] == 1 and head[39] < 0.1 and torch.equal(head[40:], original[40:])
    short = splice(original, generated, 40, 50, 30)  # 5-sample fades each way
    assert short[44] > 0.9 and short[45] > 0.9 and short[40] < 0.2 and short[49] < 0.2
    with pytest.raises(ValueError, match="start < end"):
        splice(original, generated, 50, 50, 10)
