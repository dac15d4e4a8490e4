"""timm Mixup/CutMix ('batch' mode) applied per mixing group, with the draws given.

deit mixes each GPU's batch of 64 with one draw (timm Mixup, mode 'batch'): the partner of
sample i is sample G-1-i (``x.flip(0)``). fastdeit keeps that per mixing group of G samples
whatever the device batch, so a batch here is a whole number of groups, group-major.
"""

from __future__ import annotations

import torch

from ._checks import check_images, check_per_sample, to_device

from fastdeit.data.plan import MIX_CUTMIX, MIX_MIXUP, MIX_NONE  # the plan encodes each group's mode


def smoothed_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """timm one_hot with off = smoothing / K, on = 1 - smoothing + off (float32 N x K)."""
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    out = torch.full((labels.shape[0], num_classes), off, device=labels.device, dtype=torch.float32)
    return out.scatter_(1, labels.to(torch.int64).view(-1, 1), on)


def mix(
    images: torch.Tensor,
    labels: torch.Tensor,
    mode: torch.Tensor,
    lam: torch.Tensor,
    box: torch.Tensor,
    *,
    group_size: int,
    num_classes: int,
    smoothing: float = 0.1,
    inplace: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each group with itself reversed; return (mixed images, soft targets). With inplace
    the images tensor itself is mixed and returned.

    images: float N x C x H x W, N = groups * group_size, group-major. labels: int (N,).
    Per group: mode (MIX_NONE / MIX_MIXUP / MIX_CUTMIX), lam = weight of the sample itself
    (for cutmix already corrected by the clipped box area, as timm's correct_lam), box =
    (y0, y1, x0, x1) half-open, the region cutmix pastes from the partner.
    Targets are timm's mixup_target: y * lam + y_partner * (1 - lam) on smoothed one-hots.
    """
    check_images(images, dtype=None)
    n, c, h, w = images.shape
    if group_size <= 0 or n % group_size:
        raise ValueError(f"batch of {n} is not a whole number of mixing groups of {group_size}")
    if num_classes <= 0:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    groups = n // group_size
    check_per_sample(labels, n, "labels")
    check_per_sample(mode, groups, "mode")
    check_per_sample(lam, groups, "lam")
    check_per_sample(box, groups, "box", (4,))
    dev = images.device
    lam64 = lam.to(torch.float64).cpu()
    modes = mode.to(torch.int64).cpu()
    lam64 = torch.where(modes == MIX_NONE, torch.ones_like(lam64), lam64)
    # One draw per group and only a few groups per batch: loop over groups (never images) and
    # apply timm's own in-place batch ops; with the plan's parameters on the CPU this is sync-free.
    out = images if inplace else images.clone()
    x = out.view(groups, group_size, c, h, w)  # splitting the batch dim is a view in any layout
    for g, (kind, weight, (top, bottom, left, right)) in enumerate(
            zip(modes.tolist(), lam64.tolist(), box.cpu().tolist())):
        if kind == MIX_MIXUP:
            # timm: x_flipped = x.flip(0).mul_(1. - lam); x.mul_(lam).add_(x_flipped)
            flipped = x[g].flip(0).mul_(1.0 - weight)
            x[g].mul_(weight).add_(flipped)
        elif kind == MIX_CUTMIX:
            x[g][:, :, top:bottom, left:right] = x[g].flip(0)[:, :, top:bottom, left:right]
        elif kind != MIX_NONE:
            raise ValueError(f"mix mode must be {MIX_NONE}, {MIX_MIXUP} or {MIX_CUTMIX}, got {kind}")

    y1 = smoothed_one_hot(labels.to(dev), num_classes, smoothing).view(groups, group_size, num_classes)
    w_self = to_device(lam64.to(torch.float32), dev).view(groups, 1, 1)
    w_partner = to_device((1.0 - lam64).to(torch.float32), dev).view(groups, 1, 1)
    targets = y1 * w_self + y1.flip(1) * w_partner  # timm mixup_target
    return out, targets.view(n, num_classes)
