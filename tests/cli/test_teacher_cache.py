"""`fastdeit teacher-cache`: shards built by separate commands merge into a cache training accepts."""

from __future__ import annotations

import numpy as np

from fastdeit.cli import main
from fastdeit.distill.cache_reader import TeacherCache
from tests.distill.conftest import CLASSES, TEACHER, make_beton, save_teacher


def write_config(path, beton: str, seed: int = 3) -> str:
    path.write_text(f"""
[data]
loader = "cpu"
train = "{beton}"
img_size = 32
global_batch = 64
workers = 1
[augment]
mix_group = 16
[model]
name = "deit_tiny_distilled_patch16_224"
[distill]
kind = "hard"
teacher = "{TEACHER}"
[schedule]
epochs = 2
warmup_epochs = 1
[run]
seed = {seed}
device = "cpu"
precision = "fp32"
""")
    return str(path)


def test_sharded_cli_build_merges_and_resumes(tmp_path, capsys):
    beton = make_beton(tmp_path, 264, 0)
    ckpt = save_teacher(tmp_path / "teacher.pt", 0)
    config = write_config(tmp_path / "run.toml", beton)
    common = ["teacher-cache", "--config", config, "--teacher-checkpoint", ckpt, "--no-progress"]
    parts = [str(tmp_path / f"p{i}.cache") for i in range(2)]
    assert main(common + ["--out", parts[0], "--shard", "0/2", "--max-steps", "1"]) == 0
    assert "--resume" in capsys.readouterr().out
    assert main(common + ["--out", parts[0], "--shard", "0/2", "--resume"]) == 0
    assert main(common + ["--out", parts[1], "--shard", "1/2"]) == 0
    merged = str(tmp_path / "merged.cache")
    assert main(["teacher-cache", "merge", merged, *parts]) == 0
    with TeacherCache(merged) as cache:
        assert cache.header.k == 1 and cache.header.epochs == (0, 2)  # hard distillation: top-1
        labels = cache.logits_for(1, np.arange(256), CLASSES).argmax(1)
        assert labels.min() >= 0 and labels.max() < CLASSES

    other = write_config(tmp_path / "other.toml", beton, seed=4)
    odd = str(tmp_path / "odd.cache")
    assert main(["teacher-cache", "--config", other, "--teacher-checkpoint", ckpt, "--no-progress",
                 "--out", odd, "--shard", "1/2"]) == 0
    capsys.readouterr()
    assert main(["teacher-cache", "merge", str(tmp_path / "bad.cache"), parts[0], odd]) == 2
    assert "seed differs" in capsys.readouterr().err
    assert main(common + ["--out", str(tmp_path / "x.cache"), "--epochs", "2"]) == 2
    assert "--epochs" in capsys.readouterr().err


def test_a_wrong_teacher_model_is_refused_before_out_partial_exists(tmp_path, capsys):
    """The refusal leaves nothing behind: the corrected command then runs without --resume."""
    beton = make_beton(tmp_path, 264, 0)
    ckpt = save_teacher(tmp_path / "teacher.pt", 0)
    config = write_config(tmp_path / "run.toml", beton)
    out = tmp_path / "t.cache"
    common = ["teacher-cache", "--config", config, "--teacher-checkpoint", ckpt, "--no-progress", "--out", str(out)]
    assert main(common + ["--set", 'distill.teacher="test_efficientnet"', "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "does not fit test_efficientnet" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "t.cache.partial").exists()
    assert main(common + ["--max-steps", "1"]) == 0  # the corrected retry: no --resume needed
    assert (tmp_path / "t.cache.partial").exists()


def test_a_full_disk_is_one_line_and_resume_completes(tmp_path, capsys, monkeypatch):
    import errno
    import os

    beton = make_beton(tmp_path, 264, 0)
    ckpt = save_teacher(tmp_path / "teacher.pt", 0)
    config = write_config(tmp_path / "run.toml", beton)
    common = ["teacher-cache", "--config", config, "--teacher-checkpoint", ckpt, "--no-progress"]
    clean = tmp_path / "clean.cache"
    assert main(common + ["--out", str(clean)]) == 0
    out = tmp_path / "full.cache"
    real_pwrite = os.pwrite
    calls = []

    def pwrite_until_full(fd, data, offset):  # the cache's writes: the 5th finds the disk full
        calls.append(offset)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite_until_full)
    capsys.readouterr()
    assert main(common + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{out}.partial" in err and "--resume" in err
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    assert main(common + ["--out", str(out), "--resume"]) == 0
    assert out.read_bytes() == clean.read_bytes()
