"""The embedded demo end to end through the real entry point, a few steps each way."""

import json

import pytest

from tests.extras import import_extra

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
        import_extra("nvidia.dali", "dali")
    out = tmp_path / "demo"
    args = ["train", "--preset", "demo", "--out", str(out), "--json", "--set", f"data.loader={loader}",
            "--set", "run.max_steps=3", "--set", "run.log_every=1", "--set", "run.progress=none"]
    assert main(args) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["samples"] == 500 and 0 <= final["top1"] <= 100  # the demo's validation split
    assert (demo_cache / "demo" / "train.beton").is_file()  # prepared once, beside the generated images
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if m["kind"] == "step"] == [1, 2, 3]


def test_distillation_demo_three_commands_in_order(demo_cache, tmp_path, monkeypatch, capsys):
    """demo_teacher -> teacher-cache -> demo_distilled, each refusing to start before its input exists."""
    import tomllib

    import fastdeit.distill.teacher

    monkeypatch.chdir(tmp_path)  # the presets' runs/... paths land here
    tiny = ["--set", "schedule.epochs=1", "--set", "schedule.warmup_epochs=0"]
    steps = ["--set", "run.max_steps=2", "--set", "run.progress=none"]
    student = ["train", "--preset", "demo_distilled", *tiny, *steps]

    assert main(student) == 2  # no teacher yet: say which command trains it
    assert "run `fastdeit train --preset demo_teacher` first" in capsys.readouterr().err
    assert main(["teacher-cache", "--preset", "demo_distilled", *tiny, "--no-progress"]) == 2
    assert "run `fastdeit train --preset demo_teacher` first" in capsys.readouterr().err
    assert not (tmp_path / "runs/demo_teacher").exists()  # refused before writing anything

    assert main(["train", "--preset", "demo_teacher", *tiny, *steps]) == 0
    assert (tmp_path / "runs/demo_teacher/best.pt").is_file()
    assert main(student) == 2  # no cache yet: the exact command that builds it, with these overrides
    assert ("build it first: fastdeit teacher-cache --preset demo_distilled --set schedule.epochs=1 "
            "--set schedule.warmup_epochs=0") in capsys.readouterr().err

    assert main(["teacher-cache", "--preset", "demo_distilled", *tiny, "--no-progress"]) == 0
    cache = tmp_path / "runs/demo_teacher/demo_distilled.cache"  # distill.cache of the preset
    assert f"wrote {cache.relative_to(tmp_path)}" in capsys.readouterr().out

    assert main(student + ["--set", "run.seed=1"]) == 2  # another run's views: refused, rebuild
    err = capsys.readouterr().err
    assert "does not match this run: seed differs" in err and "rebuild it with `fastdeit teacher-cache`" in err

    def no_online_teacher(*args, **kwargs):
        raise AssertionError("the student must read the cache, not run the teacher")

    monkeypatch.setattr(fastdeit.distill.teacher, "load_teacher", no_online_teacher)
    assert main(student + ["--json"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert {"top1", "top1_cls", "top1_dist"} <= final.keys() and final["samples"] == 500
    run = tomllib.loads((tmp_path / "runs/demo_distilled/config.toml").read_text())
    assert run["distill"]["cache"] == "runs/demo_teacher/demo_distilled.cache"
    assert run["distill"]["teacher"] == "test_resnet"
