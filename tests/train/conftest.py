"""Tiny real datasets for trainer tests: JPEG ImageFolders of procedural shapes."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

CLASSES = 4
PER_CLASS_TRAIN = 72  # 288 images: one deit epoch = floor(288 / 256) * 256 = 256 samples
PER_CLASS_VAL = 12


def draw(label: int, rng: np.random.Generator, size: int = 32) -> Image.Image:
    img = Image.fromarray(rng.integers(0, 80, (size, size, 3), dtype=np.uint8))
    d = ImageDraw.Draw(img)
    color = tuple(int(c) for c in rng.integers(150, 256, 3))
    r = size * rng.uniform(0.25, 0.4)
    cx, cy = size / 2 + rng.uniform(-3, 3), size / 2 + rng.uniform(-3, 3)
    box = [cx - r, cy - r, cx + r, cy + r]
    if label == 0:
        d.ellipse(box, fill=color)
    elif label == 1:
        d.rectangle(box, fill=color)
    elif label == 2:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    else:
        d.rectangle([cx - r, cy - r / 4, cx + r, cy + r / 4], fill=color)
        d.rectangle([cx - r / 4, cy - r, cx + r / 4, cy + r], fill=color)
    return img


def write_folder(root: Path, per_class: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for label in range(CLASSES):
        (root / f"class_{label}").mkdir(parents=True)
        for i in range(per_class):
            draw(label, rng).save(root / f"class_{label}" / f"{i:03d}.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("tiny")
    return write_folder(base / "train", PER_CLASS_TRAIN, 0), write_folder(base / "val", PER_CLASS_VAL, 1)


# A ViT small enough that a CPU step takes milliseconds; 32 px keeps deit's small-image path.
TINY_MODEL = [
    "model.name=deit_tiny_patch16_224", "model.patch_size=8", "model.embed_dim=32", "model.depth=2",
    "model.num_heads=2", "model.drop_path=0.0", "model.channels_last=false",
    "data.img_size=32", "data.global_batch=64", "data.workers=0", "augment.mix_group=16",
    "schedule.epochs=2", "schedule.warmup_epochs=1", "run.log_every=1", "run.progress=none",
    "run.precision=fp32", "optim.lr=2e-3", "data.loader=reference",
]


def tiny_overrides(train: Path, val: Path | None, out: Path, *extra: str) -> list[str]:
    paths = [f'data.train="{train}"', f'data.val="{val or ""}"', f'run.out="{out}"']
    return TINY_MODEL + paths + list(extra)


@pytest.fixture(scope="session")
def tiny_betons(tiny_folders, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny folders prepared into .beton files (what the plan loaders read)."""
    from fastdeit.data.prepare import prepare_dataset

    base = tmp_path_factory.mktemp("beton")
    train_dir, val_dir = tiny_folders
    prepare_dataset(train_dir, base / "train.beton", max_res=64, progress=False)
    prepare_dataset(val_dir, base / "val.beton", max_res=64, progress=False)
    return base / "train.beton", base / "val.beton"


def cli_sets(overrides: list[str]) -> list[str]:
    """`--set key=value` arguments for the real CLI."""
    return [arg for item in overrides for arg in ("--set", item)]


@pytest.fixture(scope="session")
def half_run(tiny_folders, tmp_path_factory) -> Path:
    """A run stopped after its first epoch (run.max_steps=4 of 8): checkpoint.pt and best.pt at step 4,
    metrics.jsonl, config.toml. Tests copy it before changing anything."""
    from fastdeit.config.load import build_config
    from fastdeit.train.loop import train

    train_dir, val_dir = tiny_folders
    out = tmp_path_factory.mktemp("half") / "run"
    train(build_config("deit_ti_300ep", overrides=tiny_overrides(train_dir, val_dir, out, "run.max_steps=4")),
          "deit_ti_300ep")
    return out
