import os

import pytest

from fastdeit.train.distributed import slurm_to_torchrun_env

TORCHRUN_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def restore_torchrun_variables(monkeypatch):
    """The function under test writes os.environ: start clean, and undo it for the tests after."""
    saved = {k: os.environ.get(k) for k in TORCHRUN_KEYS}
    for key in TORCHRUN_KEYS:
        monkeypatch.delenv(key, raising=False)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_srun_variables_become_torchrun_variables(monkeypatch):
    monkeypatch.setenv("SLURM_PROCID", "11")
    monkeypatch.setenv("SLURM_NTASKS", "16")
    monkeypatch.setenv("SLURM_LOCALID", "3")
    monkeypatch.setenv("MASTER_ADDR", "node001")
    slurm_to_torchrun_env()
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("11", "16", "3")
    assert os.environ["MASTER_PORT"] == "29500"


def test_srun_without_master_addr_says_what_to_set(monkeypatch):
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_NTASKS", "2")
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        slurm_to_torchrun_env()
    assert "WORLD_SIZE" not in os.environ  # nothing half-set when it refuses
