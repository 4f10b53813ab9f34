"""The Tokenizer interface: shared input handling, the registry and the one loader."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sonotok.core.audio import resample
from sonotok.tokenizer import AudioTokenizer
from sonotok.tokenizer.interface import (
    Tokenizer,
    load_tokenizer,
    register_tokenizer,
    tokenizer_types,
)

from .toy import FramedTokenizer


def test_toy_family_round_trips_every_input_form(tone):
    tok = FramedTokenizer()
    wave = torch.from_numpy(tone(8000, 8000))
    z = tok.encode(wave)
    assert z.shape == (50, 160) and tok.frame_rate == 50
    torch.testing.assert_close(tok.decode(z), wave, atol=1e-5, rtol=0)
    batch = torch.stack([wave, torch.roll(wave, 7)])
    mask = torch.ones_like(batch, dtype=torch.bool)
    mask[1, 4000:] = False
    zb = tok.encode(batch, attention_mask=mask)
    assert zb.shape == (2, 50, 160) and zb[1, 25:].abs().max() == 0  # zero past its own T
    torch.testing.assert_close(zb[0], z)
    zl = tok.encode([wave, wave[:3200]])
    assert [tuple(x.shape) for x in zl] == [(50, 160), (20, 160)]
    # 16 kHz input is resampled to the family's 8 kHz; reconstruct returns the input's rate/length
    wave16 = torch.from_numpy(tone(16000, 16000))
    out = tok.reconstruct(wave16, sample_rate=16000)
    assert out.shape == wave16.shape
    band_limited = resample(resample(wave16.numpy(), 16000, 8000), 8000, 16000)
    torch.testing.assert_close(out, torch.from_numpy(band_limited), atol=1e-4, rtol=0)


def test_facts_describe_continuous_and_discrete_families():
    tok = FramedTokenizer()
    facts = tok.describe()
    assert facts["model_type"] == "toy-framed" and facts["bitrate"] is None
    assert tok.latent_values_per_second == 50 * 160 and tok.hop_samples == 160

    class Coded(FramedTokenizer):
        codebook_size = property(lambda self: 1024)
        num_codebooks = property(lambda self: 2)

    assert Coded().bitrate == pytest.approx(50 * 2 * math.log2(1024))


def test_load_tokenizer_dispatches_on_model_type(tmp_path, tiny_tokenizer_dir, tone):
    assert {"toy-framed", "sonotok-tokenizer", "dashengtokenizer"} <= set(tokenizer_types())
    FramedTokenizer(seed=3).save_pretrained(tmp_path / "toy")
    toy = load_tokenizer(tmp_path / "toy")
    assert type(toy).__name__ == "FramedTokenizer" and toy.model_type == "toy-framed"
    torch.testing.assert_close(toy.proj, FramedTokenizer(seed=3).proj)
    ours = load_tokenizer(tiny_tokenizer_dir)
    assert isinstance(ours, AudioTokenizer) and isinstance(ours, Tokenizer)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"model_type": "no-such-codec"}')
    with pytest.raises(FileNotFoundError, match="no-such-codec.*not a tokenizer sonotok knows"):
        load_tokenizer(tmp_path / "other")


def test_bad_inputs_are_named():
    tok = FramedTokenizer()
    with pytest.raises(ValueError, match="features='semantic'"):
        tok.encode(np.zeros(8000, np.float32), features="semantic")
    with pytest.raises(ValueError, match=r"expected \(T, 160\)"):
        tok.decode(torch.zeros(5, 7))
    with pytest.raises(ValueError, match="fp32 only"):
        tok.set_compute_dtype("bf16")


def test_load_tokenizer_reads_a_hub_ids_model_type_first(tmp_path, monkeypatch):
    """A hub id's config.json is fetched alone (with the hub options) to pick the family."""
    FramedTokenizer(seed=5).save_pretrained(tmp_path / "snapshot")
    calls = []

    def snapshot_download(repo_id, **options):
        calls.append((repo_id, options))
        return str(tmp_path / "snapshot")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    toy = tokenizer_types()["toy-framed"]  # the class registered last (tests may load toy.py twice)
    monkeypatch.setattr(toy, "from_pretrained", classmethod(lambda cls, name, **kw: (name, kw)))
    name, options = load_tokenizer("someone/toy-codec", revision="v1")
    assert name == "someone/toy-codec" and options == {"revision": "v1"}
    assert calls[0][0] == "someone/toy-codec"
    assert calls[0][1]["allow_patterns"] == ["config.json"] and calls[0][1]["revision"] == "v1"


def test_a_family_missing_part_of_the_interface_cannot_be_built():
    class Incomplete(Tokenizer):
        sample_rate = property(lambda self: 16000)
        frame_rate = property(lambda self: 25.0)
        latent_dim = property(lambda self: 8)

        def encode_waves(self, waves, features):
            return [w[:, None] for w in waves]

    with pytest.raises(TypeError, match="abstract.*decode_latents"):
        Incomplete()


def test_memory_hints_and_progress_work_for_every_family(tone):
    tok = FramedTokenizer()
    wave = torch.from_numpy(tone(8000, 8000))
    seen: list[float] = []
    z = tok.encode(wave, chunks_per_pass=1, progress=seen.append)  # hints the toy lacks
    audio = tok.decode(z, chunk_frames=10, progress=seen.append)
    assert seen == [1.0, 1.0]
    torch.testing.assert_close(audio, wave, atol=1e-5, rtol=0)
    with pytest.raises(TypeError, match="no_such_option"):
        tok.decode(z, no_such_option=1)


def test_a_discrete_family_gives_codes_embeddings_and_decodes_either(tone):
    from .toy import CodedTokenizer

    tok = CodedTokenizer()
    wave = torch.from_numpy(tone(8000, 8000))
    codes = tok.encode_codes(wave)
    assert codes.dtype == torch.int64 and codes.shape == (50, 160)
    assert 0 <= int(codes.min()) and int(codes.max()) < 256
    assert tok.bitrate == pytest.approx(50 * 160 * 8) and tok.describe()["discrete"] is True
    z = tok.encode(wave)  # heads get the codes' embeddings
    torch.testing.assert_close(z, tok.embed_codes(codes))
    from_codes, from_latents = tok.decode(codes), tok.decode(z)
    torch.testing.assert_close(from_codes, from_latents)
    assert (from_codes - wave).abs().max() < 0.05  # 8-bit quantisation of an exact inverse
    batch = tok.encode_codes(torch.stack([wave, wave]))
    assert batch.shape == (2, 50, 160) and torch.equal(batch[1], codes)
    with pytest.raises(ValueError, match="continuous tokenizer"):
        FramedTokenizer().encode_codes(wave)


def test_per_clip_decode_options_come_with_the_codes_and_make_decoding_exact(tone):
    from .toy import CodedTokenizer

    inverted, plain = CodedTokenizer(domain="inverted"), CodedTokenizer()
    wave = torch.from_numpy(tone(8000, 8000))
    codes, options = inverted.encode_codes(wave, return_options=True)
    assert options == {"domain": "inverted"} and inverted.code_option_names == ("domain",)
    assert not torch.equal(codes, plain.encode_codes(wave))
    decoded = plain.decode(codes, **options)  # another model instance, told the clip's domain
    torch.testing.assert_close(decoded, inverted.decode(codes))
    assert (decoded - wave).abs().max() < 0.05
    assert (plain.decode(codes) + wave).abs().max() < 0.05  # without it: the negated wave
    listed, per_clip = inverted.encode_codes([wave, wave[:4000]], return_options=True)
    assert [c.shape[0] for c in listed] == [50, 25] and per_clip == [{"domain": "inverted"}] * 2
    assert FramedTokenizer().code_options(wave, codes) == {}  # families without options


def test_a_family_claims_official_names_without_a_config(tmp_path):
    """Official releases in their own layout (no sonotok config.json) reach the family that
    claims the name; names nobody claims still go to the DashengTokenizer loader."""
    calls = []

    @register_tokenizer("toy-claiming")
    class Claiming(FramedTokenizer):
        @classmethod
        def claims(cls, name):
            return name.startswith("toy-release:")

        @classmethod
        def from_pretrained(cls, name, **kwargs):
            calls.append(name)
            return cls(hop=80)

    model = load_tokenizer("toy-release:v1")
    assert calls == ["toy-release:v1"] and isinstance(model, Claiming) and model.hop == 80
    with pytest.raises(Exception, match="no such file or folder"):
        load_tokenizer(str(tmp_path / "missing"))
