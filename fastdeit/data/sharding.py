"""Which share of each global batch a rank takes: whole mixing groups, by rank and world size only.

The global batch of a step is a pure function of (seed, epoch, step) (see plan.py), laid out
group-major; rank r of world size w takes the contiguous block of groups
[r * k, (r + 1) * k) with k = n_groups / w, i.e. the rows [r * k * G, (r + 1) * k * G). With
deit's 16 GPUs of 64, rank r gets exactly group r, the images deit's RASampler deals to rank r.
Because a mixing group never spans two ranks, mixup/cutmix partners are always local.
"""

from __future__ import annotations

import numpy as np


def _check(n_groups: int, rank: int, world_size: int) -> int:
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside [0, {world_size})")
    if n_groups < 1 or n_groups % world_size:
        raise ValueError(
            f"{n_groups} mixing groups per step cannot be split evenly over {world_size} ranks: "
            "the global batch / mix_group must be a multiple of the world size"
        )
    return n_groups // world_size


def rank_groups(n_groups: int, rank: int, world_size: int) -> np.ndarray:
    """int64 array of the step-level group numbers rank `rank` processes."""
    k = _check(n_groups, rank, world_size)
    return np.arange(rank * k, (rank + 1) * k, dtype=np.int64)


def rank_rows(global_batch: int, mix_group: int, rank: int, world_size: int) -> slice:
    """The rows of the (group-major) global batch that rank `rank` processes."""
    if mix_group < 1 or global_batch % mix_group:
        raise ValueError(f"global_batch {global_batch} is not a multiple of mix_group {mix_group}")
    k = _check(global_batch // mix_group, rank, world_size)
    rows = k * mix_group
    return slice(rank * rows, (rank + 1) * rows)


def local_batch(global_batch: int, mix_group: int, world_size: int) -> int:
    """Samples per rank per step."""
    return rank_rows(global_batch, mix_group, 0, world_size).stop
