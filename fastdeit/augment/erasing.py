"""timm RandomErasing (count 1) over a batch, with the boxes given (drawn by the view plan).

deit erases after normalisation (timm create_transform puts RandomErasing after Normalize),
so the fill is noise in normalised space: per pixel N(0, 1) for mode 'pixel' (deit's
--remode), one N(0, 1) per channel for 'rand', zeros for 'const'. The noise is counter-based
(fastdeit.augment.noise), a pure function of the sample's seed and the position in its box.
"""

from __future__ import annotations

import torch

from ._checks import check_images, check_per_sample, to_device
from .noise import normal_noise

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
    rows = torch.nonzero(erase).view(-1)  # no device sync when the plan's tensors are on the CPU
    if rows.numel() == 0:
        return out
    box = boxes.index_select(0, rows).to(torch.int64)
    top, left, bh, bw = (box[:, i] for i in range(4))
    if bool(((bh <= 0) | (bw <= 0) | (top < 0) | (left < 0) | (top + bh > h) | (left + bw > w)).any()):
        raise ValueError(f"erasing boxes must be non-empty and inside the {h}x{w} image")
    max_h, max_w = int(bh.max()), int(bw.max())
    k = rows.numel()
    seed = to_device(seeds.index_select(0, rows), images.device)
    if mode == "pixel":
        noise = normal_noise(seed, c, max_h, max_w)
    elif mode == "rand":
        noise = normal_noise(seed, c, 1, 1).expand(k, c, max_h, max_w)
    else:
        noise = torch.zeros(k, c, max_h, max_w, device=images.device)
    top, left, bh, bw = (to_device(t, images.device).view(k, 1, 1) for t in (top, left, bh, bw))
    ry = torch.arange(h, device=images.device).view(1, h, 1) - top
    rx = torch.arange(w, device=images.device).view(1, 1, w) - left
    inside = (ry >= 0) & (ry < bh) & (rx >= 0) & (rx < bw)  # k x H x W
    src = (ry.clamp(0, max_h - 1) * max_w + rx.clamp(0, max_w - 1)).view(k, 1, h * w).expand(k, c, h * w)
    fill = torch.gather(noise.reshape(k, c, max_h * max_w), 2, src).view(k, c, h, w)
    rows_dev = to_device(rows, images.device)
    sub = out.index_select(0, rows_dev)
    out.index_copy_(0, rows_dev, torch.where(inside.unsqueeze(1), fill.to(sub.dtype), sub))
    return out
