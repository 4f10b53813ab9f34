"""Peak-memory measurement shared by the benchmarks: CUDA allocator peaks on GPU,
sampled resident set size (RSS) on CPU, both relative to the level before the call."""

from __future__ import annotations

import os
import threading
import time

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class PeakMemory:
    """with PeakMemory(device) as m: ...; m.peak_mb = extra memory at the peak, in MiB."""

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device, self.interval, self.peak_mb = torch.device(device), interval, 0.0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.base = self.peak = rss_bytes()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self.peak, rss_bytes())
        self.peak_mb = (peak - self.base) / 2**20
        return False
