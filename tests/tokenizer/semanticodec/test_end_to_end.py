"""SemantiCodec end to end through its real (tiny, random) latent diffusion decoder: audio →
tokens → audio in the API and the command line, exact lengths, seeded and batch-invariant."""

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from sonotok.cli import main  # noqa: E402
from sonotok.core.codes import CodeFile  # noqa: E402
from sonotok.tokenizer.semanticodec import SemantiCodec  # noqa: E402
from sonotok.tokenizer.semanticodec.decoder_config import DecoderConfig  # noqa: E402
from sonotok.tokenizer.semanticodec.windows import decode_features  # noqa: E402

STEPS, GUIDANCE = 2, 2.0


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randomise_decoder(codec: SemantiCodec, seed: int = 0) -> SemantiCodec:
    """Scaled random weights: diffusers zero-initialises some output layers, which would make
    every decoded clip silent and the value checks vacuous."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in codec.decoder.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() > 1:
                p.copy_(noise / p[0].numel() ** 0.5)
            else:
                p.copy_(1.0 + 0.1 * noise if "norm" in name and "weight" in name else 0.1 * noise)
    return codec


@pytest.fixture(scope="module")
def codec(make_codec, make_config) -> SemantiCodec:
    """Tiny encoder + the smallest decoder (one 32-wide UNet level pair, official geometry)."""
    decoder = DecoderConfig.tiny(channel_mult=(1, 1))
    model = make_codec(decoder=decoder)
    codec = SemantiCodec(model.config, ddim_steps=STEPS, guidance=GUIDANCE)
    codec.encoder.load_state_dict(model.encoder.state_dict())
    return randomise_decoder(codec).eval()


def seeded(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_decode_is_the_windowed_decoder_with_exact_length(codec, wave):
    codes = codec.encode_codes(wave)
    audio = codec.decode(codes, generator=seeded())
    assert audio.shape == (codes.shape[0] * codec.hop_samples,) and codec.hop_samples == 320
    features = codec.embed_codes(codes[None])
    direct = decode_features(
        codec.decoder, features, 100, STEPS, GUIDANCE, sampler="ddim", generator=seeded()
    )
    assert torch.equal(audio, direct[0])
    assert torch.isfinite(audio).all() and audio.std() > 1e-3
    assert not torch.allclose(audio, codec.decode(codes, generator=seeded(8)))  # noise matters
    other = codec.decode(torch.flip(codes, [0]), generator=seeded())
    assert not torch.allclose(audio, other)  # and so do the tokens


def test_decoding_codes_equals_decoding_their_embeddings(codec, wave):
    codes = codec.encode_codes(wave)
    embeddings = codec.encode(wave)
    assert embeddings.is_floating_point() and embeddings.shape == (len(codes), codec.latent_dim)
    from_codes = codec.decode(codes, generator=seeded(3))
    assert torch.equal(from_codes, codec.decode(embeddings, generator=seeded(3)))


def test_reconstruct_is_decode_of_encode_trimmed_to_the_input(codec, wave):
    torch.manual_seed(11)  # reconstruct draws its noise seed from the global generator
    out = codec.reconstruct(wave)
    assert out.shape == wave.shape
    torch.manual_seed(11)
    full = codec.decode(codec.encode_codes(wave))
    assert len(full) > len(wave)  # whole patch columns plus one
    torch.testing.assert_close(out, full[: len(wave)], atol=1e-6, rtol=0)
    at_8k = wave[::2].contiguous()
    assert codec.reconstruct(at_8k, sample_rate=8000).shape == at_8k.shape


def test_a_batch_decodes_each_clip_as_alone(codec, wave):
    other = torch.flip(wave, [0]) * 0.5
    codes = codec.encode_codes(torch.stack([wave, other]))
    assert codes.shape[0] == 2 and not torch.equal(codes[0], codes[1])
    both = codec.decode(codes, generator=seeded())
    assert both.shape == (2, codes.shape[1] * 320)
    for clip in range(2):
        alone = codec.decode(codes[clip], generator=seeded())
        torch.testing.assert_close(both[clip], alone, atol=1e-5, rtol=0)
    assert not torch.allclose(both[0], both[1])


def test_cli_reconstruct_encode_decode_on_a_saved_folder(codec, tmp_path):
    codec.save_pretrained(tmp_path / "model")
    model = ["--model", str(tmp_path / "model")]
    clips = tmp_path / "clips"
    clips.mkdir()
    n, rate = 6000, 22050  # resampled to 16 kHz and back
    mono = (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    sf.write(clips / "a.wav", np.stack([mono, -0.5 * mono], 1), rate, subtype="FLOAT")

    assert main(["reconstruct", str(clips), "-o", str(tmp_path / "recon"), *model]) == 0
    assert main(["encode", str(clips), "-o", str(tmp_path / "codes"), *model]) == 0
    assert main(["decode", str(tmp_path / "codes"), "-o", str(tmp_path / "dec"), *model]) == 0
    latents = ["-o", str(tmp_path / "lat"), "--features", "latents"]
    assert main(["encode", str(clips), *latents, *model]) == 0
    assert main(["decode", str(tmp_path / "lat"), "-o", str(tmp_path / "dec_lat"), *model]) == 0
    for folder in ("recon", "dec", "dec_lat"):
        audio, out_rate = sf.read(tmp_path / folder / "a.wav", dtype="float32")
        assert (audio.shape, out_rate) == ((n,), rate)
        assert np.isfinite(audio).all() and audio.std() > 1e-4

    file = CodeFile.load(tmp_path / "codes" / "a.safetensors")
    assert file.codebook_sizes == codec.codebook_sizes == (24, 32)  # semantic, acoustic
    assert file.metadata()["codebook_sizes"] == "24,32" and file.codebook_size == 32
    assert file.tokens_per_second == 100.0 == codec.config.token_rate
    assert float(file.metadata()["tokens_per_second"]) == 100.0
    assert codec.describe()["codebook_sizes"] == [24, 32]
