"""Default model choice: the official release when cached locally, else the bundled mini model."""

from __future__ import annotations

import pytest

from sonotok import defaults


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
