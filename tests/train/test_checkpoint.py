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
