"""metrics.jsonl after a kill: a torn last line is dropped on --resume with one warning; any other
bad line is an error naming the file and line."""

from __future__ import annotations

import json
import shutil

import pytest

from fastdeit.cli import main
from fastdeit.train.metrics import parse_metrics, read_metrics
from tests.train.conftest import cli_sets, tiny_overrides

TORN = '{"kind": "step", "time": 1700000000.5, "epoch": 1, "step": 5, "loss": 1.38, "lr": 0.000'


def test_resume_drops_a_torn_last_line_with_one_warning(half_run, tiny_folders, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(half_run, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write(TORN)  # what a kill in the middle of a write leaves
    assert main(["train", "--preset", "deit_ti_300ep", *cli_sets(tiny_overrides(*tiny_folders, run)), "--resume"]) == 0
    err = capsys.readouterr().err
    assert err.count("partial last line") == 1 and str(run / "metrics.jsonl") in err
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    assert all(line.endswith("\n") for line in lines)
    records = [json.loads(line) for line in lines]  # every line is whole JSON again
    assert [r["step"] for r in records if r["kind"] == "step"] == list(range(1, 9))
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [0, 1]


def test_a_bad_line_before_the_last_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "step", "step": 1}\nnot json\n{"kind": "step", "step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: not a metrics record"):
        parse_metrics(path)


def test_a_tail_of_zero_bytes_counts_as_torn_and_readers_skip_it(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"kind": "step", "step": 1}\n{"kind": "st' + b"\x00" * 100)  # power loss: size grew, data lost
    records, torn = parse_metrics(path)
    assert records == [{"kind": "step", "step": 1}] and torn == '{"kind": "st'
    assert read_metrics(path) == records
