"""DALI loader throughput (`fastdeit bench loader --loader dali`): images/s of DaliLoader, GPU
decode with the hardware-decoder share swept, beside fastdeit's CPU loader on all the machine's
cores, on the same `.beton` files and the same plan.

Task: the plan's RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3) + flip, bicubic to img_size,
as uint8 NHWC batches on the training device (CUDA for DALI "mixed" and for the CPU loader,
which copies its pinned batches there; CPU for the DALI CPU twin). Images are crops of real
photographs at ImageNet's typical 500x375, JPEG q90, stored at each longest side in `max_res`
(fastdeit prepare's default 512, and 256).

Numbers are the median images/s of `rounds` whole epochs per setting, settings interleaved round
by round, after one warm-up epoch each (pipeline build, nvJPEG/hardware decoder start-up, numba,
page cache); the clock stops after a CUDA synchronize.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from fastdeit.bench.machine import describe_machine
from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.loader import CpuLoader
from fastdeit.data.plan import PlanConfig
from fastdeit.data.sample_images import photo_crops

HW_LOADS = (0.0, 0.5, 0.75, 1.0)


def make_beton(path: Path, photos: list[np.ndarray], n: int, max_res: int) -> Path:
    """n samples cycling through `photos` (distinct bytes are not needed to time decoding)."""
    with BetonWriter(path, "jpg", max_resolution=max_res, jpeg_quality=90) as w:
        for k in range(n):
            w.add(photos[k % len(photos)], k % 10)
    return path


def epoch_rate(loader, sync: bool) -> float:
    """images/s of one whole epoch of `loader`, the device's work included.

    DaliLoader keeps decoding into the next epoch; those batches are drained off the clock, so
    that every timed epoch starts empty (as CpuLoader's do) and no loader decodes while another
    one is timed.
    """
    done, t0 = 0, time.perf_counter()
    for batch in loader:
        done += len(batch.images)
    if sync:
        torch.cuda.synchronize()
    rate = done / (time.perf_counter() - t0)
    drain = getattr(getattr(loader, "decoder", None), "drain", None)
    if drain is not None:
        drain()
    return rate


def run(
    data: str | os.PathLike | None = None,
    *,
    device: str = "cuda",
    max_res: Iterable[int] = (512, 256),
    hw_decoder_load: Iterable[float] = HW_LOADS,
    images: int = 4096,
    unique_images: int = 512,
    batch: int = 256,
    img_size: int = 224,
    threads: int | None = None,
    rounds: int = 3,
    include_cpu: bool = True,
    work_dir: str | os.PathLike | None = None,
    echo: Callable[[str], None] | None = print,
) -> dict:
    """Time DaliLoader (and CpuLoader) and return {settings, machine, rows: [...]}.

    data: an existing .beton (then `max_res`, `images` are not used), else generated files.
    device: "cuda" (DALI mixed decode, hw_decoder_load swept) or "cpu" (the DALI CPU twin).
    threads: CPU threads of each loader (default: all usable cores).
    Rows: {loader, device, max_res, hw_decoder_load, workers, img_per_s, rounds}, the shape of
    fastdeit.bench.loader's rows so the tables join.
    """
    from fastdeit.data.dali_loader import DaliLoader
    from fastdeit.data.dali_pipeline import check_decode_device, require_dali

    require_dali()
    gpu = device == "cuda" or device.startswith("cuda:")
    if not gpu and device != "cpu":
        raise ValueError(f"device {device!r}: expected 'cuda' or 'cpu'")
    check_decode_device("mixed" if gpu else "cpu")
    if rounds < 1 or images < 1 or batch < 1:
        raise ValueError("rounds, images and batch must be >= 1")
    threads = threads or describe_machine()["usable_cpus"] or 1
    loads = [float(x) for x in hw_decoder_load] if gpu else [None]
    mix_group = batch if batch % 2 == 0 else 2 * batch
    cfg = PlanConfig(img_size=img_size, global_batch=batch, mix_group=mix_group, repeated_aug=1,
                     epoch_multiple=1)
    settings = {"device": device, "img_size": img_size, "batch": batch, "threads": threads,
                "rounds": rounds, "images": images, "hw_decoder_load": loads}
    gpu_name = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    result = {"task": f"plan RandomResizedCrop {img_size} bicubic + flip -> uint8 NHWC batches of {batch}",
              "settings": settings, "machine": describe_machine(gpu=gpu_name), "rows": []}
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        if data is not None:
            files = [(Path(data), "given")]
        else:
            photos = photo_crops(min(unique_images, images), (500, 375), seed=0)
            files = [(make_beton(Path(tmp) / f"bench_{m}.beton", photos, images, m), m) for m in max_res]
        for path, res in files:
            reader = BetonReader(path)
            loaders: dict[tuple, object] = {}
            for load in loads:
                name = "fastdeit DaliLoader (DALI mixed)" if gpu else "fastdeit DaliLoader (DALI CPU twin)"
                loaders[(name, load)] = DaliLoader(
                    reader, cfg, threads=threads, prefetch=2, device=device,
                    hw_decoder_load=0.65 if load is None else load,
                )
            if include_cpu:
                loaders[("fastdeit CpuLoader (threads)", None)] = CpuLoader(
                    reader, cfg, threads=threads, prefetch=2, device=device)
            rates: dict[tuple, list[float]] = {k: [] for k in loaders}
            for loader in loaders.values():  # warm-up
                epoch_rate(loader, gpu)
            for _ in range(rounds):
                for key, loader in loaders.items():
                    rates[key].append(epoch_rate(loader, gpu))
            for (name, load), r in rates.items():
                ips = float(np.median(r))
                row = {"loader": name, "device": device, "max_res": res, "hw_decoder_load": load,
                       "workers": threads, "img_per_s": round(ips, 1), "rounds": [round(x, 1) for x in r]}
                result["rows"].append(row)
                if echo is not None:
                    shown = "" if load is None else f"hw_decoder_load {load:.2f}"
                    echo(f"max_res {res!s:>5}  {threads} thread(s)  {name:<38} {shown:<20} {ips:9.1f} img/s")
            for loader in loaders.values():
                loader.close()
            reader.close()
    return result


def format_table(result: dict) -> str:
    """The rows side by side, one line each, with the device and machine named."""
    m = result["machine"]
    lines = [f"{result['task']}; {m['gpu'] or m['cpu']}, {result['settings']['threads']} CPU threads",
             f"{'loader':<38} {'device':<6} {'max_res':>7} {'hw_load':>7} {'img/s':>10}"]
    for row in result["rows"]:
        load = "-" if row["hw_decoder_load"] is None else f"{row['hw_decoder_load']:.2f}"
        lines.append(f"{row['loader']:<38} {row['device']:<6} {row['max_res']!s:>7} {load:>7} "
                     f"{row['img_per_s']:>10.1f}")
    return "\n".join(lines)
