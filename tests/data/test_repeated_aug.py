"""RepeatedAugSampler must deal exactly what facebookresearch/deit's RASampler deals."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from fastdeit.data.repeated_aug import RepeatedAugSampler


def deit_rasampler(dataset_len: int, num_replicas: int, rank: int, epoch: int) -> list[int]:
    """deit samplers.py RASampler.__iter__, transcribed literally (3 copies, seeded by epoch)."""
    num_samples = int(math.ceil(dataset_len * 3.0 / num_replicas))
    total_size = num_samples * num_replicas
    num_selected_samples = int(math.floor(dataset_len // 256 * 256 / num_replicas))
    g = torch.Generator()
    g.manual_seed(epoch)
    indices = torch.randperm(dataset_len, generator=g).tolist()
    indices = [ele for ele in indices for i in range(3)]
    indices += indices[: (total_size - len(indices))]
    assert len(indices) == total_size
    indices = indices[rank:total_size:num_replicas]
    assert len(indices) == num_samples
    return indices[:num_selected_samples]


def ours(n: int, replicas: int, rank: int, epoch: int, **kw) -> list[int]:
    s = RepeatedAugSampler(n, replicas, rank, **kw)
    s.set_epoch(epoch)
    return list(s)


@pytest.mark.parametrize("n", [256, 1000, 3000, 1281])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 8, 16])
def test_same_indices_as_deit_on_every_rank(n: int, replicas: int) -> None:
    for epoch in (0, 7):
        for rank in range(replicas):
            assert ours(n, replicas, rank, epoch) == deit_rasampler(n, replicas, rank, epoch)


@pytest.mark.parametrize("replicas", [3, 4, 5, 8])
def test_copies_of_an_image_land_on_distinct_ranks(replicas: int) -> None:
    per_rank = [ours(3000, replicas, r, 0) for r in range(replicas)]
    for indices in per_rank:
        assert len(set(indices)) == len(indices)  # no rank sees one image twice
    counts = Counter(i for indices in per_rank for i in indices)
    assert max(counts.values()) <= 3
    assert Counter(counts.values())[3] >= 0.9 * len(counts)  # nearly all images shown 3 times


@pytest.mark.parametrize("n,replicas", [(1000, 1), (1000, 3), (3000, 8), (5000, 6)])
def test_length_per_rank_is_deits_truncation(n: int, replicas: int) -> None:
    expected = math.floor(n // 256 * 256 / replicas)
    for rank in range(replicas):
        s = RepeatedAugSampler(n, replicas, rank)
        assert len(s) == expected
        assert len(list(s)) == expected


def test_epoch_changes_the_order_and_is_replayable() -> None:
    s = RepeatedAugSampler(1000, 2, 0)
    s.set_epoch(0)
    first = list(s)
    s.set_epoch(1)
    second = list(s)
    s.set_epoch(0)
    assert list(s) == first
    assert second != first


def test_union_over_ranks_is_deits_multiset() -> None:
    for replicas in (2, 3, 8):
        got = Counter(i for r in range(replicas) for i in ours(3000, replicas, r, 3))
        ref = Counter(i for r in range(replicas) for i in deit_rasampler(3000, replicas, r, 3))
        assert got == ref


def test_seed_shifts_the_epoch_stream() -> None:
    assert ours(1000, 2, 1, 0, seed=5) == ours(1000, 2, 1, 5, seed=0)
    assert ours(1000, 2, 1, 0, seed=5) != ours(1000, 2, 1, 0, seed=0)


def test_repeats_and_no_shuffle() -> None:
    assert ours(512, 1, 0, 0, repeats=2, shuffle=False)[:6] == [0, 0, 1, 1, 2, 2]
    assert ours(512, 4, 1, 0, repeats=4, shuffle=False)[:3] == [0, 1, 2]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="rank"):
        RepeatedAugSampler(1000, 2, 2)
    with pytest.raises(ValueError, match="num_replicas"):
        RepeatedAugSampler(1000, 0, 0)
    with pytest.raises(ValueError, match="0 samples per rank"):
        RepeatedAugSampler(200, 1, 0)  # deit keeps len // 256 * 256: nothing at all
