"""Turn a batch of images and labels into (mixed images, soft targets) for the loss.

The reference path mixes with timm's Mixup once per mixing group (deit's per-GPU batch);
with mixup and cutmix off, targets are the label-smoothed one-hot vectors.
"""

from __future__ import annotations

import torch

from fastdeit.config.schema import AugmentConfig
from fastdeit.train.loss import smoothed_one_hot


def mixing_enabled(aug: AugmentConfig) -> bool:
    # deit main.py: mixup_active = mixup > 0 or cutmix > 0 or cutmix_minmax is not None
    return (aug.mixup > 0 or aug.cutmix > 0) and aug.mixup_prob > 0


class MixTargets:
    def __init__(self, aug: AugmentConfig, num_classes: int):
        self.aug = aug
        self.num_classes = num_classes

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not mixing_enabled(self.aug):
            return images, smoothed_one_hot(labels, self.num_classes, self.aug.smoothing)
        from fastdeit.data.reference import mix_batch

        return mix_batch(images, labels, self.aug, self.num_classes)
