"""Device augmentation throughput: fastdeit's batched DeviceAugment vs timm's per-image PIL
RandAugment + RandomErasing (+ Mixup per group), on the same images, side by side in one run.

Task: deit's post-crop recipe on 224x224 uint8 crops of real photographs: RandAugment
rand-m9-mstd0.5-inc1, normalise, random erasing 0.25 (pixel), mixup 0.8 / cutmix 1.0 per group
of 64 with label smoothing 0.1. fastdeit takes its per-sample draws from the view plan (their
cost, on the CPU, is timed apart); timm draws its own, one image at a time, as deit's
DataLoader workers do.

    python benchmarks/bench_augment.py [--images 256] [--batch 128] [--threads 1 2]
        [--device cpu|cuda] [--seconds 8] [--json benchmarks/results/augment_cpu.json]

Numbers are images/s over whole passes after one warm-up pass (on CUDA the clock stops after a
synchronize), and the CPU time per image (process time over all threads): on a shared, loaded
machine the wall-clock rates drop with the load, the CPU cost per image much less. The
machine's load average at the start is recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fastdeit.augment.erasing import random_erase
from fastdeit.augment.mixup import mix
from fastdeit.augment.normalize import normalize
from fastdeit.augment.ops import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_FILL
from fastdeit.augment.params import AugmentParams
from fastdeit.augment.pipeline import DeviceAugment
from fastdeit.augment.rand_augment import rand_augment
from fastdeit.bench.machine import describe_machine
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data import plan as P
from fastdeit.data.sample_images import photo_crops

SIDE = 224
CLASSES = 1000


CPU_MS: dict[int, float] = {}  # id(fn) -> CPU ms per image of the last timed() call


def timed(fn, n_images: int, seconds: float, sync=lambda: None) -> float:
    """images/s (wall clock) over whole passes of fn() after one warm-up pass; the process's
    CPU time per image (all threads), which a loaded shared machine disturbs far less, is left
    in CPU_MS[id(fn)]."""
    fn()
    sync()
    done, start, cpu0 = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        sync()
        done += n_images
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            CPU_MS[id(fn)] = (time.process_time() - cpu0) * 1000 / done
            return done / elapsed


def plans(n: int, batch: int) -> list[AugmentParams]:
    cfg = P.PlanConfig.from_configs(DataConfig(img_size=SIDE, global_batch=batch), AugmentConfig())
    sizes = np.full(4 * n, 500), np.full(4 * n, 375)
    return [AugmentParams.from_plan(P.make_plan(cfg, 0, 0, s, *sizes)) for s in range(n // batch)]


def bench_fastdeit(images: torch.Tensor, labels: torch.Tensor, batch: int, device: str,
                   seconds: float) -> dict:
    aug = DeviceAugment(AugmentConfig(), CLASSES, out_dtype=torch.bfloat16)
    params = plans(images.shape[0], batch)
    batches = [(images[i * batch:(i + 1) * batch].to(device), labels[i * batch:(i + 1) * batch].to(device))
               for i in range(len(params))]
    n = len(params) * batch
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run():
        for (x, y), p in zip(batches, params):
            aug(x, y, p)

    result = {"img_per_s": timed(run, n, seconds, sync)}
    result["cpu_ms_per_img"] = CPU_MS[id(run)]

    # Stage by stage (each on its own input), to show where the time goes.
    x, y = batches[0]
    p = params[0]
    ra = rand_augment(x, p.ra_op, p.ra_magnitude, p.ra_apply, fill=IMAGENET_FILL)
    xn = normalize(ra, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    xe = random_erase(xn, p.erase, p.erase_box, p.erase_seed)
    stages = {
        "rand_augment": lambda: rand_augment(x, p.ra_op, p.ra_magnitude, p.ra_apply, fill=IMAGENET_FILL),
        "normalize": lambda: normalize(ra, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD),
        "erase": lambda: random_erase(xn, p.erase, p.erase_box, p.erase_seed),
        "mix": lambda: mix(xe, y, p.mix_mode, p.mix_lam, p.mix_box, group_size=64, num_classes=CLASSES),
    }
    result["stage_img_per_s"] = {k: timed(f, batch, seconds / 4, sync) for k, f in stages.items()}
    cfg = P.PlanConfig.from_configs(DataConfig(img_size=SIDE, global_batch=batch), AugmentConfig())
    sizes = np.full(4 * batch, 500), np.full(4 * batch, 375)
    result["plan_draws_img_per_s"] = timed(lambda: P.make_plan(cfg, 0, 0, 0, *sizes), batch, seconds / 4)
    return result


def bench_timm(crops: list[np.ndarray], labels: torch.Tensor, seconds: float) -> dict:
    """deit's per-image CPU path after the crop: timm RandAugment on PIL, ToTensor, Normalize,
    RandomErasing; then timm Mixup on each group of 64, as deit's main loop does per GPU."""
    from PIL import Image

    from fastdeit.bench.augment import timm_cpu_recipe

    ra, tail, mixer = timm_cpu_recipe(SIDE, CLASSES)
    pil = [Image.fromarray(c) for c in crops]

    def per_image():
        return [tail(ra(img)) for img in pil]

    def run():
        out = torch.stack(per_image())
        for g in range(0, out.shape[0], 64):
            mixer(out[g:g + 64], labels[g:g + 64])

    out = {"img_per_s": timed(run, len(pil), seconds), "cpu_ms_per_img": CPU_MS[id(run)]}
    out["per_image_only_img_per_s"] = timed(per_image, len(pil), seconds / 2)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--json", default="benchmarks/results/augment_cpu.json")
    args = ap.parse_args(argv)
    if args.batch % 64 or args.images % args.batch:
        raise SystemExit("--batch must be a multiple of 64 and --images a multiple of --batch")

    crops = photo_crops(args.images, (SIDE, SIDE), seed=0)
    images = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
    labels = torch.arange(args.images) % CLASSES
    gpu = {"gpu": torch.cuda.get_device_name(0)} if args.device == "cuda" else {}
    result = {"machine": describe_machine(**gpu),
              "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
              "task": "deit post-crop recipe on 224x224 photo crops: rand-m9-mstd0.5-inc1, normalise, "
                      "erase 0.25 pixel, mixup 0.8/cutmix 1.0 per group of 64, smoothing 0.1",
              "images": args.images, "batch": args.batch, "device": args.device, "runs": []}
    print(f"{'threads':>7}  {'fastdeit ' + args.device:>16}  {'timm PIL':>10}  ratio   (images/s; CPU ms/image)")
    for threads in args.threads:
        torch.set_num_threads(threads)
        ours = bench_fastdeit(images, labels, args.batch, args.device, args.seconds)
        # timm's path is one image at a time in one process: deit scales it with DataLoader
        # workers, one per core, so its figure is per core and measured with 1 thread.
        torch.set_num_threads(1)
        theirs = bench_timm(crops, labels, args.seconds) if threads == args.threads[0] else result["runs"][0]["timm"]
        ratio = ours["img_per_s"] / (theirs["img_per_s"] * (threads if args.device == "cpu" else 1))
        run = {"threads": threads, "fastdeit": ours, "timm": theirs,
               "ratio_vs_timm_on_same_cores": ratio,
               "cpu_cost_ratio_timm_over_fastdeit": theirs["cpu_ms_per_img"] / ours["cpu_ms_per_img"]}
        result["runs"].append(run)
        print(f"{threads:>7}  {ours['img_per_s']:>16.1f}  {theirs['img_per_s']:>10.1f}  {ratio:5.2f}x"
              f"   cpu ms/img {ours['cpu_ms_per_img']:.2f} vs {theirs['cpu_ms_per_img']:.2f}"
              f"   stages {', '.join(f'{k} {v:.0f}' for k, v in ours['stage_img_per_s'].items())}"
              f", plan draws {ours['plan_draws_img_per_s']:.0f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
