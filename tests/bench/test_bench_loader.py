"""The CPU loader bench's A/B rows: region decoding beside whole-image decoding."""

import pytest

from fastdeit.bench.loader import main
from fastdeit.data.cpu_decoder import REGION_DECODE_AVAILABLE


@pytest.mark.slow
@pytest.mark.skipif(not REGION_DECODE_AVAILABLE, reason="_jpeg_region not built")
def test_decode_ab_times_fastdeit_with_region_and_whole_image_decoding():
    result = main(["--images", "64", "--max-res", "64", "--workers", "1", "--rounds", "1",
                   "--no-reference", "--decode-ab", "--no-ceiling", "--json", ""])
    rows = {r["loader"]: r for r in result["rows"]}
    assert not any(k.startswith("ceiling") for k in result["contention"][0])
    assert result["region_decode"] is True
    for name in ("fastdeit CpuLoader (threads, region decode)", "fastdeit CpuLoader full decode (threads)"):
        assert rows[name]["img_per_s"] > 0
    assert result["ratios"][0]["rate_vs_ffcv"] is None or result["ratios"][0]["rate_vs_ffcv"] > 0


@pytest.mark.slow
@pytest.mark.skipif(not REGION_DECODE_AVAILABLE, reason="_jpeg_region not built")
def test_loader_bench_reports_main_thread_contention_and_thread_scaling():
    result = main(["--images", "128", "--max-res", "64", "--workers", "1", "2", "--rounds", "1",
                   "--no-reference", "--json", ""])
    (c,) = result["contention"]
    assert c["threads"] == 1 and c["work_iterations_per_batch"] > 0
    for key in ("loader_rate_ratio", "loader_rate_ratio_worst", "main_speed_ratio", "main_speed_ratio_worst"):
        assert 0 < c[key] < 10, (key, c)
        net = c[key + "_net_of_cpu_wait"] if "worst" not in key else c[key.replace("_worst", "_worst_net_of_cpu_wait")]
        assert net is None or 0 < net < 10, (key, c)
    assert c["loader_rate_ratio_worst"] <= c["loader_rate_ratio"]
    # the machine's ceiling, timed in the same rounds: a decode process instead of the thread
    for key in ("ceiling_process_rate_ratio", "ceiling_main_speed_ratio", "loader_rate_ratio_over_ceiling",
                "main_speed_ratio_over_ceiling"):
        assert 0 < c[key] < 10, (key, c)
    assert len(c["ceiling_process_img_per_s_alone"]) == 1 and c["ceiling_process_img_per_s_alone"][0] > 0
    (s,) = result["thread_scaling"]
    assert s["threads"] == 2 and s["img_per_s_over_1_thread"] > 0
    assert len(s["ceiling_rounds"]) == 1 and s["machine_ceiling_over_1_process"] > 0
    rows = {(r["loader"].split(" (")[0], r["workers"]): r for r in result["rows"]}
    one, two = rows[("fastdeit CpuLoader", 1)], rows[("fastdeit CpuLoader", 2)]
    # one round: its ratio is the worst round's
    assert s["img_per_s_over_1_thread_worst_round"] == round(two["rounds_img_per_s"][0] / one["rounds_img_per_s"][0], 2)
    assert s["img_per_s_over_1_thread_net_of_cpu_wait"] is None or s["img_per_s_over_1_thread_net_of_cpu_wait"] > 0
    mine = [r for r in result["rows"] if r["loader"].startswith("fastdeit")]
    assert all(r["img_per_s_net_of_cpu_wait"] >= r["img_per_s"] * 0.99 for r in mine)


def test_worst_round_compares_round_k_with_round_k():
    from fastdeit.bench.loader import worst_round

    mine, other = {"r": [30.0, 20.0, 40.0]}, {"r": [10.0, 20.0, 10.0]}
    assert worst_round(mine, other, "r") == 1.0  # not min(mine) / max(other) = 0.5
    assert worst_round(mine, {"r": None}, "r") is None


def test_more_workers_than_cpus_is_refused_with_the_cpu_count(capsys):
    import os

    with pytest.raises(SystemExit) as exit_:
        main(["--workers", "1", str((os.cpu_count() or 1) + 1), "--json", ""])
    assert exit_.value.code == 2
    assert f"this machine's {os.cpu_count()} CPUs" in capsys.readouterr().err
