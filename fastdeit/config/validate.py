"""Impossible values, rejected with the key that holds them."""

from __future__ import annotations

from fastdeit.config.recipe import check_augment_recipe
from fastdeit.config.schema import TrainConfig

CHOICES = {
    "data.loader": ("reference", "cpu", "dali"),
    "data.eval_interpolation": ("bilinear", "bicubic", "nearest"),
    "augment.interpolation": ("bilinear", "bicubic", "random"),
    "augment.remode": ("pixel", "rand", "const"),
    "augment.kernels": ("auto", "triton", "torch"),
    "augment.mixup_mode": ("batch",),
    "distill.kind": ("none", "soft", "hard", "hard_cls"),
    "distill.teacher_compile": ("auto", "on", "off"),
    "model.compile": ("auto", "on", "off"),
    "model.compile_mode": ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
    "optim.name": ("adamw",),
    "optim.fused": ("auto", "on", "off"),
    "run.device": ("auto", "cpu", "cuda"),
    "run.precision": ("auto", "bf16", "fp16", "fp32"),
    "run.progress": ("auto", "bar", "plain", "none"),
    "schedule.step": ("epoch", "iteration"),
}


def _get(config: TrainConfig, dotted: str):
    section, name = dotted.split(".")
    return getattr(getattr(config, section), name)


def _require(ok: bool, key: str, value, why: str) -> None:
    if not ok:
        raise ValueError(f"{key} = {value!r}: {why}")


def validate_config(config: TrainConfig) -> None:
    for key, choices in CHOICES.items():
        value = _get(config, key)
        _require(value in choices, key, value, f"must be one of {', '.join(choices)}")
    positive = [
        "data.global_batch", "data.img_size", "data.repeated_aug", "augment.mix_group",
        "optim.lr", "optim.lr_batch", "optim.eps", "schedule.epochs", "run.eval_every",
        "run.checkpoint_every", "run.log_every",
    ]
    for key in positive:
        value = _get(config, key)
        _require(value > 0, key, value, "must be positive")
    non_negative = [
        "data.workers", "data.eval_batch", "optim.weight_decay", "optim.clip_grad",
        "schedule.warmup_epochs", "schedule.warmup_lr", "schedule.min_lr", "run.max_steps",
        "run.checkpoint_every_minutes",
        "augment.mixup", "augment.cutmix", "augment.recount", "distill.tau",
    ]
    for key in non_negative:
        value = _get(config, key)
        _require(value >= 0, key, value, "must not be negative")
    probabilities = [
        "model.drop", "model.drop_path", "augment.hflip", "augment.reprob", "augment.mixup_prob",
        "augment.mixup_switch_prob", "augment.smoothing", "distill.alpha", "run.ema_decay",
    ]
    for key in probabilities:
        value = _get(config, key)
        _require(0.0 <= value <= 1.0, key, value, "must lie in [0, 1]")
    _require(0.0 < config.data.eval_crop_pct <= 1.0, "data.eval_crop_pct", config.data.eval_crop_pct,
             "must lie in (0, 1]")
    lo, hi = config.augment.scale
    _require(0.0 < lo <= hi <= 1.0, "augment.scale", config.augment.scale, "needs 0 < min <= max <= 1")
    lo, hi = config.augment.ratio
    _require(0.0 < lo <= hi, "augment.ratio", config.augment.ratio, "needs 0 < min <= max")
    b1, b2 = config.optim.betas
    _require(0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0, "optim.betas", config.optim.betas, "each must lie in [0, 1)")
    _require(config.schedule.warmup_epochs <= config.schedule.epochs, "schedule.warmup_epochs",
             config.schedule.warmup_epochs, "cannot exceed schedule.epochs")
    _require(config.data.global_batch % config.augment.mix_group == 0 or
             config.data.global_batch < config.augment.mix_group,
             "data.global_batch", config.data.global_batch,
             f"must be a multiple of augment.mix_group ({config.augment.mix_group})")
    check_augment_recipe(config.augment)
    if config.distill.kind != "none":
        _require("distilled" in config.model.name or config.distill.kind == "hard_cls", "model.name",
                 config.model.name, f"distill.kind = {config.distill.kind!r} needs a distilled model "
                 "(one with a distillation token, e.g. deit_small_distilled_patch16_224)")
