import numpy as np
import torch

from sonotok.enhancement import (
    DenoiserConfig,
    EnhancementPipeline,
    LatentDenoiser,
    TokenizerDenoiser,
)
from sonotok.enhancement.chunking import chunk_spans, crossfade_weights, map_chunked


def test_spans_cover_and_weights_sum_to_one():
    for length, chunk, fade in ((1000, 250, 25), (251, 250, 25), (530, 100, 30), (77, 10, 0)):
        spans = chunk_spans(length, chunk, fade, context=7)
        total = torch.zeros(length)
        for s in spans:
            total[s.start : s.stop] += crossfade_weights(s, spans, fade)
            assert s.left == max(0, s.start - 7) and s.right == min(length, s.stop + 7)
        assert torch.allclose(total, torch.ones(length), atol=1e-6)


def test_windowed_denoiser_chunked_equals_one_pass():
    torch.manual_seed(0)
    model = LatentDenoiser(
        DenoiserConfig(latent_dim=8, dim=8, num_layers=3, num_heads=2, attention_window=5)
    ).eval()
    z = torch.randn(2, 400, 8)
    with torch.no_grad():
        full = model(z)
        chunked = map_chunked(
            model, z, chunk=64, crossfade=16, context=model.config.receptive_radius
        )
    assert torch.allclose(chunked, full, atol=1e-5)


def test_global_denoiser_chunked_matches_away_from_seams_and_is_continuous():
    torch.manual_seed(0)
    model = LatentDenoiser(DenoiserConfig(latent_dim=8, dim=8, num_layers=3, num_heads=2)).eval()
    z = torch.randn(1, 300, 8)
    chunk, fade = 100, 20
    spans = chunk_spans(300, chunk, fade, context=0)
    with torch.no_grad():
        chunked = map_chunked(model, z, chunk, fade, context=0)
        pieces = [model(z[:, s.left : s.right]) for s in spans]
    # Outside the crossfades each frame is exactly its chunk's one-pass output.
    for s, y in zip(spans, pieces):
        w = crossfade_weights(s, spans, fade)
        inner = torch.nonzero(w == 1).flatten()
        assert torch.allclose(chunked[0, s.start + inner], y[0, inner], atol=1e-6)
    # Across each seam the output moves from one chunk's values to the next one's in steps no
    # larger than the model's own frame-to-frame change plus 1/fade of the chunks' disagreement.
    step = (chunked[0, 1:] - chunked[0, :-1]).norm(dim=-1)
    for a, b, ya, yb in zip(spans, spans[1:], pieces, pieces[1:]):
        lo, hi = b.start, a.stop
        gap = (
            (ya[0, lo - a.left : hi - a.left] - yb[0, lo - b.left : hi - b.left]).norm(dim=-1).max()
        )
        local = max(
            (ya[0, 1:] - ya[0, :-1]).norm(dim=-1).max(), (yb[0, 1:] - yb[0, :-1]).norm(dim=-1).max()
        )
        assert step[lo - 1 : hi].max() <= local + gap / fade * 1.5


def test_pipeline_chunked_equals_unchunked_for_a_windowed_model(tiny_tokenizer, tone):
    torch.manual_seed(2)
    cfg = DenoiserConfig(
        latent_dim=tiny_tokenizer.latent_dim, dim=32, num_layers=2, num_heads=2, attention_window=6
    )
    model = TokenizerDenoiser(tiny_tokenizer, LatentDenoiser(cfg).eval())
    x = np.stack([tone(16000 * 14, 16000, seed=4), tone(16000 * 14, 16000, seed=5)], axis=1)
    chunked = EnhancementPipeline(model, chunk_seconds=4.0, crossfade_seconds=1.0).enhance(x, 16000)
    whole = EnhancementPipeline(model, chunk_seconds=None).enhance(x, 16000)
    assert np.abs(chunked - whole).max() < 1e-4 * max(1.0, np.abs(whole).max())
    assert np.abs(whole).max() > 1e-3


def test_pipeline_chunks_global_model_continuously(tiny_pipeline, tone):
    x = tone(16000 * 12, 16000, seed=6)
    pipe = EnhancementPipeline(tiny_pipeline.model, chunk_seconds=3.0, crossfade_seconds=0.6)
    whole = EnhancementPipeline(tiny_pipeline.model, chunk_seconds=None).enhance(x, 16000)
    y = pipe.enhance(x, 16000)
    assert y.shape == whole.shape and np.isfinite(y).all()
    # No seam stands out: the largest sample-to-sample jump is no larger than in the one-pass output.
    assert np.abs(np.diff(y)).max() <= 1.5 * np.abs(np.diff(whole)).max()
