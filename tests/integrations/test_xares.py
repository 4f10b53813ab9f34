"""The X-ARES encoder wrapper: contract, values, long inputs, loading the way X-ARES does."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

from sonotok.integrations.xares import SonotokEncoder


def test_contract_and_values(tiny_tokenizer, tone):
    encoder = SonotokEncoder(tiny_tokenizer, features="semantic")
    assert type(encoder).__name__.endswith("Encoder")
    assert (encoder.sampling_rate, encoder.output_dim, encoder.hop_size_in_ms) == (16000, 32, 40.0)
    audio = torch.stack([torch.from_numpy(tone(50000, seed=s)) for s in (0, 1)])
    out = encoder(audio)
    assert out.shape == (2, (1 + 50000 // 160) // 4, 32)
    want = tiny_tokenizer.encode(audio, features="semantic")
    torch.testing.assert_close(out, want)
    # Input duration / frames ≈ hop_size_in_ms, as X-ARES's checker explains it.
    assert abs(1000 * 50000 / 16000 / out.shape[1] - encoder.hop_size_in_ms) < 0.5


def test_ten_minutes_in_bounded_chunks(tiny_tokenizer):
    """X-ARES sends up to 10 minutes; encoded 4 semantic chunks (40 s) at a time."""
    gen = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(1, 10 * 60 * 16000, generator=gen)
    out = SonotokEncoder(tiny_tokenizer, chunks_per_pass=4)(audio)
    assert out.shape == (1, (1 + audio.shape[1] // 160) // 4, 32)
    assert torch.isfinite(out).all() and out.abs().sum(-1).min() > 0


def test_xares_checker_accepts_it(tiny_tokenizer):
    checker = pytest.importorskip(
        "xares.audio_encoder_checker", reason="pip install --no-deps xares loguru"
    )
    assert checker.check_audio_encoder(SonotokEncoder(tiny_tokenizer)) is True


def test_loads_like_xares_from_a_one_line_file(tmp_path, monkeypatch, tiny_tokenizer_dir):
    """X-ARES imports the encoder file, takes its single attribute ending in "Encoder"
    and calls it without arguments; the model comes from SONOTOK_MODEL."""
    (tmp_path / "my_sonotok_encoder.py").write_text(
        "from sonotok.integrations.xares import SonotokEncoder\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SONOTOK_MODEL", tiny_tokenizer_dir)
    monkeypatch.setenv("SONOTOK_FEATURES", "acoustic")
    module = importlib.import_module("my_sonotok_encoder")
    try:
        names = [n for n in dir(module) if n.endswith("Encoder")]
        assert names == ["SonotokEncoder"]
        encoder = getattr(module, names[0])()
        assert encoder.features == "acoustic"
        assert encoder(torch.zeros(3, 16000) + 0.01).shape == (3, 25, 32)
    finally:
        sys.modules.pop("my_sonotok_encoder", None)


def test_bad_features_name_is_refused(tiny_tokenizer):
    with pytest.raises(ValueError, match="SONOTOK_FEATURES"):
        SonotokEncoder(tiny_tokenizer, features="pooled")
