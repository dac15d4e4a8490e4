"""FASTDEIT_REQUIRE_EXTRAS=1 (scripts/test.sh) turns a missing extra from a skip into a failure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBE = '''
from tests.extras import import_extra
mod = import_extra("fastdeit_no_such_extra_module", "dali")

def test_uses_it():
    assert mod
'''


@pytest.mark.parametrize("required, outcome", [("1", "failed"), ("", "skipped")])
def test_missing_extra_fails_only_when_required(tmp_path, required, outcome):
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {**os.environ, "FASTDEIT_REQUIRE_EXTRAS": required, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          "-o", "addopts=", str(probe)], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    if outcome == "failed":
        assert run.returncode != 0 and "FASTDEIT_REQUIRE_EXTRAS=1 requires the extra fastdeit[dali]" in run.stdout
    else:
        assert run.returncode in (0, 5) and "1 skipped" in run.stdout  # 5: the only module was skipped


def test_the_ci_script_requires_the_extras():
    assert "export FASTDEIT_REQUIRE_EXTRAS=1" in (REPO / "scripts" / "test.sh").read_text()
