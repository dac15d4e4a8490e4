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

All images of the batch are warped at once, accumulated in float32: the taps are fetched with
one `index_select` per vertical tap (4 for bicubic) from a table of horizontal tap windows.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ._checks import check_images, check_per_sample, to_device

INTERPOLATIONS = ("bicubic", "bilinear")


def _cubic_weights(d: torch.Tensor) -> list[torch.Tensor]:
    # PIL's BICUBIC macro: p1 + d*(p2 + d*(p3 + d*p4)) as weights on taps -1, 0, 1, 2 (a = -1).
    d2 = d * d
    d3 = d2 * d
    return [-d + 2 * d2 - d3, 1 - 2 * d2 + d3, d + d2 - d3, d3 - d2]


def _linear_weights(d: torch.Tensor) -> list[torch.Tensor]:
    return [1 - d, d]


def warp_affine(
    images: torch.Tensor,
    matrix: torch.Tensor,
    fill: Sequence[int],
    interpolation: str = "bicubic",
) -> torch.Tensor:
    """Warp each image by its own PIL affine matrix.

    images: uint8 N x 3 x H x W. matrix: N x 6 (a, b, c, d, e, f) in PIL's output -> input
    convention, pixel units. fill: one value per channel (0-255) for positions outside the
    image. Returns uint8 N x 3 x H x W.
    """
    check_images(images)
    n, c, h, w = images.shape
    check_per_sample(matrix, n, "matrix", (6,))
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if len(fill) != c:
        raise ValueError(f"fill needs {c} values, got {len(fill)}")
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

    if interpolation == "bicubic":
        first, wx, wy = -1, _cubic_weights(dx), _cubic_weights(dy)
    else:
        first, wx, wy = 0, _linear_weights(dx), _linear_weights(dy)
    taps = len(wx)
    # Rows of `taps` horizontally consecutive pixels x all channels, built once by padding
    # (replicate = PIL's clamp to the border) and unfolding: each vertical tap is then one
    # index_select of N*H*W rows of taps*C values instead of taps*C scattered gathers.
    padded = F.pad(images.to(torch.float32), (1 - first, first + taps - 1, 0, 0), mode="replicate")
    windows = padded.permute(0, 2, 3, 1).unfold(2, taps, 1)  # N, H, W+1, C, taps
    table = windows.transpose(-1, -2).reshape(n * h * (w + 1), taps, c)
    x0 = x0.clamp_(-1, w - 1) + 1  # window start; positions outside get the fill anyway
    y0 = y0.clamp_(-1, h - 1)
    base = torch.arange(n, device=device, dtype=torch.int64).view(n, 1) * h
    wx = [wi.view(n * h * w, 1) for wi in wx]
    out = None
    for j in range(taps):
        row = (y0 + first + j).clamp_(0, h - 1)
        rows = table.index_select(0, ((base + row) * (w + 1) + x0).view(-1))
        acc = rows[:, 0] * wx[0]
        for i in range(1, taps):
            acc.addcmul_(rows[:, i], wx[i])
        acc.mul_(wy[j].view(n * h * w, 1))
        out = acc if out is None else out.add_(acc)
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
    "rotate_matrix",
    "shear_x_matrix",
    "shear_y_matrix",
    "translate_matrix",
    "fill_from_mean",
]
