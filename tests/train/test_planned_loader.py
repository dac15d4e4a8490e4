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
    """Same path, same number of images, same recipe: only the bytes differ (another draw of the
    shapes), so the run gets as far as the resume and the dataset's fingerprint is what refuses it."""
    import shutil

    import pytest

    from fastdeit.data.beton import BetonReader
    from fastdeit.data.prepare import prepare_dataset
    from tests.train.conftest import PER_CLASS_TRAIN, write_folder

    train_file, _ = tiny_betons
    data = tmp_path / "train.beton"
    shutil.copy(train_file, data)
    run = tiny_overrides(data, None, tmp_path / "r", *FULL_RECIPE_CPU_LOADER)
    train(build_config("deit_ti_300ep", overrides=run + ["run.max_steps=2"]))
    before = BetonReader(data)
    other = tmp_path / "other.beton"
    prepare_dataset(write_folder(tmp_path / "other", PER_CLASS_TRAIN, seed=7), other, max_res=64, progress=False)
    other.replace(data)  # the same file name now holds other images
    after = BetonReader(data)
    assert len(after) == len(before) and after.fingerprint != before.fingerprint
    with pytest.raises(ValueError, match="fingerprint"):
        train(build_config("deit_ti_300ep", overrides=run), resume=True)


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
