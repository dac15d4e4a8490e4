"""Per-sample, per-channel histogram ops (PIL ImageOps.equalize / autocontrast), batched.

Histograms of all N x 3 channels come from one `scatter_add_`; the lookup tables are built
with cumsum/argmax arithmetic and applied with one `gather`. No Python loop over images.
"""

from __future__ import annotations

import torch

from ._checks import check_images


def channel_histograms(images: torch.Tensor) -> torch.Tensor:
    """int64 (N*3) x 256 histogram of every channel of every image."""
    n, c, h, w = images.shape
    flat = images.reshape(n * c, h * w).to(torch.int64)
    hist = torch.zeros(n * c, 256, dtype=torch.int64, device=images.device)
    return hist.scatter_add_(1, flat, torch.ones_like(flat))


def apply_lut(images: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Map each channel through its own table: lut is (N*3) x 256, values clipped to 0..255."""
    n, c, h, w = images.shape
    flat = images.reshape(n * c, h * w).to(torch.int64)
    table = lut.clamp(0, 255).to(torch.uint8)  # PIL's point() clips table values to 8 bits
    return torch.gather(table, 1, flat).view(n, c, h, w)


def _first_last_nonzero(hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    nonzero = hist > 0
    first = nonzero.to(torch.uint8).argmax(dim=1)
    last = 255 - nonzero.flip(1).to(torch.uint8).argmax(dim=1)
    return first, last


def equalize(images: torch.Tensor) -> torch.Tensor:
    """PIL ImageOps.equalize, each channel of each image on its own histogram."""
    check_images(images)
    if images.shape[0] == 0:
        return images.clone()
    hist = channel_histograms(images)
    _, last = _first_last_nonzero(hist)
    distinct = (hist > 0).sum(dim=1)
    last_count = hist.gather(1, last.unsqueeze(1)).squeeze(1)
    step = (hist.sum(dim=1) - last_count) // 255
    ok = (distinct > 1) & (step > 0)
    safe_step = torch.where(ok, step, torch.ones_like(step)).unsqueeze(1)
    before = torch.cumsum(hist, dim=1) - hist  # pixels below each level
    lut = torch.div(safe_step // 2 + before, safe_step, rounding_mode="floor")
    identity = torch.arange(256, device=images.device, dtype=torch.int64).expand_as(lut)
    return apply_lut(images, torch.where(ok.unsqueeze(1), lut, identity))


def autocontrast(images: torch.Tensor) -> torch.Tensor:
    """PIL ImageOps.autocontrast (cutoff 0): stretch each channel's [min, max] to [0, 255]."""
    check_images(images)
    if images.shape[0] == 0:
        return images.clone()
    hist = channel_histograms(images)
    lo, hi = _first_last_nonzero(hist)
    ok = hi > lo
    lo = lo.to(torch.float64).unsqueeze(1)
    span = torch.where(ok, hi - lo.squeeze(1).to(torch.int64), torch.ones_like(hi)).to(torch.float64)
    # a true division, as PIL's 255.0 / (hi - lo): torch evaluates `255.0 / tensor` as
    # reciprocal(tensor) * 255, one rounding more, and int() then truncates e.g. 78 * 255 / 234 to
    # 85 instead of PIL's 84 (issue 17: ~4% of AutoContrast images of the digits set differed)
    scale = (torch.full_like(span, 255.0) / span).unsqueeze(1)
    offset = -lo * scale
    levels = torch.arange(256, device=images.device, dtype=torch.float64).unsqueeze(0)
    lut = torch.trunc(levels * scale + offset).to(torch.int64)  # Python int() truncates
    identity = levels.to(torch.int64).expand_as(lut)
    return apply_lut(images, torch.where(ok.unsqueeze(1), lut, identity))
