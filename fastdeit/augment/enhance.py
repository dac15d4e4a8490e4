"""PIL ImageEnhance (Color, Contrast, Brightness, Sharpness) on uint8 batches.

Each enhancer is `Image.blend(degenerate, image, factor)`. PIL blends in C float32 as
`in1 + factor * (in2 - in1)`, clips to [0, 255] and truncates; the degenerate images are the
"L" conversion (ITU-R 601-2 in 16-bit fixed point), a constant grey at the rounded mean of
that conversion, black, and the 3x3 SMOOTH filter with border pixels kept. Reproduced here
with the same integer and float32 arithmetic, so results agree with PIL bit for bit except
where float32 rounding lands within an ulp of an integer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import check_images, check_per_sample, to_device


def blend(degenerate: torch.Tensor, images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL Image.blend(degenerate, images, factor) per sample (factor: N values)."""
    n = images.shape[0]
    alpha = to_device(factor.to(torch.float32), images.device).view(n, 1, 1, 1)
    base = degenerate.to(torch.float32)
    out = base + alpha * (images.to(torch.float32) - base)
    return out.clamp_(0, 255).trunc_().to(torch.uint8)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """PIL convert("L"): (19595 R + 38470 G + 7471 B + 32768) >> 16, as int32 N x 1 x H x W."""
    x = images.to(torch.int32)
    return (x[:, 0:1] * 19595 + x[:, 1:2] * 38470 + x[:, 2:3] * 7471 + 0x8000) >> 16


def smooth(images: torch.Tensor) -> torch.Tensor:
    """PIL ImageFilter.SMOOTH: [[1,1,1],[1,5,1],[1,1,1]] / 13, rounded; the 1-pixel border is kept."""
    n, c, h, w = images.shape
    if h < 3 or w < 3:
        return images.clone()
    kernel = torch.ones(c, 1, 3, 3, device=images.device)
    kernel[:, :, 1, 1] = 5.0
    # Integer sums of at most 13 * 255 are exact in float32; round(sum / 13) as PIL does.
    acc = F.conv2d(images.to(torch.float32), kernel, groups=c)
    inner = torch.floor((acc * 2 + 13) / 26).to(torch.uint8)
    out = images.clone()
    out[:, :, 1:-1, 1:-1] = inner
    return out


def _factor(images: torch.Tensor, factor: torch.Tensor) -> None:
    check_images(images)
    check_per_sample(factor, images.shape[0], "factor")


def color(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """ImageEnhance.Color: blend with the grey ("L") version; 0 = grey, 1 = unchanged."""
    _factor(images, factor)
    return blend(grayscale(images).to(torch.uint8).expand_as(images), images, factor)


def contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """ImageEnhance.Contrast: blend with a flat grey at int(mean(L) + 0.5)."""
    _factor(images, factor)
    n = images.shape[0]
    gray = grayscale(images).reshape(n, images.shape[-2] * images.shape[-1]).to(torch.int64)
    mean = gray.sum(dim=1).to(torch.float64) / gray.shape[1]
    level = torch.floor(mean + 0.5).to(torch.uint8).view(n, 1, 1, 1)
    return blend(level.expand_as(images), images, factor)


def brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """ImageEnhance.Brightness: blend with black."""
    _factor(images, factor)
    return blend(torch.zeros_like(images), images, factor)


def sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """ImageEnhance.Sharpness: blend with the SMOOTH-filtered image."""
    _factor(images, factor)
    return blend(smooth(images), images, factor)
