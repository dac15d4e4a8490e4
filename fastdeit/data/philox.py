"""Philox4x32-10, the counter-based generator of Random123 (Salmon et al., SC'11), vectorised.

Why counter-based: every random number of the data pipeline must be a pure function of
(seed, epoch, position, stream, draw) so that any process, thread or resumed run recomputes the
very same value without sharing generator state (DESIGN.md, invariant 1). Philox maps a 128-bit
counter and a 64-bit key to 128 random bits; here key = (seed, epoch) and
counter = (index, stream, block, 0), where `index` is a sample position or mixing-group id,
`stream` separates independent decisions (crop, flip, ...) and `block` numbers the 4-word blocks
of one (index, stream) pair. Everything is vectorised over `index`.
"""

from __future__ import annotations

import numba
import numpy as np

_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
ROUNDS = 10
_U32_MAX = 0xFFFFFFFF


def _check_u32(name: str, value: int) -> int:
    value = int(value)
    if not 0 <= value <= _U32_MAX:
        raise ValueError(f"{name} must be in [0, 2**32), got {value}")
    return value


@numba.njit(cache=True, nogil=True)
def _philox_rows(words: np.ndarray, k0: int, k1: int, rounds: int) -> None:
    """In place over an (n, 4) uint32 array: one Philox block per row (a numba loop: numpy's
    per-round temporaries made the plan's draws cost more than the plan's arithmetic)."""
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    mask = np.uint64(0xFFFFFFFF)
    for i in range(words.shape[0]):
        c0, c1 = np.uint64(words[i, 0]), np.uint64(words[i, 1])
        c2, c3 = np.uint64(words[i, 2]), np.uint64(words[i, 3])
        a, b = np.uint64(k0), np.uint64(k1)
        for r in range(rounds):
            if r:
                a = (a + np.uint64(_W0)) & mask
                b = (b + np.uint64(_W1)) & mask
            p0 = m0 * c0
            p1 = m1 * c2
            c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ a, p1 & mask, (p0 >> np.uint64(32)) ^ c3 ^ b, p0 & mask
        words[i, 0], words[i, 1] = np.uint32(c0), np.uint32(c1)
        words[i, 2], words[i, 3] = np.uint32(c2), np.uint32(c3)


def philox4x32(counter: np.ndarray, key: tuple[int, int], rounds: int = ROUNDS) -> np.ndarray:
    """Philox4x32-`rounds` of `counter` (uint32 array, shape (..., 4)) under `key` (k0, k1).

    Returns a uint32 array of the same shape. Bit-exact with Random123's philox4x32.
    """
    counter = np.asarray(counter)
    if counter.shape[-1:] != (4,):
        raise ValueError(f"counter must have a last axis of 4 words, got shape {counter.shape}")
    k0, k1 = _check_u32("key[0]", key[0]), _check_u32("key[1]", key[1])
    words = np.array(counter, dtype=np.uint32, copy=True).reshape(-1, 4)  # high bits dropped as before
    _philox_rows(words, k0, k1, int(rounds))
    return words.reshape(counter.shape)


def random_words(
    seed: int, epoch: int, index: np.ndarray, stream: int, nwords: int
) -> np.ndarray:
    """`nwords` random uint32 words for each entry of `index`: shape (len(index), nwords).

    Word w of index i is word w % 4 of Philox(counter=(i, stream, w // 4, 0), key=(seed, epoch)).
    """
    _check_u32("seed", seed)
    _check_u32("epoch", epoch)
    _check_u32("stream", stream)
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    if index.size and (index.min() < 0 or index.max() > _U32_MAX):
        raise ValueError("index values must be in [0, 2**32)")
    if nwords < 0:
        raise ValueError(f"nwords must be >= 0, got {nwords}")
    nblocks = -(-nwords // 4)
    ctr = np.zeros((index.size, nblocks, 4), dtype=np.uint32)
    ctr[..., 0] = index[:, None].astype(np.uint32)
    ctr[..., 1] = stream
    ctr[..., 2] = np.arange(nblocks, dtype=np.uint32)[None, :]
    out = philox4x32(ctr, (seed, epoch))
    return out.reshape(index.size, nblocks * 4)[:, :nwords]


def uniform(seed: int, epoch: int, index: np.ndarray, stream: int, ndraws: int) -> np.ndarray:
    """Uniform float64 in [0, 1) with 53 random bits, shape (len(index), ndraws)."""
    w = random_words(seed, epoch, index, stream, 2 * ndraws).astype(np.uint64)
    hi = w[:, 0::2] >> np.uint64(5)  # 27 bits
    lo = w[:, 1::2] >> np.uint64(6)  # 26 bits
    return (hi * np.uint64(1 << 26) + lo).astype(np.float64) * (1.0 / (1 << 53))


def normal(seed: int, epoch: int, index: np.ndarray, stream: int, ndraws: int) -> np.ndarray:
    """Standard normal float64 via Box–Muller (cosine branch), shape (len(index), ndraws)."""
    u = uniform(seed, epoch, index, stream, 2 * ndraws)
    radius = np.sqrt(-2.0 * np.log1p(-u[:, 0::2]))  # 1 - u in (0, 1]: log is finite
    return radius * np.cos(2.0 * np.pi * u[:, 1::2])


def gamma(
    seed: int, epoch: int, index: np.ndarray, stream: int, shape: float, attempts: int = 16
) -> np.ndarray:
    """Gamma(shape, 1) float64, one per index, by Marsaglia–Tsang (2000) with a fixed budget.

    Marsaglia–Tsang accepts > 95 % of proposals for shape >= 1, so `attempts` proposals are drawn
    for every index at once and the first accepted one is kept (the chance that none of 16 is
    accepted is below 1e-20). Shape < 1 uses the boost Gamma(a) = Gamma(a + 1) * U**(1/a).
    """
    if not shape > 0:
        raise ValueError(f"gamma shape must be > 0, got {shape}")
    boost = shape < 1.0
    a = shape + 1.0 if boost else shape
    d = a - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    x = normal(seed, epoch, index, stream, attempts)
    u = uniform(seed, epoch, index, stream + 1, attempts + 1)
    v = (1.0 + c * x) ** 3
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (v > 0) & (np.log(u[:, :attempts]) < 0.5 * x * x + d - d * v + d * np.log(v))
    first = np.argmax(ok, axis=1)
    rows = np.arange(x.shape[0])
    g = d * v[rows, first]
    g = np.where(ok.any(axis=1), g, d)  # unreachable in practice; keep the mode, never NaN
    if boost:
        g = g * (1.0 - u[:, attempts]) ** (1.0 / shape)
    return g


def beta(
    seed: int, epoch: int, index: np.ndarray, stream: int, alpha: float, beta_: float
) -> np.ndarray:
    """Beta(alpha, beta_) float64, one per index, as X / (X + Y) with X, Y Gamma variates.

    Uses streams `stream` .. `stream + 3`.
    """
    x = gamma(seed, epoch, index, stream, alpha)
    y = gamma(seed, epoch, index, stream + 2, beta_)
    return x / (x + y)
