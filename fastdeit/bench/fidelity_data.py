"""The data sets of `fastdeit bench fidelity`, built once into a cache directory.

* digits: scikit-learn's handwritten digits (1,797 real 8x8 images, 10 classes), upscaled
  bicubically to 32x32 RGB and saved as JPEG quality 95, split 85/15 by a fixed seed (1,528
  train, 269 val), then `fastdeit prepare`d into train.beton / val.beton (issue 17's set-up);
* demo: fastdeit's embedded procedural demo data set, prepared as the trainer prepares it.

Each split is an ImageFolder directory (what `data.loader = reference` may read) and a .beton
file (what every loader reads in the harness: the same stored bytes for all of them). Files are
written under temporary names and renamed, so an interrupted build is rebuilt, never half-used.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIGITS_SIZE = 32  # issue 17: 8x8 -> 32x32
DIGITS_QUALITY = 95  # issue 17: JPEG q95
DIGITS_VAL_FRACTION = 0.15  # issue 17: fixed 85/15 split
DIGITS_SPLIT_SEED = 0
DIGITS_VERSION = 1
DATASETS = ("digits", "demo")


@dataclass(frozen=True)
class FidelityData:
    """A prepared data set: .beton files and ImageFolder directories of both splits."""

    name: str
    train: Path
    val: Path
    train_dir: Path
    val_dir: Path
    num_classes: int


def digits_split(n: int, seed: int = DIGITS_SPLIT_SEED, val_fraction: float = DIGITS_VAL_FRACTION
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices) of a fixed seeded permutation: 1,528 / 269 for n = 1,797."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(n * val_fraction)  # floor: 269 of 1,797, as issue 17
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def digits_image(pixels: np.ndarray):
    """One sklearn digit (8x8, values 0..16) as a 32x32 RGB PIL image, upscaled bicubically."""
    from PIL import Image

    grey = np.clip(np.rint(pixels.reshape(8, 8) * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    small = Image.fromarray(grey, mode="L").resize((DIGITS_SIZE, DIGITS_SIZE), Image.Resampling.BICUBIC)
    return small.convert("RGB")


def _write_digits_folder(root: Path, images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> None:
    for label in range(10):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
    for i in indices:
        digits_image(images[i]).save(root / str(int(labels[i])) / f"{int(i):04d}.jpg", quality=DIGITS_QUALITY)


def _prepare(folder: Path, out: Path) -> None:
    from fastdeit.data.prepare import prepare_dataset

    tmp = out.with_name(out.stem + ".partial.beton")
    for stale in out.parent.glob(out.stem + ".partial*"):
        stale.unlink()
    prepare_dataset(folder, tmp, workers=1, progress=False)
    tmp.replace(out)


def build_digits(cache: Path) -> FidelityData:
    """The digits set under cache/digits (built on first use; reused when its marker matches)."""
    root = Path(cache) / "digits"
    marker = {"format": "fastdeit-fidelity-digits", "version": DIGITS_VERSION, "size": DIGITS_SIZE,
              "quality": DIGITS_QUALITY, "val_fraction": DIGITS_VAL_FRACTION, "split_seed": DIGITS_SPLIT_SEED}
    found = _describe(root, "digits", 10)
    if _read_marker(root) == marker and found.train.is_file() and found.val.is_file():
        return found
    if root.exists() and _read_marker(root) is None and any(root.iterdir()):
        raise ValueError(f"{root} exists and is not a fidelity digits cache (no marker): refusing to overwrite it")
    from sklearn.datasets import load_digits

    digits = load_digits()
    train_idx, val_idx = digits_split(len(digits.target))
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for split, idx in (("train", train_idx), ("val", val_idx)):
        _write_digits_folder(tmp / split, digits.images, digits.target, idx)
        _prepare(tmp / split, tmp / f"{split}.beton")
    (tmp / "marker.json").write_text(json.dumps(marker))
    shutil.rmtree(root, ignore_errors=True)
    tmp.replace(root)
    return _describe(root, "digits", 10)


def build_demo() -> FidelityData:
    """The embedded demo set (fastdeit's cache) and its .beton files, as `train --preset demo` makes them."""
    from fastdeit.data.demo import ensure_demo_dataset
    from fastdeit.train.data_source import demo_beton

    demo = ensure_demo_dataset()
    return FidelityData("demo", Path(demo_beton(demo.train_dir, True)), Path(demo_beton(demo.val_dir, True)),
                        demo.train_dir, demo.val_dir, demo.num_classes)


def build_dataset(name: str, cache: Path) -> FidelityData:
    """`digits` or `demo`, prepared (ValueError naming the value otherwise)."""
    if name == "digits":
        return build_digits(cache)
    if name == "demo":
        return build_demo()
    raise ValueError(f"--dataset {name!r}: expected one of {', '.join(DATASETS)}")


def _describe(root: Path, name: str, num_classes: int) -> FidelityData:
    return FidelityData(name, root / "train.beton", root / "val.beton", root / "train", root / "val", num_classes)


def _read_marker(root: Path) -> dict | None:
    try:
        return json.loads((root / "marker.json").read_text())
    except (OSError, ValueError):
        return None
