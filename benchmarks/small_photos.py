"""A `.beton` of small photos, as a user's own dataset might be: crops of scikit-learn's two
sample photographs (427x640) with each side drawn uniformly from 100-420 px, saved as an
ImageFolder of JPEGs (quality 90, 10 classes) and prepared with `fastdeit prepare`.

The loader benchmark's `--data` figure on small images (issue 12) uses it:

    python benchmarks/small_photos.py /tmp/small/photos.beton [--images 1500] [--max-res 256]
    fastdeit bench loader --data /tmp/small/photos.beton --json FILE
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SIDES = (100, 420)  # min and max side in pixels of the crops


def write_small_photos(root: Path, n: int, seed: int = 0, classes: int = 10) -> None:
    """n JPEG crops, sides uniform in SIDES, under root/cNN/ (an ImageFolder tree)."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    for k in range(n):
        photo = photos[k % len(photos)]
        w, h = (int(v) for v in rng.integers(SIDES[0], SIDES[1] + 1, 2))
        y = int(rng.integers(0, photo.shape[0] - h + 1))
        x = int(rng.integers(0, photo.shape[1] - w + 1))
        folder = root / f"c{k % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(photo[y : y + h, x : x + w])).save(folder / f"{k:05d}.jpg", quality=90)


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="the .beton to write")
    ap.add_argument("--images", type=int, default=1500)
    ap.add_argument("--max-res", type=int, default=256, help="fastdeit prepare --max-res")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        write_small_photos(Path(tmp), args.images, args.seed)
        subprocess.run([sys.executable, "-m", "fastdeit", "prepare", tmp, str(out), "--max-res",
                        str(args.max_res), "--no-progress"], check=True)
    return out


if __name__ == "__main__":
    main()
