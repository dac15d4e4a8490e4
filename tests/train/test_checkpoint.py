import pytest
import torch

from fastdeit.train.checkpoint import load_checkpoint, save_checkpoint


def test_save_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "ck" / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(3)}, "step": 5})
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temporary left behind
    blob = load_checkpoint(path)
    assert blob["step"] == 5 and torch.equal(blob["model"]["w"], torch.ones(3))


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 1


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a fastdeit checkpoint"):
        load_checkpoint(path)
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_checkpoint(path)


# ---- safe types only, RNG states exact, a checksum of the contents ----------------------------------

import os
import random
import shutil
import stat

import numpy as np

from fastdeit.cli import main
from fastdeit.train.checkpoint import CorruptCheckpointError, restore_rng_state, rng_state
from tests.train.conftest import cli_sets, tiny_overrides


def test_a_real_checkpoint_needs_no_allow_listed_type(half_run):
    path = half_run / "checkpoint.pt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    blob = torch.load(path, map_location="cpu", weights_only=True)  # plain torch, nothing allow-listed
    assert blob["format_version"] == 2 and len(blob["sha256"]) == 64 and blob["step"] == 4


def test_rng_states_survive_a_checkpoint_exactly(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1), np.random.randn()  # both keep a cached second gaussian: part of the state
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state()})

    def draws():
        return (random.random(), random.gauss(0, 1), np.random.randn(), np.random.rand(3).tolist(),
                torch.rand(3).tolist())

    expected = draws()
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert draws() == expected


def test_a_format_1_checkpoint_gets_a_clear_message_and_is_not_unpickled(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "fastdeit-checkpoint", "format_version": 1, "model": {"w": torch.ones(2)},
                "rng": {"python": random.getstate(), "numpy": np.random.get_state()}}, path)
    with pytest.raises(ValueError, match="written by an older fastdeit") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_save_refuses_a_type_that_safe_loading_could_not_read(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint\['extra'\] is a PosixPath"):
        save_checkpoint(tmp_path / "c.pt", {"extra": tmp_path})
    assert list(tmp_path.iterdir()) == []


def flip_inside(path, tensor: torch.Tensor) -> None:
    """Flip one byte in the middle of `tensor`'s bytes as stored in the file (torch stores them raw)."""
    data = bytearray(path.read_bytes())
    raw = tensor.contiguous().numpy().tobytes()
    at = data.find(raw)
    assert at > 0 and data.find(raw, at + 1) < 0
    data[at + len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_tensor_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "c.pt"
    weights = torch.arange(64, dtype=torch.float32)
    save_checkpoint(path, {"model": {"w": weights}})
    flip_inside(path, weights)
    with pytest.raises(CorruptCheckpointError, match="corrupt.*SHA-256") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_the_rename_is_made_durable_by_fsyncing_the_directory(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode))),
                                                 real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b))[1])
    save_checkpoint(tmp_path / "c.pt", {"step": 1})
    assert events == [("fsync", False), ("replace", str(tmp_path / "c.pt")), ("fsync", True)]


def largest_exp_avg(path) -> torch.Tensor:
    state = load_checkpoint(path)["optimizer"]["state"]
    return max((s["exp_avg"] for s in state.values()), key=lambda t: t.numel())


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_resume_refuses_a_damaged_checkpoint_and_names_the_one_that_verifies(half_run, tiny_folders, tmp_path,
                                                                             capsys, damage):
    run = tmp_path / "run"
    shutil.copytree(half_run, run)
    path = run / "checkpoint.pt"
    if damage == "flipped":  # the case: bytes in the optimizer's exp_avg, which loaded silently
        flip_inside(path, largest_exp_avg(path))
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    damaged = path.read_bytes()
    code = main(["train", "--preset", "deit_ti_300ep", *cli_sets(tiny_overrides(*tiny_folders, run)), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert str(path) in err and ("corrupt" in err)
    assert f"verify: best.pt (step 4, epoch 1)" in err and f"cp {run / 'best.pt'} {path}" in err
    assert path.read_bytes() == damaged  # the evidence is left as it was
