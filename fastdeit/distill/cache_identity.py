"""What a teacher-logit cache was computed from, so a run can tell whether it may use it.

A cached logit is only right for a run whose views are the same: same dataset file, seed,
view recipe (plan + device augmentation + the dtype of the teacher's input) and plan version,
and the same teacher weights. These helpers compute those identities the same way for the
builder (`fastdeit teacher-cache`) and for the trainer that checks the cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import torch

import fastdeit.augment
import fastdeit.data.cpu_decoder
from fastdeit.augment.ops import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from fastdeit.config.schema import AugmentConfig, DataConfig, DistillConfig
from fastdeit.data.plan import PlanConfig, epoch_length

# AugmentConfig fields that do not change the pixels the teacher sees (smoothing only touches
# the targets, color_jitter is unused by timm once auto_augment is set).
_NOT_VIEW_FIELDS = frozenset({"smoothing", "color_jitter"})


def teacher_input_dtype(device: torch.device | str, precision: str) -> torch.dtype:
    """The dtype DeviceAugment emits for the model and the teacher: the trainer's autocast dtype
    (bf16 under bf16 autocast, fp16 under CUDA fp16, fp32 otherwise). Builder and trainer agree."""
    from fastdeit.precision import autocast_dtype

    return autocast_dtype(torch.device(device), precision)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN never occurs in a recipe; keep JSON valid
        return "nan"
    if value in (float("inf"), float("-inf")):
        return str(value)
    return value


def view_recipe(
    plan: PlanConfig,
    augment: AugmentConfig,
    input_dtype: torch.dtype,
    mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
    std: Sequence[float] = IMAGENET_DEFAULT_STD,
    decoder: str = "cpu",
) -> dict[str, Any]:
    """Everything that decides the teacher's input pixels, as a JSON-able dict.

    decoder: which decoder made the uint8 crops ("cpu", "dali-cpu", "dali-mixed"): their
    resampling differs slightly, so a cache is exact only for the decoder it was built with."""
    aug = {f.name: _plain(getattr(augment, f.name)) for f in fields(augment) if f.name not in _NOT_VIEW_FIELDS}
    return {
        "plan": {k: _plain(v) for k, v in asdict(plan).items()},
        "augment": aug,
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "input_dtype": str(input_dtype).removeprefix("torch."),
        "decoder": decoder,
        # bumped when an op's (or the crop/resize's) pixels change for the same plan draws
        "augment_version": fastdeit.augment.AUGMENT_VERSION,
        "decoder_version": fastdeit.data.cpu_decoder.DECODER_VERSION,
    }


def recipe_hash(recipe: dict[str, Any]) -> str:
    """Short stable hash of a view_recipe dict."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def weights_checksum(state: dict[str, torch.Tensor]) -> str:
    """Hash of a state dict's names, dtypes, shapes and bytes (independent of key order)."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def teacher_identity(cfg: DistillConfig) -> tuple[str, str]:
    """(model name, weights checksum) of the teacher `cfg` names, without building the model."""
    from fastdeit.distill.teacher import read_teacher_state

    if not cfg.teacher_checkpoint:
        raise ValueError("distill.teacher_checkpoint is empty: the cache records which teacher it holds")
    return cfg.teacher, weights_checksum(read_teacher_state(Path(cfg.teacher_checkpoint)))


@dataclass
class RunViews:
    """What identifies a run's views (the cache header fields except teacher and k)."""

    plan_cfg: PlanConfig
    num_classes: int
    samples_per_epoch: int
    recipe: dict
    recipe_hash: str
    dataset: str
    input_dtype: torch.dtype


def check_planned_loader(data: DataConfig) -> None:
    """Only the view-plan loaders replay a view from (seed, epoch, position)."""
    if data.loader not in ("cpu", "dali"):
        raise ValueError(f"data.loader = {data.loader!r}: the teacher cache holds the view-plan loaders' views; "
                         "set data.loader=cpu (or dali) for both the cache build and the run")


def run_views(reader, data: DataConfig, augment: AugmentConfig, device: torch.device, precision: str,
              device_augment: Any = None) -> RunViews:
    """The view identity of a run over `reader` with these configs (builder and trainer agree on it).

    device_augment: the run's DeviceAugment, whose out_dtype/mean/std then enter the recipe (a
    trainer feeding the teacher other pixels than the builder did is refused); None = the
    builder's choice, teacher_input_dtype(device, precision) and ImageNet mean/std.
    """
    check_planned_loader(data)
    plan_cfg = PlanConfig.from_configs(data, augment)
    device = torch.device(device)
    decoder = "cpu" if data.loader == "cpu" else ("dali-mixed" if device.type == "cuda" else "dali-cpu")
    if device_augment is None:
        input_dtype = teacher_input_dtype(device, precision)
        recipe = view_recipe(plan_cfg, augment, input_dtype, decoder=decoder)
    else:
        input_dtype = device_augment.out_dtype
        recipe = view_recipe(plan_cfg, augment, input_dtype, device_augment.mean, device_augment.std, decoder)
    return RunViews(plan_cfg=plan_cfg, num_classes=int(reader.num_classes),
                    samples_per_epoch=epoch_length(plan_cfg, len(reader)), recipe=recipe,
                    recipe_hash=recipe_hash(recipe), dataset=str(reader.fingerprint), input_dtype=input_dtype)
