from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sonotok.core.checkpointing import read_state
from sonotok.core.errors import CheckpointError, ConfigError
from sonotok.generation.config import load_config
from sonotok.generation.errors import GenerationError
from sonotok.generation.pipeline import TextToAudioPipeline
from sonotok.generation.train import batch_indices, train

TINY = Path(__file__).parents[2] / "configs" / "generation" / "tiny.yaml"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, latent_dataset) -> Path:
    return latent_dataset(tmp_path_factory.mktemp("data") / "latents", latent_dim=32)


@pytest.fixture(autouse=True)
def _fresh_state(fresh_accelerate_state):
    yield


def config(data: Path, out: Path, *extra: str):
    return load_config(
        TINY,
        [
            f"data.path={data}",
            f"train.output_dir={out}",
            "train.max_steps=20",
            "train.checkpoint_every=10",
            "train.log_every=5",
            "optim.warmup_steps=3",
            "optim.schedule=cosine",
            *extra,
        ],
    )


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def weights(out: Path, step: int, name: str = "model") -> dict:
    """The model's (or, for "ema", the EMA's) weights in checkpoint `step`."""
    states, _ = read_state(out / "checkpoints" / f"step_{step:08d}")
    if name == "ema":  # the EMA's averaged copy of the model
        return states["ema"]["module"]
    return states[name]


def test_resume_equals_uninterrupted_training(dataset, tmp_path, plant_pickles):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(config(dataset, straight, "train.grad_accum=2"))
    train(config(dataset, resumed, "train.grad_accum=2"), stop_at=10)
    assert not (resumed / "checkpoints" / "step_00000020").exists()
    marker = plant_pickles(resumed / "checkpoints" / "step_00000010")
    with pytest.raises(ConfigError, match="already holds checkpoints; pass --resume"):
        train(config(dataset, resumed, "train.grad_accum=2"))
    train(config(dataset, resumed, "train.grad_accum=2"), resume="latest")
    assert not marker.exists()  # resuming unpickled nothing
    logged = [_metrics(run) for run in (straight, resumed)]
    assert [m["step"] for m in logged[1]] == [5, 10, 15, 20]  # one line per log step
    for a, b in zip(*logged):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6) and a["lr"] == b["lr"]
    for name in ("model", "ema"):
        a, b = weights(straight, 20, name), weights(resumed, 20, name)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    start = weights(straight, 10)
    assert max((start[k] - a[k]).abs().max() for k in start) > 1e-4  # it did train
    state = json.loads(
        (straight / "checkpoints" / "step_00000020" / "trainer_state.json").read_text()
    )
    assert state["step"] == 20 and state["latent_mean"] == pytest.approx(0.5, abs=0.1)
    assert state["latent_std"] == pytest.approx(2.0, abs=0.2)  # "auto" normalisation


def test_exported_pipeline_has_ema_weights_and_generates(dataset, tmp_path, text_encoder):
    out = tmp_path / "run"
    train(
        config(
            dataset,
            out,
            "train.max_steps=4",
            "train.checkpoint_every=4",
            "train.keep_checkpoints=1",
        )
    )
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_00000004"]
    pipe = TextToAudioPipeline.from_pretrained(out / "pipeline", text_encoder=text_encoder)
    ema = weights(out, 4, "ema")
    for name, p in pipe.dit.named_parameters():
        torch.testing.assert_close(p.detach(), ema[name])
    assert pipe.config.latent_std == pytest.approx(2.0, abs=0.2)
    z, _ = pipe.generate_latents(["sound number 3"], seconds=0.4, num_steps=2, seed=0)
    assert z.shape == (1, 10, 32) and torch.isfinite(z).all()


def test_precomputed_text_states_train_without_captions(tmp_path, text_encoder, latent_dataset):
    data = latent_dataset(tmp_path / "pre", 32, text_states=text_encoder)
    import datasets

    ds = datasets.load_from_disk(str(data)).remove_columns("caption")
    ds.save_to_disk(str(tmp_path / "pre2"))
    out = train(
        config(
            tmp_path / "pre2", tmp_path / "run", "train.max_steps=3", "train.mixed_precision=bf16"
        )
    )
    states, _ = read_state(out / "checkpoints" / "step_00000003")
    assert states["ema"]["module"].keys() == states["model"].keys()
    assert states["ema"]["num_updates"] == 3


def test_batches_cover_each_epoch_once_and_split_across_processes():
    seen = [i for step in range(3) for i in batch_indices(12, 4, 0, step, 0, 4)]
    assert sorted(seen) == list(range(12))
    a = batch_indices(12, 4, 0, 1, 0, 2) + batch_indices(12, 4, 0, 1, 1, 2)
    assert a == batch_indices(12, 4, 0, 1, 0, 4)
    assert batch_indices(12, 4, 0, 3, 0, 4) != batch_indices(
        12, 4, 0, 0, 0, 4
    )  # new epoch, new order
    with pytest.raises(GenerationError, match="fewer than one global batch"):
        batch_indices(3, 4, 0, 0, 0, 4)


def test_bad_configs_and_datasets_give_clear_errors(dataset, tmp_path):
    with pytest.raises(ConfigError, match="unknown config key model.width"):
        load_config(TINY, ["model.width=3"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(TINY, ["optim.lr"])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "none.yaml")
    with pytest.raises(GenerationError, match="not a folder"):
        train(config(tmp_path / "missing", tmp_path / "o"))
    with pytest.raises(GenerationError, match="channels"):
        train(config(dataset, tmp_path / "o", "model.latent_dim=16"))
    with pytest.raises(GenerationError, match="context_dim"):
        train(config(dataset, tmp_path / "o", "model.context_dim=64"))


def test_cli_train_then_resume(dataset, tmp_path):
    from sonotok.cli import main

    out = tmp_path / "cli"
    args = [
        "train",
        "generation",
        "--config",
        str(TINY),
        "--set",
        f"data.path={dataset}",
        "--set",
        f"train.output_dir={out}",
        "--set",
        "train.max_steps=2",
        "--set",
        "train.checkpoint_every=2",
    ]
    assert main(args) == 0
    resume = [*args[:-2], "--set", "train.max_steps=3", "--set", "train.checkpoint_every=1"]
    assert main([*resume, "--resume"]) == 0
    assert (
        json.loads((out / "checkpoints" / "step_00000003" / "trainer_state.json").read_text())[
            "step"
        ]
        == 3
    )
    assert main(["train", "generation", "--config", str(tmp_path / "nope.yaml")]) == 2


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_cpu_training_resumes(dataset, tmp_path):

    def launch(steps: int, out: Path, *extra: str) -> None:
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            # `--cpu` starts a single process unless MPI is installed; `--multi_gpu` starts
            # two through torchrun, which join over gloo on a machine without GPUs.
            "--multi_gpu",
            "--num_processes",
            "2",
            "--main_process_port",
            str(free_port()),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "sonotok.cli",
            "train",
            "generation",
            "--config",
            str(TINY),
            "--set",
            f"data.path={dataset}",
            "--set",
            f"train.output_dir={out}",
            "--set",
            "train.batch_size=2",
            "--set",
            f"train.max_steps={steps}",
            "--set",
            "train.checkpoint_every=2",
            *extra,
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    launch(2, resumed)
    launch(4, resumed, "--resume")
    launch(4, straight)
    state = json.loads(
        (resumed / "checkpoints" / "step_00000004" / "trainer_state.json").read_text()
    )
    assert state["step"] == 4 and state["num_processes"] == 2
    a, b = weights(resumed, 2), weights(resumed, 4)
    assert max((a[k] - b[k]).abs().max() for k in a) > 0
    c = weights(straight, 4)
    for key in b:
        torch.testing.assert_close(b[key], c[key], rtol=0, atol=1e-6)


def test_training_writes_audio_samples_for_fixed_prompts(dataset, tmp_path):
    import soundfile as sf

    from sonotok.tokenizer import AudioTokenizer, TokenizerConfig

    torch.manual_seed(0)
    AudioTokenizer(TokenizerConfig.tiny()).save_pretrained(tmp_path / "tok")
    out = tmp_path / "run"
    train(
        config(
            dataset,
            out,
            "train.max_steps=2",
            "train.sample_every=2",
            f"train.tokenizer={tmp_path / 'tok'}",
            "train.sample_seconds=0.4",
            "train.sample_steps=2",
            "train.sample_prompts=[a dog, rain]",
            "train.log_with=tensorboard",
        )
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"audio": 0})
    events.Reload()
    assert {"samples/00", "samples/01"} <= set(events.Tags()["audio"])
    assert "loss" in events.Tags()["scalars"]
    files = sorted((out / "samples" / "step_00000002").iterdir())
    assert [f.name for f in files] == ["00.wav", "01.wav"]
    audio, rate = sf.read(files[0])
    assert rate == 16000 and audio.shape == (6400,)
    assert (out / "pipeline" / "tokenizer" / "model.safetensors").is_file()


def test_bfloat16_latents_from_extract_are_read_as_floats(tmp_path):
    import datasets
    import numpy as np

    from sonotok.extraction.extract import to_storage
    from sonotok.generation.train import collate, latent_storage

    z = torch.randn(6, 4)
    stored = to_storage(z, "bfloat16")
    ds = datasets.Dataset.from_dict(
        {"latents": [stored], "num_frames": [6], "caption": ["x"]},
        features=datasets.Features(
            {
                "latents": datasets.Array2D(shape=(None, 4), dtype="uint16"),
                "num_frames": datasets.Value("int32"),
                "caption": datasets.Value("string"),
            }
        ),
    )
    assert latent_storage(ds) == "bfloat16"
    rows = ds.with_format("numpy")[[0]]
    latents, mask = collate(rows, 100, torch.Generator(), "bfloat16")
    torch.testing.assert_close(latents[0], z.to(torch.bfloat16).float())
    assert mask.all() and isinstance(rows["latents"][0], np.ndarray)


def test_resuming_with_a_different_model_gives_a_clear_error(dataset, tmp_path):
    out = tmp_path / "run"
    train(config(dataset, out, "train.max_steps=1", "train.checkpoint_every=1"))
    with pytest.raises(CheckpointError, match="does not match this run's configuration"):
        train(config(dataset, out, "train.max_steps=2", "model.depth=4"), resume="latest")


def test_trained_pipeline_follows_the_caption(tmp_path, text_encoder):
    """Two captions, two constant latents: after `train`, each caption's sample is nearer its own."""
    import datasets
    import numpy as np

    from sonotok.generation.text import add_text_states

    rng = np.random.default_rng(0)
    targets = {
        "a dog barks": rng.standard_normal(32),
        "heavy rain on a roof": rng.standard_normal(32),
    }
    captions = list(targets) * 4
    ds = datasets.Dataset.from_dict(
        {
            "latents": [np.tile(targets[c], (10, 1)).astype("float32") for c in captions],
            "num_frames": [10] * len(captions),
            "caption": captions,
        },
        features=datasets.Features(
            {
                "latents": datasets.Array2D((None, 32), "float32"),
                "num_frames": datasets.Value("int32"),
                "caption": datasets.Value("string"),
            }
        ),
    )
    add_text_states(ds, text_encoder).save_to_disk(str(tmp_path / "data"))
    out = train(
        config(
            tmp_path / "data",
            tmp_path / "run",
            "train.max_steps=300",
            "train.checkpoint_every=300",
            "optim.lr=3e-3",
            "optim.schedule=constant",
            "optim.ema_decay=0.9",
            "data.latent_mean=0.0",
            "data.latent_std=1.0",
            "objective.density=uniform",
        )
    )
    pipe = TextToAudioPipeline.from_pretrained(out / "pipeline", text_encoder=text_encoder)
    z, _ = pipe.generate_latents(
        list(targets), seconds=0.4, num_steps=20, guidance_scale=3.0, seed=0
    )
    a, b = (torch.tensor(t, dtype=torch.float32) for t in targets.values())
    assert (z[0] - a).square().mean() < 0.5 * (z[0] - b).square().mean()
    assert (z[1] - b).square().mean() < 0.5 * (z[1] - a).square().mean()
