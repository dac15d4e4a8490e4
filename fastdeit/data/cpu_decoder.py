"""Decode + RandomResizedCrop + flip of planned samples into a uint8 NHWC batch, on threads.

Why threads: each chunk of plan rows is one call into compiled code with the GIL released
(fastdeit.kernels.chunk_decode: libjpeg-turbo region decode + the numba resize, looping over the
chunk), so a ThreadPoolExecutor scales over cores without the pickling and shared-memory plumbing
of worker processes, every sample is written straight into its row of the batch buffer, and the
trainer's main thread keeps the GIL to itself while the threads decode.

Why DCT scaling: libjpeg-turbo can decode at 1/2, 1/4 or 1/8 scale in the DCT domain, which
skips most of the IDCT and colour conversion. It is used only when the crop, scaled, is still
at least the output size in both directions, so the final bicubic resize still downscales (and
antialiases) as the reference pipeline does; the difference from a full decode is then a few
grey levels (tested against PIL in tests/data/test_cpu_decoder.py).

Why crop, then resize: deit's RandomResizedCrop (timm's, through torchvision's F.resized_crop)
crops the PIL image and resizes the crop, so the bicubic filter never reads a pixel outside the
box and clamps at the box's edges. Resizing the box in place (PIL's resize(box=...)) blends in
the pixels around it instead: up to 31 grey levels apart within ~2 input pixels of each edge,
which on 40 px crops of 32 px images was most of every image (issue 17, the digits gap).

Why region decoding: a RandomResizedCrop covers about half the image on average, so the C
extension fastdeit.kernels._jpeg_region (libjpeg-turbo's libjpeg API) decodes only the rows and
columns of the crop and two pixels around it, plus one more column each side, because fancy chroma upsampling treats a horizontal cut like
an image edge and so changes the region's outermost columns (rows are exact: jpeg_skip_scanlines
keeps the upsampler's context). The result is bit-identical to decoding the whole image with
simplejpeg (tests/kernels/test_jpeg_region.py), which stays the fallback when the extension was
not built (no compiler or no libjpeg headers at install time). Corrupt or truncated data raises
ValueError naming the sample, except damage below the crop's last row, which is never read.

`decode_crop_resize` is the per-sample reference path (and the fallback); the chunk kernel
computes the same pixels bit for bit (tests/kernels/test_chunk_decode.py). Each sample's pixels
are a pure function of (stored bytes, plan row), so batches are bit-identical whatever the number
of threads or the chunk size.
"""

from __future__ import annotations

import math
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import numpy as np
import simplejpeg

from fastdeit.data.plan import Plan
from fastdeit.kernels import chunk_decode
from fastdeit.kernels.resize import resize_crop

try:
    from fastdeit.kernels import _jpeg_region
except ImportError:  # built by `pip install` only where a C compiler and libjpeg headers exist
    _jpeg_region = None
    warnings.warn(
        "fastdeit.kernels._jpeg_region is not built (install libjpeg-dev and a C compiler, then "
        "reinstall fastdeit): the CPU decoder decodes whole JPEGs with simplejpeg (same pixels, slower)",
        RuntimeWarning,
        stacklevel=2,
    )

REGION_DECODE_AVAILABLE = _jpeg_region is not None
# Pixels of a (stored bytes, plan row) for cache identities (fastdeit/distill/cache_identity.py):
# 1 = whole-image simplejpeg decode, box resized in place; region decoding is bit-identical to it.
# 2 = the crop resized on its own (deit's crop-then-resize); region decoding still bit-identical.
# 3 = Pillow 13's pass order: vertical first where the height shrinks much more than the width.
DECODER_VERSION = 3
_REGION_MARGIN = chunk_decode.REGION_MARGIN  # pixels decoded around a crop (chroma upsampling context; _decode_region adds 1 column)
DCT_FACTORS = (8, 4, 2)  # libjpeg-turbo's SIMD-accelerated reduced IDCTs (1/8, 1/4, 1/2)
_tls = threading.local()


def _thread_buffer(name: str, nbytes: int, least: int = 1 << 20) -> np.ndarray:
    """This thread's scratch buffer `name` of at least `nbytes` (reused: no page faults per image)."""
    buf = getattr(_tls, name, None)
    if buf is None or buf.size < nbytes:
        buf = np.zeros(max(nbytes, least), dtype=np.uint8)
        setattr(_tls, name, buf)
    return buf


def _decode_buffer(nbytes: int) -> np.ndarray:
    """This thread's JPEG output buffer."""
    return _thread_buffer("buf", nbytes)


class SampleSource(Protocol):
    """What the decoder reads: fastdeit.data.beton.BetonReader satisfies it."""

    widths: np.ndarray
    heights: np.ndarray
    is_jpeg: np.ndarray

    def image_bytes(self, i: int) -> np.ndarray: ...


class _SampleTable:
    """Every sample's bytes and stored size as the chunk kernel reads them (chunk_decode).

    A memory-mapped file (BetonReader: `buffer`, `offsets`, `sizes`) is used as it is: the kernel
    reads the bytes of the chunk's samples itself, with no Python per sample. Any other source's
    bytes are gathered for each chunk (`for_chunk`).
    """

    def __init__(self, source: SampleSource) -> None:
        self.source = source
        self.mapped = all(hasattr(source, a) for a in ("buffer", "offsets", "sizes"))
        # One array type per argument of the compiled kernel, whatever the source: the bytes
        # read-only, every table writable (copies). numba 0.68 mis-types a callee when one
        # process compiles it for both a read-only and a writable array of the same kind
        # ("Cannot modify readonly array" on a cold cache), so no second variant is ever made.
        self.widths = np.array(source.widths, dtype=np.int64)
        self.heights = np.array(source.heights, dtype=np.int64)
        self.is_jpeg = np.array(source.is_jpeg, dtype=np.bool_)
        if self.mapped:
            self.buffer = _read_only(np.asarray(source.buffer, dtype=np.uint8).reshape(-1))
            self.offsets = np.array(source.offsets, dtype=np.int64)
            self.sizes = np.array(source.sizes, dtype=np.int64)
        self.max_pixels = int((self.widths * self.heights).max()) if len(self.widths) else 1
        self.max_height = int(self.heights.max()) if len(self.heights) else 1
        self.max_side = max(self.max_height, int(self.widths.max()) if len(self.widths) else 1)

    def for_chunk(self, idx: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """(buffer, offsets, sizes, widths, heights, is_jpeg) and the rows' sample numbers in them."""
        if self.mapped:
            return (self.buffer, self.offsets, self.sizes, self.widths, self.heights, self.is_jpeg), idx
        parts = [np.asarray(self.source.image_bytes(int(i)), dtype=np.uint8).reshape(-1) for i in idx]
        sizes = np.array([p.size for p in parts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        table = (_read_only(np.concatenate(parts)), offsets, sizes, self.widths[idx], self.heights[idx],
                 self.is_jpeg[idx])
        return table, np.arange(len(idx), dtype=np.int64)


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of `a` (the kernel's byte buffer is always typed read-only)."""
    view = a.view()
    view.setflags(write=False)
    return view


def _writable(a: np.ndarray) -> np.ndarray:
    """`a`, or a writable copy of it (the kernel's tables are always typed writable)."""
    return a if a.flags.writeable else a.copy()


def dct_factor(crop_h: int, crop_w: int, out_h: int, out_w: int, height: int, width: int) -> int:
    """Largest DCT downscale factor f in (8, 4, 2) that keeps the crop >= the output; else 1.

    libjpeg's scaled image is ceil(height / f) x ceil(width / f); the crop shrinks by that ratio.
    """
    for f in DCT_FACTORS:
        sy = math.ceil(height / f) / height
        sx = math.ceil(width / f) / width
        if crop_h * sy >= out_h and crop_w * sx >= out_w:
            return f
    return 1


def _decode_full(data: np.ndarray, f: int, expect: tuple[int, int], width: int, height: int) -> np.ndarray:
    """The whole image at 1/f scale with simplejpeg (the fallback and the reference path)."""
    buf = _decode_buffer(expect[0] * expect[1] * 3)
    if f > 1:
        img = simplejpeg.decode_jpeg(data, min_height=expect[0], min_width=expect[1], buffer=buf)
    else:
        img = simplejpeg.decode_jpeg(data, buffer=buf)
    if img.shape[:2] != expect:
        raise ValueError(
            f"JPEG decodes to {img.shape[1]}x{img.shape[0]}, expected {expect[1]}x{expect[0]} "
            f"(stored size {width}x{height})"
        )
    return img


def _decode_region(
    data: np.ndarray, f: int, expect: tuple[int, int], region: tuple[int, int, int, int]
) -> tuple[np.ndarray, tuple[int, int]]:
    """Rows y0:y1 and (at least) columns x0:x1 of the image at 1/f scale, and their origin.

    One column of margin each side (where the image goes on) keeps the columns the resize reads
    away from the cut, where fancy chroma upsampling differs from a whole-image decode.
    """
    y0, y1, x0, x1 = region
    x0, x1 = max(x0 - 1, 0), min(x1 + 1, expect[1])
    buf = _decode_buffer(expect[0] * expect[1] * 3)
    xo, w = _jpeg_region.decode(data, buf, f, expect[0], expect[1], y0, y1, x0, x1)
    return buf[: (y1 - y0) * w * 3].reshape(y1 - y0, w, 3), (y0, xo)


def decode_crop_resize(
    data: np.ndarray,
    is_jpeg: bool,
    width: int,
    height: int,
    crop: tuple[int, int, int, int],
    flip: bool,
    out: np.ndarray,
    dct_scaling: bool = True,
    region: bool = True,
) -> np.ndarray:
    """Decode one stored image, crop `crop` = (top, left, h, w), resize into `out`, maybe flip.

    `region` decodes only the part the resize reads when the C extension is built (same pixels).
    """
    top, left, ch, cw = (int(v) for v in crop)
    if not is_jpeg:
        if data.size != width * height * 3:
            raise ValueError(f"raw image has {data.size} bytes, {width}x{height}x3 expected")
        return resize_box_alone(data.reshape(height, width, 3), (0, 0), (left, top, left + cw, top + ch), out, flip)
    f = dct_factor(ch, cw, out.shape[0], out.shape[1], height, width) if dct_scaling else 1
    expect = (math.ceil(height / f), math.ceil(width / f))
    sy, sx = expect[0] / height, expect[1] / width
    box = (left * sx, top * sy, (left + cw) * sx, (top + ch) * sy)
    if region and REGION_DECODE_AVAILABLE:
        y0, y1, x0, x1 = box_pixels(box, expect)
        # 2 more pixels around the crop: fancy chroma upsampling at a cut changes the pixels next to it
        m = _REGION_MARGIN
        need = (max(y0 - m, 0), min(y1 + m, expect[0]), max(x0 - m, 0), min(x1 + m, expect[1]))
        img, origin = _decode_region(data, f, expect, need)
        return resize_box_alone(img, origin, box, out, flip)
    return resize_box_alone(_decode_full(data, f, expect, width, height), (0, 0), box, out, flip)


def box_pixels(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the whole pixels a (left, top, right, bottom) box covers in an image of `size` (h, w)."""
    x0, y0, x1, y1 = box
    return (max(int(math.floor(y0)), 0), min(int(math.ceil(y1)), size[0]),
            max(int(math.floor(x0)), 0), min(int(math.ceil(x1)), size[1]))


def resize_box_alone(img: np.ndarray, origin: tuple[int, int], box: tuple[float, float, float, float],
                     out: np.ndarray, flip: bool) -> np.ndarray:
    """Resize `box` (full-image coordinates) of `img` (rows origin[0].., columns origin[1].. of the
    image) as an image of its own: deit's crop, then resize (torchvision F.resized_crop).

    With an integer box this is PIL's img.crop(box).resize(out size, BICUBIC) bit for bit; a DCT
    scaled box (fractional) is cut to the whole pixels it covers and resized from its offset there.
    """
    y0, y1, x0, x1 = box_pixels(box, (origin[0] + img.shape[0], origin[1] + img.shape[1]))
    pixels = np.ascontiguousarray(img[y0 - origin[0]:y1 - origin[0], x0 - origin[1]:x1 - origin[1]])
    inner = (box[0] - x0, box[1] - y0, min(box[2] - x0, x1 - x0), min(box[3] - y0, y1 - y0))
    return resize_crop(pixels, inner, out, flip)


def _check_batch_buffer(plan: Plan, out: np.ndarray) -> None:
    n, s = len(plan), plan.img_size
    if out.shape != (n, s, s, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous uint8 {(n, s, s, 3)}, got {out.dtype} {out.shape}")


def undecodable_sample_message(source, index: int, position: int | None, err: BaseException) -> str:
    """A sample met in training that does not decode: the file, the index, and how to look at it."""
    path = getattr(source, "path", None)
    where = f"{path}: sample {index}" if path else f"sample {index}"
    at = f" (stream position {position})" if position is not None else ""
    why = str(err).removeprefix(f"{where}: ")
    text = f"{where}{at} does not decode: {why}"
    if path:
        text += (f". Look at it with `fastdeit inspect {path} --export {index + 1} DIR` (writes samples 0..{index}; "
                 f"this one as its stored bytes) or `fastdeit inspect {path} --verify` (lists every sample that "
                 "does not decode); re-run prepare on the source images to replace the file")
    return text


class CpuDecoder:
    """A pool of threads that fills batch buffers from plans; see `submit` and `decode`.

    chunk: plan rows per call into the chunk kernel; None (default) splits each batch into one
    chunk per thread, the fewest GIL hand-overs (each costs up to a switch interval while the
    trainer's main thread runs Python). The pixels do not depend on it.
    """

    def __init__(
        self,
        source: SampleSource,
        threads: int = 2,
        dct_scaling: bool = True,
        chunk: int | None = None,
        region_decode: bool = True,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if chunk is not None and chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.source = source
        self.threads = threads
        self.dct_scaling = dct_scaling
        self.region_decode = region_decode  # effective only where REGION_DECODE_AVAILABLE
        self.chunk = chunk
        self._table = _SampleTable(source)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fastdeit-decode")

    def _decode_rows(self, plan: Plan, rows: range, out: np.ndarray) -> None:
        if self.region_decode and REGION_DECODE_AVAILABLE and chunk_decode.AVAILABLE:
            self._decode_chunk(plan, rows, out)
        else:
            self._decode_each(plan, rows, out)

    def _decode_chunk(self, plan: Plan, rows: range, out: np.ndarray) -> None:
        """Rows `rows` of the batch in one compiled call with the GIL released (chunk_decode)."""
        a, b = rows.start, rows.stop
        (buf, offsets, sizes, widths, heights, is_jpeg), samples = self._table.for_chunk(plan.indices[a:b])
        side = out.shape[2]
        decode_buf = _thread_buffer("buf", self._table.max_pixels * 3)
        # the resize's scratch: the region read (<= the image) plus its first pass (<= side x the longest side)
        resize_buf = _thread_buffer("resize", (self._table.max_pixels + self._table.max_side * side) * 3)
        message = _thread_buffer("message", chunk_decode.MESSAGE_BYTES, least=0)
        code, k = chunk_decode.decode_chunk(
            buf, offsets, sizes, widths, heights, is_jpeg, _writable(samples), _writable(plan.crop[a:b]),
            _writable(plan.flip[a:b]),
            out[a:b], self.dct_scaling, decode_buf, resize_buf, message,
        )
        if code != chunk_decode.ERR_NONE:
            j = int(samples[k])
            i, w, h = int(plan.indices[a + k]), int(widths[j]), int(heights[j])
            if code == chunk_decode.ERR_JPEG:
                why = chunk_decode.message_text(message)
            elif code == chunk_decode.ERR_RAW_SIZE:
                why = f"raw image has {int(sizes[j])} bytes, {w}x{h}x3 expected"
            else:
                why = f"crop {tuple(int(v) for v in plan.crop[a + k])} outside the {w}x{h} image"
            raise ValueError(undecodable_sample_message(self.source, i, int(plan.positions[a + k]), ValueError(why)))

    def _decode_each(self, plan: Plan, rows: range, out: np.ndarray) -> None:
        """Rows `rows` one sample at a time (the reference path, and simplejpeg's fallback)."""
        src = self.source
        for r in rows:
            i = int(plan.indices[r])
            try:
                decode_crop_resize(
                    src.image_bytes(i),
                    bool(src.is_jpeg[i]),
                    int(src.widths[i]),
                    int(src.heights[i]),
                    plan.crop[r],
                    bool(plan.flip[r]),
                    out[r],
                    self.dct_scaling,
                    self.region_decode,
                )
            except Exception as err:  # noqa: BLE001 - name the sample whatever libjpeg raised
                raise ValueError(undecodable_sample_message(src, i, int(plan.positions[r]), err)) from err

    def submit(self, plan: Plan, out: np.ndarray) -> list[Future]:
        """Start filling `out` (n × S × S × 3 uint8, n = len(plan)); returns the futures."""
        _check_batch_buffer(plan, out)
        n = len(plan)
        step = self.chunk or max(-(-n // self.threads), 1)
        return [
            self._pool.submit(self._decode_rows, plan, range(a, min(a + step, n)), out)
            for a in range(0, n, step)
        ]

    def decode_on_this_thread(self, plan: Plan, out: np.ndarray) -> np.ndarray:
        """Fill `out` for `plan` on the calling thread, as one decode thread fills its chunk (no
        thread pool in between: benchmarks time a decode thread's own work with it)."""
        _check_batch_buffer(plan, out)
        self._decode_rows(plan, range(len(plan)), out)
        return out

    def decode(self, plan: Plan, out: np.ndarray | None = None) -> np.ndarray:
        """Fill (or allocate) the batch for `plan` and wait for it."""
        if out is None:
            out = np.empty((len(plan), plan.img_size, plan.img_size, 3), dtype=np.uint8)
        for fut in self.submit(plan, out):
            fut.result()
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> CpuDecoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
