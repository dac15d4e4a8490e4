"""The recipe limits every augmentation path shares (plan loaders, device augmentation, the
reference loader's mixing), checked in one place with the key that holds the value."""

from __future__ import annotations

from fastdeit.config.schema import AugmentConfig


def check_mix_group(mix_group: int, global_batch: int | None = None) -> None:
    """One mixup/cutmix draw per group of `mix_group` samples, partner = the group reversed (timm
    Mixup 'batch' mode on deit's per-GPU batch): the group must be even and tile the global batch."""
    if mix_group < 2 or mix_group % 2:
        raise ValueError(f"augment.mix_group = {mix_group}: must be a positive even number (timm Mixup pairs "
                         "sample i with sample G-1-i)")
    if global_batch is not None and global_batch % mix_group:
        raise ValueError(f"data.global_batch = {global_batch}: must be a multiple of augment.mix_group ({mix_group})")


def check_augment_recipe(aug: AugmentConfig) -> None:
    """What fastdeit's augmentation implements of timm's options (deit uses exactly these)."""
    if aug.mixup_mode != "batch":
        raise ValueError(f"augment.mixup_mode = {aug.mixup_mode!r}: only 'batch' (one draw per mixing group, "
                         "deit's --mixup-mode) is supported")
    if aug.reprob > 0 and aug.recount != 1:
        raise ValueError(f"augment.recount = {aug.recount}: only 1 erasing box is supported (deit --recount 1)")
    if not 0.0 <= aug.smoothing < 1.0:
        raise ValueError(f"augment.smoothing = {aug.smoothing}: must lie in [0, 1)")
    check_mix_group(aug.mix_group)
