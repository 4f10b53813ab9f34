"""Training checkpoints: exact round trips, no unpickling, fallback past a truncated checkpoint."""

from __future__ import annotations

import json
import logging
import random

import numpy as np
import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sonotok.core.checkpointing import CheckpointManager, load_state, read_state, save_state
from sonotok.core.errors import CheckpointError, SonotokError


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.out = torch.nn.Linear(4, 10, bias=False)
        self.out.weight = self.embed.weight  # shared storage
        self.norm = torch.nn.BatchNorm1d(4)


def _run(seed: int = 0):
    """A model, AdamW, LambdaLR and two kinds of EMA after three steps."""
    from diffusers.training_utils import EMAModel

    torch.manual_seed(seed)
    model = Tied()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.9))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (1 + s))
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    ema2 = EMAModel(model.parameters(), decay=0.9)
    for _ in range(3):
        loss = model.out(model.norm(model.embed(torch.arange(8)))).square().mean()
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        ema.update_parameters(model)
        ema2.step(model.parameters())
    return {"model": model, "optimizer": opt, "scheduler": sched, "ema": ema, "ema2": ema2}


def _flat(obj) -> list:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [x for k in sorted(obj, key=str) for x in [k, *_flat(obj[k])]]
    if isinstance(obj, (list, tuple)):
        return [type(obj).__name__, *(x for v in obj for x in _flat(v))]
    return [obj]


def _same(a, b) -> bool:
    fa, fb = _flat(a), _flat(b)
    return len(fa) == len(fb) and all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(fa, fb)
    )


def test_round_trip_restores_every_object_and_the_rng_streams(tmp_path):
    saved = _run(0)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_state(tmp_path, saved)
    expected = (random.random(), np.random.rand(), torch.rand(3))

    fresh = _run(1)  # other weights, other optimizer moments
    assert not _same(fresh["model"].state_dict(), saved["model"].state_dict())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    load_state(tmp_path, fresh)
    for name in saved:
        assert _same(fresh[name].state_dict(), saved[name].state_dict()), name
    assert fresh["model"].out.weight is fresh["model"].embed.weight  # still tied
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])
    # Both optimizers go on identically.
    for run in (saved, fresh):
        run["model"].embed.weight.grad = torch.ones(10, 4)
        run["model"].norm.weight.grad = torch.ones(4)
        run["model"].norm.bias.grad = torch.ones(4)
        run["optimizer"].step()
    assert torch.equal(saved["model"].embed.weight, fresh["model"].embed.weight)


def test_the_folder_holds_only_json_and_safetensors(tmp_path):
    save_state(tmp_path, _run())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "rng_state_0.json",
        "rng_state_0.safetensors",
        "state.json",
        "state.safetensors",
    ]
    manifest = json.loads((tmp_path / "state.json").read_text())
    assert manifest["objects"] == ["ema", "ema2", "model", "optimizer", "scheduler"]
    # optimizer state is keyed by int: kept as int through the explicit dict marker
    states, _ = read_state(tmp_path)
    assert sorted(states["optimizer"]["state"]) == [0, 1, 2]
    assert states["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.9)


def test_objects_that_would_need_pickle_are_refused_when_saving(tmp_path):
    class Custom:
        def state_dict(self):
            return {"fn": print}

    with pytest.raises(CheckpointError, match="cannot save a builtins.builtin_function"):
        save_state(tmp_path, {"custom": Custom()})


def test_planted_pickles_are_never_opened(tmp_path, plant_pickles):
    run = _run()
    save_state(tmp_path, run)
    marker = plant_pickles(tmp_path)
    load_state(tmp_path, _run(1))
    assert not marker.exists()


def test_an_accelerate_style_checkpoint_is_refused_without_unpickling(tmp_path, plant_pickles):
    (tmp_path / "trainer_state.json").write_text('{"step": 5}')
    marker = plant_pickles(tmp_path)
    with pytest.raises(SonotokError, match="never loaded, for safety"):
        load_state(tmp_path, _run())
    assert not marker.exists()


def test_a_checkpoint_of_other_objects_or_shapes_is_a_clear_error(tmp_path):
    save_state(tmp_path, _run())
    with pytest.raises(CheckpointError, match=r"holds .* but this trainer restores"):
        load_state(tmp_path, {"model": Tied()})
    other = _run()
    other["model"] = torch.nn.Linear(3, 3)
    with pytest.raises(CheckpointError, match="'model' does not match this run's configuration"):
        load_state(tmp_path, other)


class _Accelerator:
    """The part of accelerate.Accelerator the manager uses, for one process."""

    is_main_process, process_index, num_processes, scaler = True, 0, 1, None

    def wait_for_everyone(self):
        pass

    def unwrap_model(self, model):
        return model


def test_latest_skips_a_truncated_newest_checkpoint(tmp_path, caplog):
    run = _run()
    manager = CheckpointManager(_Accelerator(), tmp_path, keep=3, objects=run)
    manager.save(1, {"position": 10})
    expected = {k: v.clone() for k, v in run["model"].state_dict().items()}
    run["model"].embed.weight.data += 1
    newest = manager.save(2, {"position": 20})
    data = (newest / "state.safetensors").read_bytes()
    (newest / "state.safetensors").write_bytes(data[: len(data) // 2])

    with caplog.at_level(logging.WARNING):
        state = manager.resume("latest", global_batch=1)
    assert state["step"] == 1 and state["position"] == 10
    assert "skipping checkpoint step_00000002" in caplog.text
    assert _same(run["model"].state_dict(), expected)
    with pytest.raises(CheckpointError, match="unreadable checkpoint file"):
        manager.load(newest)  # named explicitly: no silent fallback


def test_keep_last_k_and_no_half_written_checkpoint(tmp_path):
    run = _run()
    (tmp_path / ".tmp-step_00000009").mkdir()  # an interrupted save
    manager = CheckpointManager(_Accelerator(), tmp_path, keep=2, objects=run)
    assert not (tmp_path / ".tmp-step_00000009").exists()
    for step in (1, 2, 3):
        manager.save(step, {})
    assert [p.name for p in manager.checkpoints()] == ["step_00000002", "step_00000003"]


def test_resume_refuses_another_global_batch(tmp_path):
    manager = CheckpointManager(_Accelerator(), tmp_path, keep=2, objects=_run())
    manager.save(4, {"global_batch": 4})
    with pytest.raises(CheckpointError, match="global batch 4"):
        manager.resume("latest", global_batch=8)


def test_checkpoint_files_respect_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        manager = CheckpointManager(_Accelerator(), tmp_path, keep=1, objects=_run())
        folder = manager.save(1, {})
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert set(modes.values()) == {0o644}, modes
