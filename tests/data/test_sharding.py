"""Ranks take whole mixing groups; their union is the single-process global batch."""

import numpy as np
import pytest

from fastdeit.data.plan import PlanConfig, make_plan
from fastdeit.data.sharding import local_batch, rank_groups, rank_rows


@pytest.mark.parametrize("world", [1, 2, 4])
def test_ranks_union_is_the_single_process_global_batch(world):
    cfg = PlanConfig(img_size=32, global_batch=256, mix_group=16, epoch_multiple=64)
    rng = np.random.default_rng(0)
    w, h = rng.integers(50, 400, 1000), rng.integers(50, 400, 1000)
    full = make_plan(cfg, 0, 1, 2, w, h)
    for rank in range(world):
        rows = rank_rows(cfg.global_batch, cfg.mix_group, rank, world)
        part = make_plan(cfg, 0, 1, 2, w, h, groups=rank_groups(cfg.n_groups, rank, world))
        assert len(part) == local_batch(cfg.global_batch, cfg.mix_group, world)
        assert np.array_equal(part.positions, full.positions[rows])
        assert np.array_equal(part.crop, full.crop[rows])
        assert np.array_equal(part.mix_lam, full.mix_lam[part.groups])
    united = np.concatenate([full.positions[rank_rows(256, 16, r, world)] for r in range(world)])
    assert np.array_equal(np.sort(united), np.arange(512, 768))


def test_deit_layout_rank_r_gets_group_r():
    # deit: 16 ranks x 64; RASampler gives rank r the positions r, r + 16, r + 32, ...
    cfg = PlanConfig()
    rows = rank_rows(cfg.global_batch, cfg.mix_group, 5, 16)
    assert rows == slice(5 * 64, 6 * 64)
    assert list(rank_groups(cfg.n_groups, 5, 16)) == [5]


@pytest.mark.parametrize("rank,world", [(0, 3), (2, 2), (-1, 2), (0, 0)])
def test_uneven_or_invalid_splits_are_refused(rank, world):
    with pytest.raises(ValueError):
        rank_groups(16, rank, world)
