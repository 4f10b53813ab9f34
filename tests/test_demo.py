"""`sonotok demo` tells the truth a user can act on: each bundled model's result next to its
measured ceiling / model card and the official models' numbers, and scored generated clips."""

from __future__ import annotations

import json
import math

import pytest

from sonotok.cli import main


def test_demo_shows_ceilings_official_numbers_and_scores_generated_clips(
    empty_hub_cache, tmp_path, capsys
):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--steps", "4", "--seconds", "2"]) == 0
    err = capsys.readouterr().err

    enh = json.loads((out / "enhance" / "metrics.json").read_text())
    ceiling = enh["ceiling"]
    assert 1.0 <= ceiling["reconstruction_pesq"] <= 4.644
    assert ceiling["change_pesq"] > 0.5  # the denoiser's own effect, judged against its ceiling
    s = enh["summary"]
    assert s["change_pesq"]["mean"] == pytest.approx(s["pesq"]["mean"] - s["noisy_pesq"]["mean"])
    assert any("perfect latent denoiser" in note for note in enh["notes"])
    vs = json.loads((out / "enhance" / "vs_reconstruction" / "metrics.json").read_text())
    assert vs["summary"]["pesq"]["mean"] == ceiling["pesq"]
    assert "perfect latent denoiser" in (out / "enhance" / "report.html").read_text()

    gen = json.loads((out / "generate" / "metrics.json").read_text())
    assert len(gen["items"]) == 4 and gen["errors"] == []
    for item in gen["items"]:
        assert item["duration_s"] == 2.0 and math.isfinite(item["rms_dbfs"])
        assert item["nearest_domain"] in {"speech", "music", "sound"}
        assert item["domain_match"] == float(item["nearest_domain"] == item["domain"])
    assert [it["domain"] for it in gen["items"]] == ["speech", "music", "sound", "sound"]
    hits = sum(int(it["domain_match"]) for it in gen["items"])
    assert gen["set_metrics"]["domain_match"] == pytest.approx(hits / 4)

    index = (out / "report.html").read_text()
    assert "<th>measured ceiling / model card</th><th>with the official models</th>" in index
    assert "PESQ 4.125, STOI 0.987" in index  # official tokenizer, DashengTokenizer paper
    assert "PESQ 1.50, STOI 0.869" in index  # sonotok-mini tokenizer card
    assert f"{ceiling['reconstruction_pesq']:.2f} (what a perfect latent denoiser" in index
    assert f"{hits} of 4 nearest the prompt&#x27;s domain" in index
    assert "4 of 4 clips finite, 2.0 s" in err and "official models: mispeech/" in err
