"""A tiny real .beton and a tiny real teacher checkpoint for the teacher-cache tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from fastdeit.config.schema import AugmentConfig, DataConfig, DistillConfig
from fastdeit.data.prepare import prepare_dataset

CLASSES = 4
TEACHER = "test_resnet"  # timm's tiny test network (a CNN with BatchNorm, like RegNetY)


def write_folder(root: Path, n: int, seed: int) -> Path:
    """n images of 36..48 px in CLASSES classes: coloured blobs on noise, a learnable signal."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        label = i % CLASSES
        h, w = (int(v) for v in rng.integers(36, 49, 2))
        img = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
        img[h // 4: 3 * h // 4, w // 4: 3 * w // 4, label % 3] = 200 + 15 * label
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / f"c{label}" / f"{i:04d}.jpg", quality=90)
    return root


def make_beton(base: Path, n: int, seed: int) -> str:
    src = write_folder(base / f"src{seed}", n, seed)
    out = base / f"train{seed}.beton"
    prepare_dataset(src, out, max_res=0, progress=False)
    return str(out)


def save_teacher(path: Path, seed: int) -> str:
    torch.manual_seed(seed)
    model = timm.create_model(TEACHER, num_classes=CLASSES)
    torch.save({"model": model.state_dict()}, path)  # deit's teacher file layout
    return str(path)


@dataclass
class Setup:
    data: DataConfig
    augment: AugmentConfig
    distill: DistillConfig
    other_beton: str
    other_teacher: str
    tmp: Path


@pytest.fixture(scope="session")
def setup(tmp_path_factory) -> Setup:
    """272 images -> deit's epoch of 256 samples = 4 steps of 64 (4 mixing groups of 16)."""
    base = tmp_path_factory.mktemp("cache")
    data = DataConfig(train=make_beton(base, 272, 0), loader="cpu", img_size=32, global_batch=64, workers=2)
    augment = AugmentConfig(mix_group=16)  # deit's full recipe: RandAugment, erasing, mixup/cutmix
    distill = DistillConfig(kind="soft", teacher=TEACHER, teacher_checkpoint=save_teacher(base / "t.pt", 0))
    return Setup(data, augment, distill, make_beton(base, 264, 1), save_teacher(base / "t2.pt", 1), base)
