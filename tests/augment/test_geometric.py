"""The plain-torch affine warp (the GPU path) against PIL via timm, and against the numba
kernel used on the CPU.

Tolerance for the torch path: PIL's bicubic (a = -1) is reproduced in PIL's Horner form, but
in float32 where PIL uses double before truncating to uint8, so a value within ~1e-5 of an
integer can fall one grey level lower or higher: |diff| <= 1 everywhere and on at most 1 % of
values (measured: at most 1, on <= 0.25 % of values, on these photographs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augment_reference import timm_reference, to_batch
from fastdeit.augment import geometric, levels, ops

GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
MAGNITUDES = (0.0, 4.0, -9.0, 10.0)


def matrices(name: str, m: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if name == "Rotate":
        return geometric.rotate_matrix(levels.rotate_degrees(m), h, w)
    if name == "ShearX":
        return geometric.shear_x_matrix(levels.shear_factor(m))
    if name == "ShearY":
        return geometric.shear_y_matrix(levels.shear_factor(m))
    t = levels.translate_fraction(m)
    zero = torch.zeros_like(t)
    return geometric.translate_matrix(t * w, zero) if name == "TranslateXRel" else geometric.translate_matrix(zero, t * h)


@pytest.mark.parametrize("name", GEOMETRIC)
def test_torch_path_is_within_one_grey_level_of_pil(name, photos):
    for (h, w), crops in photos.items():
        if h > 100:
            continue  # 64x64 and 56x72 cover square and non-square; keeps the test quick
        cases = [(img, m) for img in crops for m in MAGNITUDES]
        batch = to_batch([img for img, _ in cases])
        mags = torch.tensor([m for _, m in cases])
        out = geometric.warp_affine_torch(batch, matrices(name, mags, h, w), ops.IMAGENET_FILL)
        for i, (img, m) in enumerate(cases):
            diff = np.abs(out[i].permute(1, 2, 0).numpy().astype(np.int16) - timm_reference(name, img, m))
            assert diff.max() <= 1 and (diff > 0).mean() <= 0.01, (name, m, (h, w))


def test_torch_and_numba_paths_agree_bilinear_too(photos):
    batch = to_batch(photos[(56, 72)] * 3)
    mags = torch.tensor([3.0, -6.0, 8.0, -10.0, 1.0, 7.5])
    for interpolation in ("bicubic", "bilinear"):
        mat = matrices("Rotate", mags, 56, 72)
        a = geometric.warp_affine(batch, mat, ops.IMAGENET_FILL, interpolation)
        b = geometric.warp_affine_torch(batch, mat, ops.IMAGENET_FILL, interpolation)
        diff = (a.to(torch.int16) - b.to(torch.int16)).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() <= 0.01, interpolation


def test_bilinear_matches_pil(photos):
    from PIL import Image

    img = photos[(64, 64)][0]
    out = geometric.warp_affine(to_batch([img]), torch.tensor([[1.0, 0.2, 3.3, -0.1, 1.0, 2.7]], dtype=torch.float64), (1, 2, 3),
                                "bilinear")[0]
    ref = Image.fromarray(img).transform((64, 64), Image.AFFINE, (1.0, 0.2, 3.3, -0.1, 1.0, 2.7),
                                         resample=Image.BILINEAR, fillcolor=(1, 2, 3))
    diff = np.abs(out.permute(1, 2, 0).numpy().astype(np.int16) - np.asarray(ref))
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.001


def test_channels_last_input_gives_the_same_result(photos):
    batch = to_batch(photos[(64, 64)])
    mat = matrices("ShearX", torch.tensor([5.0, -5.0]), 64, 64)
    cl = batch.contiguous(memory_format=torch.channels_last)
    assert torch.equal(geometric.warp_affine(cl, mat, ops.IMAGENET_FILL), geometric.warp_affine(batch, mat, ops.IMAGENET_FILL))
