"""Counter-based standard normal noise: a pure function of (seed, channel, row, column).

Random erasing's per-pixel noise must replay exactly whatever the batch composition, device
or thread count (DESIGN.md invariant 1), so it is not drawn from a stateful generator: each
value hashes its sample's 63-bit seed with its channel and box-relative position (the
lowbias32 integer hash in int32 arithmetic, which wraps the same way on every torch device),
and two hashed words give a normal by Box-Muller (cos for even columns, sin for odd ones),
computed in float64 and rounded to float32 once, so that every device gives the same bits.
"""

from __future__ import annotations

import math

import torch

_M32 = 0xFFFFFFFF


def _i32(value: int) -> int:
    """An unsigned 32-bit constant as the int32 with the same bits."""
    return value - (1 << 32) if value >= 1 << 31 else value


def _mix32(x: torch.Tensor) -> torch.Tensor:
    # lowbias32 (C. Wellons) on int32 bit patterns: multiplication wraps mod 2**32 and the
    # masks turn the arithmetic right shifts into the logical shifts of the unsigned original.
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * 0x7FEB352D
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * _i32(0x846CA68B)
    return x ^ ((x >> 16) & 0xFFFF)


def _uniform24(x: torch.Tensor) -> torch.Tensor:
    """The top 24 bits of a hashed word as an integer in [0, 2**24), float64."""
    return ((x >> 8) & 0xFFFFFF).to(torch.float64)


def seed_keys(seeds: torch.Tensor) -> torch.Tensor:
    """int32 key of each 63-bit seed (int64, non-negative), the per-sample part of the hash."""
    if seeds.dim() != 1 or seeds.dtype != torch.int64:
        raise ValueError(f"seeds must be a 1-D int64 tensor, got {seeds.dtype} {tuple(seeds.shape)}")
    lo = seeds & _M32
    hi = (seeds >> 32) & _M32
    lo = torch.where(lo >= 1 << 31, lo - (1 << 32), lo).to(torch.int32)
    hi = torch.where(hi >= 1 << 31, hi - (1 << 32), hi).to(torch.int32)
    return _mix32(hi ^ _mix32(lo ^ _i32(0x9E3779B9)))


def normal_at(key: torch.Tensor, channel: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """float32 standard normals at (key, channel, y, x), all int32 and broadcastable: the value
    for column x is the cos (x even) or sin (x odd) Box-Muller output of column pair x // 2."""
    position = _mix32((y << 16) | (x >> 1))
    u1 = _mix32(position ^ _mix32((channel * 2) ^ key))
    u2 = _mix32(position ^ _mix32((channel * 2 + 1) ^ key))
    # float64, rounded to float32 once at the end: log and cos are within an ulp or two of exact
    # in float64 on every device and library (torch CPU/CUDA, Triton's kernels in fastdeit.kernels),
    # so the float32 result is the same everywhere (in float32 they differ by an ulp).
    radius = torch.sqrt(-2.0 * torch.log((_uniform24(u1) + 1.0) * (1.0 / (1 << 24))))  # u in (0, 1]
    angle = _uniform24(u2) * (2.0 * math.pi / (1 << 24)) - (x & 1).to(torch.float64) * (math.pi / 2)
    return (radius * torch.cos(angle)).to(torch.float32)  # cos(t - pi/2) = sin(t)


def normal_noise(seeds: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """float32 N x channels x height x width standard normals; entry [i, c, y, x] depends only
    on (seeds[i], c, y, x). seeds: int64 (N,), non-negative."""
    if height > 0xFFFF or width > 0xFFFF:
        raise ValueError(f"noise size {height}x{width} exceeds 65535")
    device = seeds.device
    key = seed_keys(seeds).view(-1, 1, 1, 1)
    ys = torch.arange(height, device=device, dtype=torch.int32).view(1, 1, height, 1)
    xs = torch.arange(width, device=device, dtype=torch.int32).view(1, 1, 1, width)
    cs = torch.arange(channels, device=device, dtype=torch.int32).view(1, channels, 1, 1)
    return normal_at(key, cs, ys, xs)
