"""The one training base: schedule, EMA, resume semantics, signals, metrics.jsonl, old keys.

A toy recipe (a two-layer regression with dropout, so the RNG must be restored too) runs the
real loop on CPU in well under a second per run.
"""

from __future__ import annotations

import json
import math
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from sonotok.core.checkpointing import load_state, read_state, save_state
from sonotok.core.config import load_yaml_config
from sonotok.core.errors import ConfigError, ModelOutputError
from sonotok.core.training import (
    EMA,
    OLD_KEYS,
    OptimSettings,
    Trainer,
    TrainSettings,
    lr_multiplier,
    warmup_cosine,
)


@dataclass
class ToyConfig:
    RENAMED: ClassVar[dict[str, str]] = OLD_KEYS

    train: TrainSettings = field(default_factory=TrainSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)


class ToyTrainer(Trainer):
    """y = sum(x) by a small MLP; batch of step s drawn from a generator seeded by s."""

    name = "toy"

    def __init__(self, config: ToyConfig, hook=None):
        super().__init__(config)
        model = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1)
        )
        self.setup_model(model)
        self.hook = hook  # called before each step with the trainer

    def batches(self):
        def steps(step: int):
            while True:
                x = torch.randn(self.per_device, 4, generator=torch.Generator().manual_seed(step))
                yield [(x, x.sum(1, keepdim=True))]
                step += 1

        return steps(self.step)

    def train_step(self, micro_batches):
        if self.hook is not None:
            self.hook(self)
        return self.optimize(micro_batches, lambda b: F.mse_loss(self.model(b[0]), b[1]))

    def export(self) -> Path:
        self.export_dir.mkdir(parents=True, exist_ok=True)
        save_file(self.shipped_model().state_dict(), str(self.export_dir / "model.safetensors"))
        return self.export_dir


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def toy_config(out: Path, **train) -> ToyConfig:
    settings = dict(output_dir=str(out), max_steps=8, batch_size=4, checkpoint_every=4)
    settings.update(log_every=1, log_with="none", progress=False, keep_checkpoints=2)
    settings.update(train)
    return ToyConfig(
        TrainSettings(**settings), OptimSettings(lr=0.05, warmup_steps=2, ema_decay=0.9)
    )


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ---- schedule and EMA ---------------------------------------------------------------------
def test_warmup_then_cosine_to_ten_percent():
    values = [warmup_cosine(s, 10, 110, 0.1) for s in range(111)]
    assert values[0] == pytest.approx(0.1) and values[9] == 1.0
    assert values[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert values[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[9:], values[10:]))


def test_constant_schedule_warms_up_then_holds():
    factor = lr_multiplier(OptimSettings(warmup_steps=4, schedule="constant"), total_steps=100)
    assert [factor(s) for s in (0, 1, 3, 4, 99)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert lr_multiplier(OptimSettings(warmup_steps=0, schedule="constant"), 100)(0) == 1.0


def test_ema_copies_first_then_averages_with_a_warming_decay(tmp_path):
    model = torch.nn.BatchNorm1d(2)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.running_mean.fill_(5.0)
    ema.update(model)  # first update: a copy
    assert torch.equal(ema.module.weight, torch.full((2,), 2.0))
    with torch.no_grad():
        model.weight.fill_(4.0)
    ema.update(model)  # decay min(0.9, 2 / 11)
    expected = 2.0 * (2 / 11) + 4.0 * (9 / 11)
    assert ema.module.weight.tolist() == pytest.approx([expected] * 2)
    assert torch.equal(ema.module.running_mean, torch.full((2,), 5.0))  # buffers copied
    assert ema.current_decay() == pytest.approx(min(0.9, 3 / 12))
    assert not any(p.requires_grad for p in ema.module.parameters())
    save_state(tmp_path, {"ema": ema})  # the safe checkpoint format, no pickling
    fresh = EMA(torch.nn.BatchNorm1d(2), decay=0.9)
    load_state(tmp_path, {"ema": fresh})
    assert fresh.num_updates == 2 and torch.equal(fresh.module.weight, ema.module.weight)


# ---- the loop -----------------------------------------------------------------------------
def test_a_run_refuses_existing_checkpoints_without_resume(tmp_path):
    ToyTrainer(toy_config(tmp_path, max_steps=4)).run()
    with pytest.raises(ConfigError) as err:
        ToyTrainer(toy_config(tmp_path, max_steps=8)).run()
    message = str(err.value)
    assert "already holds checkpoints; pass --resume" in message and "\n" not in message
    result = ToyTrainer(toy_config(tmp_path, max_steps=8)).run(resume="latest")
    assert result.step == 8 and result.model_dir == tmp_path / "model"
    fresh = ToyTrainer(toy_config(tmp_path / "new", max_steps=2)).run(resume="latest")
    assert fresh.step == 2  # "latest" with nothing to resume starts a new run


def test_crash_then_resume_equals_a_straight_run_and_logs_each_step_once(tmp_path):
    straight = ToyTrainer(toy_config(tmp_path / "a")).run()
    assert straight.step == 8 and [m["step"] for m in metrics(tmp_path / "a")] == list(range(1, 9))

    def crash_after_six(trainer):
        if trainer.step == 6:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        ToyTrainer(toy_config(tmp_path / "b"), hook=crash_after_six).run()
    assert [m["step"] for m in metrics(tmp_path / "b")] == list(range(1, 7))  # 5, 6 after ckpt 4
    checkpoint = tmp_path / "b" / "checkpoints" / "step_00000004"
    resumed = ToyTrainer(toy_config(tmp_path / "b")).run(resume=checkpoint)
    lines = metrics(tmp_path / "b")
    assert [m["step"] for m in lines] == list(range(1, 9))  # lines past step 4 were dropped
    for a, b in zip(metrics(tmp_path / "a"), lines):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) and a["lr"] == b["lr"]
    assert resumed.loss == pytest.approx(straight.loss, rel=1e-6)
    (ours, _), (theirs, _) = (read_state(tmp_path / r / "checkpoints/step_00000008") for r in "ab")
    for name in ("model", "ema"):
        flat_a, flat_b = (
            torch.cat([t.flatten() for t in _tensors(s[name])]) for s in (ours, theirs)
        )
        assert torch.allclose(flat_a, flat_b, atol=1e-6), name
    exported = [load_file(str(tmp_path / r / "model" / "model.safetensors")) for r in "ab"]
    assert all(torch.allclose(exported[0][k], exported[1][k], atol=1e-6) for k in exported[0])


def _tensors(tree) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for k in sorted(tree, key=str) for t in _tensors(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [t for v in tree for t in _tensors(v)]
    return []


def test_sigterm_checkpoints_at_the_end_of_the_step_and_stops(tmp_path):
    def terminate_at_three(trainer):
        if trainer.step == 2:  # during the third step
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    result = ToyTrainer(toy_config(tmp_path, checkpoint_every=100), hook=terminate_at_three).run()
    assert result.step == 3 and result.model_dir is None  # stopped early
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_00000003"]
    assert (tmp_path / "model" / "model.safetensors").is_file()  # exported with the checkpoint
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is restored
    resumed = ToyTrainer(toy_config(tmp_path, checkpoint_every=100)).run(resume="latest")
    assert resumed.step == 8 and [m["step"] for m in metrics(tmp_path)] == list(range(1, 9))


def test_a_second_signal_stops_at_once_without_a_checkpoint(tmp_path):
    def interrupt_twice(trainer):
        if trainer.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        ToyTrainer(toy_config(tmp_path, checkpoint_every=100), hook=interrupt_twice).run()
    assert not list((tmp_path / "checkpoints").iterdir())


def test_stop_after_steps_and_a_diverging_loss(tmp_path):
    first = ToyTrainer(toy_config(tmp_path / "a")).run(stop_after_steps=3)
    assert first.step == 3 and first.model_dir is None
    assert (tmp_path / "a" / "checkpoints" / "step_00000003").is_dir()
    config = toy_config(tmp_path / "b")
    config.optim.lr = 1e30  # the first update overflows the weights
    with pytest.raises(ModelOutputError, match=r"loss is (nan|inf) at step 2: .* optim.lr"):
        ToyTrainer(config).run()


def test_config_yaml_and_progress_bar(tmp_path):
    trainer = ToyTrainer(toy_config(tmp_path, max_steps=1, progress=True))
    trainer.run()
    saved = (tmp_path / "config.yaml").read_text()
    assert "optim:\n  lr: 0.05" in saved and "output_dir: " + str(tmp_path) in saved
    assert trainer._progress_bar().disable  # stderr is not a terminal under pytest
    quiet = ToyTrainer(toy_config(tmp_path / "q", max_steps=1, progress=False))
    assert quiet._progress_bar().disable


# ---- one YAML layout ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, message",
    [
        ("output_dir: runs/x\n", "output_dir is an old key; use train.output_dir"),
        ("train:\n  lr: 0.001\n", "train.lr is an old key; use optim.lr"),
        ("train:\n  ema_decay: 0.99\n", "train.ema_decay is an old key; use optim.ema_decay"),
        ("train:\n  lr_schedule: cosine\n", "use optim.schedule (cosine or constant)"),
        ("train:\n  resume: auto\n", "train.resume is an old key; use the --resume option"),
    ],
)
def test_old_keys_fail_in_one_line_naming_the_new_key(tmp_path, text, message):
    path = tmp_path / "old.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_yaml_config(ToyConfig, path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_yaml_layout_loads_with_overrides_and_empty_sections(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  max_steps: 5\noptim:\n")
    config = load_yaml_config(ToyConfig, path, ["optim.lr=1e-3", "train.log_with=null"])
    assert config.train.max_steps == 5 and config.optim.lr == 1e-3
    assert config.train.log_with is None and config.optim == OptimSettings(lr=1e-3)
