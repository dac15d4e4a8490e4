"""timm's increasing RandAugment ops ("rand-...-inc1"), batched, one public function per op.

Every op has the signature ``Op(images, magnitude, *, fill=IMAGENET_FILL, interpolation="bicubic")``:

* ``images``: uint8 tensor N x 3 x H x W on any device;
* ``magnitude``: float tensor of N values on timm's 0-10 scale (clipped to it in absolute
  value). timm negates the argument of signed ops (Rotate, Shear*, Translate*Rel, *Increasing
  enhancers) at random with probability 1/2; here the sign of the magnitude is that sign;
* ``fill`` / ``interpolation``: used by the geometric ops only (Rotate, Shear*, Translate*Rel);
  the defaults are what deit hands timm: the ImageNet mean as fill, bicubic.

Each op returns a new uint8 tensor of the same shape and agrees with
``timm.data.auto_augment.NAME_TO_OP[name](img, *LEVEL_TO_ARG[name](m, hparams))`` on each image
(see tests/augment/test_ops_fidelity.py for the measured agreement). One exception, on purpose:
PosterizeIncreasing at magnitude 10 keeps 0 bits and gives a black image, as Pillow <= 12 did
and as deit trained; Pillow 13 raises there instead.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from fastdeit.data.plan import RAND_INCREASING_OPS

from . import enhance, geometric, histogram, levels
from ._checks import check_images, check_per_sample, to_device

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
IMAGENET_FILL = geometric.fill_from_mean(IMAGENET_DEFAULT_MEAN)  # (124, 116, 104)

Op = Callable[..., torch.Tensor]


def _check(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    check_images(images)
    check_per_sample(magnitude, images.shape[0], "magnitude")
    if not magnitude.is_floating_point():
        raise ValueError(f"magnitude must be a floating-point tensor, got {magnitude.dtype}")
    return magnitude  # level arguments are computed where the magnitudes live (the plan: CPU)


def _per_sample(values: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return to_device(values, images.device).view(-1, 1, 1, 1)


def AutoContrast(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
                 interpolation: str = "bicubic") -> torch.Tensor:
    """ImageOps.autocontrast per channel; magnitude unused."""
    _check(images, magnitude)
    return histogram.autocontrast(images)


def Equalize(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
             interpolation: str = "bicubic") -> torch.Tensor:
    """ImageOps.equalize per channel; magnitude unused."""
    _check(images, magnitude)
    return histogram.equalize(images)


def Invert(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
           interpolation: str = "bicubic") -> torch.Tensor:
    """255 - x; magnitude unused."""
    _check(images, magnitude)
    return 255 - images


def Rotate(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
           interpolation: str = "bicubic") -> torch.Tensor:
    """Rotate counter-clockwise by magnitude/10 * 30 degrees about the centre (clockwise if negative)."""
    m = _check(images, magnitude)
    h, w = images.shape[-2:]
    matrix = geometric.rotate_matrix(levels.rotate_degrees(m), h, w)
    return geometric.warp_affine(images, matrix, fill, interpolation)


def PosterizeIncreasing(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
                        interpolation: str = "bicubic") -> torch.Tensor:
    """Keep 4 - int(magnitude/10 * 4) high bits: 4 at 0, 0 (black) at 10."""
    m = _check(images, magnitude)
    bits = levels.posterize_bits(m)
    mask = (255 - ((1 << (8 - bits)) - 1)).to(torch.uint8)  # ~(2**(8-bits) - 1) & 0xFF
    return images & _per_sample(mask, images)


def SolarizeIncreasing(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
                       interpolation: str = "bicubic") -> torch.Tensor:
    """Invert values >= 256 - int(magnitude/10 * 256)."""
    m = _check(images, magnitude)
    thresh = _per_sample(levels.solarize_threshold(m), images)
    return torch.where(images.to(torch.int64) >= thresh, 255 - images, images)


def SolarizeAdd(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
                interpolation: str = "bicubic") -> torch.Tensor:
    """Add int(magnitude/10 * 110) to values below 128, saturating at 255."""
    m = _check(images, magnitude)
    add = _per_sample(levels.solarize_add_amount(m).to(torch.int16), images)
    x = images.to(torch.int16)
    return torch.where(x < 128, (x + add).clamp_max(255), x).to(torch.uint8)


def ColorIncreasing(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
                    interpolation: str = "bicubic") -> torch.Tensor:
    """ImageEnhance.Color with factor 1 +/- magnitude/10 * 0.9."""
    m = _check(images, magnitude)
    return enhance.color(images, levels.enhance_factor(m))


def ContrastIncreasing(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
                       interpolation: str = "bicubic") -> torch.Tensor:
    """ImageEnhance.Contrast with factor 1 +/- magnitude/10 * 0.9."""
    m = _check(images, magnitude)
    return enhance.contrast(images, levels.enhance_factor(m))


def BrightnessIncreasing(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
                         interpolation: str = "bicubic") -> torch.Tensor:
    """ImageEnhance.Brightness with factor 1 +/- magnitude/10 * 0.9."""
    m = _check(images, magnitude)
    return enhance.brightness(images, levels.enhance_factor(m))


def SharpnessIncreasing(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
                        interpolation: str = "bicubic") -> torch.Tensor:
    """ImageEnhance.Sharpness with factor 1 +/- magnitude/10 * 0.9."""
    m = _check(images, magnitude)
    return enhance.sharpness(images, levels.enhance_factor(m))


def ShearX(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
           interpolation: str = "bicubic") -> torch.Tensor:
    """PIL affine (1, s, 0, 0, 1, 0), s = +/- magnitude/10 * 0.3 (about the top-left corner, as timm)."""
    m = _check(images, magnitude)
    return geometric.warp_affine(images, geometric.shear_x_matrix(levels.shear_factor(m)), fill, interpolation)


def ShearY(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
           interpolation: str = "bicubic") -> torch.Tensor:
    """PIL affine (1, 0, 0, s, 1, 0), s = +/- magnitude/10 * 0.3."""
    m = _check(images, magnitude)
    return geometric.warp_affine(images, geometric.shear_y_matrix(levels.shear_factor(m)), fill, interpolation)


def TranslateXRel(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
                  interpolation: str = "bicubic") -> torch.Tensor:
    """PIL affine (1, 0, t*W, 0, 1, 0), t = +/- magnitude/10 * 0.45 (positive t moves content left)."""
    m = _check(images, magnitude)
    tx = levels.translate_fraction(m) * images.shape[-1]
    return geometric.warp_affine(images, geometric.translate_matrix(tx, torch.zeros_like(tx)), fill, interpolation)


def TranslateYRel(images: torch.Tensor, magnitude: torch.Tensor, *, fill: Sequence[int] = IMAGENET_FILL,
                  interpolation: str = "bicubic") -> torch.Tensor:
    """PIL affine (1, 0, 0, 0, 1, t*H), t = +/- magnitude/10 * 0.45 (positive t moves content up)."""
    m = _check(images, magnitude)
    ty = levels.translate_fraction(m) * images.shape[-2]
    return geometric.warp_affine(images, geometric.translate_matrix(torch.zeros_like(ty), ty), fill, interpolation)


# The op set in timm's order, defined with the plan (whose op indices index it): one list for both.
OPS: dict[str, Op] = {name: globals()[name] for name in RAND_INCREASING_OPS}

__all__ = ["IMAGENET_DEFAULT_MEAN", "IMAGENET_DEFAULT_STD", "IMAGENET_FILL", "OPS", "RAND_INCREASING_OPS",
           *RAND_INCREASING_OPS]
