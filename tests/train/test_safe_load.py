"""No file a user passes can run code: each entry point that reads a `.pt`, given a pickle whose
`__reduce__` would create a marker file, refuses it naming the file, and the marker never appears.
deit's and timm's state-dict files (and their training checkpoints) still load."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import pytest
import timm
import torch

from fastdeit.cli import main
from fastdeit.config.load import build_config, config_to_dict
from fastdeit.config.schema import DistillConfig, ModelConfig
from fastdeit.distill.teacher import load_teacher
from fastdeit.models import create_model
from fastdeit.train.checkpoint import save_checkpoint
from tests.train.conftest import CLASSES, cli_sets, tiny_overrides


class RunsCode:
    """Unpickling this calls os.system: what a hostile `.pt` does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def hostile_file(tmp_path: Path, name: str = "hostile.pt") -> tuple[Path, Path]:
    """A .pt that looks like a state dict (and a fastdeit checkpoint) but runs `touch MARKER` if unpickled."""
    path, marker = tmp_path / name, tmp_path / f"{name}.ran"
    torch.save({"format": "fastdeit-checkpoint", "model": {"w": torch.ones(2)}, "payload": RunsCode(marker)}, path)
    return path, marker


def assert_refused(code: int, err: str, path: Path, marker: Path) -> None:
    assert code == 2
    assert not marker.exists(), "the file's code ran"
    assert str(path) in err and "refused" in err and "arbitrary unpickling" in err and "posix.system" in err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def distilled_checkpoint(tmp_path_factory) -> Path:
    """A real fastdeit checkpoint of a tiny distilled DeiT (untrained: analyze only needs to read it)."""
    path = tmp_path_factory.mktemp("distilled") / "checkpoint.pt"
    config = build_config("deit_ti_distilled_300ep", overrides=tiny_overrides(
        Path("unused"), None, path.parent, "model.name=deit_tiny_distilled_patch16_224"))
    model = create_model(config.model, CLASSES, config.data.img_size)
    save_checkpoint(path, {"preset": "deit_ti_distilled_300ep", "config": config_to_dict(config),
                           "num_classes": CLASSES, "model": model.state_dict(), "ema": None, "step": 0})
    return path


# ---- the eight entry points -----------------------------------------------------------------------


def test_eval_checkpoint(tiny_folders, tmp_path, capsys):
    path, marker = hostile_file(tmp_path)
    code = main(["eval", "--checkpoint", str(path), "--val", str(tiny_folders[1]), "--device", "cpu"])
    assert_refused(code, capsys.readouterr().err, path, marker)


def test_analyze_checkpoint(tiny_folders, tmp_path, capsys):
    path, marker = hostile_file(tmp_path)
    code = main(["analyze", "--checkpoint", str(path), "--val", str(tiny_folders[1]), "--no-teacher",
                 "--device", "cpu", "--out", str(tmp_path / "a")])
    assert_refused(code, capsys.readouterr().err, path, marker)


def test_analyze_teacher(distilled_checkpoint, tiny_folders, tmp_path, capsys):
    path, marker = hostile_file(tmp_path)
    code = main(["analyze", "--checkpoint", str(distilled_checkpoint), "--val", str(tiny_folders[1]),
                 "--teacher", str(path), "--device", "cpu", "--out", str(tmp_path / "a")])
    assert_refused(code, capsys.readouterr().err, path, marker)


def test_analyze_baseline(distilled_checkpoint, tiny_folders, tmp_path, capsys):
    path, marker = hostile_file(tmp_path)
    code = main(["analyze", "--checkpoint", str(distilled_checkpoint), "--val", str(tiny_folders[1]),
                 "--baseline", str(path), "--no-teacher", "--device", "cpu", "--out", str(tmp_path / "a")])
    assert_refused(code, capsys.readouterr().err, path, marker)


def test_teacher_cache_teacher_checkpoint(tiny_betons, tmp_path, capsys):
    path, marker = hostile_file(tmp_path)
    out = tmp_path / "teacher.cache"
    code = main(["teacher-cache", "--preset", "deit_ti_distilled_300ep", "--data", str(tiny_betons[0]),
                 "--teacher-checkpoint", str(path), "--out", str(out), "--no-progress",
                 *cli_sets(["data.loader=cpu", "data.img_size=32", "data.global_batch=64", "data.workers=1",
                            "augment.mix_group=16", "distill.teacher=test_resnet", "run.device=cpu",
                            "run.precision=fp32"])])
    assert_refused(code, capsys.readouterr().err, path, marker)
    assert not out.exists()


def test_train_model_init_checkpoint(tiny_folders, tmp_path, capsys):
    path, marker = hostile_file(tmp_path)
    overrides = tiny_overrides(*tiny_folders, tmp_path / "run", f'model.init_checkpoint="{path}"')
    code = main(["train", "--preset", "deit_ti_300ep", *cli_sets(overrides)])
    assert_refused(code, capsys.readouterr().err, path, marker)


def test_train_distill_teacher_checkpoint(tiny_folders, tmp_path, capsys):
    path, marker = hostile_file(tmp_path)
    overrides = tiny_overrides(*tiny_folders, tmp_path / "run", "model.name=deit_tiny_distilled_patch16_224",
                               "distill.kind=hard", "distill.teacher=test_resnet",
                               f'distill.teacher_checkpoint="{path}"')
    code = main(["train", "--preset", "deit_ti_distilled_300ep", *cli_sets(overrides)])
    assert_refused(code, capsys.readouterr().err, path, marker)


def test_train_resume_checkpoint_of_the_run_directory(half_run, tiny_folders, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(half_run, run)
    (run / "best.pt").unlink()
    path, marker = hostile_file(run, "checkpoint.pt")
    code = main(["train", "--preset", "deit_ti_300ep", *cli_sets(tiny_overrides(*tiny_folders, run)), "--resume"])
    err = capsys.readouterr().err
    assert_refused(code, err, path, marker)
    assert "no other checkpoint" in err


# ---- what still loads -----------------------------------------------------------------------------


CPU = torch.device("cpu")
TINY_VIT = dict(patch_size=8, embed_dim=32, depth=2, num_heads=2, drop_path=0.0)


def teacher_config(path: Path) -> DistillConfig:
    return DistillConfig(kind="hard", teacher="test_resnet", teacher_checkpoint=str(path))


def test_a_timm_plain_state_dict_loads_as_init_checkpoint_and_as_teacher(tmp_path):
    torch.manual_seed(0)
    source = create_model(ModelConfig(name="deit_tiny_patch16_224", **TINY_VIT), CLASSES, 32)
    torch.save(source.state_dict(), tmp_path / "timm.pth")  # timm's released .pth: a bare state dict
    init = create_model(ModelConfig(name="deit_tiny_patch16_224", init_checkpoint=str(tmp_path / "timm.pth"),
                                    **TINY_VIT), CLASSES, 32)
    torch.testing.assert_close(init.state_dict(), source.state_dict(), rtol=0, atol=0)

    cnn = timm.create_model("test_resnet", num_classes=CLASSES).eval()
    torch.save(cnn.state_dict(), tmp_path / "teacher.pth")
    teacher = load_teacher(teacher_config(tmp_path / "teacher.pth"), CLASSES, CPU)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(teacher(x), cnn(x))


def test_a_deit_training_checkpoint_with_its_args_loads_as_init_checkpoint_and_as_teacher(tmp_path):
    """deit main.py saves {'model', 'optimizer', 'lr_scheduler', 'epoch', 'args': argparse.Namespace}:
    the one type allow-listed, and only for weights a user names."""
    torch.manual_seed(1)
    source = create_model(ModelConfig(name="deit_tiny_patch16_224", **TINY_VIT), CLASSES, 32)
    args = argparse.Namespace(model="deit_tiny_patch16_224", lr=5e-4, input_size=32, teacher_model="regnety_160")
    torch.save({"model": source.state_dict(), "epoch": 299, "args": args}, tmp_path / "deit.pth")
    init = create_model(ModelConfig(name="deit_tiny_patch16_224", init_checkpoint=str(tmp_path / "deit.pth"),
                                    **TINY_VIT), CLASSES, 32)
    torch.testing.assert_close(init.state_dict(), source.state_dict(), rtol=0, atol=0)
    cnn = timm.create_model("test_resnet", num_classes=CLASSES).eval()
    torch.save({"model": cnn.state_dict(), "args": args}, tmp_path / "teacher.pth")
    teacher = load_teacher(teacher_config(tmp_path / "teacher.pth"), CLASSES, CPU)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(teacher(x), cnn(x))
