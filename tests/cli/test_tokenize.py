"""`sonotok encode | decode | reconstruct` end to end on generated audio."""

import copy
import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sonotok.cli import main
from sonotok.core.latents import LatentFile
from sonotok.tokenizer import AudioTokenizer, TokenizerConfig


@pytest.fixture()
def corpus(tmp_path, tone):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    sf.write(
        root / "a.wav",
        np.stack([tone(57330, 44100), tone(57330, 44100, seed=3)], 1),
        44100,
        subtype="PCM_16",
    )
    sf.write(root / "sub" / "b.flac", tone(8000, 8000, seed=1), 8000)
    (root / "bad.wav").write_text("not audio")
    sf.write(root / "short.wav", np.zeros(100), 16000)
    return root


def test_encode_decode_reconstruct(tmp_path, corpus, tiny_tokenizer_dir, capsys):
    lat, dec, rec = tmp_path / "lat", tmp_path / "dec", tmp_path / "rec"
    assert (
        main(
            [
                "encode",
                str(corpus),
                "-o",
                str(lat),
                "--model",
                tiny_tokenizer_dir,
                "--batch-size",
                "3",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "bad.wav" in err and "short.wav" in err and "2 written, 2 failed" in err
    with safe_open(str(lat / "a.safetensors"), framework="pt") as f:
        z, meta = f.get_tensor("latents"), f.metadata()
    assert z.shape == (32, 32)  # 1.3 s at 16 kHz = 20800 samples → (1 + 130) // 4
    assert (
        meta["sample_rate"] == "44100"
        and meta["num_samples"] == "57330"
        and meta["frame_rate"] == "25.0"
    )
    assert meta["model"] == tiny_tokenizer_dir and meta["channels"] == "2"
    assert (lat / "sub" / "b.safetensors").is_file()

    assert main(["decode", str(lat), "-o", str(dec), "--model", tiny_tokenizer_dir]) == 0
    info = sf.info(dec / "a.wav")
    assert (info.samplerate, info.frames) == (44100, 57330)
    assert (sf.info(dec / "sub" / "b.wav").samplerate, sf.info(dec / "sub" / "b.wav").frames) == (
        8000,
        8000,
    )

    assert (
        main(
            [
                "reconstruct",
                str(corpus / "sub" / "b.flac"),
                "-o",
                str(rec),
                "--model",
                tiny_tokenizer_dir,
            ]
        )
        == 0
    )
    y, sr = sf.read(rec / "b.wav")
    assert sr == 8000 and y.shape == (8000,)
    assert (
        main(
            [
                "decode",
                str(lat / "a.safetensors"),
                "-o",
                str(rec),
                "--sample-rate",
                "16000",
                "--format",
                "flac",
                "--model",
                tiny_tokenizer_dir,
            ]
        )
        == 0
    )
    assert (
        sf.info(rec / "a.flac").samplerate == 16000 and sf.info(rec / "a.flac").frames == 32 * 640
    )


def test_never_overwrites_without_flag(tmp_path, corpus, tiny_tokenizer_dir, capsys):
    src = str(corpus / "sub" / "b.flac")
    out = tmp_path / "lat"
    out.mkdir()
    (out / "b.safetensors").write_bytes(b"precious")
    assert main(["encode", src, "-o", str(out), "--model", tiny_tokenizer_dir]) == 0
    assert (out / "b.safetensors").read_bytes() == b"precious"
    assert "1 skipped" in capsys.readouterr().err
    assert main(["encode", src, "-o", str(out), "--model", tiny_tokenizer_dir, "--overwrite"]) == 0
    assert (out / "b.safetensors").read_bytes() != b"precious"
    assert sorted(p.name for p in out.iterdir()) == ["b.safetensors"]  # no temp files


def test_globs_and_missing_inputs(tmp_path, corpus, tiny_tokenizer_dir, capsys):
    out = tmp_path / "lat"
    code = main(
        [
            "encode",
            str(corpus / "**" / "*.flac"),
            str(tmp_path / "missing.wav"),
            "-o",
            str(out),
            "--model",
            tiny_tokenizer_dir,
        ]
    )
    assert code == 1
    assert "missing.wav: no such file" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["b.safetensors"]


def test_bad_latent_file_is_reported(tmp_path, tiny_tokenizer_dir, capsys):
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    assert (
        main(
            [
                "decode",
                str(tmp_path / "junk.safetensors"),
                "-o",
                str(tmp_path / "o"),
                "--model",
                tiny_tokenizer_dir,
            ]
        )
        == 1
    )
    assert "junk.safetensors" in capsys.readouterr().err


def test_missing_model_message(tmp_path, corpus, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ["encode", str(corpus / "a.wav"), "-o", str(tmp_path / "o")]
    assert main([*args, "--model", "mispeech/dashengtokenizer"]) == 2
    err = capsys.readouterr().err
    assert "mispeech/dashengtokenizer" in err and "--model DIR" in err
    assert (
        main(
            [
                "encode",
                str(corpus / "a.wav"),
                "-o",
                str(tmp_path / "o"),
                "--model",
                str(tmp_path / "nope"),
            ]
        )
        == 2
    )
    assert "no such file or folder" in capsys.readouterr().err


def test_features_are_the_models_and_checked_by_it(tmp_path, corpus, tiny_tokenizer_dir, capsys):
    clip, out = str(corpus / "a.wav"), tmp_path / "o"
    assert main(["encode", clip, "-o", str(out), "--model", tiny_tokenizer_dir]) == 0
    assert LatentFile.load(out / "a.safetensors").features == "fused"  # the model's first
    argv = ["encode", clip, "-o", str(out), "--model", tiny_tokenizer_dir, "--overwrite"]
    assert main([*argv, "--features", "semantic"]) == 0
    assert LatentFile.load(out / "a.safetensors").features == "semantic"
    capsys.readouterr()
    assert main([*argv, "--features", "semantc"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"error: --features semantc: {tiny_tokenizer_dir} offers fused, semantic, acoustic; "
        "pick one of them"
    )


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "sonotok.cli", "encode", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--overwrite" in out.stdout and "safetensors" in out.stdout


# ---- model outputs that must not be written, latent files that must not be trusted ---------
@pytest.fixture(scope="module")
def nan_tokenizer_dir(tmp_path_factory, tiny_tokenizer):
    """The tiny tokenizer with every weight NaN: a corrupt or diverged checkpoint."""
    model = copy.deepcopy(tiny_tokenizer)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    folder = tmp_path_factory.mktemp("nan_tokenizer")
    model.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def other_tokenizer_dir(tmp_path_factory):
    """Another tiny tokenizer of the same latent width (other weights)."""
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("other_tokenizer")
    AudioTokenizer(TokenizerConfig.tiny()).eval().save_pretrained(folder)
    return str(folder)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_nan_model_output_is_one_error_per_file_and_never_written(
    tmp_path, corpus, tiny_tokenizer_dir, nan_tokenizer_dir, capsys
):
    sources = [str(corpus / "a.wav"), str(corpus / "sub" / "b.flac")]
    for command in ("encode", "reconstruct"):
        out = tmp_path / command
        assert main([command, *sources, "-o", str(out), "--model", nan_tokenizer_dir]) == 1
        err = capsys.readouterr().err
        assert err.count("NaN or infinite values in the latents") == 2, err
        assert "0 written, 2 failed" in err and "Traceback" not in err
        assert not out.exists() or _files(out) == []
    latents = tmp_path / "lat"
    assert main(["encode", sources[1], "-o", str(latents), "--model", tiny_tokenizer_dir]) == 0
    out = tmp_path / "dec"
    assert main(["decode", str(latents), "-o", str(out), "--model", nan_tokenizer_dir]) == 1
    err = capsys.readouterr().err
    assert f"{latents / 'b.safetensors'}: NaN or infinite values in the decoded audio" in err
    assert not out.exists() or _files(out) == []  # not a wav of -32768


def test_decode_refuses_latent_files_whose_metadata_cannot_be_true(
    tmp_path, corpus, tiny_tokenizer_dir, capsys
):
    latents = tmp_path / "lat"
    assert (
        main(
            [
                "encode",
                str(corpus / "sub" / "b.flac"),
                "-o",
                str(latents),
                "--model",
                tiny_tokenizer_dir,
            ]
        )
        == 0
    )
    good = LatentFile.load(latents / "b.safetensors")
    damaged = {
        "long": {"num_samples": "100000000"},  # a 52 KB file asking for 200 MB of audio
        "sci": {"num_samples": "1e10"},
        "negative": {"num_samples": "-5"},
        "zero": {"num_samples": "0"},
        "rate": {"sample_rate": "1"},
    }
    for name, meta in damaged.items():
        save_file(
            {"latents": good.latents},
            str(latents / f"{name}.safetensors"),
            metadata={**good.metadata(), **meta},
        )
    save_file(
        {"latents": good.latents[None]},
        str(latents / "batch.safetensors"),
        metadata=good.metadata(),
    )
    out = tmp_path / "dec"
    assert main(["decode", str(latents), "-o", str(out), "--model", tiny_tokenizer_dir]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "decode: 1 written, 6 failed" in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 6 and all(".safetensors: " in line for line in errors)
    assert "num_samples=100000000 at 8000 Hz" in err and "shape (1, " in err
    assert _files(out) == ["b.wav"] and sf.info(out / "b.wav").frames == 8000


def test_decode_warns_once_when_latents_name_another_model(
    tmp_path, corpus, tiny_tokenizer_dir, other_tokenizer_dir, capsys
):
    latents = tmp_path / "lat"
    sources = [str(corpus / "a.wav"), str(corpus / "sub" / "b.flac")]
    assert main(["encode", *sources, "-o", str(latents), "--model", tiny_tokenizer_dir]) == 0
    capsys.readouterr()
    out = tmp_path / "dec"
    assert main(["decode", str(latents), "-o", str(out), "--model", other_tokenizer_dir]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1 and f"encoded by model '{tiny_tokenizer_dir}'" in err
    assert _files(out) == ["a.wav", "b.wav"]


def test_any_bad_input_costs_only_its_file_but_bugs_still_surface(
    tmp_path, corpus, tiny_tokenizer_dir, capsys, monkeypatch
):
    import sonotok.core.audio as audio  # what the commands read files with (at run time)

    real = audio.read_clip
    failures = {"a.wav": MemoryError("cannot allocate 40 GB"), "short.wav": RuntimeError("odd")}

    def read_clip(path, *args, **kwargs):
        if Path(path).name in failures:
            raise failures[Path(path).name]
        return real(path, *args, **kwargs)

    monkeypatch.setattr(audio, "read_clip", read_clip)
    sources = [str(corpus / n) for n in ("a.wav", "short.wav", "sub/b.flac")]
    out = tmp_path / "rec"
    assert main(["reconstruct", *sources, "-o", str(out), "--model", tiny_tokenizer_dir]) == 1
    err = capsys.readouterr().err
    assert "a.wav: out of memory (cannot allocate 40 GB)" in err and "short.wav: odd" in err
    assert "1 written, 2 failed" in err and _files(out) == ["b.wav"]
    failures["b.flac"] = TypeError("a bug in sonotok")
    with pytest.raises(TypeError):
        main(["reconstruct", sources[2], "-o", str(tmp_path / "o2"), "--model", tiny_tokenizer_dir])


def test_full_disk_stops_the_batch_with_one_line_and_no_partial_file(
    tmp_path, tone, tiny_tokenizer_dir, capsys, monkeypatch
):
    import sonotok.core.audio as audio

    source = tmp_path / "in"
    source.mkdir()
    for i in range(4):
        sf.write(source / f"{i}.wav", tone(3200, 16000, seed=i), 16000)
    calls, real = [], audio.sf.write

    def write(file, *args, **kwargs):
        calls.append(file)
        if len(calls) == 2:
            Path(file).write_bytes(b"half a wav")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(file, *args, **kwargs)

    monkeypatch.setattr(audio.sf, "write", write)
    out = tmp_path / "rec"
    assert main(["reconstruct", str(source), "-o", str(out), "--model", tiny_tokenizer_dir]) == 1
    err = capsys.readouterr().err
    assert f"error: disk full writing {out / '1.wav'}; 1 file(s) written, 3 not written" in err
    assert len(calls) == 2 and "Traceback" not in err
    assert sorted(os.listdir(out)) == ["0.wav"]  # no hidden partial file either


def test_full_disk_reported_by_safetensors_stops_encode(
    tmp_path, corpus, tiny_tokenizer_dir, capsys, monkeypatch
):
    import safetensors.torch

    class SafetensorError(Exception):
        pass

    def save_file(*args, **kwargs):
        raise SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    sources = [str(corpus / "a.wav"), str(corpus / "sub" / "b.flac")]
    out = tmp_path / "lat"
    assert main(["encode", *sources, "-o", str(out), "--model", tiny_tokenizer_dir]) == 1
    err = capsys.readouterr().err
    assert "error: disk full writing" in err and "0 file(s) written, 2 not written" in err
    assert _files(out) == []


def test_temporaries_of_a_killed_run_are_cleaned_at_start(tmp_path, corpus, tiny_tokenizer_dir):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a process that is gone, like one killed mid-write
    out = tmp_path / "rec"
    (out / "sub").mkdir(parents=True)
    stale = [out / f".a.wav.{child.pid}.0123abcd.tmp", out / "sub" / ".b.wav.k2j_9xq1.tmp"]
    foreign = out / ".notes.tmp"
    for path in [*stale, foreign]:
        path.write_bytes(b"x")
    main(["reconstruct", str(corpus), "-o", str(out), "--model", tiny_tokenizer_dir])
    assert not any(p.exists() for p in stale) and foreign.exists()
    assert _files(out) == [".notes.tmp", "a.wav", "sub/b.wav"]


def test_outputs_are_as_readable_as_the_umask_allows(tmp_path, corpus, tiny_tokenizer_dir):
    old = os.umask(0o022)
    try:
        for command in ("encode", "reconstruct"):
            out = tmp_path / command
            args = [command, str(corpus / "sub" / "b.flac"), "-o", str(out)]
            assert main([*args, "--model", tiny_tokenizer_dir]) == 0
            (written,) = out.iterdir()
            assert written.stat().st_mode & 0o777 == 0o644  # was 0o600
    finally:
        os.umask(old)


def test_long_files_show_progress_in_seconds_of_audio(tmp_path, tiny_tokenizer_dir, monkeypatch):
    """A model call on ≥ 60 s of audio draws its own bar (seconds done / total) while it runs."""
    import sonotok.cli.common as common

    reports: list[tuple[str, float]] = []
    original = common.audio_progress

    @common.contextlib.contextmanager
    def spy(seconds, name, prefix=""):
        with original(seconds, name, prefix) as progress:
            if progress is None:
                yield None
                return

            def record(fraction):
                reports.append((prefix.strip(), fraction))
                progress(fraction)

            yield record

    import sonotok.cli.tokenize as tokenize

    monkeypatch.setattr(common, "audio_progress", spy)
    monkeypatch.setattr(tokenize, "audio_progress", spy)
    rate = 16000
    wave = 0.1 * np.sin(2 * np.pi * 220 * np.arange(rate * 70) / rate).astype(np.float32)
    sf.write(tmp_path / "long.wav", wave, rate)
    sf.write(tmp_path / "short.wav", wave[: rate * 2], rate)
    args = ["--model", tiny_tokenizer_dir]
    assert main(["encode", str(tmp_path / "long.wav"), "-o", str(tmp_path / "z"), *args]) == 0
    encode = [f for what, f in reports if what == "encode"]
    # 70 s fit one pass of the encoder's 16 chunks (a longer file reports after each pass)
    assert encode and encode == sorted(encode) and encode[-1] == pytest.approx(1, abs=0.02)
    reports.clear()
    assert main(["decode", str(tmp_path / "z"), "-o", str(tmp_path / "d"), *args]) == 0
    assert [f for what, f in reports if what == "decode"][-1] == 1.0
    reports.clear()
    assert main(["encode", str(tmp_path / "short.wav"), "-o", str(tmp_path / "z2"), *args]) == 0
    assert reports == []  # short work draws no bar
