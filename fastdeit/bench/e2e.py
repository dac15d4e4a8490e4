"""`fastdeit bench e2e`: the whole training path (loader -> augmentation -> step, EMA on) for N
steps: images/s, the share of wall time blocked on data that was not ready, backpressure apart,
cores busy, and a projection of 300 epochs on an 8-GPU node that says what it includes.

Loaders (rows):
* `cpu`, `dali`: fastdeit's view-plan loaders, device augmentation, fastdeit's step.
* `reference`: deit's own pipeline. PIL decode + timm `create_transform` with deit's arguments
  (RandAugment, erasing) in DataLoader worker processes, pinned transfer, timm Mixup where deit's
  engine.py calls it (on the device, after the copy), in two settings:
  (a) step "deit": deit's step, fp16 AMP (GradScaler) eager; fp32 eager on a CPU, and the row says so;
  (b) step "fastdeit": fastdeit's step (compiled, bf16 on CUDA), so only the pipelines differ.

Honest timing (issue 12): "waiting for data" is only the time blocked on a batch that was not
ready (the loader's StallClock; for the reference DataLoader, all of its `next()`, which blocks
only then); "backpressure" (a pinned buffer still being copied: the GPU is behind) and the main
thread's hand-over work are reported apart. The timed steps never restart the pipeline: the file
must hold warmup + steps batches in one epoch (the generated one does); a restart is counted.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from fastdeit.bench.machine import describe_machine
from fastdeit.config.load import build_config
from fastdeit.config.schema import DistillConfig, TrainConfig
from fastdeit.data.beton import BetonReader
from fastdeit.data.stall_clock import StallClock
from fastdeit.distill.loss import distillation_loss
from fastdeit.precision import autocast_for
from fastdeit.models import create_model
from fastdeit.models.compile import compile_enabled, maybe_compile
from fastdeit.train.ema import build_ema
from fastdeit.train.optim import build_optimizer
from fastdeit.train.step import StepContext, train_step

IMAGENET_TRAIN = 1281167  # ImageNet-1k train images
IMAGENET_VAL = 50000  # ImageNet-1k validation images
PAPER_HOURS_DEIT_B = 53.0  # paper, sec. 6: DeiT-B, 300 epochs, one 8-GPU node
LOADERS = ("cpu", "dali", "reference")
REFERENCE_STEPS = ("deit", "fastdeit")  # (a) deit's fp16 AMP eager step, (b) fastdeit's step


# ----------------------------------------------------------------------------- data


def bench_photos(n: int, size: tuple[int, int], seed: int = 0) -> tuple[list[np.ndarray], str]:
    """n RGB images of `size` (w, h): crops of real photographs (scikit-learn's sample images),
    or, where scikit-learn is absent (a bare GPU host), smooth random fields with grain."""
    try:
        from fastdeit.data.sample_images import photo_crops

        return photo_crops(n, size, seed), "photo crops"
    except ImportError:
        rng = np.random.default_rng(seed)
        w, h = size
        out = []
        for _ in range(n):
            coarse = rng.integers(0, 256, (h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
            from PIL import Image

            smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), np.int16)
            grain = rng.integers(-12, 13, smooth.shape, dtype=np.int16)
            out.append(np.clip(smooth + grain, 0, 255).astype(np.uint8))
        return out, "smooth random fields (scikit-learn absent)"


def sample_beton(path: Path, n: int, max_res: int, unique: int = 256, classes: int = 100) -> Path:
    """n samples (labels cycling over `classes`) of `unique` ImageNet-sized (500x375) images,
    JPEG q90 at longest side `max_res`: each image encoded once, its bytes stored n / unique times
    (decoding cost is per sample; distinct bytes are not needed to time it)."""
    from fastdeit.data.beton import BetonWriter
    from fastdeit.data.beton.writer import encode_image

    photos, _ = bench_photos(min(unique, n), (500, 375))
    encoded = [encode_image(p, "jpg", max_res, 90) for p in photos]
    tmp = path.with_name(path.name + ".tmp")
    with BetonWriter(tmp, "jpg", max_resolution=max_res, jpeg_quality=90) as w:
        for k in range(n):
            data, mode, width, height = encoded[k % len(encoded)]
            w.add_encoded(data, mode=mode, width=width, height=height, label=k % classes)
    tmp.replace(path)
    return path


def images_needed(batches: tuple[int, ...], steps: int, warmup: int) -> int:
    """Samples for warmup + steps batches of the largest batch in one epoch (epoch = floor(N / 256)
    * 256 samples, deit's RASampler), plus one spare 256."""
    need = (steps + warmup) * max(batches)
    return (need + 255) // 256 * 256 + 256


class _PilImages(torch.utils.data.Dataset):
    """deit's dataset over a .beton: PIL opens the stored JPEG bytes and converts to RGB, as
    torchvision's ImageFolder loader does for deit, then the transform."""

    def __init__(self, path: str, transform: Callable) -> None:
        self.path, self.transform, self.reader = path, transform, None
        with BetonReader(path) as r:
            self.labels = np.asarray(r.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        import io

        from PIL import Image

        if self.reader is None:  # opened in the worker process
            self.reader = BetonReader(self.path)
        if self.reader.is_jpeg[i]:
            img = Image.open(io.BytesIO(self.reader.image_bytes(i).tobytes())).convert("RGB")
        else:
            img = Image.fromarray(self.reader.decode(i))
        return self.transform(img), int(self.labels[i])


def reference_loader(config: TrainConfig, path: str, seed: int = 0) -> torch.utils.data.DataLoader:
    """deit's train DataLoader for one GPU: RASampler x3, its transform, workers, pinned memory."""
    from fastdeit.data.reference import build_train_transform
    from fastdeit.data.repeated_aug import RepeatedAugSampler

    data = config.data
    dataset = _PilImages(path, build_train_transform(data, config.augment))
    sampler = RepeatedAugSampler(len(dataset), 1, 0, repeats=data.repeated_aug, seed=seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=data.global_batch, sampler=sampler, drop_last=True, num_workers=data.workers,
        persistent_workers=data.workers > 0, pin_memory=torch.cuda.is_available(),
    )


# ----------------------------------------------------------------------------- measuring


def projected_hours(img_per_s_per_device: float, epochs: int, gpus: int = 8) -> float:
    """Training only: deit epoch = floor(N / 256) * 256 samples (RASampler)."""
    samples = IMAGENET_TRAIN // 256 * 256 * epochs
    return samples / (img_per_s_per_device * gpus) / 3600


def projection(train_img_per_s: float, eval_img_per_s: float, config: TrainConfig, step: str,
               gpus: int = 8) -> dict:
    """Hours for the preset's epochs on `gpus` such devices, evaluation included: fastdeit's trainer
    evaluates the model and its EMA every `run.eval_every` epochs; deit's main.py the model every
    epoch. Train rate as measured (EMA updates included); eval at the measured inference rate."""
    epochs = config.schedule.epochs
    if step == "deit":
        passes, what = epochs, "deit main.py: the model evaluated every epoch"
    else:
        evals = math.ceil(epochs / max(config.run.eval_every, 1))
        models = 2 if config.run.ema else 1
        passes = evals * models
        what = (f"fastdeit: model{' and EMA' if config.run.ema else ''} evaluated every "
                f"{config.run.eval_every} epoch(s)")
    train = projected_hours(train_img_per_s, epochs, gpus)
    evaluation = passes * IMAGENET_VAL / (eval_img_per_s * gpus) / 3600
    return {"hours": train + evaluation, "train_hours": train, "eval_hours": evaluation, "epochs": epochs,
            "gpus": gpus, "eval_passes": passes,
            "includes": (f"{epochs} epochs of training steps at the measured rate (EMA update in each step), "
                         f"{passes} evaluation passes over {IMAGENET_VAL:,} images at the measured inference "
                         f"rate ({what}); not included: validation decoding, checkpoints, start-up and compile")}


def machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine (/proc/stat; (0, 0) where absent)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def cores_busy(start: tuple[int, int], end: tuple[int, int]) -> float | None:
    busy, total = end[0] - start[0], end[1] - start[1]
    return busy / total * (os.cpu_count() or 1) if total > 0 else None


@dataclass
class Timing:
    steps: int = 0
    wall_s: float = 0.0
    data_s: float = 0.0
    backpressure_s: float = 0.0
    handover_s: float = 0.0  # the rest of next(): the main thread's own loader work
    restarts: int = 0
    cores_busy: float | None = None


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_steps(batches: Callable[[], Iterator], step: Callable, clock: StallClock | None, dev: torch.device,
               steps: int, warmup: int) -> Timing:
    """warmup + steps steps of `step(batch)` over `batches()`; times only the last `steps`.

    Without a loader clock (the reference DataLoader) all of next() counts as waiting for data:
    its main thread only takes ready batches off a queue, and blocks only when none is ready.
    """
    it, timing = batches(), Timing()
    for done in range(warmup + steps):
        if done == warmup:
            sync(dev)
            if clock is not None:
                clock.reset()
            timing, jiffies, start = Timing(), machine_busy_jiffies(), time.perf_counter()
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:  # an epoch ended: a pipeline restart (counted; sized away)
            timing.restarts += 1
            it = batches()
            batch = next(it)
        timing.handover_s += time.perf_counter() - t0
        step(batch)
    sync(dev)
    timing.wall_s = time.perf_counter() - start
    timing.steps = steps
    timing.cores_busy = cores_busy(jiffies, machine_busy_jiffies())
    if clock is None:
        timing.data_s, timing.handover_s = timing.handover_s, 0.0
    else:
        timing.data_s, timing.backpressure_s = clock.data_s, clock.backpressure_s
        timing.handover_s = max(timing.handover_s - clock.data_s - clock.backpressure_s, 0.0)
    return timing


def eval_rate(model: torch.nn.Module, batch: int, img_size: int, dev: torch.device, precision: str,
              steps: int = 5) -> float:
    """Inference images/s of `model` (eager, eval mode, autocast as training), synthetic input."""
    x = torch.randn(batch, 3, img_size, img_size, device=dev).contiguous(memory_format=torch.channels_last)
    was = model.training
    model.eval()
    with torch.no_grad(), autocast_for(dev, precision):
        model(x)
        sync(dev)
        start = time.perf_counter()
        for _ in range(steps):
            model(x)
        sync(dev)
    model.train(was)
    return steps * batch / (time.perf_counter() - start)


# ----------------------------------------------------------------------------- the rows


@dataclass(frozen=True)
class RowSpec:
    loader: str  # cpu | dali | reference
    step: str  # fastdeit | deit
    batch: int  # per-GPU batch

    @property
    def label(self) -> str:
        if self.loader == "reference":
            return f"reference ({'a' if self.step == 'deit' else 'b'}: {self.step} step)"
        return self.loader


@dataclass
class Model:
    """One model, optimizer and EMA per preset, shared by the rows (compiled once)."""

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    ema: torch.nn.Module | None
    compiled: torch.nn.Module
    loss_fn: Callable = field(default=distillation_loss)


def step_context(model: Model, spec: RowSpec, config: TrainConfig, dev: torch.device) -> tuple[StepContext, dict]:
    """deit's step: fp16 AMP + GradScaler, eager (fp32 eager on a CPU); fastdeit's: the trainer's."""
    if spec.step == "deit":
        fp16 = dev.type == "cuda"
        ctx = StepContext(model=model.module, optimizer=model.optimizer,
                          scaler=torch.amp.GradScaler("cuda") if fp16 else None, ema=model.ema, teacher=None,
                          distill=DistillConfig(), precision="fp16" if fp16 else "fp32",
                          clip_grad=config.optim.clip_grad, device=dev)
        return ctx, {"precision": "fp16 AMP" if fp16 else "fp32 (no fp16 AMP on a CPU)", "compiled": False}
    ctx = StepContext(model=model.compiled, optimizer=model.optimizer, scaler=None, ema=model.ema, teacher=None,
                      distill=DistillConfig(), precision=config.run.precision, clip_grad=config.optim.clip_grad,
                      device=dev, loss_fn=model.loss_fn)
    precision = {"auto": "bf16" if dev.type == "cuda" else "fp32"}.get(config.run.precision, config.run.precision)
    return ctx, {"precision": precision, "compiled": compile_enabled(config.model, dev)}


def run_row(spec: RowSpec, config: TrainConfig, beton: Path, model: Model, num_classes: int, dev: torch.device,
            steps: int, warmup: int) -> dict:
    from fastdeit.augment.pipeline import DeviceAugment

    ctx, step_info = step_context(model, spec, config, dev)
    lr = 1e-4

    # fastdeit's step takes bf16 images where it runs in bf16 (as device augmentation gives them), so
    # deit's float32 batches in setting (b) reuse the compiled graph of the other rows
    in_dtype = torch.bfloat16 if spec.step == "fastdeit" and step_info["precision"] == "bf16" else None

    def train(images, targets):
        if in_dtype is not None:
            images = images.to(in_dtype)
        train_step(ctx, images.contiguous(memory_format=torch.channels_last), targets, lr)

    if spec.loader == "reference":
        from fastdeit.data.reference import ReferenceMixup

        loader = reference_loader(config, str(beton))
        mix = ReferenceMixup(config.augment, num_classes)

        def step(batch):  # deit engine.py: copy (non_blocking from pinned memory), then mixup_fn
            images, labels = batch
            images = images.to(dev, non_blocking=True)
            labels = labels.to(dev, non_blocking=True)
            train(*mix(images, labels))

        clock, close, n_steps = None, (lambda: None), len(loader)
    else:
        reader = BetonReader(beton)
        plan_cfg = _plan_config(config)
        # the trainer's thread budget (fastdeit/data/thread_budget.py): decode threads beside torch's
        from fastdeit.data.thread_budget import apply_thread_budget, cores_per_process, thread_budget

        budget = thread_budget(cores_per_process(), config.data.workers, spec.loader)
        apply_thread_budget(budget)
        threads = budget.loader
        if spec.loader == "dali":
            from fastdeit.data.dali_loader import DaliLoader as Loader
        else:
            from fastdeit.data.loader import CpuLoader as Loader
        try:
            loader = Loader(reader, plan_cfg, seed=0, threads=threads, device=dev)
        except ValueError as err:
            raise ValueError(f"{beton}: {err}") from None
        dtype = torch.bfloat16 if step_info["precision"] == "bf16" else torch.float32
        augment = DeviceAugment(config.augment, num_classes, out_dtype=dtype)

        def step(batch):
            train(*augment.apply_to_batch(batch))

        clock, close, n_steps = loader.stall_clock, loader.close, len(loader)
    if n_steps < steps + warmup:
        close()
        raise ValueError(f"{beton}: one epoch gives {n_steps} batches of {spec.batch}; the benchmark times "
                         f"{warmup} + {steps} without a pipeline restart: use a file of at least "
                         f"{images_needed((spec.batch,), steps, warmup)} images (or drop --data to generate one)")
    try:
        timing = time_steps(lambda: iter(loader), step, clock, dev, steps, warmup)
    finally:
        close()
        del loader
    wall = timing.wall_s
    return {
        "loader": spec.loader, "step": spec.step, "label": spec.label, "batch": spec.batch, "steps": timing.steps,
        "warmup": warmup, "workers": config.data.workers, **step_info, "ema": model.ema is not None,
        "img_per_s": timing.steps * spec.batch / wall,
        "data_wait_share": timing.data_s / wall, "backpressure_share": timing.backpressure_s / wall,
        "handover_share": timing.handover_s / wall, "pipeline_restarts": timing.restarts,
        "cpu_cores_busy": timing.cores_busy,
    }


def _plan_config(config: TrainConfig):
    from fastdeit.data.plan import PlanConfig

    return PlanConfig.from_configs(config.data, config.augment)


def build_model(config: TrainConfig, num_classes: int, dev: torch.device) -> Model:
    module = create_model(config.model, num_classes, config.data.img_size).to(dev)
    module = module.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(module, config.optim, config.data.global_batch, dev)
    ema = build_ema(module, config.run) if config.run.ema else None
    return Model(module, optimizer, ema, maybe_compile(module, config.model, dev),
                 maybe_compile(distillation_loss, config.model, dev))


def row_specs(loaders: tuple[str, ...], batches: tuple[int, ...], reference_steps: tuple[str, ...]) -> list[RowSpec]:
    for name in loaders:
        if name not in LOADERS:
            raise ValueError(f"loader {name!r}: expected one of {', '.join(LOADERS)}")
    for s in reference_steps:
        if s not in REFERENCE_STEPS:
            raise ValueError(f"reference step {s!r}: expected one of {', '.join(REFERENCE_STEPS)}")
    if not batches or any(b < 2 or b % 2 for b in batches):
        raise ValueError(f"per-GPU batches must be even and >= 2, got {list(batches)}")
    return [RowSpec(name, s, b) for b in batches for name in loaders
            for s in (reference_steps if name == "reference" else ("fastdeit",))]


def run(preset: str = "deit_s_300ep", *, data: str | None = None, overrides: list[str] | None = None,
        loaders: tuple[str, ...] = ("cpu",), batches: tuple[int, ...] = (128, 256),
        reference_steps: tuple[str, ...] = REFERENCE_STEPS, steps: int = 50, warmup: int = 10,
        max_res: int = 512, device: str = "auto", echo: Callable[[str], None] | None = print) -> dict:
    """Rows for each per-GPU batch x loader (x reference step); see the module docstring."""
    specs = row_specs(tuple(loaders), tuple(batches), tuple(reference_steps))
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got {steps}, {warmup}")
    base = build_config(preset, overrides=overrides or [])
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    result = {"benchmark": "e2e", "preset": preset, "overrides": overrides or [], "device": gpu or "cpu",
              "machine": describe_machine(gpu=gpu), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        if data:
            beton = Path(data)
            if not beton.is_file():
                raise ValueError(f"{beton}: no such file")
        else:
            beton = sample_beton(Path(tmp) / "bench.beton", images_needed(batches, steps, warmup), max_res)
        with BetonReader(beton) as reader:
            num_classes = max(reader.num_classes, 2)
            result["data"] = {"file": str(beton) if data else f"generated, max side {max_res}", "images": len(reader)}
        model = build_model(base, num_classes, dev)
        rate_eval = eval_rate(model.module, min(batches), base.data.img_size, dev, base.run.precision)
        result["eval_img_per_s"] = rate_eval
        for spec in specs:
            config = replace(base, data=replace(base.data, global_batch=spec.batch))
            row = run_row(spec, config, beton, model, num_classes, dev, steps, warmup)
            row["projection_8gpu"] = projection(row["img_per_s"], rate_eval, base, spec.step)
            result["rows"].append(row)
            if echo is not None:
                echo(format_row(preset, result["device"], row))
    return result


def format_row(preset: str, device: str, row: dict) -> str:
    busy = "n/a" if row["cpu_cores_busy"] is None else f"{row['cpu_cores_busy']:.1f}"
    p = row["projection_8gpu"]
    return (f"{preset} on {device}, {row['label']}, batch {row['batch']} ({row['precision']}"
            f"{', compiled' if row['compiled'] else ', eager'}{', EMA' if row['ema'] else ''}): "
            f"{row['img_per_s']:.1f} img/s, waiting for data {100 * row['data_wait_share']:.1f}%, "
            f"backpressure {100 * row['backpressure_share']:.1f}%, {busy} cores busy, "
            f"{row['steps']} steps, {row['pipeline_restarts']} restarts; projected {p['epochs']} epochs on "
            f"{p['gpus']} such devices: {p['hours']:.1f} h ({p['train_hours']:.1f} h training + "
            f"{p['eval_hours']:.1f} h for {p['eval_passes']} evaluation passes; paper: DeiT-B "
            f"{PAPER_HOURS_DEIT_B:.0f} h on 8 V100s)")


def main(argv: list[str] | None = None) -> None:
    """`python -m fastdeit.bench.e2e E2E.beton [DALI.beton]`: write the GPU check's files where
    absent: the e2e file (warmup + 50 steps of batch 256 in one epoch) and a 4,096-image one."""
    import sys

    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not 1 <= len(paths) <= 2:
        raise SystemExit("usage: python -m fastdeit.bench.e2e E2E.beton [DALI.beton]")
    for path, n in zip(paths, (images_needed((128, 256), 50, 10), 4096)):
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            sample_beton(path, n, 512)
        print(f"{path}: {n} images, max side 512")


if __name__ == "__main__":
    main()
