"""Decode + RandomResizedCrop + flip of a whole chunk of plan rows in one compiled call, GIL released.

Why: the per-sample path (fastdeit.data.cpu_decoder.decode_crop_resize, the plain reference this
kernel is tested against) runs tens of microseconds of Python per sample under the GIL (the DCT
factor, the region, a numba dispatch, scalar conversions), so decode threads and the trainer's
main thread take turns on the GIL. Here one numba `nogil` call loops over the chunk's rows: it
reads each sample's bytes straight from the memory-mapped file (offsets and sizes), picks the DCT
scale, decodes only the crop (and a margin) with the C extension's libjpeg-turbo decoder
(called through its address: `DECODE_REGION_ADDRESS`, linked under the symbol name
`fastdeit_decode_region` so that numba's on-disk cache stays valid), resizes Pillow-exactly with
fastdeit.kernels.resize's kernel (the crop alone, as deit crops then resizes; passes in Pillow 13's
order) and flips, into the rows of the batch buffer. Raw (non-JPEG)
samples take the same loop without the decoder. Every float step is the reference path's, in the
same order and precision, so the pixels are identical bit for bit. numba's on-disk cache of this
file is emptied whenever resize.py changes too (kernels/numba_cache.py).

Errors do not raise inside the loop: the call returns the failing row and a code (`ERR_*`), with
libjpeg's message in the caller's buffer, and the caller names the sample (cpu_decoder).

Available only where the extension was built (`AVAILABLE`); otherwise the CPU decoder keeps its
per-sample simplejpeg path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numba
import numpy as np
from numba import types

from fastdeit.kernels import resize as _resize_module
from fastdeit.kernels.numba_cache import flush_when_sources_change
from fastdeit.kernels.resize import _resize_into

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
REGION_MARGIN = 2  # pixels decoded around a crop: cpu_decoder._REGION_MARGIN (asserted equal there)

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
    """One sample into `out`: cpu_decoder.decode_crop_resize's region path; returns ERR_*.

    deit's crop, then resize (cpu_decoder.resize_box_alone): the crop's whole pixels are resized
    as an image of their own, so the bicubic filter clamps at the crop's edges and never reads
    the pixels around it; `_resize_into` gets them as an image whose origin lies inside the
    decoded region (the region's origin relative to the crop is <= 0).
    """
    data = buf[off : off + size]
    if not is_jpeg:
        if size != width * height * 3:
            return ERR_RAW_SIZE
        if not (0 <= left and 0 < cw and left + cw <= width and 0 <= top and 0 < ch and top + ch <= height):
            return ERR_BOX
        # the crop alone, copied out of the (read-only) mapped bytes into the writable decode
        # buffer, as the reference's np.ascontiguousarray(crop): _resize_into then sees the same
        # array type on both paths (numba failed to type a read-only source here on a cold cache)
        src = data.reshape((height, width, 3))
        rows, cols = np.int64(ch), np.int64(cw)
        crop = decode_buf[: rows * cols * 3].reshape((rows, cols, 3))
        for y in range(rows):
            for x in range(cols):
                for c in range(3):
                    crop[y, x, c] = src[top + y, left + x, c]
        _resize_into(crop, 0, 0, ch, cw, 0.0, float(np.float32(cw)), 0.0, float(np.float32(ch)),
                     out, flip, resize_buf)
        return ERR_NONE
    f = dct_factor(ch, cw, out.shape[0], out.shape[1], height, width) if dct_scaling else 1
    exp_h, exp_w = math.ceil(height / f), math.ceil(width / f)
    sy, sx = exp_h / height, exp_w / width
    # the box as the reference computes it (float64), then the whole pixels it covers (box_pixels)
    bx0, by0 = left * sx, top * sy
    bx1, by1 = (left + cw) * sx, (top + ch) * sy
    px0, py0 = max(int(math.floor(bx0)), 0), max(int(math.floor(by0)), 0)
    px1, py1 = min(int(math.ceil(bx1)), exp_w), min(int(math.ceil(by1)), exp_h)
    # the box inside those pixels, float32 as Pillow's box (resize_crop)
    ix0, iy0 = np.float32(bx0 - px0), np.float32(by0 - py0)
    ix1, iy1 = np.float32(min(bx1 - px0, px1 - px0)), np.float32(min(by1 - py0, py1 - py0))
    if not (0 <= ix0 < ix1 <= px1 - px0 and 0 <= iy0 < iy1 <= py1 - py0):
        return ERR_BOX
    # REGION_MARGIN pixels around the crop (chroma upsampling context), plus one more column each
    # side, as cpu_decoder._decode_region
    ry0, ry1 = max(py0 - REGION_MARGIN, 0), min(py1 + REGION_MARGIN, exp_h)
    rx0, rx1 = max(px0 - REGION_MARGIN - 1, 0), min(px1 + REGION_MARGIN + 1, exp_w)
    rc = _decode_region(data.ctypes, size, f, exp_h, exp_w, ry0, ry1, rx0, rx1, decode_buf.ctypes,
                        decode_buf.size, result.ctypes, message.ctypes, message.size)
    if rc != 0:
        return ERR_JPEG
    xo, w = np.int64(result[0]), np.int64(result[1])
    n = ry1 - ry0
    src = decode_buf[: n * w * 3].reshape((n, w, 3))
    _resize_into(src, ry0 - py0, xo - px0, py1 - py0, px1 - px0, float(ix0), float(ix1 - ix0), float(iy0),
                 float(iy1 - iy0), out, flip, resize_buf)
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


# decode_chunk compiles resize.py's kernel into itself, and numba's on-disk cache notices a change
# to this file only: empty the cache when either file's contents changed (kernels/numba_cache.py)
flush_when_sources_change("chunk_decode", (dct_factor, _decode_row, decode_chunk),
                          (Path(__file__), Path(_resize_module.__file__)))
