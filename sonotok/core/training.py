"""One training base on accelerate for every recipe (tokenizer GAN, MAE, generation, enhancement).

A recipe subclasses `Trainer` and writes only what is its own:
- `__init__`: `super().__init__(config)` (accelerator, seed), then its models, optimizers
  (`setup_model` for the one-model case, or `make_optimizer` / `make_scheduler` / `make_ema`)
  and data;
- `batches()`: an iterator from `self.step` on, one item per optimizer step (e.g. the
  `grad_accum` micro-batches of that step);
- `train_step(item) -> {name: float}` (`optimize` does the one-model step);
- `export()`: write the model folder (called on the main process at every checkpoint);
- optionally `checkpoint_objects()`, `after_step()` (validation, samples: extra values for the
  step's log line), `trainer_state()` / `restore(state)` for its own counters, `on_end()`.

The base owns the rest, the same for every recipe: the Accelerator (mixed precision, trackers,
project_dir = train.output_dir), seeding, config.yaml, one EMA, one warm-up + cosine schedule,
keep-last-K checkpoints with exact resume (model, optimizer, scheduler, EMA, RNG, data
position) through `sonotok.core.checkpointing`, `resume=None | "latest" | PATH` (a run that
finds checkpoints and got no resume refuses), SIGTERM/SIGINT → checkpoint at the end of the
step and stop (a second signal stops at once), metrics.jsonl (one line per logged step; lines
past a resumed step are dropped), TensorBoard through accelerate's trackers, a tqdm bar, and
`stop_after_steps`.

Layout of `train.output_dir`: config.yaml (resolved settings), checkpoints/step_XXXXXXXX/,
metrics.jsonl, tensorboard/ (train.log_with: tensorboard) and the recipe's export folder
(model/, encoder/ or pipeline/), rewritten at every checkpoint.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import itertools
import json
import logging
import math
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from tqdm import tqdm

from .checkpointing import CheckpointManager
from .config import check_numbers, dump_yaml, to_dict
from .errors import ConfigError, ModelOutputError
from .io import atomic_write

__all__ = [
    "EMA",
    "OLD_KEYS",
    "OptimSettings",
    "TrainResult",
    "TrainSettings",
    "Trainer",
    "grouped",
    "lr_multiplier",
    "per_device_batch",
    "warmup_cosine",
]

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
TRACKER_RUN = "tensorboard"  # TensorBoard events go to OUTPUT_DIR/tensorboard/

# Keys of the recipes' YAML files before they shared one layout → where they are now
# (a config class names these in its RENAMED class variable; sonotok.core.config refuses them).
OLD_KEYS: dict[str, str] = {
    "output_dir": "train.output_dir",
    "train.lr": "optim.lr",
    "train.betas": "optim.betas",
    "train.weight_decay": "optim.weight_decay",
    "train.warmup_steps": "optim.warmup_steps",
    "train.min_lr_ratio": "optim.min_lr_ratio",
    "train.lr_schedule": "optim.schedule (cosine or constant)",
    "train.grad_clip": "optim.grad_clip",
    "train.ema_decay": "optim.ema_decay",
    "train.resume": "the --resume option of `sonotok train` (latest, or a checkpoint folder)",
}


# ---- the shared YAML sections ---------------------------------------------------------------
@dataclass
class TrainSettings:
    """The `train:` section of every recipe (a recipe subclasses it for its defaults and own
    keys). `batch_size` is global: per-device batch × processes × grad_accum, so a config
    trains the same on 1 or N devices."""

    output_dir: str = "runs/train"
    seed: int = 0
    max_steps: int = 100_000
    batch_size: int = 16
    grad_accum: int = 1
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    log_with: Literal["tensorboard", "none"] | None = "tensorboard"  # null: none
    progress: bool = True  # a tqdm bar on the main process (never when stderr is not a TTY)

    def __post_init__(self) -> None:
        check_numbers(
            self,
            "train",
            positive=("max_steps", "batch_size", "grad_accum", "checkpoint_every")
            + ("keep_checkpoints", "log_every"),
            non_negative=("seed",),
        )


@dataclass
class OptimSettings:
    """The `optim:` section of every recipe: AdamW, linear warm-up then cosine decay to
    `min_lr_ratio` × lr (or a constant rate), gradient clipping and EMA of the weights."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 1000
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    ema_decay: float | None = None  # e.g. 0.999: the exported model holds the EMA weights

    def __post_init__(self) -> None:
        check_numbers(
            self,
            "optim",
            positive=("lr",),
            below_one=("betas",),
            non_negative=("weight_decay", "warmup_steps", "grad_clip"),
            fraction=("min_lr_ratio",),
        )
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"optim.ema_decay must be in (0, 1) or null, got {self.ema_decay}")


def per_device_batch(global_batch: int, num_processes: int, grad_accum: int) -> int:
    """Samples per device and micro-step for a *global* batch; an uneven split is an error."""
    per = global_batch / (num_processes * grad_accum)
    if per != int(per):
        raise ConfigError(
            f"train.batch_size={global_batch} (global) is not divisible by "
            f"{num_processes} processes × grad_accum {grad_accum}; pick a multiple"
        )
    return int(per)


# ---- schedule -----------------------------------------------------------------------------
def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up to 1 over `warmup` steps, then cosine to `min_ratio` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def lr_multiplier(settings: OptimSettings, total_steps: int) -> Callable[[int], float]:
    """The LambdaLR factor of `settings.schedule` (a plain function: nothing of it is saved)."""
    warmup = settings.warmup_steps

    def factor(step: int) -> float:
        if settings.schedule == "constant":
            return (step + 1) / warmup if step < warmup else 1.0
        return warmup_cosine(step, warmup, total_steps, settings.min_lr_ratio)

    return factor


def grouped(items: Iterable, n: int) -> Iterator[list]:
    """Consecutive lists of `n` items (the micro-batches of one optimizer step)."""
    iterator = iter(items)
    while len(group := list(itertools.islice(iterator, n))) == n:
        yield group


# ---- EMA ----------------------------------------------------------------------------------
class EMA:
    """Exponential moving average of a model's weights; a stateful object for checkpoints.

    `module` is a frozen copy holding the averages, ready to validate or export. The decay
    warms up as min(decay, (1 + n) / (10 + n)) after n updates (the first update copies the
    weights), so a short run is not dominated by its initial weights; buffers (BatchNorm
    statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ConfigError(f"optim.ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def to(self, device: torch.device | str) -> EMA:
        self.module.to(device)
        return self

    def current_decay(self) -> float:
        n = self.num_updates
        return 0.0 if n == 0 else min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the averages towards `model`'s weights (the model the copy was made of)."""
        weight = 1.0 - self.current_decay()
        averaged, current = [], []
        for mine, theirs in zip(self.module.parameters(), model.parameters()):
            if mine.is_floating_point():
                averaged.append(mine)
                current.append(theirs.detach())
            else:
                mine.copy_(theirs)
        if averaged:
            torch._foreach_lerp_(averaged, current, weight)
        for mine, theirs in zip(self.module.buffers(), model.buffers()):
            mine.copy_(theirs)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"], strict=True)
        self.num_updates = int(state["num_updates"])


# ---- the trainer --------------------------------------------------------------------------
@dataclass
class TrainResult:
    step: int
    output_dir: Path
    model_dir: Path | None  # the export folder once train.max_steps is reached, else None
    last_metrics: dict

    @property
    def loss(self) -> float | None:
        """The last logged `loss` (None for recipes that log only named losses)."""
        return self.last_metrics.get("loss")


def flat_hparams(values: dict, prefix: str = "") -> dict:
    """Nested config → {"a.b": scalar} for TensorBoard's hparams (lists and None as strings)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flat_hparams(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = (
                value if isinstance(value, (int, float, str, bool)) else str(value)
            )
    return out


class Trainer(abc.ABC):
    """The training loop every recipe shares; see the module docs for what a recipe adds.

    `config` has `train` (TrainSettings) and `optim` (OptimSettings) sections. `log_with`
    "config" follows train.log_with; "tensorboard" or None/"none" override it.
    """

    name: ClassVar[str] = "train"  # progress-bar label
    export_name: ClassVar[str] = "model"  # the export folder under train.output_dir
    progress_keys: ClassVar[tuple[str, ...]] = ("loss",)  # shown next to the bar
    result_type: ClassVar[type[TrainResult]] = TrainResult

    def __init__(self, config: Any, log_with: str | None = "config"):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.config = config
        settings = config.train
        self.out = Path(settings.output_dir)
        self.export_dir = self.out / self.export_name
        tracker = settings.log_with if log_with == "config" else log_with
        # Gradient accumulation is done by `optimize` / the recipe (all micro-batches of a
        # step, then one optimizer step), not by accelerate.
        self.accelerator = Accelerator(
            mixed_precision=settings.mixed_precision,
            log_with=None if tracker in (None, "none") else tracker,
            project_dir=str(self.out),
        )
        self.per_device = per_device_batch(
            settings.batch_size, self.accelerator.num_processes, settings.grad_accum
        )
        set_seed(settings.seed)  # same initial weights on every process
        self.step = 0
        self.ema: EMA | None = None
        self._ema_source: nn.Module | None = None
        self.checkpoints: CheckpointManager | None = None
        self.interrupted = False  # set by SIGINT/SIGTERM on this process
        self.last_metrics: dict = {}

    # ---- building blocks for recipes ------------------------------------------------------
    def make_optimizer(self, params) -> torch.optim.Optimizer:
        """AdamW with the optim section's rate, betas and weight decay (parameter groups may
        set their own weight_decay)."""
        o = self.config.optim
        return torch.optim.AdamW(params, o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)

    def make_scheduler(self, optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        """The warm-up + cosine (or constant) schedule. Step it once per optimizer step; it
        is not prepared, since accelerate would step it once per process."""
        factor = lr_multiplier(self.config.optim, self.config.train.max_steps)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def make_ema(self, model: nn.Module) -> EMA | None:
        """The EMA of `model` (updated after every step) when optim.ema_decay is set."""
        if self.config.optim.ema_decay is None:
            return None
        self.ema = EMA(model, self.config.optim.ema_decay).to(self.accelerator.device)
        self._ema_source = model
        return self.ema

    def setup_model(self, model: nn.Module, params=None) -> None:
        """The one-model recipe: AdamW over `params` (default: all parameters), the schedule
        and the EMA; sets `self.model` (prepared), `self.optimizer`, `self.scheduler`."""
        optimizer = self.make_optimizer(model.parameters() if params is None else params)
        self.scheduler = self.make_scheduler(optimizer)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.make_ema(self.accelerator.unwrap_model(self.model))

    def shipped_model(self) -> nn.Module:
        """The weights a recipe validates and exports: the EMA's when enabled."""
        if self.ema is not None:
            return self.ema.module
        return self.accelerator.unwrap_model(self.model)

    def no_sync(self, model: nn.Module, skip: bool):
        """No gradient all-reduce for this backward pass when `skip` (not the last micro-batch)."""
        return self.accelerator.no_sync(model) if skip else contextlib.nullcontext()

    def mean_over_processes(self, values: dict[str, Any]) -> dict[str, float]:
        """{name: tensor or number} averaged over every process (collective)."""
        keys = sorted(values)
        device = self.accelerator.device
        stacked = torch.stack(
            [torch.as_tensor(values[k], dtype=torch.float32).to(device).reshape(()) for k in keys]
        )
        return dict(zip(keys, self.accelerator.reduce(stacked, reduction="mean").tolist()))

    def optimize(self, micro_batches: list, loss_fn: Callable) -> dict[str, float]:
        """One optimizer step of `self.model` over `micro_batches`, equal to one big batch:
        `loss_fn(batch)` returns the batch's mean loss, or (loss, {name: tensor}) with more
        values to log. Returns loss, grad_norm, lr (the rate this step used) and the extras,
        averaged over micro-batches and processes."""
        acc, n = self.accelerator, len(micro_batches)
        lr = self.scheduler.get_last_lr()[0]
        sums: dict[str, torch.Tensor] = {}
        for i, batch in enumerate(micro_batches):
            with self.no_sync(self.model, i < n - 1):
                out = loss_fn(batch)
                loss, extra = out if isinstance(out, tuple) else (out, {})
                acc.backward(loss / n)
            for key, value in {"loss": loss, **extra}.items():
                sums[key] = sums.get(key, 0) + value.detach().float() / n
        clip = self.config.optim.grad_clip or math.inf
        sums["grad_norm"] = acc.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {**self.mean_over_processes(sums), "lr": lr}

    def tensorboard(self):
        """TensorBoard's SummaryWriter on the main process when logging there, else None."""
        acc = self.accelerator
        if not acc.is_main_process or not any(t.name == "tensorboard" for t in acc.trackers):
            return None
        return acc.get_tracker("tensorboard", unwrap=True)

    # ---- what a recipe implements ---------------------------------------------------------
    @abc.abstractmethod
    def batches(self) -> Iterator:
        """Items for `train_step`, one per optimizer step, from data position `self.step`."""

    @abc.abstractmethod
    def train_step(self, batch) -> dict[str, float]:
        """One optimizer step; returns the values to log (averaged over processes)."""

    @abc.abstractmethod
    def export(self) -> Path:
        """Write the model folder `self.export_dir` (main process only)."""

    def checkpoint_objects(self) -> dict[str, Any]:
        """The named stateful objects a checkpoint holds (the EMA is added by the base)."""
        return {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler}

    def after_step(self) -> dict[str, float]:
        """Work after a step (validation, samples); returns values for this step's log line."""
        return {}

    def trainer_state(self) -> dict:
        """Counters saved in trainer_state.json next to the step."""
        t = self.config.train
        return {
            "samples_seen": self.step * t.batch_size,
            "global_batch": t.batch_size,
            "num_processes": self.accelerator.num_processes,
        }

    def restore(self, state: dict) -> None:
        """Take the counters of a resumed checkpoint's trainer_state.json."""
        self.step = int(state["step"])

    def on_end(self) -> None:  # noqa: B027  (an optional hook: most recipes need nothing here)
        """Called once after the loop (e.g. to report skipped data)."""

    # ---- the loop -------------------------------------------------------------------------
    def advance(self, batch) -> dict[str, float]:
        """One optimizer step: `train_step`, the EMA update and the step count. A loss that is
        NaN or infinite stops the run (before anything is checkpointed)."""
        values = self.train_step(batch)
        if self.ema is not None:
            self.ema.update(self._ema_source)
        self.step += 1
        for key, value in values.items():
            if key.split("/")[0] == "loss" and not math.isfinite(value):
                raise ModelOutputError(
                    f"{key} is {value} at step {self.step}: training diverged; lower optim.lr, "
                    "raise optim.warmup_steps or check the data"
                )
        return values

    def save_checkpoint(self) -> Path:
        """Checkpoint this step (collective), then rewrite the export folder."""
        path = self.checkpoints.save(self.step, self.trainer_state())
        if self.accelerator.is_main_process:
            self.export()
        self.accelerator.wait_for_everyone()
        return path

    def log(self, values: dict[str, float]) -> None:
        """One metrics.jsonl line and one tracker entry for this step."""
        self.last_metrics = {"step": self.step, **values}
        self.accelerator.log(values, step=self.step)
        if self.accelerator.is_main_process:
            with (self.out / METRICS_FILE).open("a") as f:
                f.write(json.dumps(self.last_metrics) + "\n")

    def run(
        self,
        resume: str | os.PathLike | bool | None = None,
        stop_after_steps: int | None = None,
        stop_at: int | None = None,
    ) -> TrainResult:
        """Train to train.max_steps, or `stop_after_steps` more steps, or step `stop_at`, or
        a SIGINT/SIGTERM, checkpointing every train.checkpoint_every steps and when it stops.

        resume: None starts a new run (refused if output_dir already holds checkpoints);
        "latest" (or True) continues from the newest readable checkpoint, if any; a
        step_XXXXXXXX folder continues from that one."""
        acc, settings = self.accelerator, self.config.train
        self.checkpoints = CheckpointManager(
            acc, self.out / "checkpoints", settings.keep_checkpoints, self._checkpointed()
        )
        self._resume(resume)
        self._start_outputs()
        batches = self.batches()
        end = settings.max_steps
        if stop_after_steps is not None:
            end = min(end, self.step + stop_after_steps)
        if stop_at is not None:
            end = min(end, stop_at)
        with self._signals(), self._progress_bar() as bar:
            while self.step < end:
                values = self.advance(next(batches))
                bar.update(1)
                shown = {k: f"{values[k]:.4g}" for k in self.progress_keys if k in values}
                bar.set_postfix(shown, refresh=False)
                due = self.step % settings.log_every == 0 or self.step == end
                record = {**(values if due else {}), **self.after_step()}
                if record:
                    self.log(record)
                stop = self._stop_agreed()
                if self.step % settings.checkpoint_every == 0 or stop or self.step == end:
                    self.save_checkpoint()
                if stop:
                    if acc.is_main_process:
                        tqdm.write(f"stopped at step {self.step}; continue with --resume")
                    break
        finished = self.step >= settings.max_steps
        self.on_end()
        acc.end_training()
        model_dir = self.export_dir if finished else None
        return self.result_type(self.step, self.out, model_dir, self.last_metrics)

    # ---- internals --------------------------------------------------------------------------
    def _checkpointed(self) -> dict[str, Any]:
        objects = dict(self.checkpoint_objects())
        if self.ema is not None:
            objects["ema"] = self.ema
        return objects

    def _resume(self, resume) -> None:
        state = self.checkpoints.resume(resume, self.config.train.batch_size)
        if state is None:
            if self.checkpoints.latest() is not None:
                raise ConfigError(
                    f"{self.checkpoints.root} already holds checkpoints; pass --resume to "
                    "continue that run (or --resume PATH for one checkpoint) or choose another "
                    "train.output_dir"
                )
            return
        self.restore(state)
        self.accelerator.print(f"resumed {self.out} at step {self.step}")

    def _start_outputs(self) -> None:
        """config.yaml, metrics.jsonl cut back to the resumed step, the trackers."""
        acc = self.accelerator
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            text = dump_yaml(self.config)
            atomic_write(self.out / "config.yaml", lambda tmp: tmp.write_text(text))
            self._truncate_metrics()
        if acc.log_with:
            acc.init_trackers(TRACKER_RUN, config=flat_hparams(to_dict(self.config)))
        acc.wait_for_everyone()

    def _truncate_metrics(self) -> None:
        """Drop metrics.jsonl lines past `self.step` (written after the checkpoint resumed
        from), so a resumed run never logs a step twice."""
        path = self.out / METRICS_FILE
        if not path.is_file():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                step = json.loads(line).get("step")
            except (ValueError, AttributeError):
                continue
            if isinstance(step, int) and step <= self.step:
                kept.append(line + "\n")
        atomic_write(path, lambda tmp: tmp.write_text("".join(kept)))

    def _on_signal(self, signum, frame) -> None:
        if self.interrupted:  # a second Ctrl-C / SIGTERM: stop now, without a checkpoint
            raise KeyboardInterrupt
        self.interrupted = True  # acted on after the step, once all processes agree
        name = signal.Signals(signum).name
        tqdm.write(f"{name}: checkpointing after this step (send it again to stop at once)")

    @contextlib.contextmanager
    def _signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be installed from the main thread
            return
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _stop_agreed(self) -> bool:
        """Whether any process was interrupted (collective: all processes stop together)."""
        if self.accelerator.num_processes == 1:
            return self.interrupted
        flag = torch.tensor([float(self.interrupted)], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)

    def _progress_bar(self) -> tqdm:
        settings = self.config.train
        show = self.accelerator.is_main_process and settings.progress
        return tqdm(
            total=settings.max_steps,
            initial=self.step,
            desc=self.name,
            unit="step",
            disable=None if show else True,  # None: off when stderr is not a terminal
            dynamic_ncols=True,
        )
