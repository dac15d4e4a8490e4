"""RandAugment over a batch, with the per-sample choices given (drawn by the view plan).

timm's RandAugment picks `layers` ops per image (uniformly, with replacement), applies each
with probability p and a magnitude drawn around m; the draws are inputs here. Each layer
groups the batch by op with one argsort and applies every op once to its group, so the
Python loop runs over the 15 ops, never over images. With the parameters on the CPU (as the
plan makes them) there is no device synchronisation; on the device, one per layer.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ._checks import check_images, check_per_sample, to_device
from .ops import IMAGENET_FILL, OPS, RAND_INCREASING_OPS


def check_rand_augment_args(images: torch.Tensor, op_index: torch.Tensor, magnitude: torch.Tensor,
                            apply: torch.Tensor) -> None:
    """The checks every RandAugment implementation (this torch path, the Triton kernels) makes."""
    check_images(images)
    n = images.shape[0]
    if op_index.dim() != 2:
        raise ValueError(f"op_index must have shape (N, L), got {tuple(op_index.shape)}")
    layers = op_index.shape[1]
    check_per_sample(op_index, n, "op_index", (layers,))
    check_per_sample(magnitude, n, "magnitude", (layers,))
    check_per_sample(apply, n, "apply", (layers,))
    if op_index.is_floating_point() or op_index.dtype == torch.bool:
        raise ValueError(f"op_index must be an integer tensor, got {op_index.dtype}")
    if apply.dtype != torch.bool:
        raise ValueError(f"apply must be a bool tensor, got {apply.dtype}")
    if not magnitude.is_floating_point():
        raise ValueError(f"magnitude must be a floating-point tensor, got {magnitude.dtype}")


def rand_augment(
    images: torch.Tensor,
    op_index: torch.Tensor,
    magnitude: torch.Tensor,
    apply: torch.Tensor,
    *,
    fill: Sequence[int] = IMAGENET_FILL,
    interpolation: str = "bicubic",
) -> torch.Tensor:
    """Apply RandAugment layers in order: layer l applies RAND_INCREASING_OPS[op_index[i, l]]
    with signed magnitude[i, l] to image i where apply[i, l].

    images: uint8 N x 3 x H x W. op_index: integer (N, L) indices into RAND_INCREASING_OPS
    (timm's _RAND_INCREASING_TRANSFORMS order). magnitude: float (N, L) on timm's 0-10 scale,
    negative where timm's _randomly_negate flips a signed op. apply: bool (N, L).
    Returns a new uint8 tensor.
    """
    check_rand_augment_args(images, op_index, magnitude, apply)
    layers = op_index.shape[1]
    n_ops = len(RAND_INCREASING_OPS)
    out = images.clone()
    for layer in range(layers):
        # Skipped samples sort after the last op (index n_ops).
        ops_l = op_index[:, layer].to(torch.int64)
        chosen = torch.where(apply[:, layer], ops_l, n_ops)
        bad = (ops_l < 0) | (ops_l >= n_ops)
        counts = torch.bincount(torch.where(bad, n_ops + 1, chosen), minlength=n_ops + 2).tolist()
        if counts[-1]:
            raise ValueError(f"op_index must lie in [0, {n_ops}); {counts[-1]} values in layer {layer} do not")
        order = torch.argsort(chosen, stable=True)
        mags = magnitude[:, layer]
        start = 0
        for k, name in enumerate(RAND_INCREASING_OPS):
            count = counts[k]
            if count == 0:
                continue
            rows = order[start : start + count]
            start += count
            rows_dev = to_device(rows, images.device)
            result = OPS[name](out.index_select(0, rows_dev), mags.index_select(0, rows),
                               fill=fill, interpolation=interpolation)
            out.index_copy_(0, rows_dev, result)
    return out
