"""Counter-based standard normal noise: a pure function of (seed, channel, row, column).

Random erasing's per-pixel noise must replay exactly whatever the batch composition, device
or thread count (DESIGN.md invariant 1), so it is not drawn from a stateful generator: each
value hashes its sample's 63-bit seed with its channel and box-relative position (lowbias32
integer hash, in int64 arithmetic that behaves the same on every torch device), and two
hashed words become one normal through Box-Muller.
"""

from __future__ import annotations

import math

import torch

_M32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    # lowbias32 (C. Wellons); x holds values in [0, 2**32). Products wrap mod 2**64 and the
    # mask keeps the low 32 bits, which is what unsigned 32-bit arithmetic gives.
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def normal_noise(seeds: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """float32 N x channels x height x width standard normals; entry [i, c, y, x] depends only
    on (seeds[i], c, y, x). seeds: int64 (N,), non-negative."""
    if seeds.dim() != 1 or seeds.dtype != torch.int64:
        raise ValueError(f"seeds must be a 1-D int64 tensor, got {seeds.dtype} {tuple(seeds.shape)}")
    if height > 0xFFFF or width > 0xFFFF:
        raise ValueError(f"noise size {height}x{width} exceeds 65535")
    device = seeds.device
    n = seeds.shape[0]
    key_a = _mix32((seeds & _M32) ^ 0x9E3779B9).view(n, 1, 1, 1)
    key_b = _mix32(((seeds >> 32) & _M32) ^ key_a.view(n)).view(n, 1, 1, 1)
    ys = torch.arange(height, device=device, dtype=torch.int64).view(1, 1, height, 1)
    xs = torch.arange(width, device=device, dtype=torch.int64).view(1, 1, 1, width)
    cs = torch.arange(channels, device=device, dtype=torch.int64).view(1, channels, 1, 1)
    position = _mix32((ys << 16) | xs)  # shared by all samples and channels
    words = []
    for stream in (0, 1):
        lane = _mix32((cs * 2 + stream) ^ key_b)  # N x C x 1 x 1
        words.append(_mix32(position ^ lane))
    u1 = ((words[0] >> 8) + 1).to(torch.float32) * (1.0 / (1 << 24))  # (0, 1]
    u2 = (words[1] >> 8).to(torch.float32) * (1.0 / (1 << 24))  # [0, 1)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
