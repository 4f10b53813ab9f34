"""Atomic, keep-last-K training checkpoints through accelerate's `save_state` / `load_state`.

A checkpoint is a folder `step_00001000/` holding what accelerate saves (prepared models,
optimizers, objects registered with `accelerator.register_for_checkpointing` such as LR
schedulers and EMA weights, and every process's Python/NumPy/torch RNG states) plus
`trainer_state.json` (step, data position, counters) written by the trainer.

It is first written to a hidden `.tmp-step_...` sibling and renamed when complete, so an
interrupted save never leaves a half checkpoint that `latest()` would pick. Generic: any
accelerate trainer can use it. Checkpoint folders contain pickled optimizer/RNG state
(accelerate's format): load only checkpoints you wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ..checkpoints import CheckpointError

STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^step_(\d+)$")

__all__ = ["CheckpointManager", "STATE_FILE"]


class CheckpointManager:
    """Save to / resume from `root`/step_XXXXXXXX, keeping the newest `keep` checkpoints."""

    def __init__(self, accelerator, root: str | os.PathLike, keep: int = 3):
        self.accelerator, self.root, self.keep = accelerator, Path(root), keep
        if accelerator.is_main_process:
            self.root.mkdir(parents=True, exist_ok=True)
            for stale in self.root.glob(".tmp-step_*"):  # left by a save that was interrupted
                shutil.rmtree(stale, ignore_errors=True)
        accelerator.wait_for_everyone()

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = [
            (int(m.group(1)), p)
            for p in self.root.iterdir()
            if (m := _NAME.match(p.name)) and p.is_dir()
        ]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def save(self, step: int, state: dict) -> Path:
        """Write checkpoint `step` (collective: every process must call it)."""
        acc = self.accelerator
        final = self.root / f"step_{step:08d}"
        tmp = self.root / f".tmp-{final.name}"
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        if acc.is_main_process:
            (tmp / STATE_FILE).write_text(json.dumps({**state, "step": step}, indent=2) + "\n")
        acc.wait_for_everyone()
        if acc.is_main_process:
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for old in self.checkpoints()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        return final

    def resolve(self, resume: str | os.PathLike | bool | None) -> Path | None:
        """`resume`: None/False → no resume; True or "latest" → newest checkpoint here (None if
        there is none); a path → that checkpoint folder."""
        if resume in (None, False, ""):
            return None
        if resume is True or str(resume) == "latest":
            return self.latest()
        path = Path(resume)
        if not (path / STATE_FILE).is_file():
            raise CheckpointError(
                f"{path}: not a training checkpoint (no {STATE_FILE}); pass a step_XXXXXXXX folder "
                f"from {self.root} or --resume latest"
            )
        return path

    def load(self, path: str | os.PathLike) -> dict:
        """Restore everything accelerate saved into the prepared objects; return the trainer state."""
        path = Path(path)
        try:
            state = json.loads((path / STATE_FILE).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CheckpointError(
                f"{path}: unreadable {STATE_FILE} ({err}); pick another checkpoint"
            ) from None
        self.accelerator.load_state(str(path))
        return state

    def resume(self, resume: str | os.PathLike | bool | None, global_batch: int) -> dict | None:
        """Restore the checkpoint `resume` names (see `resolve`) and return its trainer state,
        or None when there is nothing to resume. Refuses a different global batch: the data
        position is counted in samples of that batch."""
        path = self.resolve(resume)
        if path is None:
            return None
        state = self.load(path)
        if state.get("global_batch") != global_batch:
            raise CheckpointError(
                f"{path}: written with global batch {state.get('global_batch')}, config has "
                f"train.batch_size={global_batch}; resume with the same global batch"
            )
        return state
