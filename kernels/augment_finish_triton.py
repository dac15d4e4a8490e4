"""The rest of deit's post-RandAugment recipe in one Triton launch, and the soft targets in another.

`_finish_kernel` (one program per block of pixels of one image) reads the uint8 image and its
mixing partner (sample G-1-j of its group, timm's x.flip(0)) and writes, in the output dtype and
channels_last, what these do one after the other in fastdeit/augment (the references):

    normalize.normalize      (x / 255 - mean) / std as one float32 multiply-add
    erasing.random_erase     the plan's box, filled with noise.normal_at (counter-based, so the
                             partner's erased pixels are recomputed bit for bit, never stored)
    mixup.mix                mixup: x * lam + partner * (1 - lam); cutmix: the partner's box

`_targets_kernel` writes timm's mixup_target on smoothed one-hots (mixup.mix's targets).
All per-sample draws are read on the device: no host synchronisation, static shapes.
"""

from __future__ import annotations

import triton
import triton.language as tl

ERASE_MODES = ("pixel", "rand", "const")  # erasing.MODES; the kernel's ERASE_MODE is the index
# noise.normal_at's float64 constants, written out in the kernel:
# 2**-24 = 5.960464477539063e-08, 2 pi / 2**24 = 3.7450702829239286e-07, pi / 2 = 1.5707963267948966.


@triton.jit
def _mix32(x):
    # noise._mix32: lowbias32 on int32 bit patterns (wrapping multiplies, logical shifts by masks)
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * 0x7FEB352D
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * -2073254261  # 0x846CA68B as int32
    return x ^ ((x >> 16) & 0xFFFF)


@triton.jit
def _seed_key(lo, hi):
    # noise.seed_keys from the two int32 halves of the 63-bit seed
    return _mix32(hi ^ _mix32(lo ^ -1640531527))  # 0x9E3779B9 as int32


@triton.jit
def _normal_at(key, channel, y, x):
    # noise.normal_at: Box-Muller on two hashed words, cos for even columns, sin for odd
    position = _mix32((y << 16) | (x >> 1))
    u1 = _mix32(position ^ _mix32((channel * 2) ^ key))
    u2 = _mix32(position ^ _mix32((channel * 2 + 1) ^ key))
    f1 = ((u1 >> 8) & 0xFFFFFF).to(tl.float64)
    f2 = ((u2 >> 8) & 0xFFFFFF).to(tl.float64)
    radius = tl.sqrt(-2.0 * tl.log((f1 + 1.0) * 5.960464477539063e-08))  # 2**-24; float64 sqrt is IEEE
    angle = f2 * 3.7450702829239286e-07 - (x & 1).to(tl.float64) * 1.5707963267948966
    return (radius * tl.cos(angle)).to(tl.float32)  # float64, rounded once, as noise.normal_at


@triton.jit
def _normalised(img, n, c, sn, sc, off, m, scale, shift, sample, y, x,
                HAS_ERASE: tl.constexpr, ERASE_MODE: tl.constexpr, S_COLS: tl.constexpr):
    """Sample n's channel c, normalised and erased (float32)."""
    v = tl.load(img + n.to(tl.int64) * sn + c * sc + off, mask=m, other=0).to(tl.float64)
    # torch's addcmul is one fused multiply-add; in float64 the product of a byte and a float32 is
    # exact and the sum rounds as the FMA does (checked for all 3 x 256 values in tests/kernels).
    out = (v * scale.to(tl.float64) + shift.to(tl.float64)).to(tl.float32)
    if HAS_ERASE:
        row = sample + n * S_COLS
        if tl.load(row) != 0:  # only erased samples pay for the noise
            top = tl.load(row + 1)
            left = tl.load(row + 2)
            inside = (y >= top) & (y < top + tl.load(row + 3)) & (x >= left) & (x < left + tl.load(row + 4))
            if ERASE_MODE == 0:
                noise = _normal_at(_seed_key(tl.load(row + 5), tl.load(row + 6)), c, y - top, x - left)
            elif ERASE_MODE == 1:
                noise = _normal_at(_seed_key(tl.load(row + 5), tl.load(row + 6)), c, y * 0, x * 0)
            else:
                noise = tl.zeros_like(out)
            out = tl.where(inside, noise, out)
    return out


@triton.jit
def _to_out(value, OUT_BF16: tl.constexpr):
    # float32 -> bfloat16 rounding to nearest even on the bits, as torch's .to(bfloat16) (the
    # interpreter's own conversion truncates); float32 passes through
    if OUT_BF16:
        bits = value.to(tl.int32, bitcast=True)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
        out = ((bits >> 16) & 0xFFFF).to(tl.int16).to(tl.bfloat16, bitcast=True)
    else:
        out = value
    return out


@triton.jit
def _finish_kernel(img, sn, sc, sh, sw, out, sample, group, H, W, G,
                   scale_r, scale_g, scale_b, shift_r, shift_g, shift_b,
                   HAS_ERASE: tl.constexpr, ERASE_MODE: tl.constexpr, HAS_MIX: tl.constexpr,
                   S_COLS: tl.constexpr, OUT_BF16: tl.constexpr, BLOCK: tl.constexpr):
    """sample: int32 (N, S_COLS) rows (erase, top, left, height, width, seed lo, seed hi, ...);
    group: int32 (N / G, 7) rows (mode, lam bits, 1 - lam bits, y0, y1, x0, x1)."""
    n = tl.program_id(0)
    p = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = p < H * W
    y = p // W
    x = p % W
    off = y * sh + x * sw
    dst = out + n.to(tl.int64) * (H * W * 3) + p * 3  # channels_last: N x H x W x 3 memory
    if HAS_MIX:
        g = n // G
        partner = g * G + (G - 1 - n % G)
        grow = group + g * 7
        mode = tl.load(grow)
        w_self = tl.load(grow + 1).to(tl.float32, bitcast=True)
        w_partner = tl.load(grow + 2).to(tl.float32, bitcast=True)
        in_box = (y >= tl.load(grow + 3)) & (y < tl.load(grow + 4)) & (x >= tl.load(grow + 5)) & \
                 (x < tl.load(grow + 6))
    for c in tl.static_range(3):
        if c == 0:
            scale = scale_r
            shift = shift_r
        elif c == 1:
            scale = scale_g
            shift = shift_g
        else:
            scale = scale_b
            shift = shift_b
        value = _normalised(img, n, c, sn, sc, off, m, scale, shift, sample, y, x, HAS_ERASE, ERASE_MODE, S_COLS)
        if HAS_MIX:
            other = _normalised(img, partner, c, sn, sc, off, m, scale, shift, sample, y, x, HAS_ERASE,
                                ERASE_MODE, S_COLS)
            mixed = value * w_self + other * w_partner  # timm: x.mul_(lam).add_(x.flip(0).mul_(1 - lam))
            value = tl.where(mode == 1, mixed, tl.where((mode == 2) & in_box, other, value))
        tl.store(dst + c, _to_out(value, OUT_BF16), mask=m)


@triton.jit
def _targets_kernel(labels, label_stride, group, targets, K, G, off_value, on_value,
                    HAS_MIX: tl.constexpr, BLOCK: tl.constexpr):
    # mixup.smoothed_one_hot and timm's mixup_target: y * lam + y_partner * (1 - lam)
    n = tl.program_id(0)
    k = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = k < K
    label = tl.load(labels + n * label_stride).to(tl.int32)
    y_self = tl.where(k == label, on_value, off_value)
    if HAS_MIX:
        g = n // G
        partner = tl.load(labels + (g * G + (G - 1 - n % G)) * label_stride).to(tl.int32)
        y_partner = tl.where(k == partner, on_value, off_value)
        w_self = tl.load(group + g * 7 + 1).to(tl.float32, bitcast=True)
        w_partner = tl.load(group + g * 7 + 2).to(tl.float32, bitcast=True)
        y_self = y_self * w_self + y_partner * w_partner
    tl.store(targets + n.to(tl.int64) * K + k, y_self, mask=m)
