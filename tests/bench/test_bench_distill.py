"""`bench distill`: the three training-step modes side by side, and the cache's size on ImageNet."""

from fastdeit.bench.distill import IMAGENET_EPOCH, format_table, run


def test_distill_benchmark_reports_every_mode_and_cache_sizes(tmp_path):
    result = run(batch=32, num_classes=4, k=4, steps=1, warmup=1, rounds=1, device="cpu", work_dir=str(tmp_path),
                 print_table=False)
    assert [r["mode"] for r in result["runs"]] == ["none", "online", "cache"]
    assert all(r["img_per_s"] > 0 for r in result["runs"]) and result["runs"][0]["vs_none"] == 1.0
    sizes = {c["k"]: c for c in result["cache_sizes"]}
    assert sizes[1]["bytes_per_sample"] == 4  # one fp16 value + one int16 index
    assert sizes[10]["gib"] == round(40 * IMAGENET_EPOCH * 300 / 2**30, 2)
    assert "cache" in format_table(result) and list(tmp_path.iterdir()) == []  # temp cache removed
