"""SemantiCodec decoder training: it learns, resumes exactly, exports a loadable codec."""

from pathlib import Path

import numpy as np
import pytest
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


def _config(out, *overrides):
    base = [f"train.output_dir={out}", "train.batch_size=1", "train.progress=false",
            "data.synthetic_clips=1", "train.log_every=1"]  # fmt: skip
    return load_config(CONFIG, base + list(overrides))


def _fixed_loss(trainer) -> float:
    core = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad():
        return float(core(trainer.data[0][None], seed=123)[0])


def test_tiny_run_lowers_the_loss(tmp_path):
    trainer = DecoderTrainer(
        _config(
            tmp_path,
            "train.max_steps=8",
            "optim.lr=3e-3",
            "model.cfg_dropout=0.0",
            "optim.ema_decay=null",
        )
    )
    trainer._scale_by_std(trainer.data[0][None])  # as step 0 will, on the same batch
    before = _fixed_loss(trainer)
    trainer.run()
    assert trainer.step == 8
    assert _fixed_loss(trainer) < 0.9 * before
    codec = load_tokenizer(tmp_path / "model")
    assert float(codec.decoder.scale_factor) != 1.0  # scale_by_std reached the export


def test_resume_equals_uninterrupted(tmp_path):
    straight = DecoderTrainer(_config(tmp_path / "a", "train.max_steps=4"))
    straight.run()
    first = DecoderTrainer(_config(tmp_path / "b", "train.max_steps=4", "train.checkpoint_every=2"))
    first.run(stop_after_steps=2)
    resumed = DecoderTrainer(
        _config(tmp_path / "b", "train.max_steps=4", "train.checkpoint_every=2")
    )
    resumed.run(resume="latest")
    a, b = straight.shipped_model().state_dict(), resumed.shipped_model().state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    trained = straight.accelerator.unwrap_model(straight.model).codec.encoder
    fresh = tiny_codec(100, 0).encoder
    assert not torch.equal(trained.lstm.weight_ih_l0, fresh.lstm.weight_ih_l0)  # trained jointly
    assert torch.equal(trained.centroids, fresh.centroids)  # the semantic branch is frozen


def test_cli_trains_and_reports_bad_settings(tmp_path, capsys):
    from sonotok.cli import main

    common = ["train", "semanticodec", "--config", str(CONFIG), "-o", str(tmp_path / "run")]
    sets = [
        "train.max_steps=1",
        "train.batch_size=1",
        "train.progress=false",
        "data.synthetic_clips=1",
    ]
    assert main(common + [arg for s in sets for arg in ("--set", s)]) == 0
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    assert "model:" in capsys.readouterr().out
    assert main(common + ["--set", "model.cfg_dropout=1.5", "--resume"]) == 2
    assert "cfg_dropout" in capsys.readouterr().err


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
