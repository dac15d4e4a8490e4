"""The GIL hand-over between decode threads and a busy training thread, side by side.

A trainer's main thread runs Python almost all the time (launching the step's kernels and the
device augmentation's), while CpuLoader's decode threads need the GIL back briefly several times
per image. This runs the CpuLoader while the main thread does a fixed amount of Python work per
batch (small torch ops, like kernel launches), with CPython's default switch interval (5 ms) and
with fastdeit's (0.5 ms, fastdeit.data.gil), and prints images/s for both in one run.

    python benchmarks/bench_gil.py [--threads 2] [--work-ms 40] [--json benchmarks/results/gil_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from fastdeit.bench.e2e import sample_beton
from fastdeit.bench.machine import describe_machine
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data.beton import BetonReader
from fastdeit.data.gil import DEFAULT_DECODE_SWITCH_INTERVAL
from fastdeit.data.loader import CpuLoader
from fastdeit.data.plan import PlanConfig


def python_work(ms: float) -> int:
    """Small tensor ops for `ms` milliseconds, as a training thread launching kernels; returns ops."""
    x, n, end = torch.zeros(8), 0, time.perf_counter() + ms / 1e3
    while time.perf_counter() < end:
        x.add_(1.0)
        n += 1
    return n


def measure(reader: BetonReader, cfg: PlanConfig, threads: int, interval: float | None, work_ms: float,
            seconds: float) -> dict:
    loader = CpuLoader(reader, cfg, seed=0, threads=threads, switch_interval=interval)
    images = ops = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for batch in loader:
            images += batch.images.shape[0]
            ops += python_work(work_ms)
            if time.perf_counter() - start >= seconds:
                break
    elapsed = time.perf_counter() - start
    loader.close()  # its producer and decode threads, now (not at interpreter exit)
    return {"switch_interval_ms": None if interval is None else interval * 1e3,
            "img_per_s": images / elapsed, "main_thread_ops_per_s": ops / elapsed}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work-ms", type=float, default=40.0, help="main-thread Python work per batch of 64")
    p.add_argument("--max-res", type=int, default=256)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    cfg = PlanConfig.from_configs(DataConfig(global_batch=64, img_size=224), AugmentConfig())
    with tempfile.TemporaryDirectory() as tmp:
        reader = BetonReader(sample_beton(Path(tmp) / "gil.beton", 256, args.max_res))
        warm = CpuLoader(reader, cfg, threads=args.threads)
        list(warm)  # the numba kernels compiled
        warm.close()
        rows = []
        for _ in range(args.rounds):  # interleaved: both settings see the same machine load
            for label, interval in (("python default (5 ms)", None), ("fastdeit (0.5 ms)",
                                                                       DEFAULT_DECODE_SWITCH_INTERVAL)):
                row = measure(reader, cfg, args.threads, interval, args.work_ms, args.seconds)
                rows.append({"setting": label, **row})
                print(f"{label:<22} {row['img_per_s']:8.1f} img/s   main thread {row['main_thread_ops_per_s']:10.0f} ops/s",
                      flush=True)
    result = {"benchmark": "gil", "command": "python benchmarks/bench_gil.py " + " ".join(argv or []),
              "machine": describe_machine(), "threads": args.threads, "work_ms_per_batch": args.work_ms,
              "max_res": args.max_res, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
