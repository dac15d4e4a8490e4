"""Learning rate: linear warmup, then cosine to min_lr (timm's CosineLRScheduler as deit builds it:
warmup_prefix=False, t_initial=epochs, cycle_limit 1).

Two ways to step it (`schedule.step`):

- "epoch": deit's `main.py` exactly. It creates the scheduler (which sets lr = warmup_lr), trains
  epoch 0, then calls `lr_scheduler.step(epoch)` after each epoch. So the lr is constant within an
  epoch, epoch 0 and epoch 1 both train at warmup_lr, and epoch e >= 1 trains at timm's lr(e - 1).
- "iteration": timm's formula evaluated at the fractional epoch of every step (smoother; what the
  demo presets use).
"""

from __future__ import annotations

import math

from fastdeit.config.schema import ScheduleConfig

STEP_MODES = ("epoch", "iteration")


def timm_cosine_lr(t: float, cfg: ScheduleConfig, base_lr: float) -> float:
    """timm CosineLRScheduler._get_lr(t) for deit's settings, t in epochs (may be fractional)."""
    if t < cfg.warmup_epochs:
        return cfg.warmup_lr + t * (base_lr - cfg.warmup_lr) / cfg.warmup_epochs
    t = min(t, float(cfg.epochs))
    return cfg.min_lr + 0.5 * (base_lr - cfg.min_lr) * (1.0 + math.cos(math.pi * t / cfg.epochs))


def lr_at(step: int, steps_per_epoch: int, cfg: ScheduleConfig, base_lr: float) -> float:
    """The lr used by optimizer step `step` (0-based) of a run with `steps_per_epoch` steps."""
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    if cfg.step == "iteration":
        return timm_cosine_lr(step / steps_per_epoch, cfg, base_lr)
    if cfg.step != "epoch":
        raise ValueError(f"schedule.step = {cfg.step!r}: must be one of {', '.join(STEP_MODES)}")
    epoch = step // steps_per_epoch
    if epoch == 0:
        # timm's scheduler sets warmup_lr when created (warmup_t > 0); without warmup it keeps base_lr
        return cfg.warmup_lr if cfg.warmup_epochs > 0 else base_lr
    return timm_cosine_lr(epoch - 1, cfg, base_lr)
