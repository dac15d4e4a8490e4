"""Decode + RandomResizedCrop + flip of a whole chunk of plan rows in one compiled call, GIL released.

Why: the per-sample path (fastdeit.data.cpu_decoder.decode_crop_resize, the plain reference this
kernel is tested against) runs tens of microseconds of Python per sample under the GIL (the DCT
factor, the region, a numba dispatch, scalar conversions), so decode threads and the trainer's
main thread take turns on the GIL. Here one numba `nogil` call loops over the chunk's rows: it
reads each sample's bytes straight from the memory-mapped file (offsets and sizes), picks the DCT
scale, decodes only the region the resize reads with the C extension's libjpeg-turbo decoder
(called through its address: `DECODE_REGION_ADDRESS`, linked under the symbol name
`fastdeit_decode_region` so that numba's on-disk cache stays valid), resizes Pillow-exactly with
fastdeit.kernels.resize's kernel and flips, into the rows of the batch buffer. Raw (non-JPEG)
samples take the same loop without the decoder. Every float step is the reference path's, in the
same order and precision, so the pixels are identical bit for bit.

Errors do not raise inside the loop: the call returns the failing row and a code (`ERR_*`), with
libjpeg's message in the caller's buffer, and the caller names the sample (cpu_decoder).

Available only where the extension was built (`AVAILABLE`); otherwise the CPU decoder keeps its
per-sample simplejpeg path.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types

from fastdeit.kernels.resize import _resize_into, _span

try:
    from fastdeit.kernels import _jpeg_region
except ImportError:  # built by `pip install` only where a C compiler and libjpeg headers exist
    _jpeg_region = None

AVAILABLE = _jpeg_region is not None
MESSAGE_BYTES = 512  # libjpeg's JMSG_LENGTH_MAX (200) plus fastdeit's prefix, rounded up

ERR_NONE = 0
ERR_JPEG = 1  # libjpeg failed (corrupt, truncated, wrong size): the message buffer says why
ERR_RAW_SIZE = 2  # a raw sample's byte count is not width * height * 3
ERR_BOX = 3  # the crop box lies outside the image

_SYMBOL = "fastdeit_decode_region"
if AVAILABLE:
    import llvmlite.binding

    llvmlite.binding.add_symbol(_SYMBOL, _jpeg_region.DECODE_REGION_ADDRESS)

# int fastdeit_decode_region(data, size, scale_denom, expect_h, expect_w, y0, y1, x0, x1, out,
#                            out_size, result[2], message, message_size)  (kernels/_jpeg_region.c)
_decode_region = types.ExternalFunction(
    _SYMBOL,
    types.int32(
        types.voidptr, types.uintp, types.int32, types.uint32, types.uint32, types.uint32,
        types.uint32, types.uint32, types.uint32, types.voidptr, types.uintp, types.voidptr,
        types.voidptr, types.uintp,
    ),
)


@numba.njit(cache=True, nogil=True)
def dct_factor(crop_h: int, crop_w: int, out_h: int, out_w: int, height: int, width: int) -> int:
    """cpu_decoder.dct_factor, compiled (same float operations, same result)."""
    for f in (8, 4, 2):
        sy = math.ceil(height / f) / height
        sx = math.ceil(width / f) / width
        if crop_h * sy >= out_h and crop_w * sx >= out_w:
            return f
    return 1


@numba.njit(cache=True, nogil=True)
def _decode_row(buf, off, size, width, height, is_jpeg, top, left, ch, cw, flip, out, dct_scaling,
                decode_buf, resize_buf, result, message) -> int:
    """One sample into `out`: cpu_decoder.decode_crop_resize's region path; returns ERR_*."""
    out_h, out_w = out.shape[0], out.shape[1]
    data = buf[off : off + size]
    if not is_jpeg:
        if size != width * height * 3:
            return ERR_RAW_SIZE
        x0, y0 = np.float32(left), np.float32(top)
        x1, y1 = np.float32(left + cw), np.float32(top + ch)
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            return ERR_BOX
        src = data.reshape((height, width, 3))
        _resize_into(src, 0, 0, height, width, float(x0), float(x1 - x0), float(y0), float(y1 - y0),
                     out, flip, resize_buf)
        return ERR_NONE
    f = dct_factor(ch, cw, out_h, out_w, height, width) if dct_scaling else 1
    exp_h, exp_w = math.ceil(height / f), math.ceil(width / f)
    sy, sx = exp_h / height, exp_w / width
    # the box as the reference computes it: float64 products, then float32 (as Pillow's box)
    x0, y0 = np.float32(left * sx), np.float32(top * sy)
    x1, y1 = np.float32((left + cw) * sx), np.float32((top + ch) * sy)
    if not (0 <= x0 < x1 <= exp_w and 0 <= y0 < y1 <= exp_h):
        return ERR_BOX
    ry0, ry1 = _span(exp_h, float(y0), float(y1 - y0), out_h)
    rx0, rx1 = _span(exp_w, float(x0), float(x1 - x0), out_w)
    # one column of margin each side: fancy chroma upsampling differs at a horizontal cut
    rx0, rx1 = max(rx0 - 1, 0), min(rx1 + 1, exp_w)
    rc = _decode_region(data.ctypes, size, f, exp_h, exp_w, ry0, ry1, rx0, rx1, decode_buf.ctypes,
                        decode_buf.size, result.ctypes, message.ctypes, message.size)
    if rc != 0:
        return ERR_JPEG
    xo, w = np.int64(result[0]), np.int64(result[1])
    n = ry1 - ry0
    src = decode_buf[: n * w * 3].reshape((n, w, 3))
    _resize_into(src, ry0, xo, exp_h, exp_w, float(x0), float(x1 - x0), float(y0), float(y1 - y0),
                 out, flip, resize_buf)
    return ERR_NONE


@numba.njit(cache=True, nogil=True)
def decode_chunk(buf, offsets, sizes, widths, heights, is_jpeg, samples, crop, flip, out, dct_scaling,
                 decode_buf, resize_buf, message):
    """Fill out[k] (k < len(out)) from sample i = samples[k]: its bytes are
    buf[offsets[i] : offsets[i] + sizes[i]], its stored size widths[i] x heights[i].

    crop[k] = (top, left, height, width) in the stored image, flip[k] mirrors the result.
    decode_buf and resize_buf are scratch (replaced by a larger one for a sample that needs more).
    Returns (0, -1) when every row is filled, else (ERR_*, the first failing row k), with
    libjpeg's message NUL-terminated in `message` for ERR_JPEG.
    """
    result = np.zeros(2, dtype=np.uint32)
    for k in range(out.shape[0]):
        i = samples[k]
        h, w = heights[i], widths[i]
        if decode_buf.size < h * w * 3:
            decode_buf = np.empty(h * w * 3, dtype=np.uint8)
        code = _decode_row(buf, offsets[i], sizes[i], w, h, is_jpeg[i], crop[k, 0], crop[k, 1],
                           crop[k, 2], crop[k, 3], flip[k], out[k], dct_scaling, decode_buf,
                           resize_buf, result, message)
        if code != ERR_NONE:
            return code, k
    return ERR_NONE, -1


def message_text(message: np.ndarray) -> str:
    """The NUL-terminated text the C decoder left in `message`."""
    raw = message.tobytes()
    return raw[: raw.find(b"\0") if b"\0" in raw else len(raw)].decode("utf-8", "replace")
