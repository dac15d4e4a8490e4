"""benchmarks/gpu_check.sh as far as a CPU can check it: valid bash, every `fastdeit bench` call it
makes parses with the real CLI, every script it runs exists, and every section records a status."""

import re
import subprocess
from pathlib import Path

from fastdeit.cli import build_parser

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.sh"


def commands(text: str) -> list[str]:
    """The script's command lines with backslash continuations joined."""
    return [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()
            and not line.strip().startswith("#")]


def test_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_every_bench_call_parses_and_every_script_exists():
    lines = commands(SCRIPT.read_text())
    bench = [ln for ln in lines if "-m fastdeit bench" in ln]
    assert {re.search(r"bench (\w+)", ln).group(1) for ln in bench} >= {"model", "e2e", "distill"}
    parser = build_parser()
    for line in bench:
        argv = line.split("-m fastdeit ", 1)[1].split(" 2>&1")[0].replace('"', "").split()
        argv = [a.replace("$preset", "deit_b_300ep").replace("$loader", "cpu") for a in argv]
        args = parser.parse_args(argv)
        assert args.kind and args.device == "cuda", line
    for script in re.findall(r"benchmarks/\w+\.py", SCRIPT.read_text()):
        assert (SCRIPT.parents[1] / script).is_file(), script


def test_every_timed_section_records_its_status():
    lines = commands(SCRIPT.read_text())
    timed = [i for i, ln in enumerate(lines) if ln.startswith("timeout ") and "plot_e2e" not in ln]
    assert timed
    for i in timed:
        assert any('>> "$STATUS"' in ln for ln in lines[i + 1:i + 3]), lines[i]


WHEELS = SCRIPT.parent / "dali_wheels.sh"


def fake_wheel(folder: Path, size: int) -> Path:
    import os
    import zipfile

    path = folder / "fakedali-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("fakedali/__init__.py", "VERSION = '1.0'\n")
        z.writestr("fakedali/blob.bin", os.urandom(size))  # incompressible: the wheel splits into parts
        z.writestr("fakedali-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakedali\nVersion: 1.0\n")
        z.writestr("fakedali-1.0.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("fakedali-1.0.dist-info/RECORD", "")
    return path


def test_dali_wheels_travel_in_parts_and_install_whole(tmp_path):
    """pack: numbered folders of at most PART_MIB; install: the parts joined, checked, installed."""
    import os
    import sys

    src = tmp_path / "wheels"
    src.mkdir()
    fake_wheel(src, 2_500_000)
    env = {**os.environ, "PART_MIB": "1", "PYTHON": sys.executable}
    subprocess.run(["bash", str(WHEELS), "pack", str(src), str(tmp_path / "parts")], check=True, env=env)
    folders = sorted((tmp_path / "parts").iterdir())
    assert len(folders) == 3 and all(sum(f.stat().st_size for f in d.glob("*.part-*")) <= 2**20 for d in folders)
    subprocess.run(["bash", str(WHEELS), "install", str(tmp_path / "parts"), str(tmp_path / "site")], check=True,
                   env=env)
    assert (tmp_path / "site" / "fakedali" / "blob.bin").stat().st_size == 2_500_000
    # a part that did not travel: refused by name, nothing installed
    next(folders[1].glob("*.part-*")).unlink()
    done = subprocess.run(["bash", str(WHEELS), "install", str(tmp_path / "parts"), str(tmp_path / "site2")],
                          env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "incomplete" in done.stderr and not (tmp_path / "site2").exists()
