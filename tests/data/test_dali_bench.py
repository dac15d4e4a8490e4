"""The DALI GPU benchmark script runs on the CPU twin (--device cpu --tiny) and writes its JSON;
no timing is asserted, only what the recorded table must hold."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.extras import import_extra

import_extra("nvidia.dali", "dali")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_dali.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_dali", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_cpu_run_writes_side_by_side_rows(tmp_path, capsys):
    out = tmp_path / "dali.json"
    load_script().main(["--device", "cpu", "--tiny", "--threads", "2", "--json", str(out)])
    result = json.loads(out.read_text())
    loaders = {row["loader"] for row in result["rows"]}
    assert loaders == {"fastdeit DaliLoader (DALI CPU twin)", "fastdeit CpuLoader (threads)"}
    for row in result["rows"]:
        assert row["max_res"] == 256 and row["img_per_s"] > 0 and row["workers"] == 2
        assert row["hw_decoder_load"] is None  # no hardware decoder on the CPU twin
    assert result["machine"]["dali"] and result["machine"]["cpu"]
    assert "--tiny" in result["command"]
    printed = capsys.readouterr().out
    assert "DALI CPU twin" in printed and "hw_load" in printed and str(out) in printed


def test_out_directory_is_the_default_destination(monkeypatch, tmp_path):
    monkeypatch.setenv("OUT", str(tmp_path))
    assert load_script().default_json("cuda") == tmp_path / "gpu_dali_cuda.json"


def test_gpu_run_without_a_gpu_is_refused_before_any_work(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA device"):
        load_script().main(["--device", "cuda", "--json", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()
