import math

import pytest
import torch
from timm.scheduler import CosineLRScheduler

from fastdeit.config.schema import ScheduleConfig
from fastdeit.train.schedule import lr_at


def timm_deit_scheduler(base_lr: float, cfg: ScheduleConfig):
    """The scheduler deit builds (timm create_scheduler with deit's args), stepped per epoch."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    return CosineLRScheduler(opt, t_initial=cfg.epochs, lr_min=cfg.min_lr, warmup_lr_init=cfg.warmup_lr,
                             warmup_t=cfg.warmup_epochs, cycle_limit=1, t_in_epochs=True), opt


def test_matches_timm_cosine_at_epoch_boundaries():
    cfg = ScheduleConfig()
    sched, opt = timm_deit_scheduler(1e-3, cfg)
    for epoch in [0, 1, 3, 5, 6, 50, 150, 299]:
        sched.step(epoch)
        assert lr_at(epoch * 100, 100, cfg, 1e-3) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)


def test_warmup_is_per_iteration_and_cosine_ends_at_min_lr():
    cfg = ScheduleConfig(epochs=10, warmup_epochs=2, warmup_lr=1e-6, min_lr=1e-5)
    lrs = [lr_at(s, 10, cfg, 1e-3) for s in range(100)]
    assert lrs[0] == 1e-6
    assert all(b > a for a, b in zip(lrs[:20], lrs[1:20]))  # strictly rising within warmup
    assert lrs[20] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * 2 / 10)))
    assert lr_at(100, 10, cfg, 1e-3) == pytest.approx(1e-5)
