"""Where a loader's consumer blocks, timed apart, so `fastdeit bench e2e` reports honest stalls.

Two ways `next(loader)` can block, which mean different things:

* waiting for data: the batch due now is not decoded yet (the loader is too slow: starvation);
* backpressure: the batch is ready, but a reused pinned buffer is still being copied to the GPU
  (the GPU is behind the loader: the loader is fast enough).

A loader times each blocking wait in its own `stall_clock`; the benchmark reads the totals. The
rest of the time inside `next()` is the main thread's own hand-over work (plan, copy launch).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class StallClock:
    data_s: float = 0.0  # seconds blocked on a batch that was not ready
    backpressure_s: float = 0.0  # seconds blocked on a reused buffer (the device's copy)

    def reset(self) -> None:
        self.data_s = self.backpressure_s = 0.0

    @contextmanager
    def waiting_for_data(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.data_s += time.perf_counter() - start

    @contextmanager
    def backpressure(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.backpressure_s += time.perf_counter() - start
