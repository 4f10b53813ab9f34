import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sonotok.core.checkpointing import read_state
from sonotok.enhancement import EnhancementPipeline, LatentDenoiser, latent_loss
from sonotok.enhancement.config import load_config
from sonotok.enhancement.data import AudioSource, MixedPairs, pad_latents
from sonotok.enhancement.mixing import MixConfig
from sonotok.enhancement.train import train
from sonotok.tokenizer import ConfigError

TINY = Path(__file__).resolve().parents[2] / "configs" / "enhancement" / "tiny.yaml"


def tiny_config(tmp_path, speech_dirs, tokenizer_dir, *overrides):
    clean, noise = speech_dirs
    return load_config(
        TINY,
        [
            f"tokenizer={tokenizer_dir}",
            f"data.clean={clean}",
            f"data.noise={noise}",
            f"train.output_dir={tmp_path}",
            *overrides,
        ],
    )


def _metrics(folder) -> list[dict]:
    return [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]


def test_training_lowers_latent_mse_below_the_identity(
    tmp_path, speech_dirs, tiny_tokenizer_dir, tiny_tokenizer
):
    config = tiny_config(
        tmp_path,
        speech_dirs,
        tiny_tokenizer_dir,
        "train.max_steps=30",
        "train.checkpoint_every=30",
        "validation.every=30",
        "data.segment_seconds=0.64",
        "optim.ema_decay=null",
    )
    folder = train(config)
    model = LatentDenoiser.from_pretrained(folder)
    # Held-out mixes: other seed, so other crops, noise segments and SNRs.
    clean, noise = speech_dirs
    data = MixedPairs(
        AudioSource(clean, "clean"),
        AudioSource(noise, "noise"),
        MixConfig((0, 10), (-3, 3)),
        16000,
        seed=99,
    )
    examples = [data[i] for i in range(8)]
    z = tiny_tokenizer.encode([e.noisy for e in examples] + [e.clean for e in examples])
    noisy, mask = pad_latents(z[:8])
    target, _ = pad_latents(z[8:])
    with torch.no_grad():
        denoised = latent_loss(model(noisy, mask), target, mask).item()
    identity = latent_loss(noisy, target, mask).item()
    assert denoised < 0.8 * identity
    # The exported folder runs in the pipeline; validation audio and logs were written.
    pipe = EnhancementPipeline.from_pretrained(folder, tokenizer=tiny_tokenizer)
    assert pipe.enhance(examples[0].noisy.numpy(), 16000).shape == (16000,)
    assert sorted(p.name for p in (tmp_path / "samples" / "step_30").iterdir()) == [
        "0_clean.wav",
        "0_enhanced.wav",
        "0_noisy.wav",
    ]
    lines = _metrics(tmp_path)  # one line per log step (train.log_every=5), validation merged
    assert [m["step"] for m in lines] == [5, 10, 15, 20, 25, 30]
    assert all(m["loss"] > 0 and m["grad_norm"] > 0 and m["loss_identity"] > 0 for m in lines)
    assert lines[-1]["loss"] < lines[-1]["loss_identity"]
    assert lines[-1]["val/latent_mse"] < lines[-1]["val/latent_mse_identity"]


def test_exported_model_works_after_moving_it_elsewhere(
    tmp_path, speech_dirs, tiny_tokenizer, tone, monkeypatch
):
    """Issue 17 item 2: the export holds its tokenizer instead of a path relative to the
    folder training ran in."""
    monkeypatch.chdir(tmp_path)
    tiny_tokenizer.save_pretrained("tok")  # a relative tokenizer folder, as in the README
    clean, noise = speech_dirs
    overrides = [f"data.clean={clean}", f"data.noise={noise}", "train.output_dir=runs/se"]
    overrides += ["tokenizer=tok", "train.max_steps=2", "validation.every=0"]
    folder = train(load_config(TINY, overrides))
    assert json.loads((folder / "config.json").read_text())["tokenizer"] == "tokenizer"
    moved = tmp_path / "elsewhere" / "denoiser"
    moved.parent.mkdir()
    shutil.move(str(folder), moved)
    shutil.rmtree("tok")
    shutil.rmtree("runs")
    monkeypatch.chdir(moved.parent)
    pipe = EnhancementPipeline.from_pretrained(moved)
    theirs, ours = pipe.model.tokenizer.state_dict(), tiny_tokenizer.state_dict()
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)
    out = pipe.enhance(tone(16000, seed=3), 16000)
    assert out.shape == (16000,) and torch.isfinite(torch.as_tensor(out)).all()


@pytest.fixture(scope="module")
def latent_pairs(tmp_path_factory, speech_dirs, tiny_tokenizer):
    """Cached latent datasets (the shared format) of 12 noisy/clean pairs, keyed by id."""
    import datasets

    clean, noise = speech_dirs
    data = MixedPairs(
        AudioSource(clean, "clean"),
        AudioSource(noise, "noise"),
        MixConfig((0, 10), (0, 0)),
        16000,
        seed=3,
    )
    examples = [data[i] for i in range(12)]
    root = tmp_path_factory.mktemp("latents")
    d = tiny_tokenizer.latent_dim
    feats = datasets.Features(
        {
            "latents": datasets.Array2D(shape=(None, d), dtype="float32"),
            "num_frames": datasets.Value("int32"),
            "id": datasets.Value("string"),
        }
    )
    for name in ("noisy", "clean"):
        z = [x.numpy() for x in tiny_tokenizer.encode([getattr(e, name) for e in examples])]
        ids = [f"utt{i}" for i in range(12)]
        order = list(range(12)) if name == "clean" else list(reversed(range(12)))
        datasets.Dataset.from_dict(
            {
                "latents": [z[i] for i in order],
                "num_frames": [len(z[i]) for i in order],
                "id": [ids[i] for i in order],
            },
            features=feats,
        ).save_to_disk(root / name)
    return root


def test_resume_is_exact(tmp_path, latent_pairs, tiny_tokenizer_dir, plant_pickles):
    # Cached latents (no tokenizer in the loop) and dropout on, so the torch RNG must be restored too.
    common = [
        f"tokenizer={tiny_tokenizer_dir}",
        "data.clean=null",
        "data.noise=null",
        f"data.latents={{noisy: {latent_pairs / 'noisy'}, clean: {latent_pairs / 'clean'}, key: id}}",
        "data.segment_seconds=0.4",
        "train.max_steps=20",
        "train.checkpoint_every=10",
        "validation.every=0",
        "model.dropout=0.1",
    ]
    straight = train(load_config(TINY, [*common, f"train.output_dir={tmp_path / 'a'}"]))
    second = load_config(TINY, [*common, f"train.output_dir={tmp_path / 'b'}"])
    train(second, stop_at=10)
    assert (
        json.loads((tmp_path / "b/checkpoints/step_00000010/trainer_state.json").read_text())[
            "step"
        ]
        == 10
    )
    assert not (tmp_path / "b/checkpoints/step_00000020").exists()
    marker = plant_pickles(tmp_path / "b/checkpoints/step_00000010")
    with pytest.raises(ConfigError, match="already holds checkpoints; pass --resume"):
        train(second)  # like every recipe: resuming is asked for, never silent
    resumed = train(second, resume="latest")
    assert not marker.exists()  # resuming unpickled nothing
    ckpt_a, ckpt_b = (
        tmp_path / "a/checkpoints/step_00000020",
        tmp_path / "b/checkpoints/step_00000020",
    )
    (state_a, _), (state_b, _) = read_state(ckpt_a), read_state(ckpt_b)
    a, b = state_a["model"], state_b["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    ema_a, ema_b = state_a["ema"], state_b["ema"]
    assert ema_a["num_updates"] == ema_b["num_updates"] == 20
    for k in ema_a["module"]:
        assert torch.allclose(ema_a["module"][k], ema_b["module"][k], atol=1e-6), k
    steps = [[m["step"] for m in _metrics(tmp_path / run)] for run in "ab"]
    assert steps == [[5, 10, 15, 20]] * 2  # no line twice after the resume
    a, b = (
        load_file(str(straight / "model.safetensors")),
        load_file(str(resumed / "model.safetensors")),
    )
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    a, b = state_a["optimizer"], state_b["optimizer"]
    assert len(a["state"]) > 0
    for i, s in a["state"].items():
        assert torch.allclose(s["exp_avg_sq"], b["state"][i]["exp_avg_sq"], atol=1e-9)


def test_config_overrides_and_errors(tmp_path):
    config = load_config(
        TINY, ["optim.lr=0.0001", "data.snr_db=[0, 5]", "model.attention_window=8"]
    )
    assert (
        config.optim.lr == 1e-4
        and config.data.snr_db == (0, 5)
        and config.model.attention_window == 8
    )
    with pytest.raises(ConfigError, match="unknown config key train.learning_rate"):
        load_config(TINY, ["train.learning_rate=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(TINY, ["optim.lr"])
    # keys of the layout before every recipe shared train: / optim: name their new place
    for old, new in (("output_dir=runs/x", "train.output_dir"), ("train.lr=1", "optim.lr")):
        with pytest.raises(ConfigError, match=f"is an old key; use {new}"):
            load_config(TINY, [old])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="exactly one of"):
        load_config(TINY, ["data.paired={noisy: a, clean: b}"]).data.kind()
