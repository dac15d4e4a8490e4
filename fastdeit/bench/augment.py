"""`fastdeit bench augment`: DeviceAugment's per-op torch path against the fused Triton kernels.

Task: deit's post-crop recipe (rand-m9-mstd0.5-inc1, normalise, erasing 0.25 pixel, mixup 0.8 /
cutmix 1.0 per group of 64, smoothing 0.1, bf16 channels_last out) on uint8 crops of real
photographs, with the view plan's draws. Per batch size: images/s (wall clock, whole passes,
after a warm-up; on CUDA the clock stops after a synchronize) and the main thread's CPU ms per
batch (thread CPU time around the calls, before the synchronize: what augmentation takes from
the training loop). The peer is timm's per-image PIL pipeline (what deit's DataLoader workers
run), per CPU core.

On the CPU the fused path runs in Triton's interpreter (TRITON_INTERPRET=1): a correctness run
whose figures are labelled as such, not a speed figure.
"""

from __future__ import annotations

import os
import random
import time
from typing import Callable

import numpy as np
import torch

from fastdeit.augment import AugmentParams, DeviceAugment
from fastdeit.augment.ops import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_FILL
from fastdeit.bench.machine import describe_machine
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data import plan as P
from fastdeit.data.sample_images import photo_crops

CLASSES = 1000
INTERPRETER_NOTE = "Triton interpreter on the CPU: a correctness run, not a speed figure"


def plan_params(batch: int, side: int, steps: int) -> list[AugmentParams]:
    """The view plan's draws for `steps` steps of `batch` samples."""
    cfg = P.PlanConfig.from_configs(DataConfig(img_size=side, global_batch=batch), AugmentConfig())
    sizes = np.full(max(4 * batch * steps, 1024), 500), np.full(max(4 * batch * steps, 1024), 375)
    return [AugmentParams.from_plan(P.make_plan(cfg, 0, 0, s, *sizes)) for s in range(steps)]


def time_batches(step: Callable[[int], object], n_batches: int, batch: int, seconds: float,
                 sync: Callable[[], None], warmup: bool = True) -> dict:
    """img/s over whole passes of n_batches after one warm-up pass, and main-thread CPU ms per
    batch (thread time, the synchronize excluded)."""
    for i in range(n_batches if warmup else 0):
        step(i)
    sync()
    done, cpu, start = 0, 0.0, time.perf_counter()
    while True:
        cpu0 = time.thread_time()
        for i in range(n_batches):
            step(i)
        cpu += time.thread_time() - cpu0
        sync()
        done += n_batches
        if time.perf_counter() - start >= seconds:
            return {"img_per_s": done * batch / (time.perf_counter() - start), "main_thread_cpu_ms_per_batch":
                    cpu * 1000 / done}


def bench_path(kernels: str, images: torch.Tensor, labels: torch.Tensor, params: list[AugmentParams],
               batch: int, device: str, seconds: float) -> dict:
    aug = DeviceAugment(AugmentConfig(kernels=kernels), CLASSES, out_dtype=torch.bfloat16)
    x = [images[i * batch:(i + 1) * batch].to(device) for i in range(len(params))]
    y = [labels[i * batch:(i + 1) * batch].to(device) for i in range(len(params))]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    interpreted = device == "cpu" and kernels == "triton"  # slow: one pass is all a correctness run needs
    return time_batches(lambda i: aug(x[i], y[i], params[i]), len(params), batch, 0.0 if interpreted else seconds,
                        sync, warmup=not interpreted)


def timm_cpu_recipe(side: int, num_classes: int) -> tuple[Callable, Callable, Callable]:
    """deit's per-image CPU path after the crop (timm RandAugment on PIL, then ToTensor, Normalize,
    RandomErasing) and its per-group timm Mixup, seeded: (rand_augment, tail, mixer)."""
    from PIL import Image
    from timm.data import Mixup
    from timm.data.auto_augment import rand_augment_transform
    from timm.data.random_erasing import RandomErasing
    from torchvision import transforms

    from fastdeit.data.reference import fix_posterize

    # deit's create_transform: translate_const = int(img_size * 0.45), fill = the ImageNet mean
    ra = rand_augment_transform("rand-m9-mstd0.5-inc1", dict(translate_const=int(side * 0.45),
                                img_mean=IMAGENET_FILL, interpolation=Image.BICUBIC))
    fix_posterize(ra)  # Pillow 13 refuses posterize with 0 bits; deit got a black image
    tail = transforms.Compose([transforms.ToTensor(), transforms.Normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD),
                               RandomErasing(0.25, mode="pixel", device="cpu")])
    mixer = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=num_classes)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    return ra, tail, mixer


def bench_timm(crops: list[np.ndarray], labels: torch.Tensor, seconds: float) -> dict:
    """deit's per-image CPU path after the crop, one core (timm_cpu_recipe), then timm Mixup on
    each group of 64, as deit's main loop does."""
    from PIL import Image

    ra, tail, mixer = timm_cpu_recipe(crops[0].shape[0], CLASSES)
    pil = [Image.fromarray(c) for c in crops]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per core, as one DataLoader worker

    def run(_: int) -> None:
        out = torch.stack([tail(ra(img)) for img in pil])
        for g in range(0, out.shape[0], 64):
            mixer(out[g:g + 64], labels[g:g + 64])

    try:
        result = time_batches(run, 1, len(pil), seconds, lambda: None)
    finally:
        torch.set_num_threads(threads)
    return {"img_per_s_per_core": result["img_per_s"]}


def _fused_device(device: str) -> tuple[str, str | None]:
    """Where the fused path runs, and the note that labels its figures (None: a speed figure)."""
    if device == "cuda":
        return "cuda", None
    if "triton" not in __import__("sys").modules:
        os.environ["TRITON_INTERPRET"] = "1"  # read when the kernels are decorated, at their import
    from fastdeit.kernels.launches import interpreting

    if not interpreting():
        raise ValueError("the fused path on the CPU needs TRITON_INTERPRET=1 before triton is imported")
    return "cpu", INTERPRETER_NOTE


def run(*, batches: tuple[int, ...] = (128, 256), side: int = 224, steps: int = 2, seconds: float = 5.0,
        device: str = "auto", timm_images: int = 64) -> dict:
    """Both paths at each batch size beside timm's per-image pipeline; prints a table."""
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device here")
    fused_device, note = _fused_device(device)
    n = max(batches) * steps
    crops = photo_crops(n, (side, side), seed=0)
    images = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)  # NHWC memory, as the loader's
    labels = torch.arange(n) % CLASSES
    gpu = {"gpu": torch.cuda.get_device_name(0)} if device == "cuda" else {}
    result: dict = {"benchmark": "augment", "machine": describe_machine(**gpu), "device": device,
                    "side": side, "task": "rand-m9-mstd0.5-inc1, normalise, erase 0.25 pixel, mixup 0.8/cutmix 1.0 "
                                          "per group of 64, smoothing 0.1, bf16 channels_last", "rows": []}
    print(f"{'batch':>5}  {'path':<28} {'img/s':>10}  {'main-thread CPU ms/batch':>24}")
    for batch in batches:
        params = plan_params(batch, side, steps)
        for kernels, where in (("torch", device), ("triton", fused_device)):
            row = {"batch": batch, "path": "fused triton" if kernels == "triton" else "per-op torch",
                   **bench_path(kernels, images, labels, params, batch, where, seconds)}
            if kernels == "triton" and note:
                row["note"] = note
            result["rows"].append(row)
            label = row["path"] + (" (interpreter)" if "note" in row else "")
            print(f"{batch:>5}  {label:<28} {row['img_per_s']:>10.1f}  {row['main_thread_cpu_ms_per_batch']:>24.2f}")
    result["timm_per_image_pil"] = bench_timm(crops[:timm_images], labels[:timm_images], seconds)
    print(f"{'':>5}  {'timm PIL per image, 1 core':<28} {result['timm_per_image_pil']['img_per_s_per_core']:>10.1f}")
    if note:
        print(f"note: fused rows on the CPU: {note}")
    return result
