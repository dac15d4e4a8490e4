"""uint8 images -> normalised float, channels_last, as torchvision ToTensor + Normalize."""

from __future__ import annotations

from typing import Sequence

import torch

from ._checks import check_images, to_device


def normalize(
    images: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """(x / 255 - mean) / std per channel in float32 (ToTensor + Normalize, as one multiply-add:
    within a few ulps of torchvision), in `dtype`, channels_last (the layout the patch-embed
    conv wants)."""
    check_images(images)
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values each, got {len(mean)} and {len(std)}")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be positive, got {tuple(std)}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32)
    shift = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=torch.float32)
    scale = to_device(scale, images.device).view(1, 3, 1, 1)
    shift = to_device(shift, images.device).view(1, 3, 1, 1)
    x = images.contiguous(memory_format=torch.channels_last).to(torch.float32)
    x = torch.addcmul(shift, x, scale)  # keeps x's channels_last layout
    return x.to(dtype=dtype, memory_format=torch.channels_last)
