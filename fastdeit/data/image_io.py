"""Robust image reading and JPEG re-encoding for `prepare`.

Real ImageNet holds CMYK and grayscale JPEGs, a PNG named `.JPEG`, EXIF-rotated photos, huge
images and the odd truncated file. `load_rgb` turns each into an upright RGB uint8 array (or
raises `ImageError` with the reason); `encode_jpeg` writes baseline 4:2:0 JPEG, which nvJPEG's
hardware decoder accepts.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image, ImageOps

# Refuse decompression bombs, but accept the largest real photos (ImageNet's largest is far below).
MAX_PIXELS = 1 << 28


class ImageError(Exception):
    """An input image that cannot be read; the message says why."""


def target_size(width: int, height: int, max_res: int) -> tuple[int, int]:
    """(width, height) after scaling the longest side down to max_res; as FFCV's resizer
    (floor of ratio * size), never upscaling, never below 1 pixel. max_res <= 0 keeps the size."""
    if max_res <= 0:
        return width, height
    ratio = max_res / max(width, height)
    if ratio >= 1:
        return width, height
    return max(1, int(ratio * width)), max(1, int(ratio * height))


def load_rgb(path: str | os.PathLike, max_res: int = 0) -> np.ndarray:
    """Read an image file as an upright RGB uint8 (H, W, 3) array, its longest side at most
    max_res (area downscaling). The format is detected from the content, not the name.

    Plain JPEGs (YCbCr or gray, no libjpeg warnings) are decoded with simplejpeg, scaled in the DCT
    domain when at least twice too big; everything else (CMYK, PNG, damaged files...) goes
    through PIL, which also gives the error message for files that cannot be read."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as err:
        raise ImageError(f"no such file: {err.filename or path}") from None
    except OSError as err:
        raise ImageError(f"cannot read file: {err}") from None
    if not data:
        raise ImageError("empty file (0 bytes)")
    if data[:3] == b"\xff\xd8\xff":
        arr = _load_plain_jpeg(data, max_res)
        if arr is not None:
            return arr
    return _load_pil(data, max_res)


# PIL's exif_transpose, as numpy views: orientation -> function of an (H, W, C) array.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def _exif_orientation(data: bytes) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:  # lazy: parses the markers only
                o = int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - unreadable EXIF: upright
        return 1
    return o if 1 <= o <= 8 else 1


def _load_plain_jpeg(data: bytes, max_res: int) -> np.ndarray | None:
    """simplejpeg fast path; None where PIL should handle the file."""
    try:
        h, w, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if colorspace not in ("YCbCr", "Gray", "RGB") or h * w > MAX_PIXELS:
        return None
    orientation = _exif_orientation(data)
    swaps = orientation in (5, 6, 7, 8)
    ow, oh = (h, w) if swaps else (w, h)
    tw, th = target_size(ow, oh, max_res)
    kw = {}
    if max_res > 0 and max(ow, oh) >= 2 * max_res:
        kw = {"min_width": th if swaps else tw, "min_height": tw if swaps else th}
    try:
        arr = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True, **kw)
    except ValueError:
        return None  # truncated, extraneous bytes...: PIL decides and says why
    if orientation != 1:
        arr = _ORIENT[orientation](arr)
    if (arr.shape[1], arr.shape[0]) != (tw, th):
        arr = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((tw, th), Image.Resampling.BOX))
    return np.ascontiguousarray(arr)


def _load_pil(data: bytes, max_res: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # corrupt EXIF and similar: keep the pixels
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImageError(f"image is {im.width}x{im.height}, more than {MAX_PIXELS} pixels")
                if max_res > 0 and im.format == "JPEG":
                    # DCT-domain downscaling by 2/4/8 for big JPEGs: decodes huge images fast and in
                    # little memory, never below the target (the rest is done by area resizing).
                    w, h = _oriented_size(im)
                    tw, th = target_size(w, h, max_res)
                    if (tw, th) != (w, h):
                        sw, sh = (th, tw) if _swaps_axes(im) else (tw, th)
                        im.draft(im.mode, (sw, sh))
                im.load()
                im = ImageOps.exif_transpose(im) or im
                im = _to_rgb(im)
                tw, th = target_size(im.width, im.height, max_res)
                if (tw, th) != im.size:
                    im = im.resize((tw, th), Image.Resampling.BOX)
                arr = np.asarray(im, dtype=np.uint8)
    except ImageError:
        raise
    except Exception as err:  # noqa: BLE001 - PIL plugins raise many types on bad files
        # PIL names the in-memory buffer ("<_io.BytesIO object at 0x..>"); the caller names the path
        message = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(err))
        raise ImageError(f"cannot read image: {type(err).__name__}: {message}") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"unexpected decoded shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _swaps_axes(im: Image.Image) -> bool:
    try:
        return im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:  # noqa: BLE001 - unreadable EXIF: treat as upright
        return False


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    return (im.height, im.width) if _swaps_axes(im) else (im.width, im.height)


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    # CMYK (PIL undoes Adobe's inverted CMYK), L, LA, RGBA, P, YCbCr...: as torchvision does.
    return im.convert("RGB")


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """Baseline (sequential, Huffman) JPEG with 4:2:0 chroma subsampling."""
    return simplejpeg.encode_jpeg(
        np.ascontiguousarray(rgb), quality=int(quality), colorspace="RGB", colorsubsampling="420"
    )


def decode_jpeg(data: bytes | np.ndarray) -> np.ndarray:
    """Decode JPEG bytes to RGB uint8 (H, W, 3) with libjpeg-turbo."""
    return simplejpeg.decode_jpeg(data, colorspace="RGB")


def jpeg_info(data: bytes | np.ndarray) -> dict:
    """Frame type and sampling factors of a JPEG, from its SOF marker:
    {'sof': 0xC0.., 'baseline': bool, 'progressive': bool, 'width', 'height', 'components':
    [(id, h_sampling, v_sampling), ...]}. Raises ValueError if no frame header is found."""
    b = bytes(data)
    if b[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            raise ValueError(f"bad JPEG marker at byte {i}")
        marker = b[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        seg_len = int.from_bytes(b[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            seg = b[i + 4 : i + 2 + seg_len]
            height = int.from_bytes(seg[1:3], "big")
            width = int.from_bytes(seg[3:5], "big")
            n = seg[5]
            comps = [(seg[6 + 3 * k], seg[7 + 3 * k] >> 4, seg[7 + 3 * k] & 15) for k in range(n)]
            return {
                "sof": marker,
                "baseline": marker == 0xC0,
                "progressive": marker in (0xC2, 0xC6, 0xCA, 0xCE),
                "width": width,
                "height": height,
                "components": comps,
            }
        if marker == 0xDA:
            break
        i += 2 + seg_len
    raise ValueError("no JPEG frame header (SOF) found")
