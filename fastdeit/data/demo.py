"""The embedded demo dataset: ten classes of coloured shapes, generated on first use.

Why procedural: `fastdeit train --preset demo` must work on a fresh machine with no download,
and a tiny DeiT must learn it to >= 80% top-1 within minutes on two CPU cores under the full
DeiT recipe. So the class is the SHAPE only (hues, sizes, positions, tilts and the textured
background are random and independent of the class: RandAugment inverts and solarizes, so
colour could never be a reliable cue anyway), shapes are large enough to survive
RandomResizedCrop, and what makes a ViT start slowly without helping the point of the demo is
kept small: a bright shape, large and near the centre, on a darker, calm background, standing
roughly upright. No two classes differ only in fine detail (a hexagon, once tried, was mostly
taken for a circle at 40 px).

Everything is a pure function of (seed, split, class, index), so the bytes are identical on
every machine with the same Pillow/libjpeg. The dataset is written to a temporary directory and
renamed into place when complete (DESIGN.md, invariant 5): a killed generation never leaves a
half dataset. A file lock makes concurrent callers (all ranks of a job) wait for one generator.
A version marker makes later format changes regenerate.

Layout: ROOT/train/NN_name/IIII.jpg and ROOT/val/NN_name/IIII.jpg (torchvision ImageFolder; the
NN_ prefix keeps ImageFolder's sorted class order equal to `CLASS_NAMES`).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

#: Bump when the images or the layout change: existing caches are then regenerated.
VERSION = 4
SEED = 20210101
IMAGE_SIZE = 64
JPEG_QUALITY = 90
TRAIN_PER_CLASS = 300
VAL_PER_CLASS = 50
CLASS_NAMES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "diamond",
    "hourglass",
    "arrow",
    "crescent",
)
MARKER = "fastdeit-demo.json"
_SUPERSAMPLE = 4  # shapes are drawn at 4x and box-filtered down: anti-aliased edges
_SPLIT_IDS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class DemoDataset:
    """Where the generated demo dataset lives (two ImageFolder directories)."""

    root: Path
    train_dir: Path
    val_dir: Path
    num_classes: int
    class_names: tuple[str, ...]


def default_root() -> Path:
    """$FASTDEIT_CACHE/demo, else $XDG_CACHE_HOME/fastdeit/demo, else ~/.cache/fastdeit/demo."""
    if os.environ.get("FASTDEIT_CACHE"):
        return Path(os.environ["FASTDEIT_CACHE"]) / "demo"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fastdeit" / "demo"


def _expected_marker(train_per_class: int, val_per_class: int) -> dict:
    return {
        "format": "fastdeit-demo",
        "version": VERSION,
        "seed": SEED,
        "image_size": IMAGE_SIZE,
        "jpeg_quality": JPEG_QUALITY,
        "classes": list(CLASS_NAMES),
        "train_per_class": train_per_class,
        "val_per_class": val_per_class,
    }


def _read_marker(root: Path) -> dict | None:
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _describe(root: Path) -> DemoDataset:
    return DemoDataset(
        root=root,
        train_dir=root / "train",
        val_dir=root / "val",
        num_classes=len(CLASS_NAMES),
        class_names=CLASS_NAMES,
    )


def ensure_demo_dataset(
    root: str | Path | None = None,
    *,
    train_per_class: int = TRAIN_PER_CLASS,
    val_per_class: int = VAL_PER_CLASS,
) -> DemoDataset:
    """Return the demo dataset under `root`, generating it first if absent or outdated.

    Image i of a class is the same whatever the counts (each image has its own seed), so a
    smaller set (for tests) is a prefix of the full one. A directory that exists but holds
    something else (no demo marker and not empty) is refused rather than overwritten: it might
    be the user's data.
    """
    if train_per_class < 1 or val_per_class < 1:
        raise ValueError(
            f"demo dataset needs >= 1 image per class, got train_per_class={train_per_class}, "
            f"val_per_class={val_per_class}"
        )
    root = Path(root).expanduser() if root is not None else default_root()
    expected = _expected_marker(train_per_class, val_per_class)
    if _read_marker(root) == expected:
        return _describe(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"demo dataset root {root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and _read_marker(root) is None:
        raise ValueError(
            f"demo dataset root {root} is a non-empty directory without a {MARKER} marker; "
            "refusing to overwrite it (choose an empty or new directory)"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    with _generation_lock(root):
        # Concurrent callers (e.g. all ranks of a torchrun job) wait here; the first generates.
        if _read_marker(root) != expected:
            _remove_stale_temps(root)
            tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                generate(tmp, train_per_class, val_per_class)
                _install(tmp, root, expected)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
    if _read_marker(root) != expected:
        raise ValueError(f"demo dataset at {root} is incomplete after generation")
    return _describe(root)


@contextlib.contextmanager
def _generation_lock(root: Path) -> Iterator[None]:
    """An exclusive flock next to `root`; the kernel releases it if the holder dies."""
    with open(root.parent / f".{root.name}.lock", "a") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)


def _install(tmp: Path, root: Path, expected: dict) -> None:
    """Move the finished `tmp` to `root`, first moving an outdated demo dataset out of the way."""
    if root.is_dir() and _read_marker(root) is not None and _read_marker(root) != expected:
        old = root.parent / f".{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(root, old)
        shutil.rmtree(old, ignore_errors=True)
    os.rename(tmp, root)  # atomic; succeeds over a missing or empty directory


def _remove_stale_temps(root: Path) -> None:
    """Delete what killed generators left (called under the lock, so none is still running)."""
    for pattern in (f".{root.name}.tmp-*", f".{root.name}.old-*"):
        for p in root.parent.glob(pattern):
            shutil.rmtree(p, ignore_errors=True)


def generate(
    out: Path, train_per_class: int = TRAIN_PER_CLASS, val_per_class: int = VAL_PER_CLASS
) -> None:
    """Write the dataset and, last, its marker into `out` (created; must not exist)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=False)
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        split_id = _SPLIT_IDS[split]
        for label, name in enumerate(CLASS_NAMES):
            cls_dir = out / split / f"{label:02d}_{name}"
            cls_dir.mkdir(parents=True)
            for i in range(per_class):
                rng = np.random.default_rng([SEED, split_id, label, i])
                img = render(label, rng)
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=JPEG_QUALITY)
                (cls_dir / f"{i:04d}.jpg").write_bytes(buf.getvalue())
    marker = _expected_marker(train_per_class, val_per_class)
    (out / MARKER).write_text(json.dumps(marker, indent=1) + "\n")


# ----------------------------------------------------------------------------- rendering


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth, faint colour field around a random darkish base colour (plus pixel noise later).

    Texture without shape, with a small amplitude (+-10 per channel) so the silhouette stays
    the dominant structure of the image.
    """
    base = rng.uniform(0, 140, size=3)
    coarse = np.clip(base + rng.uniform(-10, 10, size=(3, 3, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def _polygon(n: int, r: float, theta: float, cx: float, cy: float, radii=None) -> list:
    pts = []
    for k in range(n):
        a = theta + 2 * math.pi * k / n
        rk = r if radii is None else r * radii[k % len(radii)]
        pts.append((cx + rk * math.cos(a), cy + rk * math.sin(a)))
    return pts


def _rotated(points: list, r: float, theta: float, cx: float, cy: float) -> list:
    c, s = math.cos(theta), math.sin(theta)
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in points]


_CROSS = [(-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3), (0.3, 1),
          (-0.3, 1), (-0.3, 0.3), (-1, 0.3), (-1, -0.3), (-0.3, -0.3)]
_ARROW = [(-1, -0.22), (0.1, -0.22), (0.1, -0.62), (1, 0), (0.1, 0.62), (0.1, 0.22), (-1, 0.22)]
# Shapes stand roughly upright (+-10 degrees; RandAugment rotates and shears further): fully
# random rotations made a tiny ViT's start far slower (measured: 43% vs 65% val top-1 after
# 400 un-augmented steps), since it must then learn every template in every orientation.
MAX_TILT_DEG = 10.0
_UPRIGHT = {"square": math.pi / 4, "triangle": -math.pi / 2, "star": -math.pi / 2}
_HOURGLASS = [(-0.8, -1), (0.8, -1), (0.14, 0), (0.8, 1), (-0.8, 1), (-0.14, 0)]
_DIAMOND = [(1, 0), (0, 0.55), (-1, 0), (0, -0.55)]


def _shape_mask(label: int, rng: np.random.Generator, size: int) -> Image.Image:
    """An anti-aliased 'L' mask of shape `label` at a random size, position and rotation."""
    big = size * _SUPERSAMPLE
    r = rng.uniform(0.34, 0.42) * big
    margin = big / 2 - r
    cx = big / 2 + rng.uniform(-0.3, 0.3) * margin
    cy = big / 2 + rng.uniform(-0.3, 0.3) * margin
    tilt = math.radians(rng.uniform(-MAX_TILT_DEG, MAX_TILT_DEG))
    theta = _UPRIGHT.get(CLASS_NAMES[label], 0.0) + tilt
    mask = Image.new("L", (big, big), 0)
    d = ImageDraw.Draw(mask)
    name = CLASS_NAMES[label]
    if name == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif name == "square":
        d.polygon(_polygon(4, r, theta, cx, cy), fill=255)
    elif name == "triangle":
        d.polygon(_polygon(3, r * 1.1, theta, cx, cy), fill=255)
    elif name == "star":
        d.polygon(_polygon(10, r * 1.1, theta, cx, cy, radii=(1.0, 0.42)), fill=255)
    elif name == "cross":
        d.polygon(_rotated(_CROSS, r, theta, cx, cy), fill=255)
    elif name == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        ri = r * 0.55
        d.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)
    elif name == "diamond":
        d.polygon(_rotated(_DIAMOND, r * 1.1, theta, cx, cy), fill=255)
    elif name == "hourglass":
        d.polygon(_rotated(_HOURGLASS, r, theta, cx, cy), fill=255)
    elif name == "arrow":
        d.polygon(_rotated(_ARROW, r * 1.1, theta, cx, cy), fill=255)
    elif name == "crescent":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        ox, oy = cx + 0.5 * r * math.cos(theta), cy + 0.5 * r * math.sin(theta)
        ri = r * 0.85
        d.ellipse([ox - ri, oy - ri, ox + ri, oy + ri], fill=0)
    else:  # pragma: no cover - CLASS_NAMES and this table change together
        raise ValueError(f"no renderer for class {name!r}")
    return mask.resize((size, size), Image.Resampling.BOX)


def render(label: int, rng: np.random.Generator, size: int = IMAGE_SIZE) -> Image.Image:
    """One RGB image of class `label`; every random choice comes from `rng`."""
    bg = _background(rng, size)
    alpha = np.asarray(_shape_mask(label, rng, size), dtype=np.float32)[..., None] / 255.0
    # The shape is clearly brighter than the background's mean (figure/ground by brightness, the
    # same for every class); its hue is free, so colour carries no class information. A fixed
    # polarity let a tiny ViT learn markedly faster than either polarity did.
    bg_luma = float(bg.reshape(-1, 3).mean(0) @ _LUMA)
    candidates = rng.uniform(0, 255, size=(16, 3)).astype(np.float32)
    ok = np.flatnonzero(candidates @ _LUMA - bg_luma >= 90)
    fg = candidates[ok[0]] if len(ok) else np.full(3, 255.0, np.float32)
    # pixel noise: stronger on the background (texture) than on the shape (shading)
    bg_sigma, fg_sigma = rng.uniform(4.0, 16.0), rng.uniform(2.0, 10.0)
    sigma = np.float32(bg_sigma) + np.float32(fg_sigma - bg_sigma) * alpha
    noise = rng.standard_normal((size, size, 3), dtype=np.float32) * sigma
    out = bg + (fg - bg) * alpha + noise + np.float32(0.5)
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    if rng.uniform() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 0.8))))
    return img
