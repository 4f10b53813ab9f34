"""Default model choice: the official release when cached locally, else the bundled mini model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok import defaults
from sonotok.tokenizer import AudioTokenizer


def fake_cached_repo(cache, repo_id: str) -> None:
    """The layout huggingface_hub writes for a downloaded model repo."""
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    revision = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(revision)
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")


@pytest.mark.parametrize("kind", ["tokenizer", "denoiser", "generation"])
def test_bundled_model_when_the_official_one_is_not_cached(empty_hub_cache, kind):
    chosen = defaults.default_model(kind)
    assert chosen.name == str(defaults.bundled(kind))
    assert "sonotok-mini" in chosen.why and defaults.OFFICIAL[kind] in chosen.why
    assert any((defaults.bundled(kind) / f).is_file() for f in ("config.json", "pipeline.json"))


def test_official_model_when_it_is_in_the_cache(empty_hub_cache):
    fake_cached_repo(empty_hub_cache, "mispeech/dashengtokenizer")
    chosen = defaults.default_model("tokenizer")
    assert chosen.name == "mispeech/dashengtokenizer" and "official" in chosen.why
    assert defaults.default_model("denoiser").name == str(defaults.bundled("denoiser"))


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown model kind 'vocoder'"):
        defaults.bundled("vocoder")


# ---- every entry point defaults offline (issue 17 item 6) ----------------------------------
EXAMPLES = defaults.MINI_DIR / "examples" / "clean"


def test_eval_reconstruct_without_model_uses_the_default_tokenizer(
    empty_hub_cache, tmp_path, capsys
):
    from sonotok.cli import main

    data = EXAMPLES / "speech" / "speech-000003.wav"
    assert main(["eval", "reconstruct", str(data), "-o", str(tmp_path), "--examples", "0"]) == 0
    assert "default tokenizer: sonotok-mini tokenizer" in capsys.readouterr().err
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["settings"]["model"] == str(defaults.bundled("tokenizer"))
    assert result["summary"]["pesq"]["n"] == 1 and result["summary"]["pesq"]["mean"] > 1.1


def test_eval_generate_sonotok_embedder_without_model(empty_hub_cache, tmp_path, capsys):
    from sonotok.cli import main

    argv = ["eval", "generate", str(EXAMPLES / "speech"), str(EXAMPLES / "music")]
    argv += ["--embedders", "sonotok", "--no-cache", "-o", str(tmp_path), "--examples", "0"]
    assert main(argv) == 0
    assert "default tokenizer: sonotok-mini tokenizer" in capsys.readouterr().err
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["settings"]["model"] == str(defaults.bundled("tokenizer"))
    assert result["set_metrics"]["fd_sonotok"] > 0


def weights_sum(model: torch.nn.Module) -> float:
    return sum(
        float(t.double().sum()) for t in model.state_dict().values() if t.is_floating_point()
    )


def test_python_entry_points_default_to_the_bundled_models(empty_hub_cache, monkeypatch, capsys):
    from sonotok.enhancement.pipeline import EnhancementPipeline
    from sonotok.evaluation.embedders import SonotokEmbedder, build_embedder
    from sonotok.integrations.xares import SonotokEncoder

    monkeypatch.delenv("SONOTOK_MODEL", raising=False)
    mini = AudioTokenizer.from_pretrained(defaults.bundled("tokenizer"))
    made = [SonotokEncoder().tokenizer, SonotokEmbedder.from_pretrained().tokenizer]
    made += [
        build_embedder("sonotok").tokenizer,
        EnhancementPipeline.from_pretrained().model.tokenizer,
    ]
    for tokenizer in made:
        assert tokenizer.config == mini.config
        assert weights_sum(tokenizer) == weights_sum(mini)
    err = capsys.readouterr().err
    assert err.count("default tokenizer: sonotok-mini") == 3
    assert "default denoiser: sonotok-mini denoiser" in err


def test_probe_records_the_model_that_ran(empty_hub_cache, tmp_path):
    from sonotok.cli import main

    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    for kind in ("tone", "noise"):
        (tmp_path / "data" / kind).mkdir(parents=True)
        for i in range(6):
            wave = (
                np.sin(2 * np.pi * (300 + 40 * i) * t)
                if kind == "tone"
                else rng.standard_normal(8000)
            )
            sf.write(tmp_path / "data" / kind / f"{i}.wav", 0.1 * wave, 16000)
    argv = ["probe", str(tmp_path / "data"), "--methods", "knn", "--folds", "3"]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    for run in ("run1", "run2"):  # embedded now, then read back from the cache
        assert main([*argv, "-o", str(tmp_path / run)]) == 0
        report = json.loads((tmp_path / run / "metrics.json").read_text())
        assert report["model"] == str(defaults.bundled("tokenizer"))


# ---- download advice names the installed command (issue 17 item 8) -------------------------
def test_download_advice_names_hf_download_which_is_installed():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert shutil.which("hf", path=str(Path(sys.executable).parent))
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True,
        text=True, check=True,
    ).stdout.split()  # fmt: skip
    stale = [
        name for name in files
        if name.endswith((".py", ".md", ".sh", ".yaml", ".txt")) and name != "tests/test_defaults.py"
        and (root / name).is_file() and "huggingface-cli" in (root / name).read_text(errors="ignore")
    ]  # fmt: skip
    assert stale == []
