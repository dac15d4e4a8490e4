"""Each batched op against timm's PIL op on real photographs, at several magnitudes and signs.

Reference: timm.data.auto_augment.NAME_TO_OP[name](img, *LEVEL_TO_ARG[name](|m|, hparams),
fillcolor=img_mean, resample=BICUBIC) with deit's hparams, the sign forced by drawing timm's
level function until its random negation gives the sign wanted.

Tolerance: |diff| <= 1 on at most 0.1 % of values (measured: 0 differing values for every op).
The ops reproduce PIL's integer and float arithmetic; the slack is for a float32 blend landing
within an ulp of an integer where PIL truncates. Geometric ops on the CPU use the numba kernel
with PIL's double arithmetic; the plain-torch path used on GPUs is held to PIL in
test_geometric.py with its own, float32, tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import auto_augment as aa

from augment_reference import HPARAMS, timm_reference, to_batch
from fastdeit.augment import ops

MAGNITUDES = (0.0, 3.0, 7.0, 9.0, 10.0, -3.0, -7.0, -9.0, -10.0, 5.5, 9.4)
LARGE_MAGNITUDES = (0.0, 9.0, -7.0, 10.0, -10.0)  # fewer at 224 x 224 to keep the test quick
GEOMETRIC = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}


def test_op_set_is_timms_increasing_set_in_order():
    assert ops.RAND_INCREASING_OPS == tuple(aa._RAND_INCREASING_TRANSFORMS)
    assert set(ops.OPS) == set(aa._RAND_INCREASING_TRANSFORMS)


@pytest.mark.parametrize("name", ops.RAND_INCREASING_OPS)
def test_op_matches_timm_on_photographs(name, photos):
    for size, crops in photos.items():
        magnitudes = [m for m in (LARGE_MAGNITUDES if size[0] > 100 else MAGNITUDES)
                      if not (name == "PosterizeIncreasing" and abs(m) == 10)]
        # One batch per size holding every (crop, magnitude): per-sample magnitudes in one call.
        cases = [(img, m) for img in crops for m in magnitudes]
        batch = to_batch([img for img, _ in cases])
        mags = torch.tensor([m for _, m in cases], dtype=torch.float32)
        out = ops.OPS[name](batch, mags)
        assert out.dtype == torch.uint8 and out.shape == batch.shape
        for i, (img, m) in enumerate(cases):
            ours = out[i].permute(1, 2, 0).numpy().astype(np.int16)
            ref = timm_reference(name, img, m).astype(np.int16)
            diff = np.abs(ours - ref)
            where = f"{name} m={m} size={size} crop={i // len(magnitudes)}"
            assert diff.max() <= 1, f"{where}: max |diff| {diff.max()}"
            assert (diff > 0).mean() <= 0.001, f"{where}: {(diff > 0).mean():.4f} of values differ"


def test_geometric_ops_are_not_identity_and_fill_with_the_mean(photos):
    img = photos[(64, 64)][0]
    out = ops.TranslateXRel(to_batch([img]), torch.tensor([10.0]))[0]
    # shift by 0.45 * 64 = 28.8 px: the last 29 columns come from outside the image
    assert (out[:, :, -28:] == torch.tensor(ops.IMAGENET_FILL, dtype=torch.uint8).view(3, 1, 1)).all()
    assert torch.equal(out[:, :, :34], to_batch([img])[0][:, :, 28:62]) is False  # resampled, not copied
    rot = ops.Rotate(to_batch([img]), torch.tensor([0.0]))[0]
    assert torch.equal(rot, to_batch([img])[0])  # magnitude 0: unchanged, bit for bit


def test_posterize_increasing_at_10_is_black_as_pillow_12(photos):
    """timm keeps 0 bits at magnitude 10; Pillow <= 12 masked every bit off (lut i & ~255),
    Pillow 13's ImageOps.posterize refuses bits=0. deit trained with the black image."""
    img = photos[(64, 64)][0]
    assert aa.LEVEL_TO_ARG["PosterizeIncreasing"](10.0, HPARAMS) == (0,)
    out = ops.PosterizeIncreasing(to_batch([img, img]), torch.tensor([10.0, -10.0]))
    assert out.eq(0).all()
    bits = 0
    lut = np.array([i & ~(2 ** (8 - bits) - 1) for i in range(256)], dtype=np.uint8)  # Pillow <= 12
    pillow12 = lut[img]
    assert torch.equal(out[0].permute(1, 2, 0), torch.from_numpy(pillow12))
    with pytest.raises(ValueError):  # why the op cannot simply call Pillow 13
        aa.NAME_TO_OP["PosterizeIncreasing"](Image.fromarray(img), 0)


def test_magnitude_is_clipped_to_timms_range(photos):
    img = to_batch([photos[(64, 64)][1]] * 2)
    clipped = ops.Rotate(img, torch.tensor([10.0, -10.0]))
    beyond = ops.Rotate(img, torch.tensor([25.0, -13.0]))
    assert torch.equal(clipped, beyond)


def test_ops_refuse_bad_input():
    good = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="uint8"):
        ops.Invert(good.float(), torch.zeros(2))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        ops.Invert(torch.zeros(2, 4, 8, 8, dtype=torch.uint8), torch.zeros(2))
    with pytest.raises(ValueError, match="magnitude"):
        ops.Rotate(good, torch.zeros(3))
    with pytest.raises(ValueError, match="floating"):
        ops.ShearX(good, torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="interpolation"):
        ops.ShearX(good, torch.zeros(2), interpolation="lanczos")


def test_empty_batch_passes_through():
    empty = torch.zeros(0, 3, 8, 8, dtype=torch.uint8)
    for name, op in ops.OPS.items():
        assert op(empty, torch.zeros(0)).shape == empty.shape, name
