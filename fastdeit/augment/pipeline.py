"""DeviceAugment: deit's post-crop train augmentation on whole batches, on the batch's device.

deit (timm create_transform + Mixup) runs, per image on the CPU: RandomResizedCrop -> flip ->
RandAugment -> ToTensor + Normalize -> RandomErasing, then Mixup/CutMix per batch of 64 with
label smoothing. The loader does crop and flip; this does the rest in the same order:
RandAugment (uint8) -> normalise (float32) -> erase -> mix -> cast to the output dtype,
channels_last. Every random choice comes in through AugmentParams.

Two implementations of the same maths, chosen by `augment.kernels`: this module's per-op torch
path (the reference, and the CPU path) and the fused Triton kernels of fastdeit.kernels (6
launches per batch, no host sync; the default on CUDA), tested against each other in tests/kernels.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any, Sequence

import torch

from fastdeit.config.recipe import check_augment_recipe
from fastdeit.config.schema import AugmentConfig

from .erasing import MODES, random_erase
from .geometric import INTERPOLATIONS, fill_from_mean
from .mixup import mix, smoothed_one_hot
from .normalize import normalize
from .ops import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from .params import AugmentParams
from .rand_augment import rand_augment

KERNELS = ("auto", "triton", "torch")  # AugmentConfig.kernels


@functools.lru_cache(maxsize=None)
def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def _rand_augment_enabled(spec: str) -> bool:
    if spec in ("", "none"):
        return False
    from fastdeit.data.plan import parse_rand_augment  # one parser of timm's spec for plan and here

    return parse_rand_augment(spec)["ra_layers"] > 0


class DeviceAugment:
    """Apply the recipe of an AugmentConfig to uint8 batches with explicit per-sample draws."""

    def __init__(
        self,
        cfg: AugmentConfig,
        num_classes: int,
        *,
        mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        std: Sequence[float] = IMAGENET_DEFAULT_STD,
        out_dtype: torch.dtype = torch.bfloat16,
    ) -> None:
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if cfg.interpolation not in INTERPOLATIONS:
            raise ValueError(f"augment.interpolation={cfg.interpolation!r}: supported are {INTERPOLATIONS}")
        if cfg.reprob > 0 and cfg.remode not in MODES:
            raise ValueError(f"augment.remode={cfg.remode!r}: supported are {MODES}")
        check_augment_recipe(cfg)
        if cfg.kernels not in KERNELS:
            raise ValueError(f"augment.kernels={cfg.kernels!r}: supported are {KERNELS}")
        self.cfg = cfg
        self.num_classes = num_classes
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.fill = fill_from_mean(self.mean)  # timm create_transform's img_mean
        self.out_dtype = out_dtype
        self.rand_augment = _rand_augment_enabled(cfg.auto_augment)
        self.erasing = cfg.reprob > 0
        self.mixing = (cfg.mixup > 0 or cfg.cutmix > 0) and cfg.mixup_prob > 0

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, params: AugmentParams
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """images: uint8 N x 3 x H x W (cropped, flipped); labels: int (N,).
        Returns (images in out_dtype, channels_last; soft targets float32 N x num_classes)."""
        if self.uses_triton(images.device):
            return self._fused(images, labels, params)
        if self.rand_augment:
            images = rand_augment(images, params.ra_op, params.ra_magnitude, params.ra_apply,
                                  fill=self.fill, interpolation=self.cfg.interpolation)
        x = normalize(images, self.mean, self.std, torch.float32)
        if self.erasing:
            x = random_erase(x, params.erase, params.erase_box, params.erase_seed, self.cfg.remode, inplace=True)
        if self.mixing:
            x, targets = mix(x, labels, params.mix_mode, params.mix_lam, params.mix_box,
                             group_size=self.cfg.mix_group, num_classes=self.num_classes,
                             smoothing=self.cfg.smoothing, inplace=True)
        else:
            targets = smoothed_one_hot(labels.to(x.device), self.num_classes, self.cfg.smoothing)
        return x.to(dtype=self.out_dtype, memory_format=torch.channels_last), targets

    def uses_triton(self, device: torch.device) -> bool:
        """Whether batches on `device` go through the fused Triton kernels (augment.kernels)."""
        kind = self.cfg.kernels
        return kind == "triton" or (kind == "auto" and device.type == "cuda" and _triton_installed())

    def _fused(self, images: torch.Tensor, labels: torch.Tensor,
               params: AugmentParams) -> tuple[torch.Tensor, torch.Tensor]:
        from fastdeit.kernels.device_augment_triton import fused_augment  # imports triton: only here

        return fused_augment(images, labels, params, num_classes=self.num_classes, mean=self.mean, std=self.std,
                             fill=self.fill, interpolation=self.cfg.interpolation,
                             rand_augment=self.rand_augment, erase_mode=self.cfg.remode if self.erasing else None,
                             mix_group=self.cfg.mix_group if self.mixing else None, smoothing=self.cfg.smoothing,
                             out_dtype=self.out_dtype)

    def apply_to_batch(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a fastdeit.data.loader.Batch: NHWC uint8 images, labels and the batch's plan."""
        images = batch.images
        if images.dim() != 4 or images.shape[-1] != 3:
            raise ValueError(f"batch.images must be N x H x W x 3 (NHWC), got {tuple(images.shape)}")
        return self(images.permute(0, 3, 1, 2), batch.labels, AugmentParams.from_plan(batch.plan))
