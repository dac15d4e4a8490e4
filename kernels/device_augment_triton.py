"""DeviceAugment's Triton path: the whole post-crop recipe of a batch in 2 L + 2 launches.

Reference: fastdeit.augment.pipeline.DeviceAugment's torch path (same arguments, same outputs).
The plan's per-sample draws (CPU tensors) are packed into one int32 table on the host and sent
with one non-blocking copy from pinned memory; then, all on the device and with no host
synchronisation:

    per RandAugment layer   _stats_kernel + _ra_kernel          (rand_augment_triton.py)
    once                    _finish_kernel: normalise, erase, mix, cast, channels_last
    once                    _targets_kernel: soft targets        (augment_finish_triton.py)

With deit's two layers that is 6 launches per batch whichever ops were drawn (the issue allows 8).
"""

from __future__ import annotations

from typing import Sequence

import torch
import triton

from fastdeit.augment._checks import check_images, check_per_sample
from fastdeit.augment.params import AugmentParams

from . import augment_finish_triton as F
from . import rand_augment_triton as R
from .launches import check_device, launch

SAMPLE_FIXED = 8  # erase, top, left, height, width, seed lo, seed hi, label; then ops, magnitudes
GROUP_COLS = 7  # mode, lam bits, 1 - lam bits, y0, y1, x0, x1
TARGET_BLOCK = 1024
F_MIX_NONE, F_MIX_MIXUP, F_MIX_CUTMIX = 0, 1, 2  # as fastdeit.augment.mixup


def _float_bits(values: torch.Tensor) -> torch.Tensor:
    return values.to(torch.float32).contiguous().view(torch.int32)


def pack_params(params: AugmentParams, labels: torch.Tensor, *, mixing: bool,
                pin: bool) -> tuple[torch.Tensor, int]:
    """The plan's draws as one flat int32 host tensor: N rows of SAMPLE_FIXED + 2 L columns, then
    the groups' rows of GROUP_COLS. Returns (table, number of sample columns)."""
    n, layers = params.ra_op.shape
    cols = SAMPLE_FIXED + 2 * layers
    groups = params.mix_mode.shape[0] if mixing else 0
    flat = torch.empty(n * cols + groups * GROUP_COLS, dtype=torch.int32, pin_memory=pin)
    sample = flat[: n * cols].view(n, cols)
    sample[:, 0] = params.erase
    sample[:, 1:5] = params.erase_box
    sample[:, 5:7] = params.erase_seed.to(torch.int64).contiguous().view(torch.int32).view(n, 2)  # lo, hi
    if labels.device.type == "cpu":
        sample[:, 7] = labels
    sample[:, SAMPLE_FIXED:SAMPLE_FIXED + layers] = R.op_codes(params.ra_op, params.ra_apply)
    sample[:, SAMPLE_FIXED + layers:] = _float_bits(params.ra_magnitude)
    if groups:
        group = flat[n * cols:].view(groups, GROUP_COLS)
        lam = torch.where(params.mix_mode == F_MIX_NONE, 1.0, params.mix_lam.to(torch.float64))
        group[:, 0] = params.mix_mode
        group[:, 1] = _float_bits(lam)  # timm multiplies in float32 by the float64 lam
        group[:, 2] = _float_bits(1.0 - lam)
        group[:, 3:7] = params.mix_box
    return flat, cols


def check_params(params: AugmentParams, n: int, h: int, w: int, mixing: bool, erasing: bool) -> None:
    """The checks of the torch path, on the host (where the plan made the draws: no sync)."""
    check_per_sample(params.ra_op, n, "ra_op", (params.ra_op.shape[-1],))
    if params.ra_op.device.type != "cpu":
        return
    R.check_op_range(params.ra_op)
    if erasing:
        top, left, bh, bw = params.erase_box.to(torch.int64).unbind(1)
        bad = params.erase & ((bh <= 0) | (bw <= 0) | (top < 0) | (left < 0) | (top + bh > h) | (left + bw > w))
        if bool(bad.any()):
            raise ValueError(f"erasing boxes must be non-empty and inside the {h}x{w} image")
    if mixing:
        modes = params.mix_mode
        if bool(((modes < F_MIX_NONE) | (modes > F_MIX_CUTMIX)).any()):
            raise ValueError(f"mix mode must be {F_MIX_NONE}, {F_MIX_MIXUP} or {F_MIX_CUTMIX}")


def fused_augment(
    images: torch.Tensor,
    labels: torch.Tensor,
    params: AugmentParams,
    *,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    fill: Sequence[int],
    interpolation: str,
    rand_augment: bool,
    erase_mode: str | None,
    mix_group: int | None,
    smoothing: float,
    out_dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DeviceAugment.__call__ on the Triton kernels: uint8 N x 3 x H x W in, (out_dtype
    channels_last images, float32 N x num_classes targets) out. erase_mode None: no erasing;
    mix_group None: no mixing."""
    check_images(images)
    check_device(images)
    if out_dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"out_dtype must be torch.float32 or torch.bfloat16, got {out_dtype}")
    n, _, h, w = images.shape
    check_per_sample(labels, n, "labels")
    mixing = mix_group is not None
    if mixing and n % mix_group:
        raise ValueError(f"batch of {n} is not a whole number of mixing groups of {mix_group}")
    check_params(params, n, h, w, mixing, erase_mode is not None)
    device = images.device
    on_cuda = device.type == "cuda"
    flat, cols = pack_params(params, labels, mixing=mixing, pin=on_cuda)
    flat = flat.to(device, non_blocking=True) if on_cuda else flat
    sample = flat[: n * cols].view(n, cols)
    group = flat[n * cols:] if mixing else flat
    layers = params.ra_op.shape[1]

    src = images
    if not (src.is_contiguous() or src.is_contiguous(memory_format=torch.channels_last)):
        src = src.contiguous()
    if rand_augment and layers:
        scratch = R.LayerScratch(n, device)
        bufs = [torch.empty_like(src), torch.empty_like(src)]
        for layer in range(layers):
            R.launch_layer(src, bufs[layer % 2], sample[:, SAMPLE_FIXED + layer],
                           sample[:, SAMPLE_FIXED + layers + layer].view(torch.float32), scratch, fill,
                           interpolation == "bicubic")
            src = bufs[layer % 2]

    out = torch.empty((n, 3, h, w), dtype=out_dtype, device=device, memory_format=torch.channels_last)
    scale = [1.0 / (255.0 * s) for s in std]  # normalize.normalize's float32 multiply-add
    shift = [-m / s for m, s in zip(mean, std)]
    launch(F._finish_kernel, (n, triton.cdiv(h * w, R.BLOCK_PIXELS)), src, *src.stride(), out, sample, group,
           h, w, mix_group or 1, *scale, *shift, HAS_ERASE=erase_mode is not None,
           ERASE_MODE=F.ERASE_MODES.index(erase_mode or "pixel"), HAS_MIX=mixing, S_COLS=cols,
           OUT_BF16=out_dtype == torch.bfloat16, BLOCK=R.BLOCK_PIXELS)

    label_src = sample[:, 7] if labels.device.type == "cpu" else labels.to(device)
    targets = torch.empty(n, num_classes, dtype=torch.float32, device=device)
    off = smoothing / num_classes  # mixup.smoothed_one_hot
    launch(F._targets_kernel, (n, triton.cdiv(num_classes, TARGET_BLOCK)), label_src, label_src.stride(0), group,
           targets, num_classes, mix_group or 1, off, 1.0 - smoothing + off, HAS_MIX=mixing, BLOCK=TARGET_BLOCK)
    return out, targets
