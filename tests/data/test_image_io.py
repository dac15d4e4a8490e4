"""Image reading for prepare: the simplejpeg fast path agrees with PIL on every EXIF orientation,
and files it cannot take (CMYK, damaged) fall back to PIL or fail with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from fastdeit.data.image_io import ImageError, _load_pil, encode_jpeg, jpeg_info, load_rgb, target_size
from fastdeit.data.sample_images import photo_crops


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pil(tmp_path, orientation):
    base = photo_crops(1, (48, 32), seed=orientation)[0]
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / "o.jpg"
    Image.fromarray(base).save(p, quality=95, exif=exif)
    want = np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB"))
    got = load_rgb(p)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, _load_pil(p.read_bytes(), 0))
    swapped = orientation in (5, 6, 7, 8)
    assert got.shape[:2] == ((48, 32) if swapped else (32, 48))


def test_big_jpeg_is_downscaled_like_pil(tmp_path):
    big = np.asarray(Image.fromarray(photo_crops(1, (120, 80))[0]).resize((1200, 800), Image.Resampling.BICUBIC))
    p = tmp_path / "big.jpg"
    Image.fromarray(big).save(p, quality=90)
    got, ref = load_rgb(p, 100), _load_pil(p.read_bytes(), 100)
    assert got.shape == ref.shape == (66, 100, 3)
    assert np.abs(got.astype(int) - ref).mean() < 2


def test_damaged_files(tmp_path):
    p = tmp_path / "t.jpg"
    data = encode_jpeg(photo_crops(1, (64, 48))[0], 90)
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        load_rgb(p)
    with pytest.raises(ImageError, match="no such file"):
        load_rgb(tmp_path / "missing.jpg")


def test_helpers():
    assert target_size(640, 480, 512) == (512, 384)
    assert target_size(300, 200, 512) == (300, 200)
    assert target_size(5000, 3, 512) == (512, 1)
    with pytest.raises(ValueError, match="not a JPEG"):
        jpeg_info(b"\x89PNG....")
