"""The CPU decoder's crops equal PIL's crop + resize(BICUBIC) of the decoded photo: deit's
RandomResizedCrop (torchvision F.resized_crop), which resizes the crop as an image of its own."""

import io

import numpy as np
import pytest
from PIL import Image

from fastdeit.data import philox
from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.cpu_decoder import CpuDecoder, dct_factor, decode_crop_resize
from fastdeit.data.plan import PlanConfig, make_plan, rrc_boxes
from fastdeit.data.sample_images import photo_crops
from fastdeit.kernels.resize import resize_crop


def pil_reference(rgb, crop, flip, size):
    """PIL's crop, then its one bicubic resize call (deit's torchvision resized_crop), in whichever
    pass order this Pillow picks (Pillow 13: vertical first where the height shrinks much more)."""
    top, left, h, w = (int(v) for v in crop)
    cropped = Image.fromarray(rgb).crop((left, top, left + w, top + h))
    out = np.asarray(cropped.resize((size, size), Image.BICUBIC))
    return out[:, ::-1] if flip else out


def boxes(n, width, height, seed=0):
    u = philox.uniform(seed, 0, np.arange(n), 1, 40)
    return rrc_boxes(u, np.full(n, width), np.full(n, height), (0.08, 1.0), (3 / 4, 4 / 3))


@pytest.fixture(scope="module")
def photos_beton(tmp_path_factory):
    path = tmp_path_factory.mktemp("dec") / "photos.beton"
    with BetonWriter(path, "jpg", max_resolution=None, jpeg_quality=90) as w:
        for k, img in enumerate(photo_crops(4, (500, 375), seed=3)):
            w.add(img, k)
    return BetonReader(path)


def test_full_decode_matches_pil_bit_for_bit(photos_beton):
    r = photos_beton
    for i in range(len(r)):
        full = np.asarray(Image.open(io.BytesIO(r.image_bytes(i).tobytes())).convert("RGB"))
        for k, crop in enumerate(boxes(8, int(r.widths[i]), int(r.heights[i]), seed=i)):
            out = np.empty((96, 96, 3), np.uint8)
            decode_crop_resize(r.image_bytes(i), True, int(r.widths[i]), int(r.heights[i]),
                               crop, k % 2 == 1, out, dct_scaling=False)
            assert np.array_equal(out, pil_reference(full, crop, k % 2 == 1, 96))


def test_small_crops_upscaled_match_torchvision_resized_crop(tmp_path):
    """Issue 17's case: 40 px crops of 32 px images. deit's call itself is the reference; the
    decoder before the fix resized the box within the whole image and differed near every edge."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    imgs = photo_crops(4, (32, 32), seed=7)
    with BetonWriter(tmp_path / "small.beton", "jpg", max_resolution=None, jpeg_quality=95) as w:
        for k, img in enumerate(imgs):
            w.add(img, k)
    r = BetonReader(tmp_path / "small.beton")
    around = 0
    for i in range(len(r)):
        full = Image.fromarray(r.decode(i))
        for k, crop in enumerate(boxes(16, 32, 32, seed=20 + i)):
            top, left, h, w = (int(v) for v in crop)
            want = np.asarray(F.resized_crop(full, top, left, h, w, [40, 40], InterpolationMode.BICUBIC))
            for region in (True, False):
                out = np.empty((40, 40, 3), np.uint8)
                decode_crop_resize(r.image_bytes(i), True, 32, 32, crop, False, out, region=region)
                assert np.array_equal(out, want), (i, k, crop, region)
            in_place = full.resize((40, 40), Image.BICUBIC, box=(left, top, left + w, top + h))
            around += not np.array_equal(np.asarray(in_place), want)
    assert around > 32  # resizing the box in place is not what deit does on most of these crops


def test_dct_scaled_decode_stays_close_to_pil():
    """Decoding at 1/2..1/8 in the DCT domain swaps part of the bicubic low-pass for the scaled
    IDCT's: on real photos the mean error stays about a grey level and large differences are
    confined to edges. Bounds: mean |d| <= 2.5 and 99th percentile <= 16 grey levels per crop,
    measured at most 2.2 and 11."""
    photos = [np.asarray(Image.fromarray(p).resize((1280, 854), Image.LANCZOS))
              for p in photo_crops(2, (640, 427), seed=5)]
    checked = 0
    for j, rgb in enumerate(photos):
        data = np.frombuffer(Image_to_jpeg(rgb), np.uint8)
        full = np.asarray(Image.open(io.BytesIO(data.tobytes())).convert("RGB"))
        for crop in boxes(30, 1280, 854, seed=10 + j):
            if dct_factor(int(crop[2]), int(crop[3]), 224, 224, 854, 1280) == 1:
                continue
            out = np.empty((224, 224, 3), np.uint8)
            decode_crop_resize(data, True, 1280, 854, crop, False, out)
            d = np.abs(out.astype(int) - pil_reference(full, crop, False, 224))
            assert d.mean() <= 2.5 and np.percentile(d, 99) <= 16
            checked += 1
    assert checked >= 20


def Image_to_jpeg(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_dct_factor_keeps_the_crop_at_least_the_output_size():
    assert dct_factor(448, 448, 224, 224, 1000, 1000) == 2
    assert dct_factor(447, 900, 224, 224, 1000, 1000) == 1
    assert dct_factor(1000, 1000, 112, 112, 1000, 1000) == 8
    assert dct_factor(500, 500, 112, 112, 1000, 1000) == 4


def test_raw_samples_and_flip_match_pil(tmp_path):
    imgs = photo_crops(3, (120, 90), seed=1)
    with BetonWriter(tmp_path / "raw.beton", "raw", max_resolution=None) as w:
        for k, img in enumerate(imgs):
            w.add(img, k)
    r = BetonReader(tmp_path / "raw.beton")
    assert not r.is_jpeg.any()
    for i, img in enumerate(imgs):
        for k, crop in enumerate(boxes(4, 120, 90, seed=i)):
            out = np.empty((48, 48, 3), np.uint8)
            decode_crop_resize(r.image_bytes(i), False, 120, 90, crop, k % 2 == 0, out)
            assert np.array_equal(out, pil_reference(img, crop, k % 2 == 0, 48))


def test_decoder_fills_a_plan_batch_identically_with_any_thread_count(photos_beton):
    r = photos_beton
    widths, heights = np.tile(r.widths, 16), np.tile(r.heights, 16)  # 64 "images"

    class Tiled:  # the same 4 photos seen as 64 samples
        def __init__(self):
            self.widths, self.heights, self.is_jpeg = widths, heights, np.tile(r.is_jpeg, 16)

        def image_bytes(self, i):
            return r.image_bytes(i % 4)

    cfg = PlanConfig(img_size=64, global_batch=32, mix_group=8, epoch_multiple=32)
    plan = make_plan(cfg, 0, 0, 1, widths, heights)
    with CpuDecoder(Tiled(), threads=1) as one, CpuDecoder(Tiled(), threads=3, chunk=3) as three:
        a, b = one.decode(plan), three.decode(plan)
        here = one.decode_on_this_thread(plan, np.empty_like(a))  # a decode thread's work, no pool
        with pytest.raises(ValueError, match="C-contiguous uint8"):
            one.decode_on_this_thread(plan, np.empty((len(plan), 32, 32, 3), np.uint8))
    assert np.array_equal(a, b)
    assert np.array_equal(a, here)
    with CpuDecoder(Tiled(), threads=2, dct_scaling=False) as exact:
        c = exact.decode(plan)
    for row in range(len(plan)):
        full = r.decode(int(plan.indices[row]) % 4)
        assert np.array_equal(c[row], pil_reference(full, plan.crop[row], plan.flip[row], 64))


def test_corrupt_jpeg_is_reported_with_its_sample():
    class Broken:
        widths, heights, is_jpeg = np.array([64]), np.array([48]), np.array([True])

        def image_bytes(self, i):
            return np.frombuffer(b"\xff\xd8not a jpeg at all", np.uint8)

    cfg = PlanConfig(img_size=16, global_batch=2, mix_group=2, repeated_aug=1, epoch_multiple=1)
    plan = make_plan(cfg, 0, 0, 0, np.full(2, 64), np.full(2, 48))
    src = Broken()
    src.widths, src.heights, src.is_jpeg = np.full(2, 64), np.full(2, 48), np.ones(2, bool)
    with CpuDecoder(src, threads=1) as dec, pytest.raises(ValueError, match="sample"):
        dec.decode(plan)


def test_bad_boxes_and_buffers_are_refused():
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError):
        resize_crop(img, (0, 0, 11, 5), np.empty((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        resize_crop(img, (0, 0, 5, 5), np.empty((4, 4), np.uint8))
