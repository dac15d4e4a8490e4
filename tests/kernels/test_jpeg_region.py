"""Region JPEG decoding (fastdeit.kernels._jpeg_region) gives the whole-image decode's crops bit for bit."""

import io
import os
import shutil

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from fastdeit.data import cpu_decoder, philox
from fastdeit.data.cpu_decoder import REGION_DECODE_AVAILABLE, dct_factor, decode_crop_resize
from fastdeit.data.plan import rrc_boxes
from fastdeit.kernels.resize import needed_region, resize_crop

needs_ext = pytest.mark.skipif(not REGION_DECODE_AVAILABLE, reason="_jpeg_region not built")

# (subsampling, progressive, grayscale): Pillow's 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0
KINDS = [(2, False, False), (0, False, False), (1, False, False), (2, True, False),
         (1, True, False), (0, False, True), (0, True, True)]


@pytest.fixture(scope="module")
def photos():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    return sklearn_datasets.load_sample_images().images  # two 427x640 photographs


def encode(rgb, subsampling, progressive, gray, quality=90):
    img = Image.fromarray(rgb)
    if gray:
        img = img.convert("L")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, subsampling=subsampling, progressive=progressive)
    return np.frombuffer(buf.getvalue(), np.uint8)


def crops(n, width, height, seed):
    """RandomResizedCrop boxes plus crops touching each edge, the corners and the whole image."""
    u = philox.uniform(seed, 0, np.arange(n), 1, 40)
    rrc = rrc_boxes(u, np.full(n, width), np.full(n, height), (0.08, 1.0), (3 / 4, 4 / 3))
    h, w = max(height // 3, 1), max(width // 3, 1)
    edges = [(0, 0, height, width), (0, 0, h, w), (height - h, width - w, h, w), (0, width // 3, h, w),
             (height - h, width // 3, h, w), (height // 3, 0, h, w), (height // 3, width - w, h, w),
             (0, 0, height, 1), (0, width - 1, height, 1), (height - 1, 0, 1, width)]
    return [tuple(int(v) for v in c) for c in rrc] + edges


def both(data, width, height, crop, size, flip=False, dct=True):
    a = np.empty((size, size, 3), np.uint8)
    b = np.empty((size, size, 3), np.uint8)
    decode_crop_resize(data, True, width, height, crop, flip, a, dct, region=True)
    decode_crop_resize(data, True, width, height, crop, flip, b, dct, region=False)
    return a, b


@needs_ext
def test_region_decode_equals_full_decode_for_every_crop(photos):
    """Sizes not multiples of 8/16, all subsamplings, grayscale, progressive, DCT factors 1..8,
    crops touching each edge: the region path's output equals the whole-image path's bit for bit."""
    rng = np.random.default_rng(0)
    factors, checked = set(), 0
    for k, (sub, prog, gray) in enumerate(KINDS * 2):
        height, width = int(rng.integers(150, 427)), int(rng.integers(150, 640))
        y, x = int(rng.integers(0, 428 - height)), int(rng.integers(0, 641 - width))
        rgb = np.ascontiguousarray(photos[k % 2][y : y + height, x : x + width])
        data = encode(rgb, sub, prog, gray)
        for j, crop in enumerate(crops(12, width, height, seed=k)):
            size = (16, 37, 64, 112)[j % 4]
            factors.add(dct_factor(crop[2], crop[3], size, size, height, width))
            a, b = both(data, width, height, crop, size, flip=j % 3 == 0, dct=j % 5 != 0)
            assert np.array_equal(a, b), (sub, prog, gray, width, height, crop, size)
            checked += 1
    assert factors == {1, 2, 4, 8} and checked >= 300


@needs_ext
def test_tiny_images_and_one_pixel_crops(photos):
    for sub, prog, gray in KINDS:
        for height, width in [(1, 1), (7, 13), (17, 9), (33, 31)]:
            data = encode(np.ascontiguousarray(photos[0][:height, :width]), sub, prog, gray)
            for crop in crops(4, width, height, seed=width)[: 4 + 3]:
                for size in (1, 5, 24):
                    a, b = both(data, width, height, crop, size)
                    assert np.array_equal(a, b), (sub, prog, gray, width, height, crop, size)


@needs_ext
def test_region_pixels_equal_full_decode_away_from_the_cut_columns(photos):
    """Why the decoder adds a column each side: rows are exact, and of the columns only the two at
    a horizontal cut (not an image edge) may differ, where fancy upsampling sees the cut."""
    from fastdeit.kernels import _jpeg_region

    rng = np.random.default_rng(1)
    for trial in range(60):
        sub, prog, gray = KINDS[trial % len(KINDS)]
        height, width = int(rng.integers(20, 427)), int(rng.integers(20, 640))
        data = encode(np.ascontiguousarray(photos[trial % 2][:height, :width]), sub, prog, gray)
        f = (1, 2, 4, 8)[trial % 4]
        h, w = -(-height // f), -(-width // f)
        full = simplejpeg.decode_jpeg(data, min_height=h, min_width=w)
        assert full.shape[:2] == (h, w)
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = int(rng.integers(y0 + 1, h + 1)), int(rng.integers(x0 + 1, w + 1))
        buf = np.empty(h * w * 3, np.uint8)
        xo, n = _jpeg_region.decode(data, buf, f, h, w, y0, y1, x0, x1)
        assert xo <= x0 and xo + n == x1
        region = buf[: (y1 - y0) * n * 3].reshape(y1 - y0, n, 3)
        inner = slice(1 if xo > 0 else 0, n - 1 if x1 < w else n)
        assert np.array_equal(region[:, inner], full[y0:y1, xo : xo + n][:, inner])


@needs_ext
def test_corrupt_truncated_or_mismatched_jpegs_raise_value_error(photos):
    from fastdeit.kernels import _jpeg_region

    data = encode(np.ascontiguousarray(photos[0][:200, :300]), 2, False, False)
    out = np.empty((32, 32, 3), np.uint8)
    bottom = (100, 0, 100, 300)  # reaches the last row, so the missing data is needed
    with pytest.raises(ValueError, match="libjpeg"):
        decode_crop_resize(data[: len(data) // 2], True, 300, 200, bottom, False, out)
    with pytest.raises(ValueError, match="libjpeg"):
        decode_crop_resize(np.frombuffer(b"\xff\xd8not a jpeg", np.uint8), True, 300, 200, bottom, False, out)
    with pytest.raises(ValueError, match="libjpeg"):
        decode_crop_resize(np.zeros(0, np.uint8), True, 300, 200, bottom, False, out)
    garbled = data.copy()
    garbled[len(data) // 3 : len(data) // 3 + 200] = 0xFF  # markers in the entropy-coded data
    with pytest.raises(ValueError):
        decode_crop_resize(garbled, True, 300, 200, bottom, False, out)
    top = (0, 0, 40, 300)  # damage below the crop's last row is never read: the intact pixels
    intact = decode_crop_resize(data, True, 300, 200, top, False, np.empty((32, 32, 3), np.uint8))
    cut = decode_crop_resize(data[: len(data) * 3 // 4], True, 300, 200, top, False, out)
    assert np.array_equal(cut, intact)
    with pytest.raises(ValueError, match="expected"):  # stored size disagrees with the JPEG's
        decode_crop_resize(data, True, 301, 200, bottom, False, out)
    buf = np.empty(200 * 300 * 3, np.uint8)
    with pytest.raises(ValueError, match="scale_denom"):
        _jpeg_region.decode(data, buf, 3, 200, 300, 0, 10, 0, 10)
    with pytest.raises(ValueError, match="outside"):
        _jpeg_region.decode(data, buf, 1, 200, 300, 0, 201, 0, 10)
    with pytest.raises(ValueError, match="too small"):
        _jpeg_region.decode(data, buf[:100], 1, 200, 300, 0, 10, 0, 300)
    with pytest.raises(TypeError):
        _jpeg_region.decode(data, data.tobytes(), 1, 200, 300, 0, 10, 0, 10)  # read-only out


def test_fallback_without_the_extension_gives_the_same_pixels(photos, monkeypatch):
    data = encode(np.ascontiguousarray(photos[1][:300, :400]), 2, False, False)
    got = []
    for available in (REGION_DECODE_AVAILABLE, False):
        monkeypatch.setattr(cpu_decoder, "REGION_DECODE_AVAILABLE", available)
        if not available:
            monkeypatch.setattr(cpu_decoder, "_jpeg_region", None)  # any use would raise
        out = np.empty((64, 64, 3), np.uint8)
        got.append(decode_crop_resize(data, True, 400, 300, (50, 60, 200, 250), True, out).copy())
    assert np.array_equal(got[0], got[1])


def test_resize_of_a_region_needs_the_whole_support(photos):
    img = np.ascontiguousarray(photos[0][:100, :120])
    box, size = (30.5, 20.25, 90.0, 70.0), 24
    ref = resize_crop(img, box, np.empty((size, size, 3), np.uint8))
    y0, y1, x0, x1 = needed_region(box, size, size, 100, 120)
    assert 0 < y0 < 20 and 70 < y1 < 100 and 0 < x0 < 30 and 90 < x1 < 120
    region = np.ascontiguousarray(img[y0:y1, x0:x1])
    out = resize_crop(region, box, np.empty((size, size, 3), np.uint8), origin=(y0, x0), full_size=(100, 120))
    assert np.array_equal(out, ref)
    short = np.ascontiguousarray(img[y0 + 1 : y1, x0:x1])
    with pytest.raises(ValueError, match="every pixel"):
        resize_crop(short, box, np.empty((size, size, 3), np.uint8), origin=(y0 + 1, x0), full_size=(100, 120))
    with pytest.raises(ValueError, match="outside"):
        resize_crop(region, box, np.empty((size, size, 3), np.uint8), origin=(y0, x0 + 50), full_size=(100, 120))


@pytest.mark.skipif(
    not (os.path.exists("/usr/include/jpeglib.h") and shutil.which("cc") or shutil.which("gcc")),
    reason="no libjpeg headers or C compiler here",
)
def test_extension_is_built_where_libjpeg_headers_and_a_compiler_exist():
    """Where the install could build it (CI: scripts/test.sh installs libjpeg-dev), it did."""
    if not os.path.exists("/usr/include/jpeglib.h"):
        pytest.skip("no /usr/include/jpeglib.h")
    assert REGION_DECODE_AVAILABLE


def test_batches_are_the_same_with_region_decode_on_or_off_and_any_thread_count(tmp_path, photos):
    from fastdeit.data.beton import BetonReader, BetonWriter
    from fastdeit.data.cpu_decoder import CpuDecoder
    from fastdeit.data.plan import PlanConfig, make_plan

    with BetonWriter(tmp_path / "p.beton", "jpg", max_resolution=None, jpeg_quality=90) as w:
        for k, (h, wd) in enumerate([(301, 447), (427, 640), (250, 199), (97, 131)] * 2):
            w.add(np.ascontiguousarray(photos[k % 2][k : k + h, :wd]), k)
    r = BetonReader(tmp_path / "p.beton")
    cfg = PlanConfig(img_size=48, global_batch=8, mix_group=4, repeated_aug=1, epoch_multiple=1)
    plan = make_plan(cfg, 0, 0, 0, r.widths, r.heights)
    batches = []
    for threads, region in [(1, True), (2, True), (2, False)]:
        with CpuDecoder(r, threads=threads, chunk=3, region_decode=region) as dec:
            batches.append(dec.decode(plan))
    assert np.array_equal(batches[0], batches[1]) and np.array_equal(batches[0], batches[2])
