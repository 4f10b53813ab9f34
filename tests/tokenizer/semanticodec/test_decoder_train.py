"""SemantiCodec decoder training: it learns, resumes exactly, exports a loadable codec."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

from sonotok.tokenizer.interface import load_tokenizer  # noqa: E402
from sonotok.tokenizer.semanticodec.train_decoder import (  # noqa: E402
    DecoderTrainer,
    load_config,
    slaney_filterbank,
    tiny_codec,
)

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "semanticodec" / "tiny.yaml"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> Path:
    """One 10.24 s harmonic tone with a slow tremolo (every crop of it is the whole file) and
    a 1 s one (zero-padded to a segment)."""
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    for name, seconds in (("long", 10.24), ("short", 1.0)):
        t = np.arange(round(seconds * 16000)) / 16000
        pitch = rng.uniform(100, 400)
        wave = sum(np.sin(2 * np.pi * k * pitch * t) / k for k in range(1, 4))
        sf.write(folder / f"{name}.wav", 0.2 * wave * (0.5 + 0.5 * np.sin(6 * np.pi * t)), 16000)
    return folder


def _config(out, data, *overrides):
    base = [f"train.output_dir={out}", "train.batch_size=1", "train.progress=false",
            f"data.sources=[{{path: {data}}}]", "train.log_every=1"]  # fmt: skip
    return load_config(CONFIG, base + list(overrides))


def _first_crop(trainer) -> torch.Tensor:
    return next(iter(trainer.batches()))[0]["audio"]


def _fixed_loss(trainer, waves) -> float:
    core = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad():
        return float(core(waves, seed=123)[0])


def test_tiny_run_lowers_the_loss(tmp_path, wavs):
    trainer = DecoderTrainer(
        _config(
            tmp_path,
            wavs / "long.wav",
            "train.max_steps=8",
            "optim.lr=3e-3",
            "model.cfg_dropout=0.0",
            "optim.ema_decay=null",
        )
    )
    waves = _first_crop(trainer)
    assert waves.shape == (1, 163840) and float(waves.abs().max()) > 0.1
    trainer._scale_by_std(waves)  # as step 0 will, on the same batch
    before = _fixed_loss(trainer, waves)
    trainer.run()
    assert trainer.step == 8
    assert _fixed_loss(trainer, waves) < 0.9 * before
    codec = load_tokenizer(tmp_path / "model")
    assert float(codec.decoder.scale_factor) != 1.0  # scale_by_std reached the export


def test_resume_equals_uninterrupted(tmp_path, wavs):
    straight = DecoderTrainer(_config(tmp_path / "a", wavs, "train.max_steps=4"))
    straight.run()
    twice = ("train.max_steps=4", "train.checkpoint_every=2")
    first = DecoderTrainer(_config(tmp_path / "b", wavs, *twice))
    first.run(stop_after_steps=2)
    resumed = DecoderTrainer(_config(tmp_path / "b", wavs, *twice))
    resumed.run(resume="latest")
    a, b = straight.shipped_model().state_dict(), resumed.shipped_model().state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    trained = straight.accelerator.unwrap_model(straight.model).codec.encoder
    fresh = tiny_codec(100, 0).encoder
    assert not torch.equal(trained.lstm.weight_ih_l0, fresh.lstm.weight_ih_l0)  # trained jointly
    assert torch.equal(trained.centroids, fresh.centroids)  # the semantic branch is frozen


def test_cli_trains_and_reports_bad_settings(tmp_path, wavs, capsys):
    from sonotok.cli import main

    run = tmp_path / "run"
    sets = [f"train.output_dir={run}", f"data.sources=[{{path: {wavs}}}]"]
    common = ["train", "semanticodec", "--config", str(CONFIG)]
    common += [arg for s in sets for arg in ("--set", s)]
    assert main([*common, "--check"]) == 0
    assert "2 items; of 2 checked, 2 usable" in capsys.readouterr().out
    steps = ["train.max_steps=1", "train.batch_size=1", "train.progress=false"]
    assert main(common + [arg for s in steps for arg in ("--set", s)] + ["--no-tensorboard"]) == 0
    assert (run / "model" / "config.json").is_file()
    assert not (run / "tensorboard").exists()
    assert "trained 1 steps" in capsys.readouterr().out
    assert main([*common, "--set", "model.cfg_dropout=1.5", "--resume"]) == 2
    assert "cfg_dropout" in capsys.readouterr().err
    assert main(["train", "semanticodec", "--config", str(CONFIG)]) == 2
    assert "data.sources is empty" in capsys.readouterr().err


def test_slaney_filterbank_matches_librosa_definition():
    bank = slaney_filterbank(16000, 1024, 64, 0.0, 8000.0)
    assert bank.shape == (64, 513)
    # Slaney normalisation: each filter's area (in Hz) is 2 / (bandwidth) × bandwidth / 2 = 1
    freqs = np.linspace(0, 8000, 513)
    areas = (bank * (freqs[1] - freqs[0])).sum(axis=1)
    np.testing.assert_allclose(areas[10:], 1.0, rtol=0.05)
    librosa = pytest.importorskip("librosa")
    np.testing.assert_allclose(
        bank,
        librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64, fmin=0, fmax=8000),
        rtol=1e-4,
        atol=1e-7,
    )
