import argparse
import math

import pytest
import torch
from timm.scheduler import create_scheduler

from fastdeit.config.load import build_config
from fastdeit.config.schema import ScheduleConfig
from fastdeit.train.schedule import lr_at


def deit_args(cfg: ScheduleConfig, base_lr: float) -> argparse.Namespace:
    """The scheduler arguments of deit's main.py (its argparse defaults, with cfg's values)."""
    return argparse.Namespace(
        sched="cosine", epochs=cfg.epochs, lr=base_lr, lr_noise=None, lr_noise_pct=0.67, lr_noise_std=1.0,
        warmup_lr=cfg.warmup_lr, min_lr=cfg.min_lr, decay_epochs=30, warmup_epochs=cfg.warmup_epochs,
        cooldown_epochs=10, patience_epochs=10, decay_rate=0.1,
    )


def deit_lrs(cfg: ScheduleConfig, base_lr: float, steps_per_epoch: int) -> list[float]:
    """The lr of every optimizer step of deit's main.py: the scheduler is created (timm's
    create_scheduler with deit's args), each epoch of args.epochs trains, then lr_scheduler.step(epoch)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched, _ = create_scheduler(deit_args(cfg, base_lr), opt)
    lrs = []
    for epoch in range(cfg.epochs):  # deit loops over args.epochs (the cooldown epochs are never run)
        for _ in range(steps_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
        sched.step(epoch)
    return lrs


@pytest.mark.parametrize("warmup", [5, 0])
def test_epoch_step_matches_deit_at_every_step(warmup):
    cfg = ScheduleConfig(epochs=12, warmup_epochs=warmup, warmup_lr=1e-6, min_lr=1e-5, step="epoch")
    expected = deit_lrs(cfg, 1e-3, steps_per_epoch=7)
    got = [lr_at(s, 7, cfg, 1e-3) for s in range(len(expected))]
    assert got == pytest.approx(expected, rel=1e-12, abs=0)
    if warmup:  # epochs 0 and 1 both at warmup_lr, lr constant within an epoch
        assert set(got[:14]) == {1e-6}
        assert len(set(got[14:21])) == 1 and got[21] > got[20]


def test_epoch_step_matches_deit_for_the_300_epoch_recipe():
    cfg = ScheduleConfig()  # deit main.py defaults
    assert cfg.step == "epoch"
    expected = deit_lrs(cfg, 1e-3, steps_per_epoch=1)
    assert [lr_at(s, 1, cfg, 1e-3) for s in range(300)] == pytest.approx(expected, rel=1e-12, abs=0)


def test_deit_presets_step_per_epoch_and_demo_per_iteration():
    for name in ("deit_b_300ep", "deit_s_300ep", "deit_ti_distilled_300ep", "deit_b_384_finetune"):
        assert build_config(name).schedule.step == "epoch", name
    assert build_config("demo").schedule.step == "iteration"


def test_iteration_step_warms_up_every_step_and_ends_at_min_lr():
    cfg = ScheduleConfig(epochs=10, warmup_epochs=2, warmup_lr=1e-6, min_lr=1e-5, step="iteration")
    lrs = [lr_at(s, 10, cfg, 1e-3) for s in range(100)]
    assert lrs[0] == 1e-6
    assert all(b > a for a, b in zip(lrs[:20], lrs[1:20]))  # strictly rising within warmup
    assert lrs[20] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * 2 / 10)))
    assert lr_at(100, 10, cfg, 1e-3) == pytest.approx(1e-5)


def test_iteration_step_equals_timm_at_epoch_boundaries():
    cfg = ScheduleConfig(step="iteration")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    sched, _ = create_scheduler(deit_args(cfg, 1e-3), opt)
    for epoch in [0, 1, 3, 5, 6, 50, 150, 299]:
        sched.step(epoch)
        assert lr_at(epoch * 100, 100, cfg, 1e-3) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)


def test_unknown_step_mode_is_refused_by_name():
    from fastdeit.config.load import config_from_dict

    with pytest.raises(ValueError, match="schedule.step"):
        config_from_dict({"schedule": {"step": "batch"}}, "test")
