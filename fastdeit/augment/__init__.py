"""Device-side augmentation: deit's RandAugment, random erasing, mixup/cutmix, normalisation.

Everything here works on whole batches with explicit per-sample parameters (drawn by the view
plan, see `params.AugmentParams`), on whatever device the tensors live on:

    from fastdeit.augment import DeviceAugment, AugmentParams
    aug = DeviceAugment(cfg.augment, num_classes)
    images, targets = aug(uint8_batch, labels, AugmentParams.from_plan(plan))

The single ops are public too: `fastdeit.augment.ops.<timm op name>(images, magnitude)`.
"""

from . import ops

# Bumped whenever an op's output pixels change for the same plan draws: teacher-logit caches
# record it (fastdeit.distill.cache_identity) and a cache built with another version is refused.
AUGMENT_VERSION = 2  # 2: erasing noise in float64, rounded once (device-independent bits); AutoContrast divides as PIL does (issue 17)

from .erasing import random_erase
from .mixup import mix, smoothed_one_hot
from .normalize import normalize
from .params import AugmentParams
from .pipeline import DeviceAugment
from .rand_augment import rand_augment

__all__ = ["AUGMENT_VERSION", "AugmentParams", "DeviceAugment", "mix", "normalize", "ops", "rand_augment", "random_erase",
           "smoothed_one_hot"]
