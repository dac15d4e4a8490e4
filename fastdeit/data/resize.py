"""Crop + bicubic resize (+ flip) of an RGB uint8 image, bit-exact with Pillow's resize.

Why our own kernel: deit's reference pipeline resizes with PIL (``img.resize(size, BICUBIC,
box=crop)`` inside torchvision's RandomResizedCrop), so matching Pillow bit for bit keeps the
fast loader's pixels those of the reference; a numba kernel does it straight into the batch
buffer (no PIL image objects, no RGB->RGBX copies) and releases the GIL so threads scale.

The algorithm is Pillow's ImagingResample (libImaging/Resample.c): separable, horizontal pass
first over only the rows the vertical pass needs, then vertical; bicubic filter a = -0.5 whose
support widens with the downscale factor (antialiasing); coefficients normalised, converted to
22-bit fixed point, accumulated in int32 with a rounding bias and clipped to 0..255 after each
pass. The crop box is float32 as Pillow's is.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

_PRECISION_BITS = 32 - 8 - 2  # Pillow Resample.c
_SUPPORT = 2.0  # bicubic
_tls = threading.local()


def _scratch(nbytes: int) -> np.ndarray:
    """This thread's scratch buffer of at least `nbytes` (reused: no per-image allocation)."""
    buf = getattr(_tls, "buf", None)
    if buf is None or buf.size < nbytes:
        buf = _tls.buf = np.empty(max(nbytes, 1 << 20), dtype=np.uint8)
    return buf


@numba.njit(cache=True, nogil=True)
def _bicubic(x: float) -> float:
    a = -0.5
    if x < 0.0:
        x = -x
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


@numba.njit(cache=True, nogil=True, inline="always")
def _window(in_size: int, in0: float, scale: float, support: float, xx: int):
    """Pillow's input window [xmin, xmin + n) of output pixel xx (clamped at the image edges)."""
    center = in0 + (xx + 0.5) * scale
    xmin = int(center - support + 0.5)
    if xmin < 0:
        xmin = 0
    xmax = int(center + support + 0.5)
    if xmax > in_size:
        xmax = in_size
    return center, xmin, xmax - xmin


@numba.njit(cache=True, nogil=True)
def _span(in_size: int, in0: float, extent: float, out_size: int):
    """[first, last) input pixels that all output pixels' windows read, as _coeffs bounds them."""
    scale = extent / out_size
    support = _SUPPORT * max(scale, 1.0)
    _, first, _ = _window(in_size, in0, scale, support, 0)
    _, xmin, n = _window(in_size, in0, scale, support, out_size - 1)
    return first, xmin + n


@numba.njit(cache=True, nogil=True)
def _coeffs(in_size: int, in0: float, extent: float, out_size: int):
    """Pillow precompute_coeffs + normalize_coeffs_8bpc: (bounds (out, 2), int32 kernel (out, k))."""
    scale = extent / out_size
    filterscale = max(scale, 1.0)
    support = _SUPPORT * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    bounds = np.empty((out_size, 2), dtype=np.int64)
    kk = np.zeros((out_size, ksize), dtype=np.int32)
    tmp = np.zeros(ksize, dtype=np.float64)
    ss = 1.0 / filterscale
    one = float(1 << _PRECISION_BITS)
    for xx in range(out_size):
        center, xmin, xmax = _window(in_size, in0, scale, support, xx)
        ww = 0.0
        for x in range(xmax):
            w = _bicubic((x + xmin - center + 0.5) * ss)
            tmp[x] = w
            ww += w
        for x in range(xmax):
            w = tmp[x] / ww if ww != 0.0 else tmp[x]
            kk[xx, x] = int(-0.5 + w * one) if w < 0 else int(0.5 + w * one)
        bounds[xx, 0] = xmin
        bounds[xx, 1] = xmax
    return bounds, kk


@numba.njit(cache=True, nogil=True, inline="always")
def _clip8(acc: int) -> np.uint8:
    # branchless (min/max) so that LLVM vectorises the loops around it
    return np.uint8(min(max(acc >> _PRECISION_BITS, 0), 255))


@numba.njit(cache=True, nogil=True)
def _resize_into(src, oy, ox, in_h, in_w, box_x0, box_x_extent, box_y0, box_y_extent, out, flip, scratch):
    # src holds rows oy.. and columns ox.. of an in_h x in_w image (all of it when oy = ox = 0)
    out_h, out_w = out.shape[0], out.shape[1]
    vb, vk = _coeffs(in_h, box_y0, box_y_extent, out_h)
    hb, hk = _coeffs(in_w, box_x0, box_x_extent, out_w)
    y_first = vb[0, 0]
    y_last = vb[out_h - 1, 0] + vb[out_h - 1, 1]
    half = np.int32(1 << (_PRECISION_BITS - 1))
    rows = y_last - y_first
    # Horizontal pass on the transposed crop, so that its inner loop runs over contiguous
    # memory (vectorised) instead of gathering interleaved pixels; same sums, same result.
    x_first = hb[0, 0]
    x_last = hb[out_w - 1, 0] + hb[out_w - 1, 1]
    cols = x_last - x_first
    if y_first < oy or x_first < ox or y_last > oy + src.shape[0] or x_last > ox + src.shape[1]:
        raise ValueError("src region does not hold every pixel the resize reads")
    n_src, n_tmp = cols * rows * 3, out_w * rows * 3
    if scratch.size < n_src + 2 * n_tmp:
        scratch = np.empty(n_src + 2 * n_tmp, dtype=np.uint8)
    src_t = scratch[:n_src].reshape((cols, rows * 3))
    for y in range(rows):
        for x in range(cols):
            for c in range(3):
                src_t[x, y * 3 + c] = src[y + y_first - oy, x + x_first - ox, c]
    tmp_t = scratch[n_src : n_src + n_tmp].reshape((out_w, rows * 3))
    hacc = np.empty(rows * 3, dtype=np.int32)
    for xx in range(out_w):
        xmin, n = hb[xx, 0] - x_first, hb[xx, 1]
        hacc[:] = half
        for x in range(n):
            k = hk[xx, x]
            srow = src_t[xmin + x]
            for i in range(rows * 3):
                hacc[i] += np.int32(srow[i]) * k
        for i in range(rows * 3):
            tmp_t[xx, i] = _clip8(hacc[i])
    tmp = scratch[n_src + n_tmp : n_src + 2 * n_tmp].reshape((rows, out_w * 3))
    for y in range(rows):
        for xx in range(out_w):
            for c in range(3):
                tmp[y, xx * 3 + c] = tmp_t[xx, y * 3 + c]
    acc = np.empty(out_w * 3, dtype=np.int32)
    for yy in range(out_h):
        ymin, n = vb[yy, 0] - y_first, vb[yy, 1]
        acc[:] = half
        for y in range(n):
            k = vk[yy, y]
            trow = tmp[ymin + y]
            for i in range(out_w * 3):
                acc[i] += np.int32(trow[i]) * k
        orow = out[yy]
        if flip:
            for xx in range(out_w):
                dx = out_w - 1 - xx
                for c in range(3):
                    orow[dx, c] = _clip8(acc[xx * 3 + c])
        else:
            flat = orow.reshape(out_w * 3)
            for i in range(out_w * 3):
                flat[i] = _clip8(acc[i])


def resize_crop(
    src: np.ndarray,
    box: tuple[float, float, float, float],
    out: np.ndarray,
    flip: bool = False,
    origin: tuple[int, int] = (0, 0),
    full_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Resize the `box` (left, top, right, bottom; floats, as PIL's) of `src` into `out`.

    `src` is H×W×3 uint8 (C-contiguous rows), `out` a preallocated h×w×3 uint8 array (e.g. a
    slot of a batch buffer); `flip` mirrors the result horizontally. Equal, bit for bit, to
    ``Image.fromarray(src).resize((w, h), Image.BICUBIC, box=box)`` (flipped if asked).

    `src` may also be only a region of the image: rows origin[0]... and columns origin[1]... of an
    image of `full_size` (height, width); `box` is then in the full image's coordinates, and the
    result is the full image's as long as the region holds `needed_region(...)` (else ValueError).
    """
    if src.ndim != 3 or src.shape[2] not in (3, 4) or src.dtype != np.uint8:
        raise ValueError(f"src must be H×W×3 (or ×4, RGBX) uint8, got {src.shape} {src.dtype}")
    if out.ndim != 3 or out.shape[2] != 3 or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous h×w×3 uint8 array, got {out.shape} {out.dtype}")
    oy, ox = (int(v) for v in origin)
    full_h, full_w = (src.shape[0], src.shape[1]) if full_size is None else (int(v) for v in full_size)
    if oy < 0 or ox < 0 or oy + src.shape[0] > full_h or ox + src.shape[1] > full_w:
        raise ValueError(f"src region at {origin} of size {src.shape[:2]} outside a {full_w}x{full_h} image")
    x0, y0, x1, y1 = (np.float32(v) for v in box)
    if not (0 <= x0 < x1 <= full_w and 0 <= y0 < y1 <= full_h):
        raise ValueError(f"box {box} outside the {full_w}x{full_h} image")
    # Pillow computes the box extent in float32, then the scale in double.
    _resize_into(
        src, oy, ox, full_h, full_w, float(x0), float(x1 - x0), float(y0), float(y1 - y0), out,
        bool(flip), _scratch(src.shape[0] * (src.shape[1] + 2 * out.shape[1]) * 3),
    )
    return out


def needed_region(
    box: tuple[float, float, float, float], out_h: int, out_w: int, full_h: int, full_w: int
) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the rows and columns of a full_h x full_w image that resizing `box` into
    out_h x out_w reads (the crop plus the bicubic support, clamped at the image edges).

    A decoder that produces at least this region gives `resize_crop` exactly the full image's result.
    """
    x0, y0, x1, y1 = (np.float32(v) for v in box)
    if not (0 <= x0 < x1 <= full_w and 0 <= y0 < y1 <= full_h) or out_h < 1 or out_w < 1:
        raise ValueError(f"box {box} outside the {full_w}x{full_h} image, or empty output")
    ry0, ry1 = _span(int(full_h), float(y0), float(y1 - y0), int(out_h))
    rx0, rx1 = _span(int(full_w), float(x0), float(x1 - x0), int(out_w))
    return int(ry0), int(ry1), int(rx0), int(rx1)
