"""The bundled sonotok-mini models are trained: each beats an untrained copy of itself on the
bundled example clips, and the commands use them offline when no model is named."""

from __future__ import annotations

import json

import pytest
import torch

from sonotok.cli import main
from sonotok.defaults import MINI_DIR, bundled
from sonotok.evaluation.spectral import mel_distance
from sonotok.evaluation.speech import pesq_wb
from sonotok.tokenizer import AudioTokenizer, load_audio

EXAMPLES = MINI_DIR / "examples"
SR = 16000
# Bounds below what the bundled models measure on these clips (model cards: test-split numbers).
MIN_SPEECH_PESQ = 1.1  # the examples measure 1.23-1.68
MIN_DENOISER_PESQ_GAIN = 0.5  # measured +1.13 against the tokenizer's clean reconstruction


@pytest.fixture(autouse=True)
def no_official_models(empty_hub_cache):
    """No official model in the Hugging Face cache: the bundled ones are the defaults."""


@pytest.fixture(scope="module")
def tokenizer() -> AudioTokenizer:
    return AudioTokenizer.from_pretrained(bundled("tokenizer"))


def clean_examples(domain: str):
    return sorted((EXAMPLES / "clean" / domain).glob("*.wav"))


def test_bundle_is_small_and_in_safetensors():
    files = [p for p in MINI_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 100 * 2**20
    weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt")]
    assert weights and all(p.suffix == ".safetensors" for p in weights)
    for kind in ("tokenizer", "denoiser", "generation"):
        card = (bundled(kind) / "README.md").read_text()
        assert "Measured" in card and "corpus" in card


def test_mini_tokenizer_reconstructs_speech_far_better_than_untrained(tokenizer):
    untrained = AudioTokenizer(tokenizer.config).eval()
    untrained.semantic.load_state_dict(tokenizer.semantic.state_dict())
    for path in clean_examples("speech"):
        wave = load_audio(path, SR)
        with torch.inference_mode():
            ours = tokenizer.reconstruct(wave, sample_rate=SR)
            base = untrained.reconstruct(wave, sample_rate=SR)
        assert ours.shape == wave.shape
        assert pesq_wb(wave, ours) >= MIN_SPEECH_PESQ, path.name
        assert mel_distance(ours, wave, SR) < 0.5 * mel_distance(base, wave, SR), path.name


def test_mini_denoiser_moves_noisy_latents_to_the_clean_ones():
    """The denoiser's output is judged against the tokenizer's reconstruction of the clean clip
    (the best a latent denoiser can emit); the tokenizer itself caps PESQ against the clean
    recording (see the model cards)."""
    from sonotok.enhancement.pipeline import EnhancementPipeline

    pipe = EnhancementPipeline.from_pretrained(bundled("denoiser"))
    tokenizer = pipe.model.tokenizer
    for noisy_path in sorted((EXAMPLES / "noisy" / "speech").glob("*.wav")):
        noisy = load_audio(noisy_path, SR)
        clean = load_audio(EXAMPLES / "clean" / "speech" / noisy_path.name, SR)
        with torch.inference_mode():
            z_noisy, z_clean = tokenizer.encode(noisy)[None], tokenizer.encode(clean)[None]
            z_denoised = pipe.denoise_latents(z_noisy)
            enhanced = pipe.enhance(noisy, SR)
            ceiling = tokenizer.reconstruct(clean, sample_rate=SR)
        before = (z_noisy - z_clean).square().mean()
        assert (z_denoised - z_clean).square().mean() < 0.5 * before
        assert enhanced.shape == noisy.shape
        gain = pesq_wb(ceiling, enhanced) - pesq_wb(ceiling, noisy)
        assert gain >= MIN_DENOISER_PESQ_GAIN, gain


def test_mini_generator_follows_the_prompt_domain(tokenizer):
    """Generated clips' semantic embeddings sit nearest the matching domain's example clips."""
    from sonotok.generation.pipeline import TextToAudioPipeline

    pipe = TextToAudioPipeline.from_pretrained(bundled("generation"))
    prompts = {
        "speech": "Synthetic English speech, male voice espeak-ng:en-us+m3, normal rate.",
        "music": "Flute in G major at 96 BPM, with a calm mood.",
        "sound": "A car horn honking 2 times.",
    }

    def embed(wave):
        with torch.inference_mode():
            return tokenizer.encode(wave, sample_rate=SR, features="semantic").mean(0)

    centroids = {
        d: torch.stack([embed(load_audio(p, SR)) for p in clean_examples(d)]).mean(0)
        for d in prompts
    }
    with torch.inference_mode():
        waves = pipe(
            list(prompts.values()) * 2, seconds=3.0, num_steps=16, guidance_scale=3.0, seed=0
        )
    hits = 0
    for domain, wave in zip(list(prompts) * 2, waves):
        e = embed(wave)
        nearest = min(centroids, key=lambda d: torch.dist(e, centroids[d]).item())
        hits += nearest == domain
    assert hits >= 5, f"{hits}/6 generated clips nearest their prompt's domain"


def test_commands_default_to_the_bundled_models(tmp_path, capsys):
    out = tmp_path / "rec"
    assert main(["reconstruct", str(EXAMPLES / "clean" / "speech"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "sonotok-mini tokenizer" in err and "mispeech/dashengtokenizer" in err
    assert sorted(p.name for p in out.glob("*.wav")) == [p.name for p in clean_examples("speech")]
    assert main(["enhance", str(EXAMPLES / "noisy"), "-o", str(tmp_path / "enh")]) == 0
    assert "sonotok-mini denoiser" in capsys.readouterr().err
    wav = tmp_path / "gen.wav"
    assert (
        main(["generate", "A dog barking.", "-o", str(wav), "--seconds", "1", "--steps", "2"]) == 0
    )
    assert "sonotok-mini generation" in capsys.readouterr().err and wav.is_file()


def test_demo_writes_the_report_offline_and_never_clobbers_other_files(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "-o", str(out), "--steps", "4", "--seconds", "2", "--prompt", "A dog barking."]
    assert main(args) == 0
    index = (out / "report.html").read_text()
    for job in ("reconstruct", "enhance", "generate"):
        assert f"{job}/report.html" in index
        assert "<audio" in (out / job / "report.html").read_text()
    rec = json.loads((out / "reconstruct" / "metrics.json").read_text())
    assert {it["domain"] for it in rec["items"]} == {"music", "sound", "speech"}
    assert rec["per_domain"]["speech"]["pesq"]["mean"] > MIN_SPEECH_PESQ
    enh = json.loads((out / "enhance" / "metrics.json").read_text())
    for metric in ("pesq", "noisy_pesq", "dnsmos_ovrl", "noisy_dnsmos_ovrl"):
        assert 1.0 <= enh["summary"][metric]["mean"] <= 5.0
    assert len(list((out / "generate" / "generated").glob("*.wav"))) == 1
    assert main(args) == 0  # an earlier demo folder is replaced

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["demo", "-o", str(mine)]) == 2
    assert "was not written by `sonotok demo`" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"
