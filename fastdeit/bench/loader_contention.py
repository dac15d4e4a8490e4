"""Main-thread contention: how much the CPU loader and a busy training thread slow each other.

A launch-bound trainer's main thread runs Python almost all the time; the loader's decode threads
must still progress (they hold the GIL only between chunks), and the main thread must keep its
speed. Measured in one run, the three settings interleaved round by round:

- main alone:   the main thread's Python work, no loader (its speed alone, iterations/s);
- loader alone: the loader's epochs with an idle main thread (it only takes the batches);
- both:         the loader's epochs while the main thread does a fixed amount of Python work per
                batch, sized to ~70% of the loader's time per batch (so the loader, not the
                main thread, sets the pace).

Reported: loader img/s (both / loader alone) and main-thread speed (both / main alone), each the
median over rounds, with the worst round. Issue 12's target: both >= 0.9 with 1 decode thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

WORK_FRACTION = 0.7  # the main thread's Python work per batch, as a share of the loader's time per batch


class _Launch:
    """Stands for one kernel launch: a few attribute reads, a tuple and a call."""

    __slots__ = ("grid", "count")

    def __init__(self) -> None:
        self.grid, self.count = (1, 1, 1), 0

    def __call__(self, a: int, b: int) -> int:
        self.count += 1
        return (a * 3 + b) & 1023


def python_work(iterations: int) -> None:
    """Pure-Python work shaped like a trainer launching kernels (holds the GIL throughout)."""
    launch, acc = _Launch(), 0
    for k in range(iterations):
        acc = launch(acc, k) + len(launch.grid)


def main_alone(iterations: int) -> float:
    """Iterations per second of `python_work` with nothing else running."""
    t0 = time.perf_counter()
    python_work(iterations)
    return iterations / (time.perf_counter() - t0)


def loader_epoch(make_iter: Callable, work_per_batch: int) -> tuple[float, float]:
    """(img/s of the epoch, the main thread's iterations/s while working) over one epoch."""
    images, batches, worked = 0, 0, 0.0
    t0 = time.perf_counter()
    for batch in make_iter():
        images += len(batch.images)
        batches += 1
        if work_per_batch:
            w0 = time.perf_counter()
            python_work(work_per_batch)
            worked += time.perf_counter() - w0
    wall = time.perf_counter() - t0
    return images / wall, (work_per_batch * batches / worked) if worked else float("nan")


def measure(make_iter: Callable, batch: int, rounds: int) -> dict:
    """The contention figures for the loader whose epochs `make_iter()` yields (batches of `batch`)."""
    loader_epoch(make_iter, 0)  # warm-up: compilation, page cache
    speed = main_alone(200_000)
    rate, _ = loader_epoch(make_iter, 0)
    work = int(WORK_FRACTION * batch / rate * speed)
    alone_main, alone_loader, both_loader, both_main = [], [], [], []
    for _ in range(rounds):  # interleaved: load changes on a shared machine hit all alike
        alone_main.append(main_alone(work * 8))
        alone_loader.append(loader_epoch(make_iter, 0)[0])
        r, m = loader_epoch(make_iter, work)
        both_loader.append(r)
        both_main.append(m)
    loader_ratio = [b / a for a, b in zip(alone_loader, both_loader)]
    main_ratio = [b / a for a, b in zip(alone_main, both_main)]
    return {
        "work_iterations_per_batch": work,
        "loader_img_per_s_alone": [round(x, 1) for x in alone_loader],
        "loader_img_per_s_with_busy_main": [round(x, 1) for x in both_loader],
        "main_iterations_per_s_alone": [round(x) for x in alone_main],
        "main_iterations_per_s_with_loader": [round(x) for x in both_main],
        "loader_rate_ratio": round(float(np.median(loader_ratio)), 3),
        "loader_rate_ratio_worst": round(min(loader_ratio), 3),
        "main_speed_ratio": round(float(np.median(main_ratio)), 3),
        "main_speed_ratio_worst": round(min(main_ratio), 3),
    }
