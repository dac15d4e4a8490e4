"""Batched affine warps with PIL's `Image.transform(AFFINE)` semantics.

timm's geometric RandAugment ops call PIL. To agree with them this module reproduces PIL's
sampler (libImaging/Geometry.c) rather than `F.grid_sample`:

* the matrix (a, b, c, d, e, f) maps an output position to an input position,
  x_in = a*x + b*y + c, y_in = d*x + e*y + f, with pixel centres at integer + 0.5;
* a position outside [0, W) x [0, H) takes the fill colour (no blending at the edge);
  inside, the taps are clamped to the border;
* bicubic is PIL's transform kernel, the cubic convolution with a = -1 (grid_sample's bicubic
  uses a = -0.75 and differs by up to ~9 grey levels on photographs); bilinear as PIL;
* the result is clipped to [0, 255] and truncated, as PIL stores it.

Two implementations: on the CPU a numba kernel doing PIL's double-precision arithmetic per
pixel (warp_numba.py; identical to PIL); on other devices `warp_affine_torch`, all images of the
batch at once in float32 (one `index_select` per vertical tap from a table of horizontal tap
windows), within one grey level of PIL where a float32 sum lands next to an integer.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import check_images, check_per_sample, to_device

INTERPOLATIONS = ("bicubic", "bilinear")


def _cubic(v1: torch.Tensor, v2: torch.Tensor, v3: torch.Tensor, v4: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    # PIL's BICUBIC macro (a = -1) in its Horner form: exact on flat regions, where a sum of
    # weights would fall an ulp short of the value and truncate one grey level low.
    p3 = (v1 - v2).mul_(2).add_(v3).sub_(v4)
    p4 = (v2 - v1).sub_(v3).add_(v4)
    return p4.mul_(d).add_(p3).mul_(d).add_(v3 - v1).mul_(d).add_(v2)


def _linear(v1: torch.Tensor, v2: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return (v2 - v1).mul_(d).add_(v1)  # PIL's BILINEAR: a + (b - a) * d


def warp_affine(
    images: torch.Tensor,
    matrix: torch.Tensor,
    fill: Sequence[int],
    interpolation: str = "bicubic",
) -> torch.Tensor:
    """Warp each image by its own PIL affine matrix.

    images: uint8 N x 3 x H x W. matrix: N x 6 (a, b, c, d, e, f) in PIL's output -> input
    convention, pixel units. fill: one value per channel (0-255) for positions outside the
    image. Returns uint8 N x 3 x H x W. CPU tensors go through the numba kernel
    (warp_numba.py, PIL's arithmetic exactly), other devices through warp_affine_torch.
    """
    _check_warp(images, matrix, fill, interpolation)
    if images.shape[0] == 0:
        return images.clone()
    if images.device.type == "cpu":
        import numba

        from .warp_numba import warp_affine_kernel

        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        out = torch.empty(images.shape, dtype=torch.uint8)
        warp_affine_kernel(images.numpy(), matrix.to("cpu", torch.float64).contiguous().numpy(),
                           np.asarray(fill, dtype=np.uint8), interpolation == "bicubic", out.numpy())
        return out
    return warp_affine_torch(images, matrix, fill, interpolation)


def _check_warp(images: torch.Tensor, matrix: torch.Tensor, fill: Sequence[int], interpolation: str) -> None:
    check_images(images)
    n, c = images.shape[:2]
    check_per_sample(matrix, n, "matrix", (6,))
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if len(fill) != c:
        raise ValueError(f"fill needs {c} values, got {len(fill)}")


def warp_affine_torch(
    images: torch.Tensor,
    matrix: torch.Tensor,
    fill: Sequence[int],
    interpolation: str = "bicubic",
) -> torch.Tensor:
    """warp_affine in plain torch ops, for any device (float32 accumulation: within one grey
    level of PIL, see the module docstring)."""
    _check_warp(images, matrix, fill, interpolation)
    n, c, h, w = images.shape
    if n == 0:
        return images.clone()
    device = images.device
    m = to_device(matrix.to(torch.float64), device)
    # Positions in float64, as PIL computes them: the fill test and the floor agree exactly.
    xs = (torch.arange(w, device=device, dtype=torch.float64) + 0.5).view(1, 1, w)
    ys = (torch.arange(h, device=device, dtype=torch.float64) + 0.5).view(1, h, 1)
    a, b, cc, d, e, f = (m[:, i].view(n, 1, 1) for i in range(6))
    xin = a * xs + b * ys + cc
    yin = d * xs + e * ys + f
    outside = (xin < 0) | (xin >= w) | (yin < 0) | (yin >= h)
    u = xin - 0.5
    v = yin - 0.5
    x0 = torch.floor(u)
    y0 = torch.floor(v)
    dx = (u - x0).to(torch.float32).view(n, h * w)
    dy = (v - y0).to(torch.float32).view(n, h * w)
    x0 = x0.to(torch.int64).view(n, h * w)
    y0 = y0.to(torch.int64).view(n, h * w)
    del xin, yin, u, v

    cubic = interpolation == "bicubic"
    first, taps = (-1, 4) if cubic else (0, 2)
    # Rows of `taps` horizontally consecutive pixels x all channels, built once by padding
    # (replicate = PIL's clamp to the border) and unfolding: each vertical tap is then one
    # index_select of N*H*W rows of taps*C values instead of taps*C scattered gathers.
    padded = F.pad(images.to(torch.float32), (1 - first, first + taps - 1, 0, 0), mode="replicate")
    windows = padded.permute(0, 2, 3, 1).unfold(2, taps, 1)  # N, H, W+1, C, taps
    table = windows.transpose(-1, -2).reshape(n * h * (w + 1), taps, c)
    x0 = x0.clamp_(-1, w - 1) + 1  # window start; positions outside get the fill anyway
    y0 = y0.clamp_(-1, h - 1)
    base = torch.arange(n, device=device, dtype=torch.int64).view(n, 1) * h
    dx = dx.view(n * h * w, 1)
    dy = dy.view(n * h * w, 1)
    rows = []
    for j in range(taps):
        row = (y0 + first + j).clamp_(0, h - 1)
        t = table.index_select(0, ((base + row) * (w + 1) + x0).view(-1))  # N*H*W, taps, C
        rows.append(_cubic(t[:, 0], t[:, 1], t[:, 2], t[:, 3], dx) if cubic else _linear(t[:, 0], t[:, 1], dx))
    out = _cubic(*rows, dy) if cubic else _linear(*rows, dy)
    out = out.clamp_(0, 255).floor_().to(torch.uint8).view(n, h, w, c).permute(0, 3, 1, 2)
    fill_t = to_device(torch.tensor(list(fill), dtype=torch.uint8), device).view(1, c, 1, 1)
    return torch.where(outside.view(n, 1, h, w), fill_t, out).contiguous()


def rotate_matrix(degrees: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """PIL `Image.rotate(degrees)` (counter-clockwise, about the centre, same size) as N x 6."""
    angle = -torch.deg2rad(degrees.to(torch.float64) % 360.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    cx, cy = width / 2.0, height / 2.0
    a, b, d, e = cos, sin, -sin, cos
    c = a * (-cx) + b * (-cy) + cx
    f = d * (-cx) + e * (-cy) + cy
    return torch.stack([a, b, c, d, e, f], dim=1)


def shear_x_matrix(factor: torch.Tensor) -> torch.Tensor:
    """timm shear_x: PIL matrix (1, factor, 0, 0, 1, 0)."""
    one, zero = torch.ones_like(factor, dtype=torch.float64), torch.zeros_like(factor, dtype=torch.float64)
    return torch.stack([one, factor.to(torch.float64), zero, zero, one, zero], dim=1)


def shear_y_matrix(factor: torch.Tensor) -> torch.Tensor:
    """timm shear_y: PIL matrix (1, 0, 0, factor, 1, 0)."""
    one, zero = torch.ones_like(factor, dtype=torch.float64), torch.zeros_like(factor, dtype=torch.float64)
    return torch.stack([one, zero, zero, factor.to(torch.float64), one, zero], dim=1)


def translate_matrix(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """timm translate_*: PIL matrix (1, 0, tx, 0, 1, ty), pixels."""
    one, zero = torch.ones_like(tx, dtype=torch.float64), torch.zeros_like(tx, dtype=torch.float64)
    return torch.stack([one, zero, tx.to(torch.float64), zero, one, ty.to(torch.float64)], dim=1)


def fill_from_mean(mean: Sequence[float]) -> tuple[int, ...]:
    """timm create_transform's img_mean: round(255 * mean), capped at 255."""
    return tuple(min(255, round(255 * x)) for x in mean)


__all__ = [
    "INTERPOLATIONS",
    "warp_affine",
    "warp_affine_torch",
    "rotate_matrix",
    "shear_x_matrix",
    "shear_y_matrix",
    "translate_matrix",
    "fill_from_mean",
]
