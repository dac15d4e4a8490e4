"""timm RandomErasing (count 1) over a batch, with the boxes given (drawn by the view plan).

deit erases after normalisation (timm create_transform puts RandomErasing after Normalize),
so the fill is noise in normalised space: per pixel N(0, 1) for mode 'pixel' (deit's
--remode), one N(0, 1) per channel for 'rand', zeros for 'const'. The noise is counter-based
(fastdeit.augment.noise), a pure function of the sample's seed and the position in its box.
"""

from __future__ import annotations

import torch

from ._checks import check_images, check_per_sample, to_device
from .noise import normal_at, seed_keys

MODES = ("pixel", "rand", "const")


def random_erase(
    images: torch.Tensor,
    erase: torch.Tensor,
    boxes: torch.Tensor,
    seeds: torch.Tensor,
    mode: str = "pixel",
    *,
    inplace: bool = False,
) -> torch.Tensor:
    """Return `images` (a copy, or the tensor itself if inplace) with box i filled with noise
    where erase[i].

    images: float N x 3 x H x W (normalised). erase: bool (N,). boxes: integer (N, 4) as
    (top, left, height, width) in pixels (timm's img[:, top:top+h, left:left+w]). seeds: int64
    (N,), the noise seed of each sample.
    """
    check_images(images, dtype=None)
    n, c, h, w = images.shape
    check_per_sample(erase, n, "erase")
    check_per_sample(boxes, n, "boxes", (4,))
    check_per_sample(seeds, n, "seeds")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if erase.dtype != torch.bool:
        raise ValueError(f"erase must be a bool tensor, got {erase.dtype}")
    boxes, seeds = boxes.to(erase.device), seeds.to(erase.device)  # the plan's tensors, usually CPU
    out = images if inplace else images.clone()
    if not (out.is_contiguous() or out.is_contiguous(memory_format=torch.channels_last)):
        out = out.contiguous()
    rows = torch.nonzero(erase).view(-1)  # no device sync when the plan's tensors are on the CPU
    if rows.numel() == 0:
        return out
    box = boxes.index_select(0, rows).to(torch.int64)
    top, left, bh, bw = box.unbind(1)
    if bool(((bh <= 0) | (bw <= 0) | (top < 0) | (left < 0) | (top + bh > h) | (left + bw > w)).any()):
        raise ValueError(f"erasing boxes must be non-empty and inside the {h}x{w} image")
    area = bh * bw
    total = int(area.sum())  # host integer: the device needs no sync to size what follows
    # Only the boxes' pixels are touched: point p of the flattened boxes belongs to erased sample
    # `which[p]`, at box-relative (ry, rx); it is written through the images' strides.
    dev = images.device
    table = to_device(torch.stack([rows.to(torch.int64), top, left, bw, torch.cumsum(area, 0) - area], 1), dev)
    key = to_device(seed_keys(seeds.index_select(0, rows)), dev)
    which = torch.repeat_interleave(torch.arange(rows.numel(), device=dev), to_device(area, dev),
                                    output_size=total)
    sample, top_p, left_p, width_p, start_p = table.index_select(0, which).unbind(1)
    local = torch.arange(total, device=dev) - start_p
    ry = torch.div(local, width_p, rounding_mode="floor")
    rx = local - ry * width_p
    s_n, s_c, s_h, s_w = out.stride()
    channel = torch.arange(c, device=dev).view(c, 1)
    index = (sample * s_n + (top_p + ry) * s_h + (left_p + rx) * s_w).view(1, total) + channel * s_c
    if mode == "pixel":
        values = normal_at(key[which].view(1, total), channel.to(torch.int32), ry.to(torch.int32).view(1, total),
                           rx.to(torch.int32).view(1, total))
    elif mode == "rand":
        zero = torch.zeros(1, total, dtype=torch.int32, device=dev)
        values = normal_at(key[which].view(1, total), channel.to(torch.int32), zero, zero)
    else:
        values = torch.zeros(c, total, device=dev)
    flat = out.as_strided((out.numel(),), (1,), out.storage_offset())  # dense: every element once
    flat.index_copy_(0, index.view(-1), values.view(-1).to(out.dtype))
    return out
