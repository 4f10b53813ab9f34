"""End to end on CPU: the GAN recipe learns, keeps the semantic encoder frozen, exports a
loadable tokenizer, resumes exactly, and runs the same under `accelerate launch` with 2
processes."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sonotok.core.checkpointing import read_state
from sonotok.tokenizer import AudioTokenizer
from sonotok.tokenizer.train import TokenizerTrainConfig, load_config
from sonotok.tokenizer.train.losses import MelLoss
from sonotok.tokenizer.train.trainer import TokenizerTrainer

STEPS = 30


def _metrics(folder) -> list[dict]:
    return [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]


def _train_steps(folder) -> list[dict]:
    return [m for m in _metrics(folder) if "loss/mel" in m]


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, tiny_yaml, audio_folder, tiny_tokenizer_dir):
    """30 steps in one go with EMA, validation, audio/mel logging, checkpoints every 10."""
    out = tmp_path_factory.mktemp("straight")
    overrides = _overrides(out, audio_folder, tiny_tokenizer_dir)
    config = load_config(TokenizerTrainConfig, tiny_yaml, overrides)
    result = TokenizerTrainer(config, log_with="tensorboard").run()
    return result, overrides


def _overrides(out, audio_folder, tiny_tokenizer_dir) -> list[str]:
    return [
        f"data.sources=[{{path: {audio_folder}}}]",
        f"model.pretrained={tiny_tokenizer_dir}",
        "data.segment_samples=3200",
        "data.val_items=2",
        "data.val_segment_samples=6400",
        "train.batch_size=2",
        f"train.max_steps={STEPS}",
        "train.checkpoint_every=10",
        "train.keep_checkpoints=2",
        "train.log_every=1",
        f"train.val_every={STEPS}",
        f"train.audio_every={STEPS}",
        "train.progress=false",
        f"train.output_dir={out}",
        "optim.warmup_steps=2",
        "optim.ema_decay=0.8",
    ]


def test_thirty_steps_reduce_the_mel_loss(straight):
    result, _ = straight
    assert result.step == STEPS
    steps = _train_steps(result.output_dir)
    assert [m["step"] for m in steps] == list(range(1, STEPS + 1))
    mel = [m["loss/mel"] for m in steps]
    assert np.mean(mel[-5:]) < 0.85 * np.mean(mel[:5]), mel
    for key in (
        "loss/semantic",
        "loss/adversarial",
        "loss/feature_matching",
        "loss/discriminators",
        "score/mfd_real",
        "score/mfd_fake",
        "grad_norm/generator",
        "grad_norm/discriminators",
    ):
        assert all(np.isfinite(m[key]) for m in steps), key
    lrs = [m["lr/generator"] for m in steps]
    assert lrs[0] == pytest.approx(1e-3) and lrs[1] == pytest.approx(2e-3)  # warm-up
    assert lrs[-1] == pytest.approx(2e-3 * 0.1, rel=0.05) and lrs == sorted(lrs[:2]) + sorted(
        lrs[2:], reverse=True
    )
    val = [m for m in _metrics(result.output_dir) if "val/mel_distance" in m]
    assert val and val[-1]["step"] == STEPS and val[-1]["val/stft_distance"] > 0


def test_bad_file_was_skipped_and_counted(straight, capsys):
    result, _ = straight
    last = _train_steps(result.output_dir)[-1]
    assert last["data/unreadable_skipped"] > 0 and last["data/silent_skipped"] == 0
    state = json.loads(
        (result.output_dir / "checkpoints" / "step_00000030" / "trainer_state.json").read_text()
    )
    assert state["skipped"]["unreadable"] == last["data/unreadable_skipped"]
    assert state["samples_seen"] == STEPS * 2


def test_semantic_encoder_is_bit_identical_and_output_reconstructs(straight, tiny_tokenizer, tone):
    result, _ = straight
    trained = AudioTokenizer.from_pretrained(result.model_dir)
    before, after = tiny_tokenizer.semantic.state_dict(), trained.semantic.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BatchNorm running stats
    assert not torch.equal(tiny_tokenizer.decoder.head.out.weight, trained.decoder.head.out.weight)
    wave = torch.from_numpy(tone(16000, seed=2))  # a training clip
    mel = MelLoss(n_mels=64)
    old, new = (
        mel(wave[None], m.reconstruct(wave)[None]).item() for m in (tiny_tokenizer, trained)
    )
    assert new < old
    y = trained.reconstruct(tone(22050, 22050), sample_rate=22050)
    assert y.shape == (22050,) and torch.isfinite(y).all()


def test_checkpoints_keep_last_k_and_tensorboard_has_media(straight):
    result, _ = straight
    names = sorted(p.name for p in (result.output_dir / "checkpoints").iterdir())
    assert names == ["step_00000020", "step_00000030"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = next((result.output_dir / "tensorboard").rglob("events.out.tfevents.*"))
    acc = EventAccumulator(
        str(events.parent), size_guidance={"audio": 0, "images": 0, "scalars": 0}
    )
    acc.Reload()
    tags = acc.Tags()
    assert "audio/0_reconstruction" in tags["audio"]
    assert "mel/0_reference_over_reconstruction" in tags["images"]
    assert {"loss/mel", "lr/generator", "score/mfd_real", "val/mel_distance"} <= set(
        tags["scalars"]
    )


def test_interrupted_and_resumed_run_equals_straight_run(
    straight, tmp_path, tiny_yaml, plant_pickles
):
    result, overrides = straight
    overrides = [o for o in overrides if not o.startswith("train.output_dir")] + [
        f"train.output_dir={tmp_path}"
    ]
    config = load_config(TokenizerTrainConfig, tiny_yaml, overrides)
    first = TokenizerTrainer(config, log_with=None).run(stop_after_steps=10)
    assert first.step == 10 and first.model_dir is None
    with pytest.raises(Exception, match="already holds checkpoints; pass --resume"):
        TokenizerTrainer(config, log_with=None).run()
    marker = plant_pickles(tmp_path / "checkpoints" / "step_00000010")
    second = TokenizerTrainer(config, log_with=None).run(resume="latest")
    assert not marker.exists()  # nothing in the checkpoint folder was unpickled
    assert second.step == STEPS
    ours, theirs = (
        tmp_path / "checkpoints" / "step_00000030",
        result.output_dir / "checkpoints" / "step_00000030",
    )
    (ours, _), (theirs, _) = read_state(ours), read_state(theirs)
    for name in ("generator", "discriminators"):
        assert _max_difference(ours[name], theirs[name]) < 1e-6, name
    exported = (load_file(d / "model.safetensors") for d in (second.model_dir, result.model_dir))
    assert _max_difference(*exported) < 1e-6  # EMA weights
    assert [m["step"] for m in _train_steps(tmp_path)] == list(range(1, STEPS + 1))  # once each
    resumed = {m["step"]: m for m in _train_steps(tmp_path)}
    for m in _train_steps(result.output_dir):
        assert resumed[m["step"]]["loss/generator"] == pytest.approx(
            m["loss/generator"], rel=1e-5, abs=1e-6
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_and_resume(tmp_path, tiny_yaml, audio_folder, tiny_tokenizer_dir):
    """Two processes (`accelerate launch --multi_gpu`: torchrun + gloo on a CPU machine;
    `--cpu` would start only one without MPI), global batch 2 (1 per process): the first
    steps' losses equal the one-process run's; an interrupted 2-process run resumes."""
    common = _overrides(tmp_path, audio_folder, tiny_tokenizer_dir)
    common = [
        o for o in common if not o.startswith(("train.output_dir", "train.max_steps", "optim.ema"))
    ]
    common += [
        "train.max_steps=4",
        "train.checkpoint_every=2",
        "train.val_every=0",
        "train.audio_every=0",
    ]
    single_dir, double_dir = tmp_path / "one", tmp_path / "two"
    config = load_config(
        TokenizerTrainConfig, tiny_yaml, common + [f"train.output_dir={single_dir}"]
    )
    TokenizerTrainer(config, log_with=None).run()

    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()), "-m", "sonotok.cli.train_tokenizer",
        "--config", str(tiny_yaml), "--no-tensorboard",
    ]  # fmt: skip
    args = [a for o in common + [f"train.output_dir={double_dir}"] for a in ("--set", o)]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "ACCELERATE_USE_CPU": "1",
    }
    for extra in (["--stop-after-steps", "2"], ["--resume"]):
        done = subprocess.run(
            launch + args + extra, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert "stopped at step 2" in done.stdout or (double_dir / "model").is_dir()

    state = json.loads(
        (double_dir / "checkpoints" / "step_00000004" / "trainer_state.json").read_text()
    )
    assert state["num_processes"] == 2
    one, two = _train_steps(single_dir), _train_steps(double_dir)
    assert [m["step"] for m in two] == [1, 2, 3, 4]
    # Step 1's mel, semantic and discriminator losses come before any update, so they show
    # that the two processes saw exactly the one-process batch (sharded, not duplicated).
    # Everything after the first all-reduced Adam step drifts by float rounding (Adam's
    # first steps amplify it for near-zero gradients), so it is only checked to be finite.
    first_one, first_two = one[0], two[0]
    assert first_one["step"] == first_two["step"] == 1
    for key in ("loss/mel", "loss/semantic", "loss/discriminators"):
        assert first_two[key] == pytest.approx(first_one[key], rel=1e-5, abs=1e-6), key
    assert all(math.isfinite(v) for m in two for k, v in m.items() if k.startswith("loss/"))
    AudioTokenizer.from_pretrained(double_dir / "model")


def test_gradient_accumulation_equals_one_big_batch(
    tmp_path, tiny_yaml, audio_folder, tiny_tokenizer_dir
):
    base = [
        o
        for o in _overrides(tmp_path, audio_folder, tiny_tokenizer_dir)
        if not o.startswith("train.output_dir")
    ]
    base += ["train.max_steps=1", "train.batch_size=4", "train.val_every=0", "train.audio_every=0"]
    for name, accum in (("big", 1), ("accum", 2)):
        config = load_config(
            TokenizerTrainConfig,
            tiny_yaml,
            base + [f"train.grad_accum={accum}", f"train.output_dir={tmp_path / name}"],
        )
        TokenizerTrainer(config, log_with=None).run()
    (big,), (accum,) = _train_steps(tmp_path / "big"), _train_steps(tmp_path / "accum")
    for key in (
        "loss/mel",
        "loss/generator",
        "loss/discriminators",
        "grad_norm/generator",
        "grad_norm/discriminators",
    ):
        assert accum[key] == pytest.approx(big[key], rel=1e-5), key
    for name in ("generator", "discriminators"):
        a, b = (
            [w[k].flatten() for k in sorted(w)]
            for w in (
                read_state(tmp_path / n / "checkpoints" / "step_00000001")[0][name]
                for n in ("big", "accum")
            )
        )
        close = torch.isclose(torch.cat(a), torch.cat(b), rtol=0, atol=1e-6)
        # Adam's first update is ±lr·g/(|g| + eps): only entries whose gradient is ~0 may differ
        assert close.float().mean() > 0.995, name


def test_mel_only_warmup_then_all_discriminators(
    tmp_path, tiny_yaml, audio_folder, tiny_tokenizer_dir
):
    overrides = [
        o for o in _overrides(tmp_path, audio_folder, tiny_tokenizer_dir) if "max_steps" not in o
    ]
    overrides += [
        "train.max_steps=2",
        "train.val_every=2",
        "train.audio_every=0",
        "optim.mel_only_steps=1",
        "model.semantic_dtype=bf16",
        "discriminators.mpd=1.0",
        "discriminators.mrd=0.1",
        "discriminators.mpd_channels=2",
        "discriminators.mrd_channels=2",
    ]
    trainer = TokenizerTrainer(
        load_config(TokenizerTrainConfig, tiny_yaml, overrides), log_with=None
    )
    initial = {k: v.clone() for k, v in trainer.discriminators.state_dict().items()}
    batches = trainer.batches()
    first = trainer.advance(next(batches))
    assert "loss/adversarial" not in first and "loss/discriminators" not in first
    assert all(torch.equal(initial[k], v) for k, v in trainer.discriminators.state_dict().items())
    second = trainer.advance(next(batches))
    for name in ("mfd", "mpd", "mrd"):
        assert np.isfinite(second[f"score/{name}_real"]) and np.isfinite(
            second[f"score/{name}_fake"]
        )
    assert np.isfinite(second["loss/adversarial"]) and second["loss/discriminators"] > 0
    assert not all(
        torch.equal(initial[k], v) for k, v in trainer.discriminators.state_dict().items()
    )
    metrics, recon = trainer.validate(trainer.validation_batch())
    assert recon.shape == (2, 6400) and metrics["val/mel_distance"] > 0


def test_decoder_only_fine_tune_keeps_the_latents(
    tmp_path, tiny_yaml, audio_folder, tiny_tokenizer_dir
):
    overrides = [
        o for o in _overrides(tmp_path, audio_folder, tiny_tokenizer_dir) if "max_steps" not in o
    ]
    overrides += ["train.max_steps=2", "model.train_acoustic=false", "optim.ema_decay=null"]
    trainer = TokenizerTrainer(
        load_config(TokenizerTrainConfig, tiny_yaml, overrides), log_with=None
    )
    acoustic = {k: v.clone() for k, v in trainer.tokenizer.acoustic.state_dict().items()}
    decoder = {k: v.clone() for k, v in trainer.tokenizer.decoder.state_dict().items()}
    batches = trainer.batches()
    for _ in range(2):
        trainer.advance(next(batches))
    assert all(
        torch.equal(acoustic[k], v) for k, v in trainer.tokenizer.acoustic.state_dict().items()
    )
    assert not all(
        torch.equal(decoder[k], v) for k, v in trainer.tokenizer.decoder.state_dict().items()
    )


def test_sigint_checkpoints_and_stops(tmp_path, tiny_yaml, audio_folder, tiny_tokenizer_dir):
    import signal
    import time

    overrides = [
        o for o in _overrides(tmp_path, audio_folder, tiny_tokenizer_dir) if "max_steps" not in o
    ]
    overrides += ["train.max_steps=100000", "train.checkpoint_every=100000"]
    command = [sys.executable, "-m", "sonotok.cli.train_tokenizer", "--config", str(tiny_yaml)]
    command += [a for o in overrides for a in ("--set", o)] + ["--no-tensorboard"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 300
    while (
        not (metrics.is_file() and metrics.read_text().count("\n") >= 2) and time.time() < deadline
    ):
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    step = int(out.split("stopped at step ")[1].split(";")[0])
    assert (tmp_path / "checkpoints" / f"step_{step:08d}" / "trainer_state.json").is_file()
    assert (tmp_path / "model" / "config.json").is_file()  # exported with every checkpoint
