import json

import pytest
import torch

from fastdeit.bench.e2e import projected_hours
from fastdeit.bench.model import forward_gmacs
from fastdeit.cli import main


@pytest.mark.parametrize("name,paper", [("deit_tiny_patch16_224", 1.3), ("deit_small_patch16_224", 4.6),
                                        ("deit_base_patch16_224", 17.6)])
def test_flop_count_matches_the_papers_gmacs(name, paper):
    assert forward_gmacs(name) == pytest.approx(paper, rel=0.04)


def test_bench_model_tiny_reports_each_attention_backend(capsys):
    assert main(["bench", "model", "--tiny", "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["attention"]: r for r in result["rows"]}
    assert set(rows) == {"default", "math"}
    assert all(r["img_per_s"] > 0 and r["tflops_per_s"] > 0 for r in rows.values())
    assert rows["math"]["mfu"] is None  # no peak known for a CPU: MFU is not made up
    assert rows["default"]["ran"] == "flash" and rows["math"]["ran"] == "math"  # the kernel observed


def test_bench_e2e_tiny_measures_each_loader_with_ema_and_no_restart(tmp_path):
    out, png = tmp_path / "e2e.json", tmp_path / "plots" / "e2e.png"
    assert main(["bench", "e2e", "--tiny", "--device", "cpu", "--loader", "cpu,reference", "--steps", "4",
                 "--json", str(out), "--plot", str(png)]) == 0
    result = json.loads(out.read_text())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(png.parent.glob("*.tmp*"))
    rows = {r["label"]: r for r in result["rows"]}
    # deit's pipeline in both step settings beside fastdeit's CPU loader
    assert set(rows) == {"cpu", "reference (a: deit step)", "reference (b: fastdeit step)"}
    assert rows["reference (a: deit step)"]["precision"].startswith("fp32 (no fp16 AMP on a CPU)")
    assert rows["reference (a: deit step)"]["compiled"] is False
    for r in rows.values():
        assert r["img_per_s"] > 0 and r["steps"] == 4 and r["batch"] == 32 and r["ema"] is True
        assert r["pipeline_restarts"] == 0
        shares = r["data_wait_share"] + r["backpressure_share"] + r["handover_share"]
        assert 0 <= r["data_wait_share"] and 0 <= r["backpressure_share"] and shares <= 1
        p = r["projection_8gpu"]
        assert p["hours"] == pytest.approx(p["train_hours"] + p["eval_hours"]) and p["eval_hours"] > 0
        assert "evaluation passes" in p["includes"] and "EMA" in p["includes"]
    # fastdeit's trainer evaluates model and EMA every epoch, deit's main.py the model
    assert rows["cpu"]["projection_8gpu"]["eval_passes"] == 600
    assert rows["reference (a: deit step)"]["projection_8gpu"]["eval_passes"] == 300
    assert result["machine"]["cpu"] and result["machine"]["torch"]


def test_time_steps_counts_only_blocked_time_after_warmup_and_counts_restarts():
    """The loader's own clock classifies its waits; warmup is off the books; an epoch's end counts."""
    from fastdeit.bench.e2e import time_steps
    from fastdeit.data.stall_clock import StallClock

    clock = StallClock()

    def epoch():  # two batches per epoch; each "waits" 1 s for data and 0.5 s of backpressure
        for k in range(2):
            clock.data_s += 1.0
            clock.backpressure_s += 0.5
            yield k

    timing = time_steps(epoch, lambda batch: None, clock, torch.device("cpu"), steps=4, warmup=1)
    assert timing.steps == 4 and timing.data_s == 4.0 and timing.backpressure_s == 2.0
    assert timing.restarts == 2  # steps 2 and 4 of 5 began a new epoch: counted, never hidden


def test_the_generated_file_holds_warmup_plus_50_steps_in_one_epoch_for_both_batches():
    from fastdeit.bench.e2e import images_needed
    from fastdeit.data.plan import PlanConfig, steps_per_epoch
    from fastdeit.data.repeated_aug import RepeatedAugSampler

    n = images_needed((128, 256), steps=50, warmup=10)
    for batch in (128, 256):
        cfg = PlanConfig(img_size=224, global_batch=batch, mix_group=64, repeated_aug=3, epoch_multiple=256)
        assert steps_per_epoch(cfg, n) >= 60
        assert len(RepeatedAugSampler(n, 1, 0, repeats=3, seed=0)) // batch >= 60  # deit's loader


def test_a_file_too_small_for_the_timed_steps_is_refused_by_name(tmp_path, capsys):
    from fastdeit.bench.e2e import sample_beton

    small = sample_beton(tmp_path / "small.beton", 512, 96, unique=8)
    assert main(["bench", "e2e", "--tiny", "--device", "cpu", "--data", str(small), "--steps", "50"]) == 2
    err = capsys.readouterr().err
    assert str(small) in err and "without a pipeline restart" in err


@pytest.mark.parametrize("kind", ["prepare", "loader", "model", "e2e", "distill"])
def test_json_without_a_file_prints_only_json_on_stdout(kind, capsys):
    assert main(["bench", kind, "--tiny", "--device", "cpu", "--json"]) == 0
    captured = capsys.readouterr()
    assert isinstance(json.loads(captured.out), dict)  # the whole of stdout parses


def test_bench_loader_dali_without_a_gpu_runs_the_cpu_twin_with_a_note(capsys):
    pytest.importorskip("nvidia.dali")
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the real DALI benchmark would run")
    assert main(["bench", "loader", "--loader", "dali", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert {r["device"] for r in result["rows"]} == {"cpu"}
    assert any("DALI CPU twin" in r["loader"] for r in result["rows"])
    notes = [ln for ln in captured.err.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and "no CUDA GPU" in notes[0]


def test_same_gpu_figure_and_table(tmp_path):
    from fastdeit.bench.e2e_plot import markdown_table, plot_same_gpu

    def row(label, rate, batch=128):
        return {"label": label, "batch": batch, "img_per_s": rate, "data_wait_share": 0.1, "backpressure_share": 0.0,
                "cpu_cores_busy": 8.0, "precision": "bf16", "compiled": True, "projection_8gpu": {"hours": 5.0}}

    results = [{"preset": p, "device": "GPU X", "rows": [row("reference (a: deit step)", 1000.0 * k),
                                                         row("cpu", 3000.0 * k), row("cpu", 1.0, batch=256)]}
               for k, p in ((1, "deit_b_300ep"), (2, "deit_s_300ep"))]
    png = plot_same_gpu(results, tmp_path / "same.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = markdown_table(results)
    assert "| DeiT-S | cpu (bf16, compiled) | 6,000 | 3.00x | 10.0% | 0.0% | 8.0 | 5.0 |" in table
    assert table.index("DeiT-S") < table.index("DeiT-B")  # Ti, S, B order
    with pytest.raises(ValueError, match="batch 64"):
        plot_same_gpu(results, tmp_path / "none.png", batch=64)


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
