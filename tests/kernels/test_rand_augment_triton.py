"""The fused RandAugment kernels against the per-op torch path (fastdeit.augment.ops, itself
checked against timm/PIL in tests/augment), on crops of real photographs.

Agreement asserted per op family:
* Invert, Posterize, Solarize, SolarizeAdd, Equalize and the four ImageEnhance blends (Color,
  Contrast, Brightness, Sharpness with its 3x3 SMOOTH filter): equal, bit for bit;
* AutoContrast: equal to PIL (timm) bit for bit, and off by at most 1 from the torch path, whose
  `255.0 / tensor` rounds the scale an ulp differently from PIL's Python division;
* Rotate, ShearX/Y, TranslateX/YRel: within +-1 on >= 99.9% of the pixels (the torch path on the
  CPU is PIL's sampler in float64; the kernel samples in float32 as on the GPU).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from fastdeit.augment import ops
from fastdeit.augment.rand_augment import rand_augment as torch_rand_augment

MAGNITUDES = (0.0, 5.0, -5.0, 9.0, -9.0, 10.0, -10.0)
EXACT = {"Equalize", "Invert", "PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing",
         "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"}
GEOMETRIC = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}


def _one_layer(op: torch.Tensor, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return op.view(-1, 1), mag.view(-1, 1).to(torch.float32), torch.ones(op.numel(), 1, dtype=torch.bool)


@pytest.fixture(scope="module")
def every_op_at_every_magnitude(small_photos, device):
    """One launch pair for 15 ops x 7 magnitudes: image k gets op k // 7 at MAGNITUDES[k % 7]."""
    from fastdeit.kernels import count_launches, rand_augment

    n = len(ops.RAND_INCREASING_OPS) * len(MAGNITUDES)
    images = small_photos[torch.arange(n) % len(small_photos)]
    op = torch.arange(n) // len(MAGNITUDES)
    mag = torch.tensor(MAGNITUDES).repeat(len(ops.RAND_INCREASING_OPS))
    with count_launches() as launches:
        out = rand_augment(images.to(device), *_one_layer(op, mag)).cpu()
    return images, op, mag, out, launches


@pytest.mark.parametrize("name", ops.RAND_INCREASING_OPS)
def test_op_matches_the_torch_path_at_magnitudes_0_5_9_10_both_signs(every_op_at_every_magnitude, name):
    images, op, mag, out, _ = every_op_at_every_magnitude
    rows = op == ops.RAND_INCREASING_OPS.index(name)
    want = ops.OPS[name](images[rows].contiguous(), mag[rows])
    diff = (out[rows].to(torch.int16) - want.to(torch.int16)).abs()
    if name in EXACT:
        assert torch.equal(out[rows], want), f"{name}: {int((diff > 0).sum())} pixels differ"
    elif name == "AutoContrast":
        assert int(diff.max()) <= 1
    else:
        assert name in GEOMETRIC
        close = (diff <= 1).float().mean().item()
        assert close >= 0.999, f"{name}: only {close:.4%} of pixels within +-1"


def test_autocontrast_is_pil_exactly(every_op_at_every_magnitude):
    """timm's auto_contrast is PIL's ImageOps.autocontrast."""
    images, op, _, out, _ = every_op_at_every_magnitude
    for i in torch.nonzero(op == ops.RAND_INCREASING_OPS.index("AutoContrast")).view(-1).tolist():
        want = np.array(ImageOps.autocontrast(Image.fromarray(images[i].permute(1, 2, 0).numpy())))
        assert torch.equal(out[i].permute(1, 2, 0), torch.from_numpy(want)), i


def test_one_layer_is_two_launches_whatever_the_ops(every_op_at_every_magnitude):
    *_, launches = every_op_at_every_magnitude
    assert dict(launches) == {"_stats_kernel": 1, "_ra_kernel": 1}


def test_bilinear_and_another_fill_match_the_torch_path(small_photos, device):
    from fastdeit.kernels import rand_augment

    geometric = [ops.RAND_INCREASING_OPS.index(name) for name in sorted(GEOMETRIC)]
    op = torch.tensor(geometric * 2)
    mag = torch.tensor([9.0] * len(geometric) + [-10.0] * len(geometric))
    images = small_photos[torch.arange(len(op)) % len(small_photos)]
    fill = (0, 255, 17)
    out = rand_augment(images.to(device), *_one_layer(op, mag), fill=fill, interpolation="bilinear").cpu()
    want = torch_rand_augment(images, *_one_layer(op, mag), fill=fill, interpolation="bilinear")
    close = ((out.to(torch.int16) - want.to(torch.int16)).abs() <= 1).float().mean().item()
    assert close >= 0.999
    # the fill shows where rotation/shear/translation uncover the border
    assert bool(((out[:, 0] == 0) & (out[:, 1] == 255) & (out[:, 2] == 17)).any())


def test_two_layers_with_skips_match_the_torch_path(small_photos, device):
    """Layer 2 sees layer 1's output; skipped images (apply False) are copied unchanged."""
    from fastdeit.kernels import count_launches, rand_augment

    g = torch.Generator().manual_seed(3)
    n = len(small_photos)
    op = torch.tensor([[1, 10], [8, 0], [2, 4], [7, 5], [6, 9], [0, 1], [3, 13], [12, 2]])
    mag = torch.empty(n, 2).uniform_(-10, 10, generator=g)
    apply = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 1], [0, 0], [1, 1], [1, 0], [0, 1]], dtype=torch.bool)
    with count_launches() as launches:
        out = rand_augment(small_photos.to(device), op, mag, apply).cpu()
    want = torch_rand_augment(small_photos, op, mag, apply)
    assert sum(launches.values()) == 4
    assert torch.equal(out[4], small_photos[4])  # nothing applied: a copy
    for i in range(n):
        if i == 6:  # Rotate: +-1
            assert ((out[i].int() - want[i].int()).abs() <= 1).float().mean() >= 0.999
        else:
            assert torch.equal(out[i], want[i]), i


def test_refuses_bad_parameters(small_photos, device):
    from fastdeit.kernels import rand_augment

    images = small_photos[:2].to(device)
    op, mag, apply = torch.zeros(2, 1, dtype=torch.int64), torch.zeros(2, 1), torch.ones(2, 1, dtype=torch.bool)
    with pytest.raises(ValueError, match="op_index must lie"):
        rand_augment(images, op + 15, mag, apply)
    with pytest.raises(ValueError, match="bool"):
        rand_augment(images, op, mag, apply.int())
    with pytest.raises(ValueError, match="interpolation"):
        rand_augment(images, op, mag, apply, interpolation="nearest")
    with pytest.raises(ValueError, match="uint8"):
        rand_augment(images.float(), op, mag, apply)
