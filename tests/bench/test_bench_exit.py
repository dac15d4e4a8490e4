"""Every benchmark ends quietly (issue 16, point 4): no 'Exception ignored ...' traceback from threads
or compiled code torn down at interpreter exit, for each `fastdeit bench` kind at its CI size.

Issue 16 saw numba's "Exception ignored ... KeyError" after every `fastdeit bench`; it did not
reproduce here, at the issue's commit or since, so each kind is run as a user runs it (a fresh
process, to its real exit) and its stderr is read whole.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# what each kind prints on stdout when it worked
KINDS = {"loader": "img/s", "prepare": "img/s", "model": "img/s", "augment": "img/s", "distill": "img/s",
         "e2e": "img/s", "fidelity": "reference"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_bench_prints_nothing_at_exit(kind, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "FASTDEIT_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "fastdeit", "bench", kind, "--tiny"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stderr
    assert KINDS[kind] in run.stdout, run.stdout
    assert "Exception ignored" not in run.stderr and "Traceback" not in run.stderr, run.stderr
