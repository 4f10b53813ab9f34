"""The built corpus: layout, columns, captions, audio content and determinism."""

from __future__ import annotations

import io
import json

import datasets
import numpy as np
import pytest
import soundfile as sf

from sonotok.corpus import CorpusError, CorpusSpec, make_corpus, read_clip_wave

COLUMNS = {
    "id",
    "audio",
    "caption",
    "domain",
    "voice",
    "language",
    "rate",
    "sentence",
    "instrument",
    "tempo",
    "key",
    "mood",
    "event",
    "duration",
}


def rows(folder, name):
    ds = datasets.load_from_disk(str(folder / name))
    return [dict(r, split=s) for s in ds for r in ds[s]]


def decode(row):
    wave, rate = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
    assert np.array_equal(read_clip_wave(row), wave)
    return wave, rate


def tonality_db(wave: np.ndarray) -> float:
    """Strongest spectral peak over its ±20-bin neighbourhood median (80 Hz–4 kHz), in dB."""
    frames = np.lib.stride_tricks.sliding_window_view(wave, 2048)[::512] * np.hanning(2048)
    mag = np.abs(np.fft.rfft(frames, axis=1)).mean(0)
    freqs = np.fft.rfftfreq(2048, 1 / 16000)
    idx = np.flatnonzero((freqs > 80) & (freqs < 4000))
    local = np.array([np.median(mag[max(0, i - 20) : i + 21]) for i in idx])
    return float(20 * np.log10((mag[idx] / local).max()))


def test_corpus_has_splits_per_domain_and_all_columns(corpus_dir):
    clips = datasets.load_from_disk(str(corpus_dir / "clips"))
    noise = datasets.load_from_disk(str(corpus_dir / "noise"))
    assert list(clips) == ["train", "validation", "test"] == list(noise)
    assert set(clips["train"].column_names) == COLUMNS == set(noise["test"].column_names)
    assert isinstance(clips["train"].features["audio"], datasets.Audio)
    for split in clips:  # with >= 3 clips per domain every split holds every domain
        assert set(clips[split]["domain"]) == {"speech", "music", "sound"}
        assert set(noise[split]["domain"]) == {"noise"}
    assert len(clips["train"]) + len(clips["validation"]) + len(clips["test"]) == 4 + 3 + 4
    ids = [r["id"] for r in rows(corpus_dir, "clips")]
    assert len(set(ids)) == len(ids)
    summary = json.loads((corpus_dir / "corpus.json").read_text())
    assert summary["counts"]["clips"]["speech"] == {"train": 2, "validation": 1, "test": 1}
    assert (corpus_dir / "README.md").read_text().startswith("# sonotok synthetic corpus")
    assert not (corpus_dir.parent / "tiny.partial").exists()


def test_captions_state_their_facts(corpus_dir):
    for row in rows(corpus_dir, "clips") + rows(corpus_dir, "noise"):
        caption = row["caption"]
        if row["domain"] == "speech":
            assert row["voice"] in caption and row["rate"] in caption.lower()
            assert f'"{row["sentence"]}"' in caption
            assert row["language"] and row["instrument"] is None
        elif row["domain"] == "music":
            for fact in (row["instrument"], str(row["tempo"]), row["key"], row["mood"]):
                assert fact.lower() in caption.lower(), (fact, caption)
            assert 60 <= row["tempo"] <= 160
        else:
            assert row["event"] and row["event"] in caption.lower(), caption
            assert row["voice"] is None


def test_audio_is_16k_mono_non_silent_and_of_the_stated_length(corpus_dir):
    for row in rows(corpus_dir, "clips") + rows(corpus_dir, "noise"):
        wave, rate = decode(row)
        assert rate == 16000 and wave.ndim == 1
        assert abs(len(wave) / 16000 - row["duration"]) < 1e-3
        if row["domain"] == "speech":
            assert 0.5 < row["duration"] <= 2.0
        else:
            assert len(wave) == 32000
        rms_db = 20 * np.log10(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
        assert -35 < rms_db < -10, (row["id"], rms_db)
        assert np.abs(wave).max() <= 0.96


def test_music_clips_are_tonal(corpus_dir):
    music = [r for r in rows(corpus_dir, "clips") if r["domain"] == "music"]
    assert len(music) == 3
    for row in music:
        assert tonality_db(decode(row)[0]) > 18, row["caption"]


def test_speech_is_mostly_voiced_with_pitch_in_the_speaking_range(corpus_dir):
    for row in (r for r in rows(corpus_dir, "clips") if r["domain"] == "speech"):
        wave = decode(row)[0].astype(np.float64)
        frames = np.lib.stride_tricks.sliding_window_view(wave, 1024)[::256]
        energy = (frames**2).sum(axis=1)
        voiced = []
        for x in frames[energy > energy.max() * 1e-2]:  # frames within 20 dB of the loudest
            x = x - x.mean()
            ac = np.correlate(x, x, "full")[1023:]
            voiced.append(ac[16000 // 400 : 16000 // 60].max() / ac[0] > 0.5)  # 60–400 Hz
        assert np.mean(voiced) > 0.4, row["caption"]  # periodic: a voice, not noise


def test_same_flags_give_the_same_bytes_with_any_worker_count(corpus_dir, corpus_dir_again):
    for name in ("clips", "noise"):
        a, b = rows(corpus_dir, name), rows(corpus_dir_again, name)
        assert [r["id"] for r in a] == [r["id"] for r in b]
        for x, y in zip(a, b):
            assert x["audio"]["bytes"] == y["audio"]["bytes"]
            assert {k: v for k, v in x.items() if k != "audio"} == {
                k: v for k, v in y.items() if k != "audio"
            }


def test_another_seed_gives_other_clips(corpus_dir, tmp_path):
    out = tmp_path / "other"
    make_corpus(
        out, CorpusSpec(speech=0, music=0, sounds=2, noise=0, seconds=2.0, seed=8), progress=False
    )
    ours = {r["id"]: r for r in rows(corpus_dir, "clips")}
    for row in rows(out, "clips"):
        assert row["audio"]["bytes"] != ours[row["id"]]["audio"]["bytes"]


def test_existing_output_is_kept_unless_overwrite(corpus_dir, tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    spec = CorpusSpec(speech=0, music=0, sounds=1, noise=0, seconds=1.0)
    with pytest.raises(CorpusError, match="--overwrite"):
        make_corpus(out, spec, progress=False)
    assert (out / "mine.txt").read_text() == "keep"
    make_corpus(out, spec, overwrite=True, progress=False)
    assert not (out / "mine.txt").exists() and (out / "clips" / "dataset_dict.json").is_file()


def test_interrupted_build_resumes_from_rendered_clips(corpus_dir, tmp_path):
    """Clips already in DIR.partial (same settings) are used as they are; clips rendered
    with other settings are discarded."""
    from sonotok.corpus.build import _render

    spec = CorpusSpec(speech=0, music=0, sounds=2, noise=0, seconds=1.0, seed=3)
    out = tmp_path / "resumed"
    items = tmp_path / "resumed.partial" / "items"
    items.mkdir(parents=True)
    (items.parent / "settings.json").write_text(json.dumps(spec.identity()))
    _render((spec, "sound", 0, str(items)))
    meta = json.loads((items / "sound-000000.json").read_text())
    (items / "sound-000000.json").write_text(json.dumps({**meta, "caption": "MARKER"}))
    make_corpus(out, spec, progress=False)
    assert [r["caption"] for r in rows(out, "clips") if r["id"] == "sound-000000"] == ["MARKER"]

    other = CorpusSpec(speech=0, music=0, sounds=2, noise=0, seconds=1.0, seed=4)
    items.mkdir(parents=True)
    (items.parent / "settings.json").write_text(json.dumps(spec.identity()))  # stale settings
    (items / "sound-000000.json").write_text(json.dumps({**meta, "caption": "MARKER"}))
    (items / "sound-000000.wav").write_bytes(b"stale")
    make_corpus(out, other, overwrite=True, progress=False)
    assert "MARKER" not in [r["caption"] for r in rows(out, "clips")]


def test_missing_synthesizer_names_the_package(monkeypatch, tmp_path):
    import shutil

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "flite" else real(name))
    with pytest.raises(CorpusError, match="apt-get install flite"):
        make_corpus(
            tmp_path / "x", CorpusSpec(speech=1, music=0, sounds=0, noise=0), progress=False
        )
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (dict(speech=0, music=0, sounds=0, noise=0), "nothing to make"),
        (dict(seconds=0.2), "--seconds"),
        (dict(music=-1), "--music"),
        (dict(val_fraction=0.6, test_fraction=0.5), "sum to less than 1"),
    ],
)
def test_bad_flags_are_refused(flags, message):
    with pytest.raises(CorpusError, match=message):
        CorpusSpec(**flags)


def test_cli_make_writes_the_corpus_and_reports_speed(corpus_dir, tmp_path, capsys):
    import argparse

    from sonotok.cli.corpus import register

    parser = argparse.ArgumentParser(prog="sonotok")
    register(parser.add_subparsers())
    out = tmp_path / "cli"
    args = parser.parse_args(
        [
            "corpus",
            "make",
            str(out),
            "--speech",
            "2",
            "--music",
            "0",
            "--sounds",
            "1",
            "--noise",
            "1",
            "--seconds",
            "1.5",
            "--workers",
            "1",
        ]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "speech train" in printed and "clips/s per worker" in printed
    assert datasets.load_from_disk(str(out / "noise"))["train"][0]["domain"] == "noise"
    args = parser.parse_args(["corpus", "make", str(out), "--sounds", "1"])
    assert args.func(args) == 2  # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
