import json

import pytest

from fastdeit.bench.e2e import projected_hours
from fastdeit.bench.model import forward_gmacs
from fastdeit.cli import main


@pytest.mark.parametrize("name,paper", [("deit_tiny_patch16_224", 1.3), ("deit_small_patch16_224", 4.6),
                                        ("deit_base_patch16_224", 17.6)])
def test_flop_count_matches_the_papers_gmacs(name, paper):
    assert forward_gmacs(name) == pytest.approx(paper, rel=0.04)


def test_bench_model_tiny_reports_each_attention_backend(capsys):
    assert main(["bench", "model", "--tiny", "--device", "cpu", "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{"):])
    rows = {r["attention"]: r for r in result["rows"]}
    assert set(rows) == {"default", "math"}
    assert all(r["img_per_s"] > 0 and r["tflops_per_s"] > 0 for r in rows.values())
    assert rows["math"]["mfu"] is None  # no peak known for a CPU: MFU is not made up
    assert rows["default"]["ran"] == "flash" and rows["math"]["ran"] == "math"  # the kernel observed


def test_bench_e2e_tiny_measures_the_whole_path(tmp_path):
    out, png = tmp_path / "e2e.json", tmp_path / "plots" / "e2e.png"
    assert main(["bench", "e2e", "--tiny", "--device", "cpu", "--json", str(out), "--plot", str(png)]) == 0
    result = json.loads(out.read_text())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(png.parent.glob("*.tmp*"))
    assert result["img_per_s"] > 0 and 0 <= result["data_wait_share"] <= 1
    assert result["steps"] == 3 and result["batch"] == 32
    assert set(result["projection_8gpu_hours"]) == {"deit_s_300ep"}


def test_projection_arithmetic():
    # 1,281,024 samples/epoch x 300 epochs at 1000 img/s per GPU on 8 GPUs = 13.3 hours
    assert projected_hours(1000.0, 300) == pytest.approx(1281024 * 300 / 8000 / 3600)


def test_e2e_plot_refuses_nothing_and_other_benches(capsys):
    from fastdeit.bench.e2e_plot import plot_e2e

    with pytest.raises(ValueError, match="no e2e results"):
        plot_e2e([], "x.png")
    assert main(["bench", "model", "--tiny", "--plot", "x.png"]) == 2
    assert "--plot is for" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["loader", "e2e"])
def test_bench_with_a_missing_data_file_names_it(kind, tmp_path, capsys):
    missing = tmp_path / "nope.beton"
    assert main(["bench", kind, "--tiny", "--device", "cpu", "--data", str(missing)]) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err
