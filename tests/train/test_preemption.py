"""Stopping on a signal, step checkpoints by the clock, every rank's RNG, and a failed save on rank 0:
real signals to real `fastdeit train` processes (one, or two under torchrun with gloo)."""

import os
import pickle
import signal
import subprocess
import sys
import time

import torch

from fastdeit.config.load import build_config
from fastdeit.train import checkpoint as ckpt
from fastdeit.train.checkpoint import load_checkpoint
from fastdeit.train.loop import train
from fastdeit.train.metrics import read_metrics
from fastdeit.train.preemption import EXIT_PREEMPTED
from tests.train.conftest import tiny_overrides
from tests.train.test_distributed import fastdeit_train

# The CPU view-plan loader with deit's full recipe (RandAugment, erasing, mixup/cutmix) and drop path
# on, whose masks come from each rank's own torch RNG: deit keeps 256 of the 288 samples an epoch: 8 steps of 32.
RECIPE = ["data.loader=cpu", "data.img_size=40", "data.workers=1", "data.global_batch=32",
          "augment.mix_group=16", "model.drop_path=0.1"]


def command(nproc: int, overrides: list[str], resume: bool = False) -> list[str]:
    args = ["train", "--preset", "deit_ti_300ep"] + [a for o in overrides for a in ("--set", o)]
    args += ["--resume"] if resume else []
    if nproc == 1:
        return [sys.executable, "-m", "fastdeit", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "fastdeit", *args]


def last_logged_step(out) -> int:
    try:
        return max((r["step"] for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "step"), default=0)
    except (FileNotFoundError, ValueError):  # not there yet, or a line being written
        return 0


def signal_after_step(cmd: list[str], out, step: int, sig: signal.Signals) -> subprocess.CompletedProcess:
    """Start `cmd`, send `sig` once metrics.jsonl shows `step`, and wait for the process to end."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 600
        while last_logged_step(out) < step:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the run never reached the step"
            time.sleep(0.05)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def assert_same_weights(a, b) -> None:
    for part in ("model", "ema"):
        for key in a[part]:
            torch.testing.assert_close(b[part][key], a[part][key], rtol=0, atol=0, msg=f"{part}.{key}")


def test_sigterm_to_torchrun_mid_epoch_then_resume_equals_uninterrupted(tiny_betons, tmp_path):
    train_file, _ = tiny_betons
    straight = tiny_overrides(train_file, None, tmp_path / "straight", *RECIPE, "schedule.epochs=3")
    fastdeit_train(2, straight)
    stopped_out = tmp_path / "stopped"
    stopped = tiny_overrides(train_file, None, stopped_out, *RECIPE, "schedule.epochs=3")
    result = signal_after_step(command(2, stopped), stopped_out, 3, signal.SIGTERM)
    # each rank finished its step, agreed on the stop, and said so (torchrun's own exit is its business)
    assert result.stderr.count("fastdeit train: stopped by SIGTERM at step") == 2, result.stderr[-3000:]
    blob = load_checkpoint(stopped_out / "checkpoint.pt")
    total = 3 * 8
    assert 3 <= blob["step"] < total  # written where the signal stopped it, not at an epoch end
    assert len(blob["rng_per_rank"]) == 2 and blob["world_size"] == 2
    assert pickle.dumps(blob["rng_per_rank"][0]) != pickle.dumps(blob["rng_per_rank"][1])  # seed + rank
    resumed = fastdeit_train_resume(2, stopped)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("straight", "stopped"))
    assert a["step"] == b["step"] == total
    assert_same_weights(a, b)
    losses = [[r["loss"] for r in read_metrics(tmp_path / n / "metrics.jsonl") if r["kind"] == "step"]
              for n in ("straight", "stopped")]
    assert losses[0] == losses[1]


def fastdeit_train_resume(nproc: int, overrides: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command(nproc, overrides, resume=True), capture_output=True, text=True, env=env,
                          timeout=600)


def test_first_sigint_writes_a_checkpoint_and_exits_75_without_a_traceback(tiny_betons, tmp_path):
    train_file, _ = tiny_betons
    out = tmp_path / "run"
    overrides = tiny_overrides(train_file, None, out, *RECIPE, "schedule.epochs=5")
    result = signal_after_step(command(1, overrides), out, 2, signal.SIGINT)
    assert result.returncode == EXIT_PREEMPTED, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "stopped by SIGINT at step" in result.stderr and "--resume" in result.stderr
    step = load_checkpoint(out / "checkpoint.pt")["step"]
    assert 2 <= step < 5 * 8
    assert last_logged_step(out) == step  # nothing trained past the checkpoint
    resumed = fastdeit_train_resume(1, overrides + [f"run.max_steps={step + 2}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def test_second_sigint_aborts_at_once(tiny_betons, tmp_path):
    """A second Ctrl-C does not wait for the step or the checkpoint: exit 130, one line."""
    train_file, _ = tiny_betons
    out = tmp_path / "run"
    overrides = tiny_overrides(train_file, None, out, *RECIPE, "schedule.epochs=5", "run.checkpoint_every_minutes=0")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command(1, overrides), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        while last_logged_step(out) < 1:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        seen = []  # the second Ctrl-C once the first was taken (two at once would be read as one)
        while not any("SIGINT received" in line for line in seen):
            line = proc.stderr.readline()
            assert line, "".join(seen)[-3000:]
            seen.append(line)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)
        stderr = "".join(seen) + stderr
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    assert "aborted by a second Ctrl-C" in stderr and "Traceback" not in stderr


def test_step_checkpoints_by_the_clock_resume_exactly(tiny_betons, tmp_path, monkeypatch):
    """run.checkpoint_every_minutes writes mid-epoch checkpoints; resuming one of them gives the
    weights of the run that went on."""
    train_file, _ = tiny_betons
    out = tmp_path / "clock"
    copies = tmp_path / "copies"
    copies.mkdir()
    real_save = ckpt.save_checkpoint
    written = []

    def save_and_keep(path, payload):  # the real save, and a copy of each step checkpoint
        real_save(path, payload)
        if path.name == "checkpoint.pt":
            written.append(payload["step"])
            (copies / f"{payload['step']}.pt").write_bytes(path.read_bytes())

    monkeypatch.setattr(ckpt, "save_checkpoint", save_and_keep)
    overrides = tiny_overrides(train_file, None, out, *RECIPE, "run.checkpoint_every_minutes=0.0001")
    train(build_config("deit_ti_300ep", overrides=overrides))
    mid_epoch = [s for s in written if s % 8]
    assert mid_epoch, written  # step checkpoints, not only the epoch ends
    pick = mid_epoch[len(mid_epoch) // 2]
    again = tmp_path / "again"
    again.mkdir()
    (again / "checkpoint.pt").write_bytes((copies / f"{pick}.pt").read_bytes())
    train(build_config("deit_ti_300ep", overrides=tiny_overrides(train_file, None, again, *RECIPE)), resume=True)
    assert_same_weights(load_checkpoint(out / "checkpoint.pt"), load_checkpoint(again / "checkpoint.pt"))


def test_resume_on_another_world_size_reseeds_each_rank_and_says_so(tiny_betons, tmp_path):
    train_file, _ = tiny_betons
    out = tmp_path / "run"
    overrides = tiny_overrides(train_file, None, out, *RECIPE, "schedule.epochs=1")
    fastdeit_train(2, overrides + ["run.max_steps=4"])
    result = fastdeit_train_resume(1, overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "written by 2 ranks, this run has 1" in result.stdout + result.stderr
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 8


def test_a_failed_save_on_rank_0_stops_every_rank(tiny_betons, tmp_path):
    """best.pt cannot be written (a directory stands in its place): rank 0 fails, and rank 1, told so,
    stops too instead of waiting at a barrier."""
    train_file, val_file = tiny_betons
    out = tmp_path / "run"
    (out / "best.pt").mkdir(parents=True)
    (out / "best.pt" / "keep").write_text("a user's file")
    cmd = command(2, tiny_overrides(train_file, val_file, out, *RECIPE, "schedule.epochs=2"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode != 0
    assert "rank 0 failed to write" in result.stderr, result.stderr[-3000:]  # rank 1's own message
    assert (out / "best.pt" / "keep").read_text() == "a user's file"
