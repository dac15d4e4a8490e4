"""Repeated augmentation with exactly facebookresearch/deit's RASampler semantics.

Why exact: this sampler is the fidelity baseline the fast loader's view plan is checked against.
deit (samplers.py) shuffles with a generator seeded by the epoch alone, repeats every index
`repeats` times consecutively, pads to a multiple of the number of replicas, hands rank r every
num_replicas-th index from r on (so the copies of one image land on different ranks when
num_replicas >= repeats), and then keeps only floor(len // 256 * 256 / num_replicas) indices per
rank, i.e. an epoch sees about len / repeats distinct images, each `repeats` times.

The one addition is `seed`: the generator is seeded with seed + epoch, which is deit's order for
seed = 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class RepeatedAugSampler(Sampler[int]):
    """deit's RASampler over `range(dataset_len)` for one rank, with `repeats` copies."""

    def __init__(
        self,
        dataset_len: int,
        num_replicas: int,
        rank: int,
        repeats: int = 3,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if dataset_len <= 0:
            raise ValueError(f"dataset_len must be positive, got {dataset_len}")
        if num_replicas <= 0:
            raise ValueError(f"num_replicas must be positive, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        if repeats <= 0:
            raise ValueError(f"repeats must be positive, got {repeats}")
        self.dataset_len = dataset_len
        self.num_replicas = num_replicas
        self.rank = rank
        self.repeats = repeats
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.num_samples = int(math.ceil(dataset_len * float(repeats) / num_replicas))
        self.total_size = self.num_samples * num_replicas
        self.num_selected_samples = int(math.floor(dataset_len // 256 * 256 / num_replicas))
        if self.num_selected_samples == 0:
            raise ValueError(
                f"dataset of {dataset_len} images gives 0 samples per rank with deit's "
                f"RASampler (it keeps len // 256 * 256 / num_replicas = "
                f"{dataset_len // 256 * 256} / {num_replicas}); use more images or "
                "data.repeated_aug = 1"
            )

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        if self.shuffle:
            indices = torch.randperm(self.dataset_len, generator=g).tolist()
        else:
            indices = list(range(self.dataset_len))
        indices = [i for i in indices for _ in range(self.repeats)]
        indices += indices[: self.total_size - len(indices)]
        indices = indices[self.rank : self.total_size : self.num_replicas]
        return iter(indices[: self.num_selected_samples])

    def __len__(self) -> int:
        return self.num_selected_samples

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order (call before iterating, as with DistributedSampler)."""
        self.epoch = epoch
