"""`fastdeit bench augment --tiny`: both paths and timm's peer, the interpreter rows labelled."""

from __future__ import annotations

import json

import pytest
import torch

from fastdeit.cli import main


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU run of the CLI (the GPU run is gpu_check.sh's)")
def test_tiny_bench_times_both_paths_and_labels_the_interpreter(tmp_path, capsys):
    out = tmp_path / "augment.json"
    assert main(["bench", "augment", "--tiny", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = {(r["batch"], r["path"]): r for r in result["rows"]}
    assert set(rows) == {(64, "per-op torch"), (64, "fused triton")}
    for row in rows.values():
        assert row["img_per_s"] > 0 and row["main_thread_cpu_ms_per_batch"] > 0
    assert "interpreter" in rows[(64, "fused triton")]["note"] and "note" not in rows[(64, "per-op torch")]
    assert result["timm_per_image_pil"]["img_per_s_per_core"] > 0
    assert "fused triton (interpreter)" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_full_size_bench_without_a_gpu_is_refused_in_one_line(capsys):
    assert main(["bench", "augment", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--tiny" in err and "Traceback" not in err
