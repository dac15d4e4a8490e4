"""CPU loader throughput: fastdeit's FastLoader vs the real FFCV Loader vs the torchvision/timm
reference DataLoader, on the same images, side by side in one run.

Task: RandomResizedCrop 224 (scale 0.08-1, ratio 3/4-4/3, bicubic) + horizontal flip to uint8
batches, from a `.beton` (fastdeit, FFCV) or the same pixels as an ImageFolder of JPEGs
(reference). The reference is also timed with deit's whole CPU recipe (timm create_transform:
RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25, normalise), the CPU cost fastdeit moves to
the device. Images are crops of real photographs at ImageNet's typical 500x375, stored with the
longest side <= --max-res.

    python benchmarks/bench_loader.py [--data FILE.beton] [--images 1024] [--max-res 256 512]
        [--seconds 12] [--workers 1 2] [--json benchmarks/results/loader_cpu.json]

Numbers are images/s over whole epochs after one warm-up epoch (numba compilation, page cache).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.loader import FastLoader
from fastdeit.data.plan import PlanConfig
from fastdeit.data.sample_images import photo_crops

BATCH = 256


def make_data(root: Path, n: int, max_res: int) -> tuple[Path, Path]:
    """A .beton and an ImageFolder holding the same stored pixels (JPEG q90)."""
    from PIL import Image

    beton = root / f"bench_{max_res}.beton"
    folder = root / f"folder_{max_res}"
    photos = photo_crops(n, (500, 375), seed=0)
    with BetonWriter(beton, "jpg", max_resolution=max_res, jpeg_quality=90) as w:
        for k, img in enumerate(photos):
            w.add(img, k % 10)
    r = BetonReader(beton)
    for i in range(len(r)):
        d = folder / f"c{int(r.labels[i]):02d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(r.decode(i)).save(d / f"{i:05d}.jpg", quality=90)
    return beton, folder


def timed_epochs(make_iter, n_images: int, seconds: float) -> float:
    """images/s over whole epochs after one warm-up epoch, until `seconds` have passed."""
    for _ in make_iter():
        pass
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for batch in make_iter():
            done += len(batch[0]) if isinstance(batch, (list, tuple)) else len(batch.images)
    return done / (time.perf_counter() - t0)


def bench_fastdeit(beton: Path, threads: int, seconds: float) -> float:
    reader = BetonReader(beton)
    cfg = PlanConfig(img_size=224, global_batch=BATCH, mix_group=64, repeated_aug=1, epoch_multiple=1)
    loader = FastLoader(reader, cfg, seed=0, threads=threads, prefetch=2)
    try:
        return timed_epochs(lambda: iter(loader), len(reader), seconds)
    finally:
        loader.close()


def bench_ffcv(beton: Path, workers: int, seconds: float) -> float | None:
    try:
        from ffcv.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
        from ffcv.loader import Loader, OrderOption
        from ffcv.transforms import RandomHorizontalFlip, ToTensor
    except ImportError:
        return None
    loader = Loader(
        str(beton),
        batch_size=BATCH,
        num_workers=workers,
        order=OrderOption.RANDOM,
        drop_last=True,
        os_cache=True,
        pipelines={
            "image": [RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip(), ToTensor()],
            "label": [IntDecoder(), ToTensor()],
        },
    )
    return timed_epochs(lambda: iter(loader), 0, seconds)


def bench_reference(folder: Path, workers: int, seconds: float, full_recipe: bool) -> float:
    from torchvision import datasets, transforms

    if full_recipe:
        from fastdeit.config.schema import AugmentConfig, DataConfig
        from fastdeit.data.reference import build_train_transform

        # deit datasets.build_transform (timm create_transform), Pillow-13 posterize fixed
        tf = build_train_transform(DataConfig(img_size=224), AugmentConfig())
    else:
        tf = transforms.Compose([
            transforms.RandomResizedCrop(224, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.RandomHorizontalFlip(),
            transforms.PILToTensor(),
        ])
    ds = datasets.ImageFolder(str(folder), transform=tf)
    dl = torch.utils.data.DataLoader(
        ds, batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True,
        persistent_workers=True,
    )
    return timed_epochs(lambda: iter(dl), len(ds), seconds)


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import simplejpeg
    import timm

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "timm": timm.__version__,
        "simplejpeg": simplejpeg.__version__,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="an existing .beton (skips generating; no reference rows)")
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--max-res", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--json", default="benchmarks/results/loader_cpu.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    result = {"machine": machine(), "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
              "task": "RandomResizedCrop 224 bicubic + flip -> uint8 batches of 256", "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        sets = [(Path(args.data), None, "given")] if args.data else [
            (*make_data(Path(tmp), args.images, m), m) for m in args.max_res
        ]
        for beton, folder, max_res in sets:
            for w in args.workers:
                rows = [("fastdeit FastLoader (threads)", bench_fastdeit(beton, w, args.seconds)),
                        ("FFCV Loader (workers)", bench_ffcv(beton, w, args.seconds))]
                if folder is not None and not args.no_reference:
                    rows.append(("reference DataLoader RRC+flip (workers)",
                                 bench_reference(folder, w, args.seconds, False)))
                    rows.append(("reference DataLoader deit full CPU recipe (workers)",
                                 bench_reference(folder, w, args.seconds, True)))
                for name, ips in rows:
                    row = {"loader": name, "max_res": max_res, "workers": w,
                           "img_per_s": None if ips is None else round(ips, 1)}
                    result["rows"].append(row)
                    shown = "n/a (not installed)" if ips is None else f"{ips:8.1f} img/s"
                    print(f"max_res {max_res!s:>5}  {w} worker(s)  {name:<52} {shown}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
