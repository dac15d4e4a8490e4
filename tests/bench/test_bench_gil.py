"""benchmarks/bench_gil.py runs end to end: both switch-interval settings timed, one row each per round."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gil.py"


def test_bench_gil_times_both_switch_intervals(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_gil", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "gil.json"
    result = bench.main(["--threads", "1", "--max-res", "64", "--seconds", "0.3", "--rounds", "1",
                         "--work-ms", "1", "--json", str(out)])
    assert [r["switch_interval_ms"] for r in result["rows"]] == [None, 0.5]
    assert all(r["img_per_s"] > 0 and r["main_thread_ops_per_s"] > 0 for r in result["rows"])
    assert out.exists()
