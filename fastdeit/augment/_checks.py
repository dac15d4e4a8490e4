"""Input validation shared by the augmentation functions.

Only shapes, dtypes and devices are checked: value checks would force a device sync on the GPU.
"""

from __future__ import annotations

import torch


def check_images(images: torch.Tensor, name: str = "images", dtype: torch.dtype | None = torch.uint8) -> None:
    """Raise ValueError unless `images` is an N x 3 x H x W tensor (of `dtype` when given)."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must have shape N x 3 x H x W, got {tuple(images.shape)}")
    if dtype is not None and images.dtype != dtype:
        raise ValueError(f"{name} must be {dtype}, got {images.dtype}")
    if dtype is None and not images.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {images.dtype}")


def check_per_sample(values: torch.Tensor, n: int, name: str, trailing: tuple[int, ...] = ()) -> None:
    """Raise ValueError unless `values` is a tensor of shape (n, *trailing)."""
    if not isinstance(values, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    want = (n, *trailing)
    if tuple(values.shape) != want:
        raise ValueError(f"{name} must have shape {want}, got {tuple(values.shape)}")


def to_device(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move small per-sample parameters (made on the CPU by the plan) to the images' device
    without a stream synchronisation: pinned staging + non_blocking copy on CUDA."""
    if values.device == device:
        return values
    if values.device.type == "cpu" and device.type == "cuda":
        return values.pin_memory().to(device, non_blocking=True)
    return values.to(device)
