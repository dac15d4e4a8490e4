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
