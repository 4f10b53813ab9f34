"""Parity of the SemantiCodec decoder with the reference (ddpm.py, ddim.py, main.py decode).

The fixture (tests/fixtures/semanticodec_parity/decoder_*, made by
make_semanticodec_decoder_parity.py in the reference environment) holds the official-layout key
list of a reduced decoder (weights are re-derived from each key's name), inputs, and the
reference's audio (every 8th sample) for fixed noise.
"""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from sonotok.tokenizer.semanticodec.decoder import (  # noqa: E402
    SemantiCodecDecoder,
    convert_official_state,
)
from sonotok.tokenizer.semanticodec.decoder_config import DecoderConfig  # noqa: E402
from sonotok.tokenizer.semanticodec.windows import decode_features  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FIXTURE = FIXTURES / "semanticodec_parity"
TOL = 1e-4


def _maker():
    spec = importlib.util.spec_from_file_location(
        "make_semanticodec_decoder_parity", FIXTURES / "make_semanticodec_decoder_parity.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions run fastest on one thread (and do not fight other test workers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def meta():
    return json.loads((FIXTURE / "decoder_meta.json").read_text())


@pytest.fixture(scope="module")
def cases():
    return load_file(str(FIXTURE / "decoder_cases.safetensors"))


@pytest.fixture(scope="module")
def official(meta):
    return _maker().seeded_official_state(meta["official_shapes"])


@pytest.fixture(scope="module")
def decoder(official):
    model = SemantiCodecDecoder(DecoderConfig.tiny()).eval()
    model.load_state_dict(convert_official_state(official, model), strict=True)
    return model


def test_official_layout_maps_every_key(decoder, official):
    assert float(decoder.scale_factor) == pytest.approx(0.75)
    ours = decoder.state_dict()
    mapped = convert_official_state(official, decoder)
    assert set(mapped) == set(ours)
    # a renamed UNet resblock and a reshaped VAE attention carry the official values
    key = "model.diffusion_model.input_blocks.1.0.in_layers.2.weight"
    assert torch.equal(ours["unet.down_blocks.0.resnets.0.conv1.weight"], official[key])
    q = official["first_stage_model.decoder.mid.attn_1.q.weight"][:, :, 0, 0]
    assert torch.equal(ours["vae.decoder.mid_block.attentions.0.to_q.weight"], q)


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_generate_matches_reference_for_same_noise(decoder, cases, meta, guidance):
    gen = torch.Generator().manual_seed(meta["seed"] + 1)
    audio = decoder.generate(
        cases["features"], steps=meta["steps"], guidance=guidance, eta=1.0, generator=gen
    )
    assert audio.shape[-1] == int(cases["window_samples"]) == decoder.config.window_samples
    expected = cases[f"generate_g{guidance:g}"]
    got = audio[:, :: meta["stride"]]
    assert expected.abs().max() > 1e-3  # the reference audio is not silence
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


def test_windowed_decode_matches_reference_overlap_add(decoder, cases, meta):
    gen = torch.Generator().manual_seed(meta["seed"] + 2)
    audio = decode_features(
        decoder,
        cases["long_features"],
        token_rate=100,
        steps=meta["steps"],
        guidance=2.0,
        generator=gen,
    )
    assert audio.shape == (1, 1100 * 320) == (1, int(cases["decode_long_samples"]))
    torch.testing.assert_close(audio[0, :: meta["stride"]], cases["decode_long"], atol=TOL, rtol=0)
