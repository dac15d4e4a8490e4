"""resize_crop equals Pillow's bicubic resize bit for bit over many random boxes: upscaling and
downscaling, flips, odd and tiny sizes, boxes touching the image edges.

Pillow 13 runs the vertical pass first where the height shrinks much more than the width
(python-pillow/Pillow#9549); the pass run first is rounded to 8 bits, so the order shows in the
pixels, and resize_crop follows it (kernels.resize.vertical_first)."""

import numpy as np
import pytest
from PIL import Image

from fastdeit.data.sample_images import photo_crops
from fastdeit.kernels.resize import needed_region, resize_crop


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    sizes = [(256, 192), (97, 131), (513, 384), (7, 5), (1, 9), (300, 1)]
    imgs = [photo_crops(1, s, seed=i)[0] for i, s in enumerate(sizes)]
    imgs.append(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))  # noise: overshoot, clipping
    return imgs


def _random_box(rng, w, h):
    if rng.random() < 0.2:  # integer box, often the whole image or touching an edge
        x0, x1 = sorted(rng.integers(0, w + 1, 2))
        y0, y1 = sorted(rng.integers(0, h + 1, 2))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        if x1 > w:
            x0, x1 = w - 1, w
        if y1 > h:
            y0, y1 = h - 1, h
        return float(x0), float(y0), float(x1), float(y1)
    x0, x1 = sorted(rng.uniform(0, w, 2))
    y0, y1 = sorted(rng.uniform(0, h, 2))
    return x0, y0, max(x1, x0 + 1e-2), max(y1, y0 + 1e-2)


@pytest.mark.parametrize("seed", range(4))
def test_random_boxes_equal_pil(images, seed):
    rng = np.random.default_rng(seed)
    for _ in range(150):
        img = images[int(rng.integers(len(images)))]
        h, w = img.shape[:2]
        box = _random_box(rng, w, h)
        out_w = int(rng.choice([1, 2, 3, 5, 17, 64, 224, int(rng.integers(1, 300))]))
        out_h = int(rng.choice([1, 4, 31, 224, int(rng.integers(1, 300))]))
        flip = bool(rng.random() < 0.5)
        x0, y0, x1, y1 = box
        ref = Image.fromarray(img).resize((out_w, out_h), Image.BICUBIC, box=box)
        if flip:
            ref = ref.transpose(Image.FLIP_LEFT_RIGHT)
        got = resize_crop(img, box, np.empty((out_h, out_w, 3), np.uint8), flip)
        assert np.array_equal(got, np.asarray(ref)), (img.shape, box, out_w, out_h, flip)
        # and from only the region the resize reads
        y0, y1, x0, x1 = needed_region(box, out_h, out_w, h, w)
        got2 = resize_crop(np.ascontiguousarray(img[y0:y1, x0:x1]), box, np.empty_like(got), flip,
                           origin=(y0, x0), full_size=(h, w))
        assert np.array_equal(got2, got)


@pytest.mark.parametrize("size", [(256, 192), (513, 384)])
def test_random_resized_crop_boxes_equal_one_pil_resize(size):
    rng = np.random.default_rng(size[0])
    w, h = size
    img = photo_crops(1, size, seed=5)[0]
    for _ in range(60):
        area = w * h * rng.uniform(0.08, 1.0)
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = min(w, int(round((area * ratio) ** 0.5))), min(h, int(round((area / ratio) ** 0.5)))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        box = (x0, y0, x0 + cw, y0 + ch)
        flip = bool(rng.random() < 0.5)
        ref = Image.fromarray(img).resize((224, 224), Image.BICUBIC, box=box)
        if flip:
            ref = ref.transpose(Image.FLIP_LEFT_RIGHT)
        got = resize_crop(img, box, np.empty((224, 224, 3), np.uint8), flip)
        assert np.array_equal(got, np.asarray(ref)), (box, flip)
