from pathlib import Path

import numpy as np
import soundfile as sf

from sonotok.cli import main

TINY = Path(__file__).resolve().parents[2] / "configs" / "enhancement" / "tiny.yaml"


def test_enhance_folders_globs_and_bad_files(tmp_path, tiny_pipeline_dir, tone, capsys):
    noisy = tmp_path / "noisy"
    (noisy / "sub").mkdir(parents=True)
    sf.write(
        noisy / "a.wav", np.stack([tone(30000, 44100, 1), tone(30000, 44100, 2)], axis=1), 44100
    )
    sf.write(noisy / "sub" / "b.flac", tone(9000, 8000, 3), 8000)
    (noisy / "broken.wav").write_text("not audio")
    sf.write(noisy / "empty.wav", np.zeros((0, 1), np.float32), 16000)
    extra = tmp_path / "loose"
    extra.mkdir()
    sf.write(extra / "c.wav", tone(20000, 16000, 4), 16000)

    out = tmp_path / "out"
    rc = main(
        [
            "enhance",
            str(noisy),
            str(extra / "*.wav"),
            "-o",
            str(out),
            "--model",
            tiny_pipeline_dir,
            "--strength",
            "0.9",
            "--chunk-seconds",
            "0.8",
            "--crossfade-seconds",
            "0.2",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.wav")) == [
        "a.wav",
        "c.wav",
        "sub/b.wav",
    ]
    for name, rate, shape in (
        ("a.wav", 44100, (30000, 2)),
        ("sub/b.wav", 8000, (9000, 1)),
        ("c.wav", 16000, (20000, 1)),
    ):
        data, sr = sf.read(out / name, always_2d=True)
        assert sr == rate and data.shape == shape and np.abs(data).max() > 0
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert any("broken.wav" in e for e in errors) and any("empty.wav" in e for e in errors)
    assert "3 written" in err and "2 failed" in err

    # Existing outputs are skipped unless --overwrite.
    rc = main(["enhance", str(extra), "-o", str(out), "--model", tiny_pipeline_dir])
    assert rc == 0 and "1 skipped" in capsys.readouterr().err


def test_enhance_reports_a_missing_model(tmp_path, capsys):
    rc = main(
        ["enhance", str(tmp_path), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "nope")]
    )
    assert rc == 2 and "no such file or folder" in capsys.readouterr().err


def test_train_then_enhance_from_the_command_line(
    tmp_path, speech_dirs, tiny_tokenizer_dir, capsys
):
    clean, noise = speech_dirs
    run = tmp_path / "run"
    rc = main(
        [
            "train",
            "enhancement",
            "--config",
            str(TINY),
            "--set",
            f"tokenizer={tiny_tokenizer_dir}",
            "--set",
            f"data.clean={clean}",
            "--set",
            f"data.noise={noise}",
            "--set",
            f"train.output_dir={run}",
            "--set",
            "train.max_steps=3",
            "--set",
            "validation.every=3",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    rc = main(
        [
            "enhance",
            str(clean / "c0.wav"),
            "-o",
            str(tmp_path / "out"),
            "--model",
            str(run / "model"),
        ]
    )
    assert rc == 0
    data, sr = sf.read(tmp_path / "out" / "c0.wav")
    assert sr == 16000 and data.shape == (32000,)
    rc = main(["train", "enhancement", "--config", str(TINY), "--set", "train.lr_typo=1"])
    assert rc == 2 and "unknown config key" in capsys.readouterr().err


def test_nan_enhanced_audio_is_an_error_not_a_wav(
    tmp_path, tiny_tokenizer, tiny_denoiser, tone, capsys
):
    import copy

    import torch

    from sonotok.enhancement import EnhancementPipeline, TokenizerDenoiser

    tokenizer = copy.deepcopy(tiny_tokenizer)
    with torch.no_grad():
        for p in tokenizer.decoder.parameters():  # a corrupt decoder: finite latents, NaN audio
            p.fill_(float("nan"))
    model = tmp_path / "model"
    EnhancementPipeline(TokenizerDenoiser(tokenizer, tiny_denoiser)).save_pretrained(model)
    for name in ("a.wav", "b.wav"):
        sf.write(tmp_path / name, tone(16000, 16000, len(name)), 16000)
    sources = [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    out = tmp_path / "out"
    assert main(["enhance", *sources, "-o", str(out), "--model", str(model)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a.wav'}: NaN or infinite values in the enhanced audio" in err
    assert "0 written, 2 failed" in err
    assert not out.exists() or list(out.iterdir()) == []  # no wav of -32768
