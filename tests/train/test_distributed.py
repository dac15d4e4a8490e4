"""torchrun with gloo and two CPU processes: the same global batch gives the same training."""

import os
import subprocess
import sys

import torch

from fastdeit.train.checkpoint import load_checkpoint
from fastdeit.train.metrics import read_metrics
from tests.train.conftest import tiny_overrides

# No random augmentation and no stochastic depth: the run is then a deterministic function of the
# data order, which deit's repeated-augmentation sampler makes identical for any world size.
DETERMINISTIC = [
    "data.img_size=40", 'augment.auto_augment=""', "augment.reprob=0", "augment.mixup=0", "augment.cutmix=0",
    "augment.hflip=0", "augment.color_jitter=0", "augment.scale=[1, 1]", "augment.ratio=[1, 1]",
]


def fastdeit_train(nproc: int, overrides: list[str]) -> subprocess.CompletedProcess:
    args = ["train", "--preset", "deit_ti_300ep"] + [a for o in overrides for a in ("--set", o)]
    if nproc == 1:
        cmd = [sys.executable, "-m", "fastdeit", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "fastdeit", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_processes_match_one(tiny_folders, tmp_path):
    train_dir, val_dir = tiny_folders
    runs = {}
    for nproc in (1, 2):
        out = tmp_path / f"np{nproc}"
        fastdeit_train(nproc, tiny_overrides(train_dir, val_dir, out, *DETERMINISTIC))
        runs[nproc] = out
    one, two = (read_metrics(runs[n] / "metrics.jsonl") for n in (1, 2))
    losses_one = [r["loss"] for r in one if r["kind"] == "step"]
    losses_two = [r["loss"] for r in two if r["kind"] == "step"]
    assert len(losses_one) == len(losses_two) == 8
    torch.testing.assert_close(torch.tensor(losses_two), torch.tensor(losses_one), rtol=1e-4, atol=1e-5)
    evals_one = [r["top1"] for r in one if r["kind"] == "eval"]
    evals_two = [r["top1"] for r in two if r["kind"] == "eval"]
    assert evals_one == evals_two  # evaluation is split over ranks and summed back
    # only rank 0 writes: one metrics line per step, not two, and no stray files
    assert [r["step"] for r in two if r["kind"] == "step"] == list(range(1, 9))
    assert {p.name for p in runs[2].iterdir()} == {p.name for p in runs[1].iterdir()}
    a, b = (load_checkpoint(runs[n] / "checkpoint.pt")["model"] for n in (1, 2))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-5, msg=key)
