"""The trainer on the view-plan loader (data.loader = cpu) with the full recipe: exact resume
mid-epoch, and the same training for any world size (DESIGN.md invariant 3)."""

import torch

from fastdeit.config.load import build_config
from fastdeit.train.checkpoint import load_checkpoint
from fastdeit.train.loop import train
from fastdeit.train.metrics import read_metrics
from tests.train.conftest import tiny_overrides
from tests.train.test_distributed import fastdeit_train

FULL_RECIPE_CPU_LOADER = ["data.loader=cpu", "data.img_size=40", "data.workers=2"]


def test_killed_mid_epoch_and_resumed_equals_uninterrupted(tiny_betons, tmp_path):
    train_file, _ = tiny_betons
    straight = tiny_overrides(train_file, None, tmp_path / "straight", *FULL_RECIPE_CPU_LOADER)
    train(build_config("deit_ti_300ep", overrides=straight))
    resumed = tiny_overrides(train_file, None, tmp_path / "resumed", *FULL_RECIPE_CPU_LOADER)
    train(build_config("deit_ti_300ep", overrides=resumed + ["run.max_steps=6"]))  # stops inside epoch 1
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["step"] == 6
    train(build_config("deit_ti_300ep", overrides=resumed), resume=True)
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("straight", "resumed"))
    assert b["step"] == a["step"] == 8
    for key in a["model"]:
        torch.testing.assert_close(b["model"][key], a["model"][key], rtol=0, atol=0, msg=key)
    losses = [[r["loss"] for r in read_metrics(tmp_path / n / "metrics.jsonl") if r["kind"] == "step"]
              for n in ("straight", "resumed")]
    assert losses[0] == losses[1]


def test_resume_refuses_another_dataset(tiny_betons, tmp_path):
    import pytest

    train_file, val_file = tiny_betons
    run = tiny_overrides(train_file, None, tmp_path / "r", *FULL_RECIPE_CPU_LOADER, "run.max_steps=2")
    train(build_config("deit_ti_300ep", overrides=run))
    other = tiny_overrides(val_file, None, tmp_path / "r", *FULL_RECIPE_CPU_LOADER)
    with pytest.raises(ValueError):
        train(build_config("deit_ti_300ep", overrides=other + ["data.global_batch=16", "augment.mix_group=8"]),
              resume=True)


def test_full_recipe_two_processes_match_one(tiny_betons, tmp_path):
    train_file, val_file = tiny_betons
    curves = {}
    for nproc in (1, 2):
        out = tmp_path / f"np{nproc}"
        fastdeit_train(nproc, tiny_overrides(train_file, val_file, out, *FULL_RECIPE_CPU_LOADER,
                                             "schedule.epochs=5"))
        curves[nproc] = [r["loss"] for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "step"]
    assert len(curves[1]) == 20
    # RandAugment, erasing, mixup/cutmix all on: the views are functions of (seed, epoch, position)
    torch.testing.assert_close(torch.tensor(curves[2]), torch.tensor(curves[1]), rtol=1e-4, atol=1e-5)
