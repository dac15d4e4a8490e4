"""Replay the view plan's draws through deit's own per-image code and compare, stage by stage.

The distributions of fidelity_stats.py say whether two pipelines draw alike; this says whether,
given the *same* draws, they compute the same thing on real data: for each sample of a view-plan
batch, the plan's crop box and flip go through torchvision/PIL (timm's
RandomResizedCropAndInterpolation does `F.resized_crop` with them), its RandAugment ops through
timm's PIL op functions with the same arguments, then ToTensor + Normalize, the plan's erasing box
and timm's mixing formula. Each stage is compared with the loader + DeviceAugment output; stages
after the first start from the reference's own previous stage, so the differences compose as
they do in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastdeit.config.schema import AugmentConfig, DataConfig


def _timm_op_args(name: str, magnitude: float, side: int) -> tuple:
    """timm's level arguments for op `name` at the plan's signed magnitude."""
    from fastdeit.augment import levels

    m = torch.tensor([magnitude], dtype=torch.float64)
    if name == "Rotate":
        return (float(levels.rotate_degrees(m)[0]),)
    if name in ("ShearX", "ShearY"):
        return (float(levels.shear_factor(m)[0]),)
    if name in ("TranslateXRel", "TranslateYRel"):
        return (float(levels.translate_fraction(m)[0]),)
    if name.endswith("Increasing") and name not in ("PosterizeIncreasing", "SolarizeIncreasing"):
        return (float(levels.enhance_factor(m)[0]),)
    if name == "PosterizeIncreasing":
        return (int(levels.posterize_bits(m)[0]),)
    if name == "SolarizeIncreasing":
        return (int(levels.solarize_threshold(m)[0]),)
    if name == "SolarizeAdd":
        return (int(levels.solarize_add_amount(m)[0]),)
    return ()


def _timm_op(name: str):
    from timm.data.auto_augment import NAME_TO_OP

    from fastdeit.data.reference import _posterize_pillow12

    return _posterize_pillow12 if name == "PosterizeIncreasing" else NAME_TO_OP[name]


def replay(data: DataConfig, aug: AugmentConfig, path: str | Path, *, seed: int, steps: int,
           loader: str = "cpu") -> dict[str, Any]:
    """Per stage: share of values that differ and the largest difference, over `steps` batches."""
    from PIL import Image
    from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    from fastdeit.augment import AugmentParams, DeviceAugment, normalize, rand_augment
    from fastdeit.augment.geometric import fill_from_mean
    from fastdeit.bench.fidelity_stats import plan_loader
    from fastdeit.data.beton import BetonReader
    from fastdeit.data.plan import RAND_INCREASING_OPS

    reader = BetonReader(path)
    side = data.img_size
    interp = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}[aug.interpolation]
    pil_interp = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}[aug.interpolation]
    fill = fill_from_mean(IMAGENET_DEFAULT_MEAN)
    device_aug = DeviceAugment(aug, int(reader.num_classes), out_dtype=torch.float32)
    counts = {k: [0, 0, 0.0] for k in ("crop", "rand_augment", "normalize")}  # differing, total, max
    per_op: dict[str, list[int]] = {}
    source = plan_loader(loader, reader, data, aug, seed)
    try:
        source.set_epoch(0)
        for k, batch in enumerate(source):
            if k == steps:
                break
            plan = batch.plan
            fast_crop = batch.images.permute(0, 3, 1, 2).contiguous()
            params = AugmentParams.from_plan(plan)
            fast_ra = rand_augment(fast_crop, params.ra_op, params.ra_magnitude, params.ra_apply,
                                   fill=device_aug.fill, interpolation=aug.interpolation)
            fast_norm = normalize(fast_ra, device_aug.mean, device_aug.std)
            ref_crop, ref_ra = [], []
            for r, i in enumerate(plan.indices):
                img = Image.fromarray(reader.decode(int(i)))
                top, left, h, w = (int(v) for v in plan.crop[r])
                img = F.resized_crop(img, top, left, h, w, [side, side], interp)
                if plan.flip[r]:
                    img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                ref_crop.append(np.asarray(img))
                for layer in range(plan.ra_op.shape[1]):
                    if not plan.ra_apply[r, layer]:
                        continue
                    name = RAND_INCREASING_OPS[int(plan.ra_op[r, layer])]
                    args = _timm_op_args(name, float(plan.ra_magnitude[r, layer]), side)
                    before = np.asarray(img)
                    img = _timm_op(name)(img, *args, fillcolor=fill, resample=pil_interp)
                    # the same op on the same input, batched: isolates each op's own agreement
                    single = torch.from_numpy(before.copy()).permute(2, 0, 1)[None]
                    mine = rand_augment(single, torch.tensor([[int(plan.ra_op[r, layer])]]),
                                        torch.tensor([[float(plan.ra_magnitude[r, layer])]]),
                                        torch.tensor([[True]]), fill=device_aug.fill, interpolation=aug.interpolation)
                    stat = per_op.setdefault(name, [0, 0])
                    stat[0] += int(not np.array_equal(mine[0].permute(1, 2, 0).numpy(), np.asarray(img)))
                    stat[1] += 1
                ref_ra.append(np.asarray(img))
            ref_crop_t = torch.from_numpy(np.stack(ref_crop)).permute(0, 3, 1, 2)
            ref_ra_t = torch.from_numpy(np.stack(ref_ra)).permute(0, 3, 1, 2)
            ref_norm = torch.stack([F.normalize(F.to_tensor(Image.fromarray(a)), IMAGENET_DEFAULT_MEAN,
                                                IMAGENET_DEFAULT_STD) for a in ref_ra])
            _count(counts["crop"], fast_crop, ref_crop_t, 0)
            _count(counts["rand_augment"], fast_ra, ref_ra_t, 0)
            _count(counts["normalize"], fast_norm, ref_norm, 1e-5)
    finally:
        source.close()
    out = {stage: {"differing_share": c[0] / max(c[1], 1), "max_abs_diff": c[2]} for stage, c in counts.items()}
    out["ops"] = {name: {"applied": s[1], "differing_images": s[0]} for name, s in sorted(per_op.items())}
    return out


def _count(acc: list, mine: torch.Tensor, ref: torch.Tensor, tol: float) -> None:
    diff = (mine.to(torch.float64) - ref.to(torch.float64)).abs()
    acc[0] += int((diff > tol).sum())
    acc[1] += diff.numel()
    acc[2] = max(acc[2], float(diff.max()) if diff.numel() else 0.0)
