"""Training checkpoints that are safe to load: safetensors for tensors, JSON for the rest.

accelerate's `save_state`/`load_state` pickle optimizer, scheduler, RNG and custom-object state
and unpickle it on resume (`weights_only=False`), so anyone who can drop a file into a checkpoint
folder runs code in the next `--resume`. sonotok writes and reads its own format instead:

    step_00001000/
        state.json              what is saved (object names), their structure (JSON) and the format
        state.safetensors       every tensor of every object (model weights, optimizer moments, EMA)
        rng_state_<rank>.json   each process's Python / NumPy / torch (CPU, CUDA) RNG states
        rng_state_<rank>.safetensors
        trainer_state.json      step, data position and counters, written by the trainer

Every stateful object (an `nn.Module`, optimizer, LR scheduler, EMA, grad scaler — anything with
`state_dict`/`load_state_dict`) is named by the trainer. Its `state_dict()` is split into tensors
and a JSON tree with explicit markers for tensors, tuples, non-string dict keys and NumPy arrays;
any other Python object is refused when saving, so loading never has to build one. Reading is
`json.loads` and `safetensors.torch.load_file`: nothing is unpickled, and other files in the
folder (`*.pkl`, `*.bin` from older versions or planted there) are never opened.

Loading is all-or-nothing per checkpoint: every file is read and decoded before any object is
touched, so an unreadable (e.g. truncated) checkpoint leaves the run as it was and
`CheckpointManager.resume("latest")` falls back to the previous complete one.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError
from .io import atomic_write

__all__ = ["FORMAT", "STATE_FILE", "CheckpointManager", "load_state", "read_state", "save_state"]

logger = logging.getLogger(__name__)

FORMAT = "sonotok-training-state/1"
MANIFEST = "state.json"
TENSORS = "state.safetensors"
STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^step_(\d+)$")


# ---- state_dict ↔ (JSON tree, tensors) ----------------------------------------------------
def _encode(value: Any, key: str, tensors: dict[str, torch.Tensor], seen: set[int]) -> Any:
    """A JSON-able tree for `value`; its tensors go into `tensors` under `key`-derived names."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        if tensor.untyped_storage().data_ptr() in seen:  # tied weights: safetensors wants copies
            tensor = tensor.clone()
        if tensor.numel():
            seen.add(tensor.untyped_storage().data_ptr())
        tensors[key] = tensor
        return {"__tensor__": key}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{key}.{i}", tensors, seen) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}.{i}", tensors, seen) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, f"{key}.{k}", tensors, seen) for k, v in value.items()}
        return {
            "__dict__": [
                [_encode(k, f"{key}.k{i}", tensors, seen), _encode(v, f"{key}.{i}", tensors, seen)]
                for i, (k, v) in enumerate(value.items())
            ]
        }
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return {"__npscalar__": value.item(), "dtype": str(value.dtype)}
    raise CheckpointError(
        f"{key}: cannot save a {type(value).__module__}.{type(value).__qualname__} in a training "
        "checkpoint (only tensors, arrays, numbers, strings, lists, tuples and dicts are stored, "
        "so that loading never unpickles); make the object's state_dict() return those"
    )


def _decode(tree: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(tree, list):
        return [_decode(v, tensors, where) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        name = tree["__tensor__"]
        if name not in tensors:
            raise CheckpointError(f"{where}: tensor {name!r} is missing from {TENSORS}")
        return tensors[name]
    if "__tuple__" in tree:
        return tuple(_decode(v, tensors, where) for v in tree["__tuple__"])
    if "__dict__" in tree:
        return {_decode(k, tensors, where): _decode(v, tensors, where) for k, v in tree["__dict__"]}
    if "__ndarray__" in tree:
        return np.asarray(tree["__ndarray__"], dtype=np.dtype(tree["dtype"]))
    if "__npscalar__" in tree:
        return np.dtype(tree["dtype"]).type(tree["__npscalar__"])
    return {k: _decode(v, tensors, where) for k, v in tree.items()}


def _write(folder: Path, stem: str, objects: dict[str, Any]) -> None:
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    tree = {name: _encode(value, name, tensors, seen) for name, value in objects.items()}
    atomic_write(folder / f"{stem}.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    manifest = {"format": FORMAT, "objects": sorted(objects), "state": tree}
    text = json.dumps(manifest) + "\n"
    atomic_write(folder / f"{stem}.json", lambda tmp: tmp.write_text(text))


def _read(folder: Path, stem: str) -> dict[str, Any]:
    manifest_path, tensor_path = folder / f"{stem}.json", folder / f"{stem}.safetensors"
    if not manifest_path.is_file():
        raise CheckpointError(
            f"{folder}: not a sonotok training checkpoint ({manifest_path.name} is missing). "
            "Checkpoints from sonotok before 0.2 hold pickled accelerate state and are never "
            "loaded, for safety: start the run again (or --resume from a newer checkpoint)"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        tensors = load_file(str(tensor_path))
    except (OSError, ValueError, SafetensorError) as err:
        raise CheckpointError(f"{folder}: unreadable checkpoint file ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(
            f"{manifest_path}: format {manifest.get('format') if isinstance(manifest, dict) else None!r}"
            f" is not {FORMAT!r}; this checkpoint was not written by this version of sonotok"
        )
    return _decode(manifest["state"], tensors, str(folder))


# ---- objects ↔ state ------------------------------------------------------------------------
def _state_of(obj: Any, accelerator) -> Any:
    if isinstance(obj, torch.nn.Module) and accelerator is not None:
        obj = accelerator.unwrap_model(obj)
    return obj.state_dict()


def _rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(folder: str | os.PathLike, objects: dict[str, Any], accelerator=None) -> None:
    """Write `objects` (name → stateful object) and this process's RNG states into `folder`.

    Collective under accelerate: the main process writes the shared objects (identical on every
    process under data parallelism), every process its own RNG file.
    """
    folder = Path(folder)
    rank = accelerator.process_index if accelerator is not None else 0
    if rank == 0:
        _write(
            folder, "state", {name: _state_of(obj, accelerator) for name, obj in objects.items()}
        )
    _write(folder, f"rng_state_{rank}", {"rng": _rng_state()})


def read_state(folder: str | os.PathLike, names=None, rank: int = 0) -> tuple[dict, dict | None]:
    """Read and decode everything `load_state` would apply, without applying it: (object name →
    state_dict, this rank's RNG state). Raises `CheckpointError` if a file is missing, unreadable
    or truncated, or the checkpoint holds other objects than `names` (when given)."""
    folder = Path(folder)
    states = _read(folder, "state")
    if names is not None and sorted(states) != sorted(names):
        raise CheckpointError(
            f"{folder}: holds {sorted(states)} but this trainer restores {sorted(names)}; "
            "resume with the recipe (and options such as EMA) that wrote it"
        )
    rng_file = folder / f"rng_state_{rank}.json"
    rng = _read(folder, f"rng_state_{rank}")["rng"] if rng_file.is_file() else None
    return states, rng


def load_state(folder: str | os.PathLike, objects: dict[str, Any], accelerator=None) -> None:
    """Restore `objects` and this process's RNG states from a folder written by `save_state`.

    Everything is read first; a mismatch between the checkpoint and the objects (other shapes,
    other parameter groups) raises `CheckpointError` naming the object.
    """
    rank = accelerator.process_index if accelerator is not None else 0
    states, rng = read_state(folder, list(objects), rank)
    for name, obj in objects.items():
        target = obj
        if isinstance(obj, torch.nn.Module) and accelerator is not None:
            target = accelerator.unwrap_model(obj)
        try:
            if isinstance(target, torch.nn.Module):
                target.load_state_dict(states[name], strict=True)
            else:
                target.load_state_dict(states[name])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
            detail = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
            raise CheckpointError(
                f"{folder}: {name!r} does not match this run's configuration "
                f"({type(err).__name__}: {detail[:300]})"
            ) from None
    if rng is None:
        logger.warning("%s: no RNG state for process %d; random streams restart", folder, rank)
    else:
        _set_rng_state(rng)


# ---- keep-last-K checkpoint folders -----------------------------------------------------------
class CheckpointManager:
    """Save to / resume from `root`/step_XXXXXXXX, keeping the newest `keep` checkpoints.

    `objects` names every stateful object of the run (models, optimizers, schedulers, EMA, grad
    scaler); `trainer_state.json` holds the trainer's own counters. Each checkpoint is written to
    a hidden `.tmp-step_…` sibling and renamed when complete, so an interrupted save never leaves
    a half checkpoint that `latest()` would pick.
    """

    def __init__(self, accelerator, root: str | os.PathLike, keep: int, objects: dict[str, Any]):
        self.accelerator, self.root, self.keep = accelerator, Path(root), keep
        self.objects = dict(objects)
        scaler = getattr(accelerator, "scaler", None)
        if scaler is not None:  # fp16 loss scaling is part of the exact state
            self.objects.setdefault("grad_scaler", scaler)
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
        save_state(tmp, self.objects, acc)
        if acc.is_main_process:
            text = json.dumps({**state, "step": step}, indent=2) + "\n"
            atomic_write(tmp / STATE_FILE, lambda path: path.write_text(text))
        acc.wait_for_everyone()
        if acc.is_main_process:
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for old in self.checkpoints()[: -self.keep] if self.keep > 0 else []:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        return final

    def _trainer_state(self, path: Path) -> dict:
        try:
            state = json.loads((path / STATE_FILE).read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{path}: unreadable {STATE_FILE} ({err})") from None
        if not isinstance(state, dict) or not isinstance(state.get("step"), int):
            raise CheckpointError(f"{path / STATE_FILE}: has no integer 'step'")
        return state

    def load(self, path: str | os.PathLike) -> dict:
        """Restore every object from checkpoint `path`; return its trainer state."""
        path = Path(path)
        state = self._trainer_state(path)
        load_state(path, self.objects, self.accelerator)
        return state

    def _readable(self, path: Path) -> bool:
        try:
            self._trainer_state(path)
            read_state(path, list(self.objects), self.accelerator.process_index)
        except CheckpointError as err:
            logger.warning("skipping checkpoint %s: %s", path.name, err)
            return False
        return True

    def resolve(self, resume: str | os.PathLike | bool | None) -> Path | None:
        """`resume`: None/False → no resume; True or "latest" → the newest readable checkpoint
        here (None if there is none; a truncated newest one is skipped with a warning); a path →
        that checkpoint folder."""
        if resume in (None, False, ""):
            return None
        if resume is True or str(resume) == "latest":
            found = self.checkpoints()
            for path in reversed(found):
                if self._readable(path):
                    return path
            if found:
                raise CheckpointError(
                    f"{self.root}: none of the {len(found)} checkpoints is readable (see the "
                    "warnings above); remove them to start again"
                )
            return None
        path = Path(resume)
        if not (path / STATE_FILE).is_file():
            raise CheckpointError(
                f"{path}: not a training checkpoint (no {STATE_FILE}); pass a step_XXXXXXXX folder "
                f"from {self.root} or --resume latest"
            )
        return path

    def resume(self, resume: str | os.PathLike | bool | None, global_batch: int) -> dict | None:
        """Restore the checkpoint `resume` names (see `resolve`) and return its trainer state,
        or None when there is nothing to resume. Refuses a different global batch: the data
        position is counted in samples of that batch."""
        path = self.resolve(resume)
        if path is None:
            return None
        state = self._trainer_state(path)
        if state.get("global_batch", global_batch) != global_batch:
            raise CheckpointError(
                f"{path}: written with global batch {state.get('global_batch')}, config has "
                f"train.batch_size={global_batch}; resume with the same global batch"
            )
        load_state(path, self.objects, self.accelerator)
        return state
