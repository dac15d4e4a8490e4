"""`fastdeit eval` / `analyze` take --val as an ImageFolder directory or a .beton file for a checkpoint
trained by any loader (issue 16, point 2); their errors name --val."""

from __future__ import annotations

import json

import pytest

from fastdeit.cli import main
from fastdeit.config.load import build_config
from fastdeit.train.loop import train
from tests.train.conftest import tiny_betons, tiny_overrides  # noqa: F401 - tiny_betons is a fixture


@pytest.fixture(scope="module")
def cpu_loader_runs(tiny_betons, tmp_path_factory):
    """A tiny plain DeiT and a tiny distilled one, both trained by the cpu (view-plan) loader."""
    train_beton, _ = tiny_betons
    base = tmp_path_factory.mktemp("cpu_runs")
    short = ("schedule.epochs=1", "schedule.warmup_epochs=0", "data.loader=cpu")
    train(build_config("deit_ti_300ep", overrides=tiny_overrides(train_beton, None, base / "plain", *short)))
    plain = base / "plain" / "checkpoint.pt"
    overrides = tiny_overrides(train_beton, None, base / "distilled", *short,
                               "model.name=deit_tiny_distilled_patch16_224", "distill.kind=hard",
                               "distill.teacher=deit_tiny_patch16_224", f'distill.teacher_checkpoint="{plain}"')
    train(build_config("deit_ti_distilled_300ep", overrides=overrides))
    return plain, base / "distilled" / "checkpoint.pt"


def test_eval_of_a_cpu_loader_checkpoint_takes_a_folder_and_a_beton(cpu_loader_runs, tiny_folders, tiny_betons,
                                                                     capsys):
    plain, _ = cpu_loader_runs
    _, val_dir = tiny_folders
    _, val_beton = tiny_betons
    for val in (val_dir, val_beton):
        assert main(["eval", "--checkpoint", str(plain), "--val", str(val), "--json", "--device", "cpu"]) == 0
        results = json.loads(capsys.readouterr().out)
        assert results["model"]["samples"] == 48 and 0 <= results["model"]["top1"] <= 100


def test_analyze_of_a_cpu_loader_checkpoint_takes_a_folder(cpu_loader_runs, tiny_folders, tmp_path, capsys):
    plain, distilled = cpu_loader_runs
    _, val_dir = tiny_folders
    assert main(["analyze", "--checkpoint", str(distilled), "--val", str(val_dir), "--teacher", str(plain),
                 "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "analysis.json").read_text())["samples"] == 48


@pytest.mark.parametrize("command", ["eval", "analyze"])
def test_a_missing_val_is_named_as_val(cpu_loader_runs, tmp_path, capsys, command):
    _, distilled = cpu_loader_runs
    missing = tmp_path / "nowhere"
    extra = ["--no-teacher", "--out", str(tmp_path)] if command == "analyze" else []
    assert main([command, "--checkpoint", str(distilled), "--val", str(missing), "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err
    assert f"--val: no such file or directory {missing}" in err
    assert "data.train" not in err and "--set" not in err


def test_a_val_set_with_more_classes_than_the_checkpoint_is_refused(cpu_loader_runs, tmp_path, capsys):
    from fastdeit.data.sample_images import write_image_folder

    plain, _ = cpu_loader_runs
    write_image_folder(tmp_path / "val", num_classes=9, per_class=1, size=(40, 40))
    assert main(["eval", "--checkpoint", str(plain), "--val", str(tmp_path / "val"), "--device", "cpu"]) == 2
    assert "labels up to 8" in capsys.readouterr().err
