"""Distillation cost: training-step throughput without distillation, with the online teacher and
with the teacher-logit cache, side by side, plus what the cache costs on disk.

Each mode runs the same training step (forward under autocast, deit's distillation loss,
backward, AdamW) on the same student and the same device-resident batches of augmented images;
"online" adds the teacher's forward on the batch, "cache" reads the step's top-k logits from a
real cache file through TeacherCache (memory-mapped, prefetched, scattered to dense on the
device). The loader and device augmentation are common to all three and left out.

    python -m fastdeit.bench.distill [--device cuda --student deit_base_distilled_patch16_224
        --teacher regnety_160 --img-size 224 --batch 128] [--json FILE]

Defaults are CPU-sized (a tiny DeiT student and timm's tiny test_resnet teacher at 32 px).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch

from fastdeit.config.schema import ModelConfig, OptimizerConfig
from fastdeit.distill.cache_format import CacheHeader, CacheWriter
from fastdeit.distill.cache_reader import TeacherCache
from fastdeit.distill.loss import distillation_loss
from fastdeit.distill.teacher import prepare_for_inference
from fastdeit.precision import autocast_dtype, autocast_for
from fastdeit.models import create_model
from fastdeit.train.optim import build_optimizer
from fastdeit.train.step import split_heads

IMAGENET_TRAIN = 1_281_167
IMAGENET_EPOCH = IMAGENET_TRAIN // 256 * 256  # deit's RASampler: floor(N / 256) * 256 per epoch


def cache_sizes(ks=(1, 5, 10), epochs: int = 300, samples_per_epoch: int = IMAGENET_EPOCH) -> list[dict]:
    """Bytes per sample (fp16 value + int16 index per logit) and a whole ImageNet run's cache size."""
    return [{"k": k, "bytes_per_sample": 4 * k, "epochs": epochs,
             "gib": round(4 * k * samples_per_epoch * epochs / 2**30, 2)} for k in ks]


def _synthetic_cache(path: Path, steps: int, batch: int, num_classes: int, k: int) -> Path:
    """A real cache file of the benchmark's shape (random top-k): the reader's cost is the point."""
    h = CacheHeader(dataset="bench", seed=0, recipe="bench", plan_version=0, teacher="bench",
                    teacher_checksum="bench", k=k, epochs=(0, 1), samples_per_epoch=steps * batch,
                    chunk_samples=batch, num_classes=num_classes)
    rng = np.random.default_rng(0)
    with CacheWriter(path, h) as w:
        for c in range(steps):
            values = -np.sort(-rng.standard_normal((batch, k)), axis=1).astype(np.float16)
            idx = np.argsort(rng.random((batch, num_classes)), axis=1)[:, :k].astype(np.int16)
            w.write_chunk(c, values, idx)
        w.finish()
    return path


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(
    student: str = "deit_tiny_distilled_patch16_224",
    student_arch: dict | None = None,
    teacher: str = "test_resnet",
    img_size: int = 32,
    batch: int = 64,
    num_classes: int = 10,
    k: int = 10,
    kind: str = "hard",
    steps: int = 8,
    warmup: int = 2,
    rounds: int = 3,
    device: str = "auto",
    precision: str = "auto",
    work_dir: str | None = None,
    print_table: bool = True,
) -> dict:
    """img/s of the training step for modes none / online / cache (median of `rounds`, the modes
    interleaved round by round); returns {settings, runs, cache_sizes} and prints a table."""
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    if student_arch is None and student == "deit_tiny_distilled_patch16_224" and img_size <= 64:
        student_arch = {"patch_size": 4, "embed_dim": 96, "depth": 4, "num_heads": 3}  # the demo's size
    mcfg = ModelConfig(name=student, drop_path=0.0, channels_last=dev.type == "cuda", **(student_arch or {}))
    model = create_model(mcfg, num_classes, img_size).to(dev)
    if mcfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if hasattr(model, "set_distilled_training"):
        model.set_distilled_training(True)
    model.train()
    optimizer = build_optimizer(model, OptimizerConfig(), batch, dev)
    teach = prepare_for_inference(timm.create_model(teacher, num_classes=num_classes), dev)
    k = min(k, num_classes)
    in_dtype = autocast_dtype(dev, precision)
    g = torch.Generator().manual_seed(0)
    n_batches = warmup + steps
    images = [torch.randn(batch, 3, img_size, img_size, generator=g).to(dev, in_dtype)
              .contiguous(memory_format=torch.channels_last) for _ in range(n_batches)]
    targets = [torch.softmax(torch.randn(batch, num_classes, generator=g), 1).to(dev) for _ in range(n_batches)]
    tmp = Path(tempfile.mkdtemp(prefix="bench_distill_", dir=work_dir))
    cache_path = _synthetic_cache(tmp / "bench.cache", n_batches, batch, num_classes, k)

    def step(i: int, mode: str, cache: TeacherCache | None) -> None:
        x = images[i]
        teacher_logits = None
        if mode == "online":
            with torch.no_grad(), autocast_for(dev, precision):
                teacher_logits = teach(x)
        elif mode == "cache":
            teacher_logits = cache.logits_for(0, np.arange(i * batch, (i + 1) * batch), num_classes, dev)
        with autocast_for(dev, precision):
            cls_logits, dist_logits = split_heads(model(x))
        loss = distillation_loss(cls_logits, dist_logits, targets[i], teacher_logits,
                                 "none" if mode == "none" else kind, 0.5, 1.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    modes = ["none", "online", "cache"]
    samples: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for _ in range(rounds):
            for mode in modes:
                cache = TeacherCache(cache_path) if mode == "cache" else None
                for i in range(warmup):
                    step(i, mode, cache)
                _sync(dev)
                t0 = time.perf_counter()
                for i in range(warmup, n_batches):
                    step(i, mode, cache)
                _sync(dev)
                samples[mode].append(steps * batch / (time.perf_counter() - t0))
                if cache is not None:
                    cache.close()
    finally:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    base = statistics.median(samples["none"])
    runs = [{"mode": m, "img_per_s": round(statistics.median(samples[m]), 1),
             "vs_none": round(statistics.median(samples[m]) / base, 3)} for m in modes]
    result = {
        "benchmark": "distill",
        "settings": {"student": student, "student_arch": student_arch or {}, "teacher": teacher,
                     "img_size": img_size, "batch": batch, "num_classes": num_classes, "k": k, "kind": kind,
                     "steps": steps, "rounds": rounds, "device": str(dev), "precision": precision,
                     "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "load_average_1min": round(os.getloadavg()[0], 2)},  # a shared machine skews figures
        "runs": runs,
        "cache_sizes": cache_sizes(),
    }
    if print_table:
        print(format_table(result))
    return result


def format_table(result: dict) -> str:
    s = result["settings"]
    lines = [f"distill: student {s['student']} teacher {s['teacher']}, {s['img_size']} px, batch {s['batch']}, "
             f"{s['kind']} k={s['k']}, {s['device']} {s['precision']}",
             f"{'mode':>8} | {'img/s':>10} | {'vs none':>7}"]
    for r in result["runs"]:
        lines.append(f"{r['mode']:>8} | {r['img_per_s']:>10.1f} | {r['vs_none']:>6.2f}x")
    lines.append("cache size, ImageNet-1k: " + ", ".join(
        f"k={c['k']}: {c['bytes_per_sample']} B/sample, {c['gib']} GiB for {c['epochs']} epochs"
        for c in result["cache_sizes"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--student", default="deit_tiny_distilled_patch16_224")
    p.add_argument("--teacher", default="test_resnet")
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--kind", default="hard", choices=["hard", "soft"])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--json", help="also write the result as JSON to this file")
    args = p.parse_args(argv)
    result = run(student=args.student, teacher=args.teacher, img_size=args.img_size, batch=args.batch,
                 num_classes=args.num_classes, k=args.k, kind=args.kind, steps=args.steps, rounds=args.rounds,
                 device=args.device, precision=args.precision)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
