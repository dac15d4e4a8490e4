"""Resolve `--data`/`--val` (a .beton file, an ImageFolder directory, or `demo`) into loaders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastdeit.config.schema import AugmentConfig, DataConfig


@dataclass
class TrainData:
    loader: Any
    sampler: Any
    num_classes: int


def resolve_paths(data: DataConfig) -> tuple[str, str]:
    """`demo` means the embedded procedural dataset, generated on first use."""
    train, val = data.train, data.val
    if not train:
        raise ValueError("data.train is empty: pass --data PATH (a .beton file or an ImageFolder directory)")
    if train == "demo" or val == "demo":
        from fastdeit.data.demo import ensure_demo_dataset

        demo = ensure_demo_dataset()
        train = str(demo.train_dir) if train == "demo" else train
        val = str(demo.val_dir) if val == "demo" else val
    for key, path in (("data.train", train), ("data.val", val)):
        if path and not Path(path).exists():
            raise ValueError(f"{key}: no such file or directory {path}")
    return train, val


def build_train_data(data: DataConfig, aug: AugmentConfig, path: str, *, rank: int, world_size: int,
                     seed: int) -> TrainData:
    if data.loader != "reference":
        raise ValueError(f"data.loader = {data.loader!r} is not available yet; use data.loader=reference")
    from fastdeit.data.reference import build_train_loader

    loader, num_classes, sampler = build_train_loader(data, aug, path, rank=rank, world_size=world_size, seed=seed)
    return TrainData(loader=loader, sampler=sampler, num_classes=num_classes)


def build_val_loader(data: DataConfig, path: str, *, rank: int, world_size: int):
    from fastdeit.data.reference import build_eval_loader

    return build_eval_loader(data, path, rank=rank, world_size=world_size)
