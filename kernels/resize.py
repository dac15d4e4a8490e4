"""Crop + bicubic resize (+ flip) of an RGB uint8 image, bit-exact with Pillow's resize.

Why our own kernel: deit's reference pipeline resizes with PIL (``img.resize(size, BICUBIC,
box=crop)`` inside torchvision's RandomResizedCrop), so matching Pillow bit for bit keeps the
fast loader's pixels those of the reference; a numba kernel does it straight into the batch
buffer (no PIL image objects, no RGB->RGBX copies) and releases the GIL so threads scale.

The algorithm is Pillow's ImagingResample (libImaging/Resample.c): separable, horizontal pass
first over only the rows the vertical pass needs, then vertical, except where Pillow 13 runs the
vertical pass first (`vertical_first`, python-pillow/Pillow#9549); bicubic filter a = -0.5 whose
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
_COLUMN_BLOCK = 16  # output columns per write-back in _horizontal_pass (16 x rows x 3 bytes stays in L1)
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


@numba.njit(cache=True, nogil=True)
def vertical_first(in_h: int, in_w: int, out_h: int, out_w: int) -> bool:
    """Whether Pillow 13 resizes an in_h x in_w image to out_h x out_w vertical pass first.

    Its ImagingResample (python-pillow/Pillow#9549, read from the 13.0.0 binary and checked against
    it on thousands of random sizes and boxes) does so when the height loses more than twice as many
    pixels as the width: in_h - out_h > max(0, 2 * (in_w - out_w)), with the whole image's sizes
    whatever the box. The order matters: the pass run first is rounded to 8 bits before the other
    one reads it.
    """
    dy = in_h - out_h
    return dy > 0 and dy > 2 * (in_w - out_w)


@numba.njit(cache=True, nogil=True, inline="always")
def _clip8(acc: int) -> np.uint8:
    # branchless (min/max) so that LLVM vectorises the loops around it
    return np.uint8(min(max(acc >> _PRECISION_BITS, 0), 255))


@numba.njit(cache=True, nogil=True)
def _padded(bounds, kk, lo: int, hi: int, reverse: bool):
    """Every window as K taps (K = the widest window) starting at `starts` (relative to lo).

    A window narrower than K (clamped at an image edge) is moved inside [lo, hi) and padded
    with zero coefficients: integer sums, so the result is exactly that of the narrow window.
    `reverse` lists the output pixels back to front (a horizontal flip of the result).
    """
    n_out = bounds.shape[0]
    k = 1
    for o in range(n_out):
        k = max(k, bounds[o, 1])
    starts = np.empty(n_out, dtype=np.int64)
    kp = np.zeros((n_out, k), dtype=np.int32)
    for o in range(n_out):
        xmin, n = bounds[o, 0], bounds[o, 1]
        s = min(xmin, hi - k)
        d = n_out - 1 - o if reverse else o
        starts[d] = s - lo
        for t in range(n):
            kp[d, xmin - s + t] = kk[o, t]
    return starts, kp


@numba.njit(cache=True, nogil=True, inline="always")
def _taps_row(src, s, kp, o, k, acc, length, half):
    """acc[:length] = half + sum over the k taps of output o of kp[o, t] * src[s + t, :length]."""
    t = 0
    if k >= 4:
        k0, k1, k2, k3 = kp[o, 0], kp[o, 1], kp[o, 2], kp[o, 3]
        r0, r1, r2, r3 = src[s], src[s + 1], src[s + 2], src[s + 3]
        for i in range(length):
            acc[i] = (half + np.int32(r0[i]) * k0 + np.int32(r1[i]) * k1
                      + np.int32(r2[i]) * k2 + np.int32(r3[i]) * k3)
        t = 4
    else:
        for i in range(length):
            acc[i] = half
    while t + 4 <= k:
        k0, k1, k2, k3 = kp[o, t], kp[o, t + 1], kp[o, t + 2], kp[o, t + 3]
        r0, r1, r2, r3 = src[s + t], src[s + t + 1], src[s + t + 2], src[s + t + 3]
        for i in range(length):
            acc[i] += (np.int32(r0[i]) * k0 + np.int32(r1[i]) * k1
                       + np.int32(r2[i]) * k2 + np.int32(r3[i]) * k3)
        t += 4
    while t < k:
        k0 = kp[o, t]
        r0 = src[s + t]
        for i in range(length):
            acc[i] += np.int32(r0[i]) * k0
        t += 1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _resize_into(src, oy, ox, in_h, in_w, box_x0, box_x_extent, box_y0, box_y_extent, out, flip, scratch):
    # src holds rows oy.. and columns ox.. of an in_h x in_w image (all of it when oy = ox = 0)
    out_h, out_w = out.shape[0], out.shape[1]
    vb, vk = _coeffs(in_h, box_y0, box_y_extent, out_h)
    hb, hk = _coeffs(in_w, box_x0, box_x_extent, out_w)
    y_first = vb[0, 0]
    y_last = vb[out_h - 1, 0] + vb[out_h - 1, 1]
    half = np.int32(1 << (_PRECISION_BITS - 1))
    rows = y_last - y_first
    x_first = hb[0, 0]
    x_last = hb[out_w - 1, 0] + hb[out_w - 1, 1]
    cols = x_last - x_first
    if y_first < oy or x_first < ox or y_last > oy + src.shape[0] or x_last > ox + src.shape[1]:
        raise ValueError("src region does not hold every pixel the resize reads")
    # flip: the horizontal pass lists its output columns back to front
    vs, vp = _padded(vb, vk, y_first, y_last, False)
    hs, hp = _padded(hb, hk, x_first, x_last, flip)
    if vertical_first(in_h, in_w, out_h, out_w):
        _vertical_then_horizontal(src, oy, ox, y_first, x_first, rows, cols, vs, vp, hs, hp, out, scratch, half)
    else:
        _horizontal_then_vertical(src, oy, ox, y_first, x_first, rows, cols, vs, vp, hs, hp, out, scratch, half)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _horizontal_then_vertical(src, oy, ox, y_first, x_first, rows, cols, vs, vp, hs, hp, out, scratch, half):
    """Pillow's usual order: the horizontal pass over the rows the vertical pass reads, then vertical."""
    out_h, out_w = out.shape[0], out.shape[1]
    n_src, n_tmp = cols * rows * 3, out_w * rows * 3
    if scratch.size < n_src + n_tmp:
        scratch = np.empty(n_src + n_tmp, dtype=np.uint8)
    tmp = scratch[n_src : n_src + n_tmp].reshape((rows, out_w * 3))
    _horizontal_pass(src, y_first - oy, x_first - ox, rows, cols, hs, hp, tmp, scratch[:n_src], half)
    acc = np.empty(out_w * 3, dtype=np.int32)
    for yy in range(out_h):
        _taps_row(tmp, vs[yy], vp, yy, vp.shape[1], acc, out_w * 3, half)
        flat = out[yy].reshape(out_w * 3)
        for i in range(out_w * 3):
            flat[i] = _clip8(acc[i])


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _vertical_then_horizontal(src, oy, ox, y_first, x_first, rows, cols, vs, vp, hs, hp, out, scratch, half):
    """Pillow 13's order for images whose height shrinks much more than their width: the vertical
    pass over the columns the horizontal pass reads, then horizontal."""
    out_h, out_w = out.shape[0], out.shape[1]
    n_src, n_tmp = rows * cols * 3, out_h * cols * 3
    # the horizontal pass transposes tmp into the region's space once the vertical pass is done with
    # it, where it fits (out_h <= rows: the image's height shrinks and the box spans most of it)
    t0 = 0 if n_tmp <= n_src else n_src + n_tmp
    if scratch.size < t0 + n_tmp or scratch.size < n_src + n_tmp:
        scratch = np.empty(max(t0 + n_tmp, n_src + n_tmp), dtype=np.uint8)
    # the rows y_first.. and columns x_first.. the passes read, as rows of cols * 3 values
    region = scratch[:n_src].reshape((rows, cols * 3))
    sy, sx = y_first - oy, x_first - ox
    for y in range(rows):
        for x in range(cols):
            region[y, x * 3] = src[y + sy, x + sx, 0]
            region[y, x * 3 + 1] = src[y + sy, x + sx, 1]
            region[y, x * 3 + 2] = src[y + sy, x + sx, 2]
    tmp = scratch[n_src : n_src + n_tmp].reshape((out_h, cols * 3))
    acc = np.empty(cols * 3, dtype=np.int32)
    for yy in range(out_h):
        _taps_row(region, vs[yy], vp, yy, vp.shape[1], acc, cols * 3, half)
        for i in range(cols * 3):
            tmp[yy, i] = _clip8(acc[i])
    _horizontal_pass(tmp.reshape((out_h, cols, 3)), 0, 0, out_h, cols, hs, hp, out.reshape((out_h, out_w * 3)),
                     scratch[t0 : t0 + n_tmp], half)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _horizontal_pass(src, sy, sx, rows, cols, hs, hp, dst, scratch, half):
    """dst[y, xx*3 + c] = the horizontal taps of output column xx over src[sy + y, sx + x, c].

    Run on the transposed rows, so that its inner loop runs over contiguous memory (vectorised)
    instead of gathering interleaved pixels; same sums, same result. The results go back to dst's
    rows _COLUMN_BLOCK output columns at a time: writing each column down all rows at once was 45%
    of the resize (benchmarks/bench_resize.py: the resize 91 -> 73 us per image on 224 px crops of
    500x375 photos at max side 256, on a 2-core AMD EPYC VM).
    """
    out_w = hs.shape[0]
    src_t = scratch[: cols * rows * 3].reshape((cols, rows * 3))
    for y in range(rows):
        for x in range(cols):
            src_t[x, y * 3] = src[y + sy, x + sx, 0]
            src_t[x, y * 3 + 1] = src[y + sy, x + sx, 1]
            src_t[x, y * 3 + 2] = src[y + sy, x + sx, 2]
    hacc = np.empty(rows * 3, dtype=np.int32)
    block = np.empty((_COLUMN_BLOCK, rows * 3), dtype=np.uint8)
    for x0 in range(0, out_w, _COLUMN_BLOCK):
        nb = min(_COLUMN_BLOCK, out_w - x0)
        for j in range(nb):  # a block of output columns, each clipped into a contiguous row
            _taps_row(src_t, hs[x0 + j], hp, x0 + j, hp.shape[1], hacc, rows * 3, half)
            for i in range(rows * 3):
                block[j, i] = _clip8(hacc[i])
        for y in range(rows):  # then written back row by row: nb pixels side by side in dst
            for j in range(nb):
                dst[y, (x0 + j) * 3] = block[j, y * 3]
                dst[y, (x0 + j) * 3 + 1] = block[j, y * 3 + 1]
                dst[y, (x0 + j) * 3 + 2] = block[j, y * 3 + 2]


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
    if not src.flags.writeable:  # one compiled variant only (a read-only one mis-types in numba 0.68)
        src = src.copy()
    # Pillow computes the box extent in float32, then the scale in double.
    _resize_into(
        src, oy, ox, full_h, full_w, float(x0), float(x1 - x0), float(y0), float(y1 - y0), out,
        bool(flip), _scratch(src.shape[0] * src.shape[1] * 3 + max(src.shape[0], src.shape[1]) * max(out.shape[:2]) * 3),
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
