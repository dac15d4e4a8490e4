"""Helpers shared by the augmentation tests: timm's PIL ops as the reference."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from timm.data import auto_augment as aa

from fastdeit.augment import ops

HPARAMS = dict(img_mean=ops.IMAGENET_FILL, interpolation=Image.BICUBIC, translate_pct=0.45, magnitude_std=0)
KWARGS = dict(fillcolor=ops.IMAGENET_FILL, resample=Image.BICUBIC)
ENHANCE = {"ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"}
SIGNED = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"} | ENHANCE  # call _randomly_negate


def timm_reference(name: str, img: np.ndarray, magnitude: float) -> np.ndarray:
    """timm's op on a PIL image (deit's hparams) with the sign of `magnitude`, which timm
    would pick at random: its level function is drawn until the negation gives that sign."""
    level_fn = aa.LEVEL_TO_ARG[name]
    args: tuple = ()
    if level_fn is not None and name not in SIGNED:
        args = level_fn(abs(magnitude), HPARAMS)  # unsigned: the sign of the magnitude is ignored
    elif level_fn is not None:
        for _ in range(200):
            args = level_fn(abs(magnitude), HPARAMS)
            signed = args[0] - 1.0 if name in ENHANCE else args[0]
            if signed == 0 or (signed < 0) == (magnitude < 0):
                break
        else:
            raise AssertionError("could not draw the sign")
    return np.asarray(aa.NAME_TO_OP[name](Image.fromarray(img), *args, **KWARGS))


def to_batch(images: list[np.ndarray]) -> torch.Tensor:
    """HWC uint8 arrays -> N x 3 x H x W uint8 tensor."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
