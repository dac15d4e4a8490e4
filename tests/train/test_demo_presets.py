"""The embedded demo end to end through the real entry point, a few steps each way."""

import json

import pytest

from fastdeit.cli import main


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTDEIT_CACHE", str(root))
        yield root


@pytest.mark.parametrize("loader", ["cpu", "dali"])
def test_demo_preset_trains_and_evaluates(demo_cache, tmp_path, loader, capsys):
    if loader == "dali":
        pytest.importorskip("nvidia.dali")
    out = tmp_path / "demo"
    args = ["train", "--preset", "demo", "--out", str(out), "--json", "--set", f"data.loader={loader}",
            "--set", "run.max_steps=3", "--set", "run.log_every=1", "--set", "run.progress=none"]
    assert main(args) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["samples"] == 500 and 0 <= final["top1"] <= 100  # the demo's validation split
    assert (demo_cache / "demo" / "train.beton").is_file()  # prepared once, beside the generated images
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if m["kind"] == "step"] == [1, 2, 3]
