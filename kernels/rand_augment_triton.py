"""RandAugment ("rand-m9-mstd0.5-inc1", timm's 15 increasing ops) as two Triton launches per layer.

Reference: the per-op torch path, fastdeit/augment/ops.py (histogram.py, enhance.py, levels.py,
geometric.warp_affine_torch), which agrees with timm/PIL. Per layer:

1. `_stats_kernel`, one program per image: for the images whose op needs whole-image statistics
   it builds the lookup table of Equalize or AutoContrast (per-channel histograms, min/max) or
   the grey level of Contrast (mean of PIL's "L"); the other programs return at once.
2. `_ra_kernel`, one program per block of pixels of one image: applies the image's own op with
   its own signed magnitude (the LUT ops, Invert, Posterize, Solarize, SolarizeAdd, the four
   ImageEnhance blends including Sharpness's 3x3 SMOOTH filter, and the affine warps with PIL's
   bicubic a = -1 or bilinear sampler and the fill colour); skipped images are copied.

The level arithmetic is levels.py's, in float64 as there; blends in float32 as PIL's C code.
No host synchronisation: every choice is read on the device.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import triton
import triton.language as tl

from fastdeit.augment._checks import to_device
from fastdeit.augment.rand_augment import check_rand_augment_args
from fastdeit.augment.geometric import INTERPOLATIONS
from fastdeit.augment.ops import IMAGENET_FILL, RAND_INCREASING_OPS

from .launches import check_device, launch

N_OPS = len(RAND_INCREASING_OPS)
SKIP = -1  # op code of an image the layer leaves alone
BLOCK_PIXELS = 1024  # pixels per program of the pixel kernels
STATS_BLOCK = 1024  # pixels per step of the statistics loop

# Op codes: indices into RAND_INCREASING_OPS (timm's _RAND_INCREASING_TRANSFORMS order).
_CODES = {name: i for i, name in enumerate(RAND_INCREASING_OPS)}
AUTOCONTRAST, EQUALIZE, INVERT, ROTATE = (_CODES[k] for k in ("AutoContrast", "Equalize", "Invert", "Rotate"))
POSTERIZE, SOLARIZE, SOLARIZE_ADD = (_CODES[k] for k in ("PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd"))
COLOR, CONTRAST, BRIGHTNESS, SHARPNESS = (_CODES[k] for k in ("ColorIncreasing", "ContrastIncreasing",
                                                               "BrightnessIncreasing", "SharpnessIncreasing"))
SHEAR_X, SHEAR_Y, TRANSLATE_X, TRANSLATE_Y = (_CODES[k] for k in ("ShearX", "ShearY", "TranslateXRel",
                                                                   "TranslateYRel"))
assert (AUTOCONTRAST, EQUALIZE, INVERT, ROTATE, POSTERIZE, SOLARIZE, SOLARIZE_ADD, COLOR, CONTRAST, BRIGHTNESS,
        SHARPNESS, SHEAR_X, SHEAR_Y, TRANSLATE_X, TRANSLATE_Y) == tuple(range(15)), "kernel op codes are timm's order"
DEG_TO_RAD = math.pi / 180.0  # torch.deg2rad


# ----------------------------------------------------------------------------------------------
# statistics


@triton.jit
def _channel_hist(base, c_off, sh, sw, H, W, BLOCK: tl.constexpr):
    hist = tl.zeros([256], dtype=tl.int32)
    for start in range(0, H * W, BLOCK):
        p = start + tl.arange(0, BLOCK)
        m = p < H * W
        v = tl.load(base + c_off + (p // W) * sh + (p % W) * sw, mask=m, other=0).to(tl.int32)
        hist += tl.histogram(v, 256, mask=m)
    return hist


@triton.jit
def _equalize_lut(hist, HW):
    # histogram.equalize (PIL ImageOps.equalize): lut[i] = (step // 2 + pixels below i) // step
    bins = tl.arange(0, 256)
    nonzero = hist > 0
    last = tl.max(tl.where(nonzero, bins, -1), 0)
    distinct = tl.sum(nonzero.to(tl.int32), 0)
    last_count = tl.sum(tl.where(bins == last, hist, 0), 0)
    step = (HW - last_count) // 255
    ok = (distinct > 1) & (step > 0)
    safe = tl.where(ok, step, 1)
    before = tl.cumsum(hist, 0) - hist
    return tl.where(ok, tl.minimum((safe // 2 + before) // safe, 255), bins)  # point() clips to 8 bits


@triton.jit
def _autocontrast_lut(hist):
    # histogram.autocontrast (PIL ImageOps.autocontrast, cutoff 0), float64 as there
    bins = tl.arange(0, 256)
    nonzero = hist > 0
    lo = tl.min(tl.where(nonzero, bins, 256), 0)
    hi = tl.max(tl.where(nonzero, bins, -1), 0)
    ok = hi > lo
    span = tl.where(ok, hi - lo, 1).to(tl.float64)
    scale = 255.0 / span
    offset = -lo.to(tl.float64) * scale
    lut = (bins.to(tl.float64) * scale + offset).to(tl.int32)  # truncates, as Python's int()
    return tl.where(ok, tl.minimum(tl.maximum(lut, 0), 255), bins)


@triton.jit
def _stats_kernel(img, sn, sc, sh, sw, ops, op_stride, lut, level, H, W, BLOCK: tl.constexpr):
    n = tl.program_id(0)
    op = tl.load(ops + n * op_stride)
    base = img + n.to(tl.int64) * sn
    if (op == 0) | (op == 1):  # AutoContrast, Equalize: one lookup table per channel
        for c in tl.static_range(3):
            hist = _channel_hist(base, c * sc, sh, sw, H, W, BLOCK)
            if op == 1:
                table = _equalize_lut(hist, H * W)
            else:
                table = _autocontrast_lut(hist)
            tl.store(lut + (n * 3 + c) * 256 + tl.arange(0, 256), table)
    elif op == 8:  # ContrastIncreasing: int(mean of PIL "L" + 0.5)
        total = tl.zeros([], dtype=tl.int64)
        for start in range(0, H * W, BLOCK):
            p = start + tl.arange(0, BLOCK)
            m = p < H * W
            off = (p // W) * sh + (p % W) * sw
            r = tl.load(base + off, mask=m, other=0).to(tl.int32)
            g = tl.load(base + sc + off, mask=m, other=0).to(tl.int32)
            b = tl.load(base + 2 * sc + off, mask=m, other=0).to(tl.int32)
            grey = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
            total += tl.sum(tl.where(m, grey, 0).to(tl.int64), 0)
        mean = total.to(tl.float64) / (H * W)
        tl.store(level + n, tl.floor(mean + 0.5).to(tl.int32))


# ----------------------------------------------------------------------------------------------
# per-pixel ops


@triton.jit
def _cubic(v1, v2, v3, v4, d):
    # geometric._cubic: PIL's BICUBIC (a = -1) in Horner form
    p3 = (v1 - v2) * 2.0 + v3 - v4
    p4 = (v2 - v1) - v3 + v4
    return ((p4 * d + p3) * d + (v3 - v1)) * d + v2


@triton.jit
def _tap(base, row, x0, k, W, sw, m):
    col = tl.minimum(tl.maximum(x0 + k, 0), W - 1)
    return tl.load(base + row + col * sw, mask=m, other=0).to(tl.float32)


@triton.jit
def _row(base, y, x0, dx, H, W, sh, sw, m, BICUBIC: tl.constexpr):
    row = tl.minimum(tl.maximum(y, 0), H - 1) * sh
    if BICUBIC:
        out = _cubic(_tap(base, row, x0, -1, W, sw, m), _tap(base, row, x0, 0, W, sw, m),
                     _tap(base, row, x0, 1, W, sw, m), _tap(base, row, x0, 2, W, sw, m), dx)
    else:
        v1 = _tap(base, row, x0, 0, W, sw, m)
        out = (_tap(base, row, x0, 1, W, sw, m) - v1) * dx + v1
    return out


@triton.jit
def _sample(base, x0, y0, dx, dy, H, W, sh, sw, m, BICUBIC: tl.constexpr):
    if BICUBIC:
        out = _cubic(_row(base, y0 - 1, x0, dx, H, W, sh, sw, m, BICUBIC),
                     _row(base, y0, x0, dx, H, W, sh, sw, m, BICUBIC),
                     _row(base, y0 + 1, x0, dx, H, W, sh, sw, m, BICUBIC),
                     _row(base, y0 + 2, x0, dx, H, W, sh, sw, m, BICUBIC), dy)
    else:
        v1 = _row(base, y0, x0, dx, H, W, sh, sw, m, BICUBIC)
        out = (_row(base, y0 + 1, x0, dx, H, W, sh, sw, m, BICUBIC) - v1) * dy + v1
    return tl.floor(tl.minimum(tl.maximum(out, 0.0), 255.0)).to(tl.int32)


@triton.jit
def _warp(base, sc, sh, sw, H, W, x, y, m, a, b, c, d, e, f, fill_r, fill_g, fill_b, BICUBIC: tl.constexpr):
    # geometric.warp_affine_torch: positions in float64, taps clamped to the border, fill outside
    xs = x.to(tl.float64) + 0.5
    ys = y.to(tl.float64) + 0.5
    xin = a * xs + b * ys + c
    yin = d * xs + e * ys + f
    outside = (xin < 0) | (xin >= W) | (yin < 0) | (yin >= H)
    u = xin - 0.5
    v = yin - 0.5
    xf = tl.floor(u)
    yf = tl.floor(v)
    dx = (u - xf).to(tl.float32)
    dy = (v - yf).to(tl.float32)
    x0 = tl.minimum(tl.maximum(xf, -2.0), W + 1.0).to(tl.int32)  # bounded before the cast
    y0 = tl.minimum(tl.maximum(yf, -2.0), H + 1.0).to(tl.int32)
    r = tl.where(outside, fill_r, _sample(base, x0, y0, dx, dy, H, W, sh, sw, m, BICUBIC))
    g = tl.where(outside, fill_g, _sample(base + sc, x0, y0, dx, dy, H, W, sh, sw, m, BICUBIC))
    bl = tl.where(outside, fill_b, _sample(base + 2 * sc, x0, y0, dx, dy, H, W, sh, sw, m, BICUBIC))
    return r, g, bl


@triton.jit
def _blend(degenerate, value, alpha):
    # enhance.blend: PIL Image.blend in float32, clipped, truncated
    base = degenerate.to(tl.float32)
    out = base + alpha * (value.to(tl.float32) - base)
    return tl.minimum(tl.maximum(out, 0.0), 255.0).to(tl.int32)


@triton.jit
def _smooth(base, off, value, x, y, H, W, sh, sw, m):
    # enhance.smooth: PIL SMOOTH [[1,1,1],[1,5,1],[1,1,1]] / 13, rounded; the border is kept
    inner = (x >= 1) & (x < W - 1) & (y >= 1) & (y < H - 1) & m
    acc = value * 4
    for dy in tl.static_range(-1, 2):
        for dx in tl.static_range(-1, 2):
            acc += tl.load(base + off + dy * sh + dx * sw, mask=inner, other=0).to(tl.int32)
    return tl.where(inner, (acc * 2 + 13) // 26, value)


@triton.jit
def _ra_kernel(src, dst, sn, sc, sh, sw, ops, mags, op_stride, lut, level, H, W,
               fill_r, fill_g, fill_b, BICUBIC: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0)
    p = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = p < H * W
    y = p // W
    x = p % W
    off = y * sh + x * sw
    base = src + n.to(tl.int64) * sn
    out = dst + n.to(tl.int64) * sn
    r = tl.load(base + off, mask=m, other=0).to(tl.int32)
    g = tl.load(base + sc + off, mask=m, other=0).to(tl.int32)
    b = tl.load(base + 2 * sc + off, mask=m, other=0).to(tl.int32)
    op = tl.load(ops + n * op_stride)
    mag = tl.load(mags + n * op_stride).to(tl.float64)
    # levels._level_and_sign: |m| clipped to [0, 10], the sign apart
    level_ = tl.minimum(tl.abs(mag), 10.0) / 10.0
    sign = tl.where(mag < 0, -1.0, 1.0).to(tl.float64)
    if (op == 0) | (op == 1):  # AutoContrast, Equalize: the tables of _stats_kernel
        table = lut + n * 768
        r = tl.load(table + r, mask=m, other=0)
        g = tl.load(table + 256 + g, mask=m, other=0)
        b = tl.load(table + 512 + b, mask=m, other=0)
    elif op == 2:  # Invert
        r = 255 - r
        g = 255 - g
        b = 255 - b
    elif op == 4:  # PosterizeIncreasing: keep 4 - int(level * 4) bits
        bits = 4 - tl.floor(level_ * 4.0).to(tl.int32)
        mask = 255 - ((1 << (8 - bits)) - 1)
        r = r & mask
        g = g & mask
        b = b & mask
    elif op == 5:  # SolarizeIncreasing: invert values >= 256 - int(level * 256)
        thresh = 256 - tl.minimum(tl.floor(level_ * 256.0), 256.0).to(tl.int32)
        r = tl.where(r >= thresh, 255 - r, r)
        g = tl.where(g >= thresh, 255 - g, g)
        b = tl.where(b >= thresh, 255 - b, b)
    elif op == 6:  # SolarizeAdd: add int(level * 110) below 128, saturating
        add = tl.minimum(tl.floor(level_ * 110.0), 128.0).to(tl.int32)
        r = tl.where(r < 128, tl.minimum(r + add, 255), r)
        g = tl.where(g < 128, tl.minimum(g + add, 255), g)
        b = tl.where(b < 128, tl.minimum(b + add, 255), b)
    elif (op >= 7) & (op <= 10):  # the ImageEnhance blends, factor 1 +/- level * 0.9, at least 0.1
        alpha = tl.maximum(1.0 + level_ * 0.9 * sign, 0.1).to(tl.float32)
        if op == 7:  # Color: with PIL's "L"
            grey = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
            r = _blend(grey, r, alpha)
            g = _blend(grey, g, alpha)
            b = _blend(grey, b, alpha)
        elif op == 8:  # Contrast: with the flat grey of _stats_kernel
            flat = tl.load(level + n)
            r = _blend(flat, r, alpha)
            g = _blend(flat, g, alpha)
            b = _blend(flat, b, alpha)
        elif op == 9:  # Brightness: with black
            r = _blend(r * 0, r, alpha)
            g = _blend(g * 0, g, alpha)
            b = _blend(b * 0, b, alpha)
        else:  # Sharpness: with the SMOOTH-filtered image
            r = _blend(_smooth(base, off, r, x, y, H, W, sh, sw, m), r, alpha)
            g = _blend(_smooth(base + sc, off, g, x, y, H, W, sh, sw, m), g, alpha)
            b = _blend(_smooth(base + 2 * sc, off, b, x, y, H, W, sh, sw, m), b, alpha)
    elif (op == 3) | (op >= 11):  # Rotate, ShearX/Y, TranslateX/YRel: PIL affine matrices
        zero = level_ * 0.0  # float64 (level_ >= 0: no negative zero)
        mat_a = zero + 1.0
        mat_b = zero
        mat_c = zero
        mat_d = zero
        mat_e = zero + 1.0
        mat_f = zero
        if op == 3:  # geometric.rotate_matrix: counter-clockwise level * 30 degrees about the centre
            deg = level_ * 30.0 * sign
            deg = tl.where(deg < 0, deg + 360.0, deg)  # torch's % 360 for |deg| <= 30
            angle = -(deg * 0.017453292519943295)  # torch.deg2rad
            cos = tl.cos(angle)
            sin = tl.sin(angle)
            cx = W / 2.0
            cy = H / 2.0
            mat_a = cos
            mat_b = sin
            mat_d = -sin
            mat_e = cos
            mat_c = cos * (-cx) + sin * (-cy) + cx
            mat_f = (-sin) * (-cx) + cos * (-cy) + cy
        elif op == 11:
            mat_b = level_ * 0.3 * sign
        elif op == 12:
            mat_d = level_ * 0.3 * sign
        elif op == 13:
            mat_c = level_ * 0.45 * sign * W
        else:
            mat_f = level_ * 0.45 * sign * H
        r, g, b = _warp(base, sc, sh, sw, H, W, x, y, m, mat_a, mat_b, mat_c, mat_d, mat_e, mat_f,
                        fill_r, fill_g, fill_b, BICUBIC)
    tl.store(out + off, r.to(tl.uint8), mask=m)
    tl.store(out + sc + off, g.to(tl.uint8), mask=m)
    tl.store(out + 2 * sc + off, b.to(tl.uint8), mask=m)


# ----------------------------------------------------------------------------------------------
# host side


class LayerScratch:
    """The per-layer statistics buffers, allocated once per batch shape (static for CUDA graphs)."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.lut = torch.empty(n, 3, 256, dtype=torch.int32, device=device)
        self.level = torch.empty(n, dtype=torch.int32, device=device)


def launch_layer(src: torch.Tensor, dst: torch.Tensor, ops: torch.Tensor, mags: torch.Tensor,
                 scratch: LayerScratch, fill: Sequence[int], bicubic: bool) -> None:
    """Two launches: statistics, then the ops. src/dst: uint8 N x 3 x H x W with the same
    strides. ops: int32 codes (SKIP to copy), mags: float32, both views of N values with a common
    element stride (a column of an (N, L) table)."""
    n, _, h, w = src.shape
    sn, sc, sh, sw = src.stride()
    stride = ops.stride(0)
    launch(_stats_kernel, (n,), src, sn, sc, sh, sw, ops, stride, scratch.lut, scratch.level, h, w,
           BLOCK=STATS_BLOCK)
    launch(_ra_kernel, (n, triton.cdiv(h * w, BLOCK_PIXELS)), src, dst, sn, sc, sh, sw, ops, mags, stride,
           scratch.lut, scratch.level, h, w, int(fill[0]), int(fill[1]), int(fill[2]),
           BICUBIC=bicubic, BLOCK=BLOCK_PIXELS)


def op_codes(op_index: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
    """int32 (N, L): the op of each image and layer, SKIP where it is not applied."""
    return torch.where(apply, op_index.to(torch.int32), torch.full_like(op_index, SKIP, dtype=torch.int32))


def check_op_range(op_index: torch.Tensor) -> None:
    """ValueError for an op outside timm's 15 (checked where the plan made them: the CPU, no sync)."""
    if op_index.device.type != "cpu":
        return  # checking device values would synchronise; out-of-range codes copy the image
    bad = (op_index < 0) | (op_index >= N_OPS)
    if bool(bad.any()):
        raise ValueError(f"op_index must lie in [0, {N_OPS}); {int(bad.sum())} values do not")


def rand_augment(
    images: torch.Tensor,
    op_index: torch.Tensor,
    magnitude: torch.Tensor,
    apply: torch.Tensor,
    *,
    fill: Sequence[int] = IMAGENET_FILL,
    interpolation: str = "bicubic",
) -> torch.Tensor:
    """fastdeit.augment.rand_augment.rand_augment on the Triton kernels (2 launches per layer):
    same arguments, same result (see tests/kernels for the agreement). images: uint8
    N x 3 x H x W on CUDA, or on the CPU under TRITON_INTERPRET=1."""
    check_rand_augment_args(images, op_index, magnitude, apply)
    check_device(images)
    n, layers = images.shape[0], op_index.shape[1]
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if len(fill) != 3:
        raise ValueError(f"fill needs 3 values, got {len(fill)}")
    check_op_range(op_index)
    if n == 0 or layers == 0:
        return images.clone()
    codes = to_device(op_codes(op_index, apply).contiguous(), images.device)
    mags = to_device(magnitude.to(torch.float32).contiguous(), images.device)
    scratch = LayerScratch(n, images.device)
    src = images
    if not (src.is_contiguous() or src.is_contiguous(memory_format=torch.channels_last)):
        src = src.contiguous()
    bufs = [torch.empty_like(src), torch.empty_like(src)]
    for layer in range(layers):
        dst = bufs[layer % 2]
        launch_layer(src, dst, codes[:, layer], mags[:, layer], scratch, fill, interpolation == "bicubic")
        src = dst
    return src
