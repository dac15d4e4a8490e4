"""GPU check of the CPU loader's device path (pinned ring buffers, non-blocking copies).

Checks that CpuLoader(device="cuda") yields exactly the CPU loader's images and labels over
two epochs (so pinned buffers are never overwritten before their copy completed), then
measures images/s to the device at 1..all cores. Runs in a minute or two on a GPU machine;
without CUDA it checks the CPU path only and says so.

    python benchmarks/gpu_check_loader.py [--images 1024] [--json benchmarks/results/loader_gpu_check.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.loader import CpuLoader
from fastdeit.data.plan import PlanConfig
from fastdeit.data.sample_images import photo_crops


def make_beton(path: Path, n: int, max_res: int) -> BetonReader:
    with BetonWriter(path, "jpg", max_resolution=max_res, jpeg_quality=90) as w:
        for k, img in enumerate(photo_crops(n, (500, 375), seed=0)):
            w.add(img, k % 10)
    return BetonReader(path)


def epoch_images(loader: CpuLoader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.set_epoch(epoch)
    return [(b.images.cpu(), b.labels.cpu()) for b in loader]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--max-res", type=int, default=512)
    ap.add_argument("--json", default="benchmarks/results/loader_gpu_check.json")
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    cfg = PlanConfig(img_size=224, global_batch=256, mix_group=64, repeated_aug=3, epoch_multiple=256)
    out: dict = {"cuda": cuda, "device": torch.cuda.get_device_name(0) if cuda else "cpu only",
                 "cores": os.cpu_count(), "max_res": args.max_res, "images": args.images}
    with tempfile.TemporaryDirectory() as tmp:
        reader = make_beton(Path(tmp) / "check.beton", args.images, args.max_res)
        cpu = CpuLoader(reader, cfg, seed=1, threads=2)
        if cuda:
            dev = CpuLoader(reader, cfg, seed=1, threads=2, prefetch=2, device="cuda")
            same = all(
                torch.equal(a, c) and torch.equal(la, lc)
                for e in (0, 1)
                for (a, la), (c, lc) in zip(epoch_images(cpu, e), epoch_images(dev, e))
            )
            out["cuda_batches_equal_cpu_batches"] = same
            print(f"cuda batches equal cpu batches over 2 epochs: {same}")
            dev.close()
        rates = {}
        for threads in sorted({1, 2, 4, 8, os.cpu_count() or 1}):
            loader = CpuLoader(reader, cfg, seed=1, threads=threads, device="cuda" if cuda else "cpu")
            epoch_images(loader, 0)  # warm-up
            t0, n = time.perf_counter(), 0
            for e in (1, 2):
                loader.set_epoch(e)
                for b in loader:
                    n += len(b.images)
            if cuda:
                torch.cuda.synchronize()
            rates[threads] = round(n / (time.perf_counter() - t0), 1)
            print(f"{threads:3d} threads: {rates[threads]:8.1f} img/s to {'cuda' if cuda else 'cpu'}")
            loader.close()
        out["img_per_s_by_threads"] = rates
        cpu.close()
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    if cuda and not out["cuda_batches_equal_cpu_batches"]:
        raise SystemExit("FAILED: cuda batches differ from cpu batches")


if __name__ == "__main__":
    main()
