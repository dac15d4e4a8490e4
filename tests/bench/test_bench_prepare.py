"""The prepare benchmark runs end to end and reports what the table shows (no timing asserted)."""

from __future__ import annotations

from fastdeit.bench.prepare import format_table, run


def test_run_returns_results_and_prints_table(tmp_path, capsys):
    result = run(n_images=6, workers=[1], max_res=128, include_ffcv=False, work_dir=tmp_path)
    (row,) = result["runs"]
    assert row["tool"] == "fastdeit" and row["images"] == 6 and row["workers"] == 1
    assert row["images_per_s"] > 0 and row["data_bytes_per_image"] > 0
    assert max(row["mean_width"], row["mean_height"]) <= 128
    assert result["machine"]["logical_cpus"] >= 1
    out = capsys.readouterr().out
    assert "fastdeit img/s" in out and format_table(result) in out
    assert list(tmp_path.iterdir()) == []  # the work directory is cleaned up
