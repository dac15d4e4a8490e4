"""Errors for people (issue 16, point 4): what went wrong, where, and what to change; no traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fastdeit.cli import main
from fastdeit.config.schema import ModelConfig
from fastdeit.data.beton import BetonReader
from fastdeit.data.loader import too_few_images
from fastdeit.models import create_model
from tests.train.conftest import tiny_betons, tiny_folders, tiny_overrides  # noqa: F401 - fixtures


def train_argv(*overrides: str) -> list[str]:
    argv = ["train", "--preset", "deit_ti_300ep"]
    for o in overrides:
        argv += ["--set", o]
    return argv


@pytest.mark.parametrize("loader", [("data.loader=cpu",), ("data.loader=reference", "data.workers=1")])
def test_a_corrupt_sample_in_training_names_file_index_and_inspect(tiny_betons, tmp_path, capsys, loader):
    train_beton, _ = tiny_betons
    bad = tmp_path / "bad.beton"
    shutil.copy(train_beton, bad)
    with BetonReader(bad) as r:
        offsets = [int(o) for o in r.offsets]
    raw = bytearray(bad.read_bytes())
    for o in offsets:  # every sample loses its SOI marker: the first one the plan meets fails
        raw[o: o + 2] = b"\x00\x00"
    bad.write_bytes(bytes(raw))
    argv = train_argv(*tiny_overrides(bad, None, tmp_path / "run", *loader, "schedule.epochs=1"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{bad}: sample " in err and "does not decode" in err
    index = int(err.split(f"{bad}: sample ")[1].split()[0])
    assert f"fastdeit inspect {bad} --export {index + 1} DIR" in err and f"fastdeit inspect {bad} --verify" in err
    assert "Traceback" not in err  # a DataLoader worker's traceback is left out too


def test_a_model_shape_error_names_the_set_keys(tiny_folders, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"model.embed_dim = 64, model.depth = 2, model.num_heads = 3: .*divisible"):
        create_model(ModelConfig(name="deit_tiny_patch16_224", patch_size=8, embed_dim=64, depth=2, num_heads=3),
                     10, 40)
    train_dir, _ = tiny_folders
    assert main(train_argv(*tiny_overrides(train_dir, None, tmp_path / "run", "model.num_heads=3"))) == 2
    err = capsys.readouterr().err
    assert "model.embed_dim = 32, model.depth = 2, model.num_heads = 3" in err and "--set" in err and "Traceback" not in err


def test_a_diverged_loss_says_what_to_change(tiny_folders, tmp_path, capsys):
    train_dir, _ = tiny_folders
    assert main(train_argv(*tiny_overrides(train_dir, None, tmp_path / "run", "optim.lr=1e30",
                                           "schedule.warmup_epochs=0"))) == 1
    err = capsys.readouterr().err
    assert "loss is nan" in err.lower() or "loss is inf" in err.lower()
    assert "--set optim.lr=" in err and "--set optim.clip_grad=" in err and "Traceback" not in err


@pytest.mark.parametrize("under", [False, True])
def test_out_pointing_at_a_file_is_refused_before_training(tiny_folders, tmp_path, capsys, under):
    train_dir, _ = tiny_folders
    file = tmp_path / "a_file"
    file.write_text("keep me")
    out = file / "run" if under else file
    assert main(train_argv(*tiny_overrides(train_dir, None, out))) == 2
    err = capsys.readouterr().err
    assert f"{file} is a file, not a folder" in err and "--out" in err
    assert file.read_text() == "keep me"


def test_too_few_images_say_which_setting_to_change(tiny_betons, tmp_path, capsys):
    assert too_few_images(100, 64, 256, 64).endswith("use at least 256 images")
    msg = too_few_images(600, 1024, 256, 64)
    assert "= 512 of them" in msg and "--set data.global_batch=512" in msg and "use at least 1024 images" in msg
    # a real run: 256 images, global batch 512
    train_beton, _ = tiny_betons
    argv = train_argv(*tiny_overrides(train_beton, None, tmp_path / "run", "data.loader=cpu",
                                      "data.global_batch=512"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--set data.global_batch=256" in err and "Traceback" not in err
