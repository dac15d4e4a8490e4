"""Resolve `--data`/`--val` (a .beton file, an ImageFolder directory, or `demo`) into loaders, and
turn each loader's batches into what the step takes: (final images, soft targets).

Two kinds of train loader:
- `reference`: torchvision ImageFolder (or .beton) + timm's per-image transforms + deit's
  RASampler, mixed with timm's Mixup per mixing group. The fidelity baseline.
- `cpu` / `dali`: the view-plan loaders (threads or DALI decode + crop on uint8), followed by the
  batched device augmentation. Views are pure functions of (seed, epoch, position).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.train.distributed import barrier


@dataclass
class TrainData:
    loader: Any
    sampler: Any  # the reference loader's RASampler; None for plan loaders
    num_classes: int
    planned: bool  # True for plan-driven loaders (cpu, dali): exact mid-epoch resume


def is_beton(path: str) -> bool:
    return Path(path).is_file()


def demo_beton(split_dir: Path, is_main: bool) -> str:
    """The demo split as a .beton beside it (prepared once, by rank 0)."""
    out = split_dir.with_suffix(".beton")
    if is_main and not out.exists():
        from fastdeit.data.prepare import prepare_dataset

        prepare_dataset(split_dir, out, max_res=64, workers=1, progress=False)
    barrier()
    return str(out)


def resolve_paths(data: DataConfig, is_main: bool = True) -> tuple[str, str]:
    """`demo` means the embedded procedural dataset, generated on first use."""
    train, val = data.train, data.val
    if not train:
        raise ValueError("data.train is empty: pass --data PATH (a .beton file or an ImageFolder directory)")
    if train == "demo" or val == "demo":
        from fastdeit.data.demo import ensure_demo_dataset

        demo = ensure_demo_dataset()
        as_beton = data.loader != "reference"
        if train == "demo":
            train = demo_beton(demo.train_dir, is_main) if as_beton else str(demo.train_dir)
        if val == "demo":
            val = demo_beton(demo.val_dir, is_main) if as_beton else str(demo.val_dir)
    for key, path in (("data.train", train), ("data.val", val)):
        if path and not Path(path).exists():
            raise ValueError(f"{key}: no such file or directory {path}")
    if data.loader != "reference" and not is_beton(train):
        raise ValueError(f"data.loader = {data.loader!r} reads .beton files, but data.train = {train} is a "
                         f"directory: run `fastdeit prepare {train} TRAIN.beton` first, or use data.loader=reference")
    return train, val


def build_train_data(data: DataConfig, aug: AugmentConfig, path: str, *, rank: int, world_size: int,
                     seed: int, device: torch.device) -> TrainData:
    """The train loader of `data.loader`, with this process's threads budgeted (thread_budget.py):
    loader threads, torch's and numba's together within the cores this process may use."""
    from fastdeit.data.thread_budget import apply_thread_budget, cores_per_process, thread_budget

    budget = thread_budget(cores_per_process(), data.workers, data.loader)
    apply_thread_budget(budget)
    if data.loader == "reference":
        from fastdeit.data.reference import build_train_loader

        loader, num_classes, sampler = build_train_loader(data, aug, path, rank=rank, world_size=world_size,
                                                          seed=seed)
        return TrainData(loader=loader, sampler=sampler, num_classes=num_classes, planned=False)
    from fastdeit.data.beton import BetonReader
    from fastdeit.data.plan import PlanConfig

    reader = BetonReader(path)
    plan_cfg = PlanConfig.from_configs(data, aug)
    if data.loader == "cpu":
        from fastdeit.data.loader import CpuLoader

        loader = CpuLoader(reader, plan_cfg, seed=seed, rank=rank, world_size=world_size,
                           threads=budget.loader, device=device)
    else:
        from fastdeit.data.dali_loader import DaliLoader

        loader = DaliLoader(reader, plan_cfg, seed=seed, rank=rank, world_size=world_size,
                            threads=budget.loader, device=device)
    return TrainData(loader=loader, sampler=None, num_classes=reader.num_classes, planned=True)


def build_val_loader(data: DataConfig, path: str, *, rank: int, world_size: int):
    from fastdeit.data.reference import build_eval_loader

    return build_eval_loader(data, path, rank=rank, world_size=world_size)


class Batches:
    """Iterate one epoch of (images, soft targets) ready for the step, from step `start` on."""

    def __init__(self, train_data: TrainData, aug: AugmentConfig, num_classes: int, device: torch.device,
                 out_dtype: torch.dtype):
        self.data = train_data
        if train_data.planned:
            from fastdeit.augment.pipeline import DeviceAugment

            self.augment = DeviceAugment(aug, num_classes, out_dtype=out_dtype)
        else:
            from fastdeit.data.reference import ReferenceMixup

            self.mix = ReferenceMixup(aug, num_classes)
        self.device = device
        self.num_classes = num_classes
        self.teacher_cache = None  # set by the trainer when distill.cache is given

    def epoch(self, epoch: int, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """(images, soft targets, cached teacher logits or None) for each step from `start`."""
        loader = self.data.loader
        if self.data.planned:
            loader.seek(epoch, start)  # the plan makes any step of any epoch directly addressable
            for batch in loader:
                images, targets = self.augment.apply_to_batch(batch)
                teacher_logits = None
                if self.teacher_cache is not None:
                    teacher_logits = self.teacher_cache.logits_for(batch.epoch, batch.positions, self.num_classes,
                                                                   self.device)
                yield images, targets, teacher_logits
            return
        import itertools

        self.data.sampler.set_epoch(epoch)
        for images, labels in itertools.islice(iter(loader), start, None):
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            yield (*self.mix(images, labels), None)
