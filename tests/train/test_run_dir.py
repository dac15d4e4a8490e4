"""A run directory is never replaced unasked: `train` without --resume and a refused --resume leave
every file as it was; a full disk stops with one line, and --resume then completes."""

import errno

import pytest
import torch

from fastdeit.cli import main
from fastdeit.train.checkpoint import load_checkpoint
from tests.train.conftest import tiny_overrides


def train_args(overrides: list[str], *flags: str) -> list[str]:
    return ["train", "--preset", "deit_ti_300ep", *[a for o in overrides for a in ("--set", o)], *flags]


def snapshot(out) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tiny_folders, tmp_path_factory):
    train_dir, val_dir = tiny_folders
    out = tmp_path_factory.mktemp("finished")
    assert main(train_args(tiny_overrides(train_dir, val_dir, out, "run.plot=false"))) == 0
    return out


def test_train_into_a_run_without_resume_is_refused_and_touches_nothing(finished_run, tiny_folders, capsys):
    train_dir, val_dir = tiny_folders
    before = snapshot(finished_run)
    assert {"config.toml", "checkpoint.pt", "metrics.jsonl", "best.pt"} <= before.keys()
    capsys.readouterr()
    assert main(train_args(tiny_overrides(train_dir, val_dir, finished_run, "run.plot=false"))) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(finished_run) in err and "--resume" in err and "another --out" in err
    assert snapshot(finished_run) == before  # bytes and modification times: best.pt kept too


def test_a_refused_resume_leaves_every_file_as_it_was(finished_run, tiny_folders, capsys):
    train_dir, val_dir = tiny_folders
    before = snapshot(finished_run)
    changed = tiny_overrides(train_dir, val_dir, finished_run, "run.plot=false", "optim.weight_decay=0.1")
    capsys.readouterr()
    assert main(train_args(changed, "--resume")) == 2
    assert "optim.weight_decay" in capsys.readouterr().err
    assert snapshot(finished_run) == before  # config.toml still holds the run's own recipe


def test_a_full_disk_is_one_line_and_resume_completes(tiny_folders, tmp_path, capsys, monkeypatch):
    train_dir, _ = tiny_folders
    out = tmp_path / "run"
    overrides = tiny_overrides(train_dir, None, out, "run.plot=false")
    real_save = torch.save
    saves = []

    def save_until_full(obj, f, *args, **kwargs):  # the second checkpoint (end of epoch 1) finds no room
        saves.append(f)
        if len(saves) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_full)
    assert main(train_args(overrides)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(out / "checkpoint.pt") in err and "no space left" in err and "--resume" in err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 4  # the last complete checkpoint is kept
    monkeypatch.setattr(torch, "save", real_save)
    assert main(train_args(overrides, "--resume")) == 0
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 8
