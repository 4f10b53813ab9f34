"""Deterministic, sharded, resumable sampling: every draw is a function of (seed, position).

A run consumes a stream of *global sample positions* 0, 1, 2, ...; a micro-batch is
`num_processes × per_process` consecutive positions and process `rank` reads its own
`per_process` of them. What sits at a position (which source, which item, which crop) is
drawn from a random generator seeded by `(seed, position)` alone, so:

- the data never depends on the number of DataLoader workers or their timing;
- N processes see exactly the samples one process sees at the same global batch, split
  between them (sharded, never duplicated);
- resuming needs only the number of positions consumed (`samples_seen`), which may even be
  resumed under a different process count as long as it is a whole number of micro-batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["ShardedPositionSampler", "position_rng", "weighted_choice"]


def position_rng(seed: int, position: int, attempt: int = 0) -> np.random.Generator:
    """The generator owning global position `position` (and its `attempt`-th retry)."""
    return np.random.default_rng([seed, position, attempt])


def weighted_choice(rng: np.random.Generator, weights: Sequence[float]) -> int:
    """Index i drawn with probability weights[i] / sum(weights)."""
    w = np.asarray(weights, dtype=np.float64)
    return int(
        np.searchsorted(np.cumsum(w / w.sum()), rng.random(), side="right").clip(0, len(w) - 1)
    )


class ShardedPositionSampler(Sampler[int]):
    """Yields, without end, the global positions process `rank` reads, from `start_position`.

    Micro-batch m covers positions [m·P·b, (m+1)·P·b) with P processes of b samples each;
    rank r reads [m·P·b + r·b, m·P·b + (r+1)·b). Use with `DataLoader(batch_size=b)`.
    """

    def __init__(
        self, per_process: int, num_processes: int = 1, rank: int = 0, start_position: int = 0
    ):
        if per_process < 1 or num_processes < 1 or not 0 <= rank < num_processes:
            raise ValueError(
                f"bad sharding: per_process={per_process}, num_processes={num_processes}, rank={rank}"
            )
        step = per_process * num_processes
        if start_position % step:
            raise ValueError(
                f"resume position {start_position} is not a whole number of micro-batches of {step} samples; "
                "resume with the batch size and process count the checkpoint was written with"
            )
        self.per_process, self.num_processes, self.rank = per_process, num_processes, rank
        self.start_position = start_position

    def __iter__(self) -> Iterator[int]:
        step = self.per_process * self.num_processes
        base = self.start_position + self.rank * self.per_process
        while True:
            yield from range(base, base + self.per_process)
            base += step
