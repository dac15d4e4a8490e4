"""Prepare throughput and output size: fastdeit's `prepare` against FFCV's `DatasetWriter`, on the
same images and settings (longest side, JPEG quality, mode, worker processes).

FFCV is driven the way its ImageNet example does it: a torchvision `ImageFolder` (PIL decode,
RGB) feeding `RGBImageField(write_mode, max_resolution, jpeg_quality)`.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time
from contextlib import redirect_stderr
from pathlib import Path

import numpy as np
from PIL import Image

from fastdeit.bench.machine import describe_machine
from fastdeit.data.beton import BetonReader
from fastdeit.data.prepare import prepare_dataset

# ImageNet-like shapes (most train images are 500x375 or 500x333; some are larger)
SIZES = [(500, 375), (375, 500), (500, 333), (500, 400), (640, 480), (800, 600)]


def make_source(root: Path, n_images: int, num_classes: int = 10, seed: int = 0) -> Path:
    """An ImageFolder tree of n_images photo crops of ImageNet-like sizes, saved as JPEG q92."""
    from fastdeit.data.sample_images import photo_crops

    per_size = -(-n_images // len(SIZES))
    images = []
    for k, size in enumerate(SIZES):
        images += photo_crops(per_size, size, seed=seed + k)
    order = np.random.default_rng(seed).permutation(len(images))[:n_images]
    for j, i in enumerate(order):
        d = root / f"n{j % num_classes:08d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(d / f"img_{j:06d}.JPEG", quality=92)
    return root


def _run_fastdeit(src: Path, out: Path, workers: int, max_res: int, quality: int, mode: str) -> dict:
    t0 = time.perf_counter()
    rep = prepare_dataset(src, out, max_res=max_res, quality=quality, mode=mode, workers=workers, progress=False)
    dt = time.perf_counter() - t0
    return _result(out, dt, workers, rep.num_written)


def _run_ffcv(src: Path, out: Path, workers: int, max_res: int, quality: int, mode: str) -> dict:
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(str(src))
    fields = {"image": RGBImageField(write_mode=mode, max_resolution=max_res, jpeg_quality=quality), "label": IntField()}
    t0 = time.perf_counter()
    with redirect_stderr(io.StringIO()):  # FFCV's own progress bar
        DatasetWriter(str(out), fields, num_workers=workers).from_indexed_dataset(dataset)
    dt = time.perf_counter() - t0
    return _result(out, dt, workers, len(dataset))


def _result(out: Path, seconds: float, workers: int, n: int) -> dict:
    r = BetonReader(out)
    assert len(r) == n
    data = int(r.sizes.sum())
    return {
        "workers": workers,
        "images": n,
        "seconds": round(seconds, 3),
        "images_per_s": round(n / seconds, 1),
        "images_per_s_per_worker": round(n / seconds / workers, 1),
        "file_bytes": out.stat().st_size,
        "data_bytes_per_image": round(data / n),
        "mean_width": round(float(r.widths.mean()), 1),
        "mean_height": round(float(r.heights.mean()), 1),
    }


def run(
    n_images: int = 1000,
    workers: list[int] | tuple[int, ...] = (1, 2),
    max_res: int = 512,
    quality: int = 90,
    mode: str = "jpg",
    src: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    include_ffcv: bool = True,
    repeats: int = 1,
    print_table: bool = True,
) -> dict:
    """Prepare the same ImageFolder with fastdeit and (if importable) FFCV, for each worker count;
    returns {settings, machine, runs: [{tool, workers, images_per_s, ...}]} and prints a table.
    Each measurement is the best of `repeats` (interleaved between the tools)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_prepare_", dir=work_dir))
    try:
        src_path = Path(src) if src else make_source(tmp / "src", n_images)
        have_ffcv = False
        if include_ffcv:
            try:
                import ffcv  # noqa: F401

                have_ffcv = True
            except ImportError:
                print("ffcv not importable: measuring fastdeit only", file=sys.stderr)
        tools = [("fastdeit", _run_fastdeit)] + ([("ffcv", _run_ffcv)] if have_ffcv else [])
        runs = []
        for w in workers:
            best: dict[str, dict] = {}
            # interleaved repeats, best of each: fairer when other jobs share the machine
            for k in range(repeats):
                for name, fn in tools:
                    out = tmp / f"{name}_{w}_{k}.beton"
                    res = fn(src_path, out, w, max_res, quality, mode)
                    out.unlink()
                    if name not in best or res["seconds"] < best[name]["seconds"]:
                        best[name] = res
            runs += [{"tool": name, **best[name]} for name, _ in tools]
        result = {
            "benchmark": "prepare",
            "settings": {"n_images": n_images if not src else None, "src": str(src) if src else "generated photo crops",
                         "source_sizes": SIZES if not src else None, "max_res": max_res, "quality": quality,
                         "mode": mode, "repeats": repeats},  # fmt: skip
            "machine": describe_machine(),
            "runs": runs,
        }
        if print_table:
            print(format_table(result))
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def format_table(result: dict) -> str:
    """fastdeit and FFCV side by side, one row per worker count."""
    by = {(r["tool"], r["workers"]): r for r in result["runs"]}
    workers = sorted({r["workers"] for r in result["runs"]})
    s = result["settings"]
    lines = [
        f"prepare: max_res {s['max_res']}, quality {s['quality']}, mode {s['mode']}; {result['machine']['cpu']}, "
        f"{result['machine']['usable_cpus']} CPUs",
        f"{'workers':>7} | {'fastdeit img/s':>14} {'per worker':>10} {'KiB/img':>8} | "
        f"{'ffcv img/s':>10} {'per worker':>10} {'KiB/img':>8} | {'speedup':>7}",
    ]
    for w in workers:
        a, b = by.get(("fastdeit", w)), by.get(("ffcv", w))
        row = f"{w:>7} | {a['images_per_s']:>14.1f} {a['images_per_s_per_worker']:>10.1f} {a['data_bytes_per_image'] / 1024:>8.1f} | "
        if b:
            row += (f"{b['images_per_s']:>10.1f} {b['images_per_s_per_worker']:>10.1f} {b['data_bytes_per_image'] / 1024:>8.1f} | "
                    f"{a['images_per_s'] / b['images_per_s']:>6.2f}x")  # fmt: skip
        else:
            row += f"{'-':>10} {'-':>10} {'-':>8} | {'-':>7}"
        lines.append(row)
    return "\n".join(lines)
