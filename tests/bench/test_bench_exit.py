"""A benchmark ends quietly (issue 16, point 4): no 'Exception ignored ...' traceback from threads or
compiled code torn down at interpreter exit."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_loader_prints_nothing_at_exit(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "fastdeit", "bench", "loader", "--tiny"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stderr
    assert "img/s" in run.stdout
    assert "Exception ignored" not in run.stderr and "Traceback" not in run.stderr, run.stderr
