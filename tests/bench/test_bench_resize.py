"""benchmarks/bench_resize.py runs end to end: the kernel, the resize alone and Pillow, per data set."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_resize.py"


def test_bench_resize_times_the_kernel_the_resize_and_pillow_on_each_set(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_resize", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    extra = bench.photo_beton(tmp_path / "extra.beton", 64, 96)
    out = tmp_path / "resize.json"
    result = bench.main(["--max-res", "64", "--images", "64", "--rounds", "2", "--data", str(extra),
                         "--json", str(out)])
    assert [s["data"] for s in result["sets"]] == ["photos_64.beton", "extra.beton"]
    for s in result["sets"]:
        assert s["images"] == 64
        assert [r["path"].split(" (")[0] for r in s["rows"]] == [
            "fastdeit chunk kernel", "fastdeit resize alone", "Pillow resize"]
        for r in s["rows"]:
            assert len(r["rounds"]) == 2 and r["us_per_image_worst_round"] == max(r["rounds"]) > 0
    assert out.exists()
