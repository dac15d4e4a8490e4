"""Realistic test and benchmark images: crops of real photographs (scikit-learn's two sample
images), so JPEG sizes and encode/decode costs behave like ImageNet's rather than like noise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image


def _photos() -> list[np.ndarray]:
    try:
        from sklearn.datasets import load_sample_images
    except ImportError as err:  # pragma: no cover - dev extra
        raise ImportError("sample images need scikit-learn (pip install scikit-learn)") from err
    return [np.ascontiguousarray(im) for im in load_sample_images().images]


def photo_crops(n: int, size: tuple[int, int] = (96, 64), seed: int = 0) -> list[np.ndarray]:
    """n RGB uint8 images of size (width, height): random crops of the photos, resized (area
    filter) when the requested size is larger than a crop can be."""
    photos = _photos()
    rng = np.random.default_rng(seed)
    w, h = size
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        ph, pw = photo.shape[:2]
        scale = min(1.0, rng.uniform(0.4, 1.0) * min(pw / w, ph / h))
        cw, ch = max(1, int(w * scale)), max(1, int(h * scale))
        cw, ch = min(cw, pw), min(ch, ph)
        y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
        crop = photo[y : y + ch, x : x + cw]
        if (cw, ch) != (w, h):
            crop = np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.BICUBIC))
        out.append(np.ascontiguousarray(crop))
    return out


def write_image_folder(
    root: str | os.PathLike,
    num_classes: int = 3,
    per_class: int = 4,
    size: tuple[int, int] = (96, 64),
    seed: int = 0,
    quality: int = 92,
) -> list[tuple[str, int]]:
    """An ImageFolder tree root/class_XX/img_YYYY.JPEG of photo crops; returns (path, label) in
    torchvision's order."""
    root = Path(root)
    images = photo_crops(num_classes * per_class, size, seed)
    items = []
    for c in range(num_classes):
        d = root / f"class_{c:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            p = d / f"img_{k:04d}.JPEG"
            Image.fromarray(images[c * per_class + k]).save(p, quality=quality)
            items.append((str(p), c))
    return items
