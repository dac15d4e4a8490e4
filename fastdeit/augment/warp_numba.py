"""PIL's affine sampler (libImaging/Geometry.c) as a numba kernel, for batches on the CPU.

The torch implementation in geometric.py serves every device but spends ~30 ms of CPU per
224x224 image in a dozen full-size tensor passes; this loop does PIL's arithmetic (double
precision, the same macros) once per pixel, rows spread over threads, and so agrees with
timm's PIL ops bit for bit. geometric.warp_affine uses it for CPU tensors.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def _cubic(v1: float, v2: float, v3: float, v4: float, d: float) -> float:
    # Geometry.c BICUBIC: cubic convolution with a = -1
    p1 = v2
    p2 = -v1 + v3
    p3 = 2.0 * (v1 - v2) + v3 - v4
    p4 = -v1 + v2 - v3 + v4
    return p1 + d * (p2 + d * (p3 + d * p4))


@numba.njit(cache=True, nogil=True, parallel=True)
def warp_affine_kernel(src, matrix, fill, cubic, out):  # pragma: no cover - compiled
    """src/out: uint8 (N, C, H, W); matrix: float64 (N, 6); fill: uint8 (C,); cubic: bool."""
    n, c, h, w = src.shape
    for job in numba.prange(n * h):
        i = job // h
        y = job % h
        a, b, cc, d, e, f = matrix[i, 0], matrix[i, 1], matrix[i, 2], matrix[i, 3], matrix[i, 4], matrix[i, 5]
        yy = y + 0.5
        for x in range(w):
            xx = x + 0.5
            xin = a * xx + b * yy + cc
            yin = d * xx + e * yy + f
            if xin < 0.0 or xin >= w or yin < 0.0 or yin >= h:
                for ch in range(c):
                    out[i, ch, y, x] = fill[ch]
                continue
            xin -= 0.5
            yin -= 0.5
            x0 = int(math.floor(xin))
            y0 = int(math.floor(yin))
            dx = xin - x0
            dy = yin - y0
            if cubic:
                xs0 = min(max(x0 - 1, 0), w - 1)
                xs1 = min(max(x0, 0), w - 1)
                xs2 = min(max(x0 + 1, 0), w - 1)
                xs3 = min(max(x0 + 2, 0), w - 1)
                ys0 = min(max(y0 - 1, 0), h - 1)
                ys1 = min(max(y0, 0), h - 1)
                ys2 = min(max(y0 + 1, 0), h - 1)
                ys3 = min(max(y0 + 2, 0), h - 1)
                for ch in range(c):
                    r0 = _cubic(float(src[i, ch, ys0, xs0]), float(src[i, ch, ys0, xs1]),
                                float(src[i, ch, ys0, xs2]), float(src[i, ch, ys0, xs3]), dx)
                    r1 = _cubic(float(src[i, ch, ys1, xs0]), float(src[i, ch, ys1, xs1]),
                                float(src[i, ch, ys1, xs2]), float(src[i, ch, ys1, xs3]), dx)
                    r2 = _cubic(float(src[i, ch, ys2, xs0]), float(src[i, ch, ys2, xs1]),
                                float(src[i, ch, ys2, xs2]), float(src[i, ch, ys2, xs3]), dx)
                    r3 = _cubic(float(src[i, ch, ys3, xs0]), float(src[i, ch, ys3, xs1]),
                                float(src[i, ch, ys3, xs2]), float(src[i, ch, ys3, xs3]), dx)
                    v = _cubic(r0, r1, r2, r3, dy)
                    out[i, ch, y, x] = 0 if v <= 0.0 else (255 if v >= 255.0 else np.uint8(int(v)))
            else:
                xs0 = min(max(x0, 0), w - 1)
                xs1 = min(max(x0 + 1, 0), w - 1)
                ys0 = min(max(y0, 0), h - 1)
                ys1 = min(max(y0 + 1, 0), h - 1)
                for ch in range(c):
                    a0 = float(src[i, ch, ys0, xs0])
                    v1 = a0 + (float(src[i, ch, ys0, xs1]) - a0) * dx
                    a1 = float(src[i, ch, ys1, xs0])
                    v2 = a1 + (float(src[i, ch, ys1, xs1]) - a1) * dx
                    v = v1 + (v2 - v1) * dy
                    out[i, ch, y, x] = 0 if v <= 0.0 else (255 if v >= 255.0 else np.uint8(int(v)))
