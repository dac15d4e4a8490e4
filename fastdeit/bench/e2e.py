"""`fastdeit bench e2e`: the whole training path (plan loader -> device augmentation -> step) for N
steps: images/s, the share of step time spent waiting for data, CPU cores busy, and a projection
of each preset's wall-clock time on an 8-GPU node from the measured per-device rate.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from fastdeit.augment.pipeline import DeviceAugment
from fastdeit.config.load import build_config
from fastdeit.config.schema import DistillConfig
from fastdeit.data.beton import BetonReader
from fastdeit.data.plan import PlanConfig
from fastdeit.distill.loss import distillation_loss
from fastdeit.models import create_model
from fastdeit.models.compile import maybe_compile
from fastdeit.train.optim import build_optimizer
from fastdeit.train.step import StepContext, train_step

IMAGENET_TRAIN = 1281167  # ImageNet-1k train images
PAPER_HOURS_DEIT_B = 53.0  # paper, sec. 6: DeiT-B, 300 epochs, one 8-GPU node


def sample_beton(work: Path, n: int, max_res: int) -> Path:
    """ImageNet-like JPEGs (crops of real photographs) prepared into a .beton."""
    from fastdeit.data.prepare import prepare_dataset
    from fastdeit.data.sample_images import write_image_folder

    folder = work / "images"
    per_class = 4
    write_image_folder(folder, num_classes=max(n // per_class, 1), per_class=per_class,
                       size=(max_res, max_res * 3 // 4))
    out = work / "bench.beton"
    prepare_dataset(folder, out, max_res=max_res, progress=False, workers=min(os.cpu_count() or 1, 8))
    return out


def projected_hours(img_per_s_per_device: float, epochs: int, gpus: int = 8) -> float:
    """deit epoch = floor(N / 256) * 256 samples (RASampler); eval time not included."""
    samples = IMAGENET_TRAIN // 256 * 256 * epochs
    return samples / (img_per_s_per_device * gpus) / 3600


def measure(fast_loader, augment, ctx, dev, steps: int, warmup: int):
    """Run warmup + steps steps; returns (seconds blocked waiting for the loader, start time, os.times).

    Waiting = time inside the loader's __next__ (decode not ready). Device augmentation and the
    step are the model's time: on CUDA they run asynchronously and overlap the next batch's decode.
    """
    batches = iter(fast_loader)
    wait, wall_start, cpu_start = 0.0, time.perf_counter(), os.times()
    for done in range(warmup + steps):
        if done == warmup:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            wait, wall_start, cpu_start = 0.0, time.perf_counter(), os.times()
        t0 = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:  # epoch over: the loader continues with the next one
            batches = iter(fast_loader)
            batch = next(batches)
        wait += time.perf_counter() - t0
        images, targets = augment.apply_to_batch(batch)
        train_step(ctx, images, targets, lr=1e-4)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return wait, wall_start, cpu_start


def run(preset: str = "deit_s_300ep", *, data: str | None = None, overrides: list[str] | None = None,
        steps: int = 30, warmup: int = 5, images: int = 512, max_res: int = 256, device: str = "auto",
        loader: str = "cpu", print_table: bool = True) -> dict:
    config = build_config(preset, overrides=overrides or [])
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        beton = Path(data) if data else sample_beton(Path(tmp), images, max_res)
        reader = BetonReader(beton)
        plan_cfg = PlanConfig.from_configs(config.data, config.augment)
        if loader == "dali":
            from fastdeit.data.dali_loader import DaliLoader as Loader
        else:
            from fastdeit.data.loader import FastLoader as Loader
        threads = config.data.workers if config.data.workers > 0 else (os.cpu_count() or 1)
        fast_loader = Loader(reader, plan_cfg, seed=0, threads=threads, device=dev)
        num_classes = max(reader.num_classes, 2)
        augment = DeviceAugment(config.augment, num_classes, out_dtype=dtype)
        model = create_model(config.model, num_classes, config.data.img_size).to(dev)
        model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(model, config.optim, config.data.global_batch, dev)
        ctx = StepContext(model=maybe_compile(model, config.model, dev), optimizer=optimizer, scaler=None,
                          ema=None, teacher=None, distill=DistillConfig(), precision="auto", clip_grad=0.0,
                          device=dev, loss_fn=maybe_compile(distillation_loss, config.model, dev))
        wait, wall_start, cpu_start = measure(fast_loader, augment, ctx, dev, steps, warmup)
        total = time.perf_counter() - wall_start
        cpu_end = os.times()
        if hasattr(fast_loader, "close"):
            fast_loader.close()
    per_rank_batch = fast_loader.local_batch
    img_per_s = steps * per_rank_batch / total
    cores_busy = ((cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)) / total
    result = {
        "preset": preset, "overrides": overrides or [], "device": torch.cuda.get_device_name(dev)
        if dev.type == "cuda" else "cpu", "loader": loader, "steps": steps, "batch": per_rank_batch,
        "img_per_s": img_per_s, "data_wait_share": wait / total, "cpu_cores_busy": cores_busy,
        "projection_8gpu_hours": {
            p: projected_hours(img_per_s, build_config(p).schedule.epochs)
            for p in ("deit_ti_300ep", "deit_s_300ep", "deit_b_300ep") if p.startswith(preset[:6])
        },
    }
    if print_table:
        print(f"{preset} on {result['device']} ({loader} loader): {img_per_s:.1f} img/s, "
              f"waiting for data {100 * result['data_wait_share']:.1f}% of the time, "
              f"{cores_busy:.1f} CPU cores busy")
        for p, hours in result["projection_8gpu_hours"].items():
            print(f"  projected {p} on 8 such devices: {hours:.1f} h (paper: DeiT-B {PAPER_HOURS_DEIT_B:.0f} h)")
    return result
