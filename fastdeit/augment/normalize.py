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
    """(x / 255 - mean) / std per channel, computed in float32 (as ToTensor + Normalize), then
    cast to `dtype` in channels_last memory format (the layout the patch-embed conv wants)."""
    check_images(images)
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values each, got {len(mean)} and {len(std)}")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be positive, got {tuple(std)}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
    m = to_device(torch.tensor(mean, dtype=torch.float32), images.device).view(1, 3, 1, 1)
    s = to_device(torch.tensor(std, dtype=torch.float32), images.device).view(1, 3, 1, 1)
    x = images.contiguous(memory_format=torch.channels_last).to(torch.float32)
    x = x.div_(255.0).sub_(m).div_(s)
    return x.to(dtype=dtype, memory_format=torch.channels_last)
