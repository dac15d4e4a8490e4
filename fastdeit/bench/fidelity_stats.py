"""Stage-by-stage statistics of the training batches of each loader, drawn from the same data.

Both pipelines run the recipe of (DataConfig, AugmentConfig) over the first `steps` global steps
of epoch 0 of one .beton file, on one process, and every stage is measured:

* pixels after the crop (RandomResizedCrop + flip), after RandAugment (uint8), after normalise +
  erase and after mixing (float): per-channel mean, std and histogram;
* the crop boxes: area as a share of the stored image, aspect ratio;
* RandAugment: the share of (image, layer) slots each op was applied to and the op's actual
  argument (degrees, shear factor, translation in pixels, enhance factor, bits, threshold...);
* the erased area (pixels that erasing changed) and the share of images erased;
* the mixing lambda (cutmix: corrected by the clipped box) and the share of cutmix;
* the entropy and top value of the soft targets;
* how often an image's repeated-augmentation copies share a step, and a mixing group.

`reference` is deit's own pipeline, instrumented in place (timm's AugmentOp, crop and Mixup
objects of this run are wrapped, nothing global is patched); `cpu` and `dali` are the view-plan
loaders followed by the device augmentation, run stage by stage (and checked against
DeviceAugment's own output, so the statistics describe the pipeline that trains). `compare`
puts two results side by side with their differences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from fastdeit.config.schema import AugmentConfig, DataConfig

STAGES = ("crop", "rand_augment", "erase", "mix")
UINT8_BINS = 32  # 8 grey levels a bin
FLOAT_RANGE = (-3.0, 3.0)  # normalised pixels; values outside land in the edge bins
FLOAT_BINS = 48
# The neutral argument of each op (what leaves the image unchanged): "strength" = |arg - neutral|.
NEUTRAL = {"Rotate": 0.0, "ShearX": 0.0, "ShearY": 0.0, "TranslateXRel": 0.0, "TranslateYRel": 0.0,
           "ColorIncreasing": 1.0, "ContrastIncreasing": 1.0, "BrightnessIncreasing": 1.0,
           "SharpnessIncreasing": 1.0, "PosterizeIncreasing": 8.0, "SolarizeIncreasing": 256.0,
           "SolarizeAdd": 0.0}


class PixelStats:
    """Per-channel running mean / std and a fixed-bin histogram of NCHW batches."""

    def __init__(self, lo: float, hi: float, bins: int) -> None:
        self.lo, self.hi, self.bins = lo, hi, bins
        self.sum = np.zeros(3)
        self.sumsq = np.zeros(3)
        self.count = 0
        self.hist = np.zeros((3, bins))

    def add(self, images: torch.Tensor) -> None:
        x = images.detach().to(torch.float64).permute(1, 0, 2, 3).reshape(3, -1)
        self.sum += x.sum(1).numpy()
        self.sumsq += (x * x).sum(1).numpy()
        self.count += x.shape[1]
        width = (self.hi - self.lo) / self.bins
        idx = ((x - self.lo) / width).floor().clamp(0, self.bins - 1).to(torch.int64)
        for c in range(3):
            self.hist[c] += torch.bincount(idx[c], minlength=self.bins).numpy()

    def summary(self) -> dict[str, Any]:
        mean = self.sum / max(self.count, 1)
        std = np.sqrt(np.maximum(self.sumsq / max(self.count, 1) - mean * mean, 0.0))
        hist = self.hist / np.maximum(self.hist.sum(1, keepdims=True), 1)
        return {"mean": mean.tolist(), "std": std.tolist(), "hist": hist.tolist(),
                "range": [self.lo, self.hi]}


@dataclass
class StageRecorder:
    """Everything `collect_*` measures; `summary()` turns it into plain numbers."""

    layers: int
    pixels: dict[str, PixelStats] = field(default_factory=lambda: {
        "crop": PixelStats(0, 256, UINT8_BINS), "rand_augment": PixelStats(0, 256, UINT8_BINS),
        "erase": PixelStats(*FLOAT_RANGE, FLOAT_BINS), "mix": PixelStats(*FLOAT_RANGE, FLOAT_BINS)})
    crop_area: list[float] = field(default_factory=list)
    crop_aspect: list[float] = field(default_factory=list)
    ra_ops: list[tuple[str, float]] = field(default_factory=list)  # (op, argument) of each applied op
    erased_area: list[float] = field(default_factory=list)  # per image, share of its pixels
    mix_lam: list[float] = field(default_factory=list)  # per group
    mix_cutmix: list[bool] = field(default_factory=list)
    target_entropy: list[float] = field(default_factory=list)
    target_top: list[float] = field(default_factory=list)
    share_step: list[bool] = field(default_factory=list)  # per sample: another copy in its step
    share_group: list[bool] = field(default_factory=list)  # ... in its mixing group
    images: int = 0

    def add_targets(self, targets: torch.Tensor) -> None:
        p = targets.detach().to(torch.float64).clamp_min(1e-12)
        self.target_entropy += (-(p * p.log()).sum(1)).tolist()
        self.target_top += targets.max(1).values.tolist()

    def add_erasure(self, before: torch.Tensor, after: torch.Tensor) -> None:
        changed = (before != after).any(1).flatten(1).to(torch.float64).mean(1)
        self.erased_area += changed.tolist()

    def add_layout(self, indices: np.ndarray, group_of: np.ndarray) -> None:
        """One step's dataset indices and mixing group of each sample."""
        for i, g in zip(indices, group_of):
            same = indices == i
            self.share_step.append(int(same.sum()) > 1)
            self.share_group.append(int((same & (group_of == g)).sum()) > 1)

    def summary(self) -> dict[str, Any]:
        ops: dict[str, dict[str, float]] = {}
        slots = max(self.images * self.layers, 1)
        for name in sorted({n for n, _ in self.ra_ops}):
            args = np.array([a for n, a in self.ra_ops if n == name], dtype=np.float64)
            entry = {"share": len(args) / slots}
            if name in NEUTRAL and not np.isnan(args).all():
                entry["mean_arg"] = float(args.mean())
                entry["strength"] = float(np.abs(args - NEUTRAL[name]).mean())
            ops[name] = entry
        erased = np.array(self.erased_area)
        lam = np.array(self.mix_lam)
        cut = np.array(self.mix_cutmix, dtype=bool)
        return {
            "images": self.images,
            "pixels": {k: v.summary() for k, v in self.pixels.items()},
            "crop": {"area": _mean(self.crop_area), "aspect": _mean(self.crop_aspect),
                     "area_hist": np.histogram(self.crop_area, bins=10, range=(0, 1))[0].tolist()},
            "rand_augment": {"applied_share": len(self.ra_ops) / slots, "ops": ops},
            "erase": {"share": float((erased > 0).mean()) if erased.size else 0.0,
                      "area": float(erased[erased > 0].mean()) if (erased > 0).any() else 0.0},
            "mix": {"groups": int(lam.size), "lam": _mean(lam), "cutmix_share": float(cut.mean()) if cut.size else 0.0,
                    "lam_cutmix": _mean(lam[cut]), "lam_mixup": _mean(lam[~cut])},
            "targets": {"entropy": _mean(self.target_entropy), "top": _mean(self.target_top)},
            "copies": {"share_step": _mean(self.share_step), "share_group": _mean(self.share_group)},
        }


def _mean(values: Any) -> float:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()) if a.size else float("nan")


# ----------------------------------------------------------------------------- reference


def _record_op(recorder: StageRecorder, op: Any) -> None:
    """Wrap one timm AugmentOp's aug_fn: it is called only when the op applies, with its args."""
    inner = op.aug_fn

    def recorded(img, *args, **kwargs):
        arg = float(args[0]) if args else float("nan")
        if op.name in ("TranslateXRel", "TranslateYRel"):  # timm: pixels = pct * side
            arg *= img.size[0] if op.name == "TranslateXRel" else img.size[1]
        recorder.ra_ops.append((op.name, arg))
        return inner(img, *args, **kwargs)

    op.aug_fn = recorded


def _record_crop(recorder: StageRecorder, rrc: Any) -> None:
    inner = rrc.get_params

    def recorded(img, scale, ratio):
        i, j, h, w = inner(img, scale, ratio)
        recorder.crop_area.append(h * w / float(img.size[0] * img.size[1]))
        recorder.crop_aspect.append(w / h)
        return i, j, h, w

    rrc.get_params = recorded


def _record_mix(recorder: StageRecorder, mixup: Any) -> None:
    params, mix_batch = mixup._params_per_batch, mixup._mix_batch
    last: dict[str, bool] = {}

    def recorded_params():
        lam, use_cutmix = params()
        last["cutmix"] = bool(use_cutmix)
        return lam, use_cutmix

    def recorded_mix(x):
        lam = mix_batch(x)
        recorder.mix_lam.append(float(lam))
        recorder.mix_cutmix.append(last.get("cutmix", False))
        return lam

    mixup._params_per_batch, mixup._mix_batch = recorded_params, recorded_mix


def _split_transform(transform: Any) -> tuple[list[Callable], list[Callable], list[Callable], Callable | None]:
    """deit's train Compose as (crop stage, RandAugment stage, to-tensor + normalise, erasing)."""
    from timm.data.auto_augment import RandAugment
    from timm.data.random_erasing import RandomErasing

    ts = list(transform.transforms)
    erasing = ts.pop() if ts and isinstance(ts[-1], RandomErasing) else None
    ra = [t for t in ts if isinstance(t, RandAugment)]
    first_ra = ts.index(ra[0]) if ra else None
    tensor_at = next(i for i, t in enumerate(ts) if type(t).__name__ in ("MaybeToTensor", "ToTensor"))
    crop = ts[: first_ra if first_ra is not None else tensor_at]
    return crop, ra, ts[tensor_at:], erasing


def collect_reference(data: DataConfig, aug: AugmentConfig, path: str | Path, *, seed: int, steps: int
                      ) -> dict[str, Any]:
    """Stage statistics of deit's pipeline (data.loader = reference) over `steps` global steps."""
    from timm.data.transforms import RandomResizedCropAndInterpolation

    from fastdeit.data.beton import BetonReader
    from fastdeit.data.plan import parse_rand_augment
    from fastdeit.data.reference import ReferenceMixup, build_train_transform
    from fastdeit.data.repeated_aug import RepeatedAugSampler
    from fastdeit.data.reference import _augment_ops
    from PIL import Image

    reader = BetonReader(path)
    transform = build_train_transform(data, aug)
    layers = parse_rand_augment(aug.auto_augment)["ra_layers"] if aug.auto_augment else 0
    rec = StageRecorder(layers=layers)
    for op in _augment_ops(transform):
        _record_op(rec, op)
    for t in transform.transforms:
        if isinstance(t, RandomResizedCropAndInterpolation):
            _record_crop(rec, t)
    crop_t, ra_t, tensor_t, erasing = _split_transform(transform)
    mixer = ReferenceMixup(aug, int(reader.num_classes), seed=seed)
    _record_mix(rec, mixer.mixup)
    sampler = RepeatedAugSampler(len(reader), 1, 0, repeats=data.repeated_aug, seed=seed)
    sampler.set_epoch(0)
    order = np.fromiter(iter(sampler), dtype=np.int64)
    batch = data.global_batch
    _check_steps(steps, len(order) // batch)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    for step in range(steps):
        indices = order[step * batch:(step + 1) * batch]
        crops, ras, erased, normed = [], [], [], []
        for i in indices:
            img = Image.fromarray(reader.decode(int(i)))
            for t in crop_t:
                img = t(img)
            crops.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
            for t in ra_t:
                img = t(img)
            ras.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
            x = img
            for t in tensor_t:
                x = t(x)
            normed.append(x.clone())
            if erasing is not None:
                x = erasing(x)
            erased.append(x)
        labels = torch.as_tensor(reader.labels[indices], dtype=torch.int64)
        _add_batch(rec, torch.stack(crops), torch.stack(ras), torch.stack(normed), torch.stack(erased))
        mixed, targets = mixer(torch.stack(erased), labels)
        rec.pixels["mix"].add(mixed)
        rec.add_targets(targets)
        rec.add_layout(indices, np.arange(len(indices)) // aug.mix_group)  # contiguous groups of G
    return rec.summary()


def _add_batch(rec: StageRecorder, crops: torch.Tensor, ras: torch.Tensor, normed: torch.Tensor,
               erased: torch.Tensor) -> None:
    rec.images += crops.shape[0]
    rec.pixels["crop"].add(crops)
    rec.pixels["rand_augment"].add(ras)
    rec.pixels["erase"].add(erased)
    rec.add_erasure(normed, erased)


def _check_steps(steps: int, available: int) -> None:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if steps > available:
        raise ValueError(f"steps {steps}: the epoch has only {available} global steps")


# ----------------------------------------------------------------------------- view plan


def _plan_ops(rec: StageRecorder, plan: Any) -> None:
    """The RandAugment ops the plan applies, with timm's argument for each."""
    from fastdeit.augment import levels
    from fastdeit.data.plan import RAND_INCREASING_OPS

    level = {"Rotate": levels.rotate_degrees, "ShearX": levels.shear_factor, "ShearY": levels.shear_factor,
             "PosterizeIncreasing": levels.posterize_bits, "SolarizeIncreasing": levels.solarize_threshold,
             "SolarizeAdd": levels.solarize_add_amount,
             "TranslateXRel": lambda m: levels.translate_fraction(m) * plan.img_size,
             "TranslateYRel": lambda m: levels.translate_fraction(m) * plan.img_size}
    for name in ("ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"):
        level[name] = levels.enhance_factor
    ops, mags = plan.ra_op[plan.ra_apply], plan.ra_magnitude[plan.ra_apply]
    for op, mag in zip(ops.tolist(), mags.tolist()):
        name = RAND_INCREASING_OPS[op]
        fn = level.get(name)
        rec.ra_ops.append((name, float(fn(torch.tensor([mag], dtype=torch.float64))[0]) if fn else float("nan")))


def _plan_crops(rec: StageRecorder, plan: Any, widths: np.ndarray, heights: np.ndarray) -> None:
    area = widths[plan.indices] * heights[plan.indices]
    rec.crop_area += (plan.crop[:, 2] * plan.crop[:, 3] / area).tolist()
    rec.crop_aspect += (plan.crop[:, 3] / plan.crop[:, 2]).tolist()


def plan_loader(kind: str, reader: Any, data: DataConfig, aug: AugmentConfig, seed: int) -> Any:
    """The view-plan loader `kind` (cpu, or dali: the DALI CPU twin) on one process, on the CPU."""
    from fastdeit.data.plan import PlanConfig

    cfg = PlanConfig.from_configs(data, aug)
    if kind == "cpu":
        from fastdeit.data.loader import CpuLoader

        return CpuLoader(reader, cfg, seed=seed, threads=max(data.workers, 1))
    if kind == "dali":
        from fastdeit.data.dali_loader import DaliLoader

        return DaliLoader(reader, cfg, seed=seed, threads=max(data.workers, 1), device="cpu")
    raise ValueError(f"loader {kind!r}: expected reference, cpu or dali")


def collect_plan(data: DataConfig, aug: AugmentConfig, path: str | Path, *, seed: int, steps: int,
                 loader: str = "cpu") -> dict[str, Any]:
    """Stage statistics of a view-plan loader + DeviceAugment over `steps` global steps."""
    from fastdeit.augment import AugmentParams, DeviceAugment, mix, normalize, rand_augment, random_erase
    from fastdeit.augment.mixup import smoothed_one_hot
    from fastdeit.data.beton import BetonReader

    reader = BetonReader(path)
    device_aug = DeviceAugment(aug, int(reader.num_classes), out_dtype=torch.float32)
    rec = StageRecorder(layers=0)
    source = plan_loader(loader, reader, data, aug, seed)
    widths, heights = np.asarray(reader.widths), np.asarray(reader.heights)
    try:
        _check_steps(steps, len(source))
        source.set_epoch(0)
        for k, batch in enumerate(source):
            if k == steps:
                break
            plan, labels = batch.plan, batch.labels
            rec.layers = plan.ra_op.shape[1] if device_aug.rand_augment else 0
            crops = batch.images.permute(0, 3, 1, 2).contiguous()
            params = AugmentParams.from_plan(plan)
            ras = crops
            if device_aug.rand_augment:
                ras = rand_augment(crops, params.ra_op, params.ra_magnitude, params.ra_apply,
                                   fill=device_aug.fill, interpolation=aug.interpolation)
                _plan_ops(rec, plan)
            normed = normalize(ras, device_aug.mean, device_aug.std).contiguous()
            erased = normed
            if device_aug.erasing:
                erased = random_erase(normed, params.erase, params.erase_box, params.erase_seed, aug.remode)
            _add_batch(rec, crops, ras, normed, erased)
            _plan_crops(rec, plan, widths, heights)
            if device_aug.mixing:
                mixed, targets = mix(erased, labels, params.mix_mode, params.mix_lam, params.mix_box,
                                     group_size=aug.mix_group, num_classes=device_aug.num_classes,
                                     smoothing=aug.smoothing)
                rec.mix_lam += plan.mix_lam.tolist()
                rec.mix_cutmix += (plan.mix_mode == 2).tolist()
            else:
                mixed, targets = erased, smoothed_one_hot(labels, device_aug.num_classes, aug.smoothing)
            _check_same_as_pipeline(device_aug, crops, labels, params, mixed, targets)
            rec.pixels["mix"].add(mixed)
            rec.add_targets(targets)
            rec.add_layout(plan.indices, plan.group_of_sample)
    finally:
        source.close()
    return rec.summary()


def _check_same_as_pipeline(device_aug: Any, crops: torch.Tensor, labels: torch.Tensor, params: Any,
                            mixed: torch.Tensor, targets: torch.Tensor) -> None:
    """The staged run must be DeviceAugment's own result, or its statistics describe something else."""
    images, soft = device_aug(crops, labels, params)
    if not (torch.equal(images.contiguous(), mixed.contiguous()) and torch.equal(soft, targets)):
        raise RuntimeError("the staged augmentation differs from DeviceAugment: update fidelity_stats.collect_plan")


def collect(loader: str, data: DataConfig, aug: AugmentConfig, path: str | Path, *, seed: int, steps: int
            ) -> dict[str, Any]:
    """Stage statistics of `loader` (reference, cpu or dali)."""
    if loader == "reference":
        return collect_reference(data, aug, path, seed=seed, steps=steps)
    return collect_plan(data, aug, path, seed=seed, steps=steps, loader=loader)


# ----------------------------------------------------------------------------- comparison


def total_variation(p: Any, q: Any) -> float:
    """Half the L1 distance of two histograms (0 = identical, 1 = disjoint), worst channel."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    return float((0.5 * np.abs(p - q).sum(-1)).max())


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The differences b - a of every statistic (pixels: worst-channel histogram distance)."""
    out: dict[str, Any] = {"pixels": {}}
    for stage in STAGES:
        pa, pb = a["pixels"][stage], b["pixels"][stage]
        out["pixels"][stage] = {
            "hist_tv": total_variation(pa["hist"], pb["hist"]),
            "mean_diff": float(np.max(np.abs(np.subtract(pb["mean"], pa["mean"])))),
            "std_ratio": float(np.max(np.abs(np.divide(pb["std"], np.maximum(pa["std"], 1e-9)) - 1.0))),
        }
    ops_a, ops_b = a["rand_augment"]["ops"], b["rand_augment"]["ops"]
    out["rand_augment"] = {"applied_share": b["rand_augment"]["applied_share"] - a["rand_augment"]["applied_share"],
                           "ops": {}}
    for name in sorted(set(ops_a) | set(ops_b)):
        ea, eb = ops_a.get(name, {"share": 0.0}), ops_b.get(name, {"share": 0.0})
        entry = {"share": eb["share"] - ea["share"]}
        if "strength" in ea and "strength" in eb:
            entry["strength"] = eb["strength"] - ea["strength"]
        out["rand_augment"]["ops"][name] = entry
    for section in ("crop", "erase", "mix", "targets", "copies"):
        out[section] = {k: b[section][k] - a[section][k] for k in a[section]
                        if isinstance(a[section][k], float) and isinstance(b[section].get(k), float)}
    return out
