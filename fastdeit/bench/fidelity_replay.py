"""Replay the view plan's draws through deit's own per-image code and compare, stage by stage.

The distributions of fidelity_stats.py say whether two pipelines draw alike; this says whether,
given the *same* draws, they compute the same thing on real data: for each sample of a view-plan
batch, the plan's crop box and flip go through torchvision/PIL (timm's
RandomResizedCropAndInterpolation does `F.resized_crop` with them), its RandAugment ops through
timm's PIL op functions with the same arguments, then ToTensor + Normalize, the plan's erasing box
(filled with the fast path's noise values: the noise generator is not deit's, only its
distribution is) and timm's mixing formulas and `mixup_target` with the plan's lambda and box.
Each stage is compared with the loader + DeviceAugment output; each reference stage starts from
the reference's own previous stage, so differences compose as they do in training.

Per stage: the share of values that differ, the largest difference, and the distance of the two
pixel histograms (fidelity_stats.PixelStats); for the targets, the mean entropy of each side.
`tests/bench/test_fidelity.py` runs it on a few hundred digits views as the CI regression test.
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
    counts = {k: [0, 0, 0.0] for k in STAGES}  # differing, total, max
    hists = {k: (_pixel_stats(k), _pixel_stats(k)) for k in STAGES}  # (view plan, reference)
    entropy: tuple[list[float], list[float]] = ([], [])
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
            fast_erased, fast_mixed, fast_targets = _fast_erase_mix(device_aug, aug, fast_norm, batch.labels, params)
            ref_erased = _reference_erase(ref_norm, plan, fast_erased)
            ref_mixed, ref_targets = _reference_mix(ref_erased, batch.labels, plan, aug, device_aug)
            pairs = {"crop": (fast_crop, ref_crop_t, 0), "rand_augment": (fast_ra, ref_ra_t, 0),
                     "normalize": (fast_norm, ref_norm, 1e-5), "erase": (fast_erased, ref_erased, 1e-5),
                     "mix": (fast_mixed, ref_mixed, 1e-5), "targets": (fast_targets, ref_targets, 1e-6)}
            for stage, (mine, ref, tol) in pairs.items():
                _count(counts[stage], mine, ref, tol)
                if stage != "targets":
                    hists[stage][0].add(mine)
                    hists[stage][1].add(ref)
            entropy[0].extend(_entropy(fast_targets))
            entropy[1].extend(_entropy(ref_targets))
    finally:
        source.close()
    from fastdeit.bench.fidelity_stats import total_variation

    out: dict[str, Any] = {}
    for stage, c in counts.items():
        out[stage] = {"differing_share": c[0] / max(c[1], 1), "max_abs_diff": c[2]}
        if stage != "targets":
            out[stage]["hist_tv"] = total_variation(hists[stage][0].summary()["hist"], hists[stage][1].summary()["hist"])
    out["targets"]["entropy"] = float(np.mean(entropy[0]))
    out["targets"]["entropy_reference"] = float(np.mean(entropy[1]))
    out["ops"] = {name: {"applied": s[1], "differing_images": s[0]} for name, s in sorted(per_op.items())}
    return out


STAGES = ("crop", "rand_augment", "normalize", "erase", "mix", "targets")


def _pixel_stats(stage: str):
    from fastdeit.bench.fidelity_stats import FLOAT_BINS, FLOAT_RANGE, UINT8_BINS, PixelStats

    return PixelStats(0, 256, UINT8_BINS) if stage in ("crop", "rand_augment") else PixelStats(*FLOAT_RANGE, FLOAT_BINS)


def _entropy(targets: torch.Tensor) -> list[float]:
    p = targets.to(torch.float64).clamp_min(1e-12)
    return (-(p * p.log()).sum(1)).tolist()


def _fast_erase_mix(device_aug: Any, aug: AugmentConfig, normed: torch.Tensor, labels: torch.Tensor, params: Any):
    """DeviceAugment's erase and mix stages, as its __call__ runs them."""
    from fastdeit.augment import mix, random_erase
    from fastdeit.augment.mixup import smoothed_one_hot

    erased = normed.clone()
    if device_aug.erasing:
        erased = random_erase(erased, params.erase, params.erase_box, params.erase_seed, aug.remode)
    if device_aug.mixing:
        mixed, targets = mix(erased.clone(), labels, params.mix_mode, params.mix_lam, params.mix_box,
                             group_size=aug.mix_group, num_classes=device_aug.num_classes, smoothing=aug.smoothing)
    else:
        mixed, targets = erased.clone(), smoothed_one_hot(labels, device_aug.num_classes, aug.smoothing)
    return erased, mixed, targets


def _reference_erase(normed: torch.Tensor, plan: Any, fast_erased: torch.Tensor) -> torch.Tensor:
    """timm RandomErasing's img[:, top:top + h, left:left + w] = noise at the plan's box."""
    out = normed.clone()
    for r in np.nonzero(plan.erase)[0]:
        top, left, h, w = (int(v) for v in plan.erase_box[r])
        out[r, :, top:top + h, left:left + w] = fast_erased[r, :, top:top + h, left:left + w]
    return out


def _reference_mix(x: torch.Tensor, labels: torch.Tensor, plan: Any, aug: AugmentConfig, device_aug: Any):
    """timm Mixup._mix_batch (mode 'batch') per mixing group with the plan's lambda and box, and
    timm's mixup_target; label smoothing alone where mixing is off."""
    from timm.data.mixup import mixup_target

    from fastdeit.data.plan import MIX_CUTMIX, MIX_MIXUP

    out, targets = x.clone(), []
    g = aug.mix_group
    for k in range(len(plan.groups)):
        xs, ys = out[k * g:(k + 1) * g], labels[k * g:(k + 1) * g]
        mode, lam = int(plan.mix_mode[k]), float(plan.mix_lam[k])
        if not device_aug.mixing:
            lam = 1.0
        elif mode == MIX_MIXUP:
            x_flipped = xs.flip(0).mul_(1.0 - lam)  # timm: x.mul_(lam).add_(x_flipped)
            xs.mul_(lam).add_(x_flipped)
        elif mode == MIX_CUTMIX:
            yl, yh, xl, xh = (int(v) for v in plan.mix_box[k])
            xs[:, :, yl:yh, xl:xh] = xs.flip(0)[:, :, yl:yh, xl:xh]
        else:
            lam = 1.0
        targets.append(mixup_target(ys, device_aug.num_classes, lam, aug.smoothing))
    return out, torch.cat(targets)


def _count(acc: list, mine: torch.Tensor, ref: torch.Tensor, tol: float) -> None:
    diff = (mine.to(torch.float64) - ref.to(torch.float64)).abs()
    acc[0] += int((diff > tol).sum())
    acc[1] += diff.numel()
    acc[2] = max(acc[2], float(diff.max()) if diff.numel() else 0.0)
