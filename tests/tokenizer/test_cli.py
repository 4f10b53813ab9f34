"""`sonotok encode | decode | reconstruct` end to end on generated audio."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from safetensors import safe_open

from sonotok.cli import main


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


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "sonotok.cli", "encode", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--overwrite" in out.stdout and "safetensors" in out.stdout
