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

On a shared machine the wall-clock ratios also count time the threads spent runnable but without a
CPU (other users' processes; with the kernel's autogroup scheduling a session's threads share one
session's CPU, so two busy threads get about half each). The `*_net_of_cpu_wait` ratios subtract
that time (the kernel's per-thread run delay, /proc/.../schedstat) from the main thread's and the
decode threads' clocks; what remains includes waiting for the GIL, which is what this measures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

WORK_FRACTION = 0.7  # the main thread's Python work per batch, as a share of the loader's time per batch
MIN_IMAGES = 4096  # per measurement: whole epochs until at least this many images (short ones are noisy)


class _Launch:
    """Stands for one kernel launch: a few attribute reads, a tuple and a call."""

    __slots__ = ("grid", "count")

    def __init__(self) -> None:
        self.grid, self.count = (1, 1, 1), 0

    def __call__(self, a: int, b: int) -> int:
        self.count += 1
        return (a * 3 + b) & 1023


def run_delay(tids: list[int]) -> float:
    """Seconds the threads `tids` of this process have spent runnable, waiting for a CPU (nan if
    the kernel does not say: no schedstat)."""
    total = 0.0
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return float("nan")
    return total


def decode_threads() -> list[int]:
    """Native ids of the CPU loader's decode threads (CpuDecoder names them fastdeit-decode)."""
    return [t.native_id for t in threading.enumerate() if t.name.startswith("fastdeit-decode") and t.native_id]


def python_work(iterations: int) -> None:
    """Pure-Python work shaped like a trainer launching kernels (holds the GIL throughout)."""
    launch, acc = _Launch(), 0
    for k in range(iterations):
        acc = launch(acc, k) + len(launch.grid)


def main_alone(iterations: int) -> tuple[float, float]:
    """Iterations per second of `python_work` with nothing else running: wall clock, and net of
    the main thread's wait for a CPU."""
    me = [threading.get_native_id()]
    d0, t0 = run_delay(me), time.perf_counter()
    python_work(iterations)
    wall = time.perf_counter() - t0
    return iterations / wall, iterations / (wall - (run_delay(me) - d0))


def loader_epoch(epochs, work_per_batch: int, min_images: int = MIN_IMAGES
                 ) -> tuple[float, float, float, float]:
    """Over whole epochs (at least `min_images` images): img/s, the main thread's iterations/s
    while working, and both net of the time the decode threads (for img/s) or the main thread
    (for iterations/s) waited for a CPU.

    The pipeline starts empty (`epochs.start_empty()`), and the loader's clock stops when the last
    batch arrives: the main thread's work on that batch is not the loader's time (counting it
    would charge the loader 70% of a batch per measurement).
    """
    me = [threading.get_native_id()]
    images, batches, worked, main_wait = 0, 0, 0.0, 0.0
    epochs.start_empty()
    decoders = decode_threads()
    d0, t0 = run_delay(decoders), time.perf_counter()
    while images < max(min_images, 1):
        for batch in epochs.make_iter():
            images += len(batch.images)
            batches += 1
            last, last_wait = time.perf_counter(), run_delay(decoders)
            if work_per_batch:
                m0, w0 = run_delay(me), time.perf_counter()
                python_work(work_per_batch)
                worked += time.perf_counter() - w0
                main_wait += run_delay(me) - m0
    wall = last - t0
    # with 1 decode thread (idle ones of other loaders add nothing), its wait is the loader's
    decode_wait = last_wait - d0
    main = (work_per_batch * batches / worked) if worked else float("nan")
    main_net = (work_per_batch * batches / (worked - main_wait)) if worked else float("nan")
    return images / wall, main, images / (wall - decode_wait), main_net


def measure(epochs, batch: int, rounds: int, ceiling=None) -> dict:
    """The contention figures for the loader whose epochs `epochs.make_iter()` yields (batches of
    `batch`; `epochs.start_empty()` drops what it prefetched).

    ceiling: a machine_ceiling.DecodeProcesses; its first process is timed in the same rounds,
    beside an idle and beside the same busy main thread (the machine's own ceiling, no GIL).
    """
    loader_epoch(epochs, 0, min_images=1)  # warm-up: compilation, page cache
    speed = main_alone(200_000)[1]
    rate = loader_epoch(epochs, 0)[2]
    work = int(WORK_FRACTION * batch / rate * speed)
    # each entry: (wall clock, net of the wait for a CPU)
    alone_main, alone_loader, both_loader, both_main = [], [], [], []
    process_alone, process_both, main_beside_process = [], [], []
    for _ in range(rounds):  # interleaved: load changes on a shared machine hit all alike
        alone_main.append(main_alone(work * -(-MIN_IMAGES // batch)))  # as long as the work in `both`
        rate, _, rate_net, _ = loader_epoch(epochs, 0)
        alone_loader.append((rate, rate_net))
        rate, main, rate_net, main_net = loader_epoch(epochs, work)
        both_loader.append((rate, rate_net))
        both_main.append((main, main_net))
        if ceiling is not None:
            process_alone.append(ceiling.rate(MIN_IMAGES, 1))
            rate, main = ceiling.rate_beside_work(MIN_IMAGES, work, WORK_FRACTION)
            process_both.append(rate)
            main_beside_process.append(main)
    out: dict = {"work_iterations_per_batch": work}
    if ceiling is not None:
        out.update(_ceiling_figures(process_alone, process_both, [a[0] for a in alone_main], main_beside_process,
                                    [b[0] / a[0] for a, b in zip(alone_loader, both_loader)],
                                    [b[0] / a[0] for a, b in zip(alone_main, both_main)]))
    for k, suffix in enumerate(("", "_net_of_cpu_wait")):
        loader_ratio = [b[k] / a[k] for a, b in zip(alone_loader, both_loader)]
        main_ratio = [b[k] / a[k] for a, b in zip(alone_main, both_main)]
        out.update({
            f"loader_img_per_s_alone{suffix}": [round(a[k], 1) for a in alone_loader],
            f"loader_img_per_s_with_busy_main{suffix}": [round(b[k], 1) for b in both_loader],
            f"main_iterations_per_s_alone{suffix}": [round(a[k]) for a in alone_main],
            f"main_iterations_per_s_with_loader{suffix}": [round(b[k]) for b in both_main],
            f"loader_rate_ratio{suffix}": _median(loader_ratio),
            f"loader_rate_ratio_worst{suffix}": _worst(loader_ratio),
            f"main_speed_ratio{suffix}": _median(main_ratio),
            f"main_speed_ratio_worst{suffix}": _worst(main_ratio),
        })
    return out


def _ceiling_figures(process_alone: list[float], process_both: list[float], main_alone_rate: list[float],
                     main_beside: list[float], loader_ratio: list[float], main_ratio: list[float]) -> dict:
    """The machine's ceiling (a decode process instead of the loader's thread) and the loader's
    ratios over it, round k against round k."""
    process_ratio = [b / a for a, b in zip(process_alone, process_both)]
    main_process_ratio = [b / a for a, b in zip(main_alone_rate, main_beside)]
    return {
        "ceiling_process_img_per_s_alone": [round(x, 1) for x in process_alone],
        "ceiling_process_img_per_s_with_busy_main": [round(x, 1) for x in process_both],
        "ceiling_main_iterations_per_s_beside_process": [round(x) for x in main_beside],
        "ceiling_process_rate_ratio": _median(process_ratio),
        "ceiling_process_rate_ratio_worst": _worst(process_ratio),
        "ceiling_main_speed_ratio": _median(main_process_ratio),
        "ceiling_main_speed_ratio_worst": _worst(main_process_ratio),
        "loader_rate_ratio_over_ceiling": _median([a / b for a, b in zip(loader_ratio, process_ratio)]),
        "main_speed_ratio_over_ceiling": _median([a / b for a, b in zip(main_ratio, main_process_ratio)]),
    }


def _median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x == x]
    return round(float(np.median(xs)), 3) if xs else None


def _worst(xs: list[float]) -> float | None:
    xs = [x for x in xs if x == x]
    return round(min(xs), 3) if xs else None
