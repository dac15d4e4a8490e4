"""The presets ship inside the wheel (issue 16, point 5): build it offline, install it with --no-deps
into a fresh folder, and use the presets from there, away from the source tree."""

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "fastdeit", "kernels", "configs"]


def copy_sources(dest: Path) -> None:
    """The files a clone has (no build outputs, no .so, no symlinked fastdeit/kernels)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info", "kernels")
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore if name == "fastdeit" else
                            shutil.ignore_patterns("__pycache__", "*.so"))
        else:
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    src, wheels, target = base / "src", base / "wheels", base / "target"
    src.mkdir()
    copy_sources(src)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            str(src), "-w", str(wheels)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("fastdeit-*.whl")
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr
    return target


def run_installed(target: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_wheel_carries_every_preset(installed):
    shipped = sorted(p.name for p in (installed / "fastdeit" / "configs").glob("*.toml"))
    assert shipped == sorted(p.name for p in (REPO / "configs").glob("*.toml"))
    assert (installed / "fastdeit" / "kernels").is_dir()  # kernels/ still installed as fastdeit.kernels


def test_presets_list_and_show_work_from_the_installed_package(installed, tmp_path):
    where = run_installed(installed, "-c", "import fastdeit.config.presets as p; print(p.presets_dir())",
                          cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()) == installed / "fastdeit" / "configs"
    listed = run_installed(installed, "-m", "fastdeit", "presets", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines()}
    assert {"demo", "deit_b_300ep", "deit_s_distilled_300ep"} <= names
    shown = run_installed(installed, "-m", "fastdeit", "presets", "show", "deit_s_300ep", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["model"]["name"] == "deit_small_patch16_224"  # extends resolved


def test_requires_python_allows_only_versions_with_tomllib():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["requires-python"].startswith(">=3.11")
