"""Per-iteration learning rate: linear warmup, then cosine to min_lr.

Matches timm's CosineLRScheduler as deit configures it (warmup_prefix=False, t_initial=epochs,
cycle_limit 1) evaluated at fractional epochs: during warmup lr climbs linearly from warmup_lr
to the base lr; afterwards lr = min_lr + (base - min_lr) * (1 + cos(pi * t / epochs)) / 2.
"""

from __future__ import annotations

import math

from fastdeit.config.schema import ScheduleConfig


def lr_at(step: int, steps_per_epoch: int, cfg: ScheduleConfig, base_lr: float) -> float:
    assert steps_per_epoch > 0
    t = step / steps_per_epoch  # fractional epoch
    if t < cfg.warmup_epochs:
        return cfg.warmup_lr + t * (base_lr - cfg.warmup_lr) / cfg.warmup_epochs
    t = min(t, float(cfg.epochs))
    return cfg.min_lr + 0.5 * (base_lr - cfg.min_lr) * (1.0 + math.cos(math.pi * t / cfg.epochs))
