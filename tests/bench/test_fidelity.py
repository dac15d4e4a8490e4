"""`bench fidelity` (issue 17): the view-plan pipeline against deit's own, on real images.

The regression test replays the view plan's draws through deit's per-image code (torchvision crop +
resize, timm's PIL RandAugment ops, ToTensor + Normalize, timm's erasing and Mixup formulas) on a
few hundred views of scikit-learn's digits, and compares every stage: pixel values, histograms and
the targets' entropy. Each deliberately broken stage below must be caught, the two bugs it found
first among them (the crop resized with its surroundings, AutoContrast off by one level).
"""

import dataclasses
import json

import numpy as np
import pytest
import torch

import fastdeit.augment
import fastdeit.augment.pipeline
import fastdeit.data.cpu_decoder as cpu_decoder
from fastdeit.bench.fidelity import FidelitySettings, accuracy_table, report, welch
from fastdeit.bench.fidelity_data import build_digits, digits_split
from fastdeit.bench.fidelity_replay import replay
from fastdeit.bench.fidelity_stats import collect, compare
from fastdeit.config.load import build_config
from fastdeit.kernels.resize import resize_crop

STEPS = 3  # 3 global steps of the demo recipe: 192 views


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return build_digits(tmp_path_factory.mktemp("fidelity"))


@pytest.fixture(scope="module")
def recipe():
    config = build_config("demo", None, [])
    return config.data, config.augment


def test_digits_are_issue_17s_split_of_32px_rgb_jpegs(digits):
    from fastdeit.data.beton import BetonReader

    train, val = digits_split(1797)
    assert (len(train), len(val)) == (1528, 269) and not set(train) & set(val)
    assert np.array_equal(digits_split(1797)[0], train)  # fixed seed: the same split every time
    for path, n in ((digits.train, 1528), (digits.val, 269)):
        reader = BetonReader(path)
        assert len(reader) == n and reader.num_classes == 10
        assert set(reader.widths.tolist()) == {32} and set(reader.heights.tolist()) == {32}
        assert reader.decode(0).shape == (32, 32, 3)
    assert build_digits(digits.train.parent.parent).train == digits.train  # reused, not rebuilt


def _assert_same_as_deit(result):
    for stage in ("crop", "rand_augment"):
        assert result[stage]["differing_share"] == 0.0, stage  # uint8: bit for bit
    for stage in ("normalize", "erase", "mix", "targets"):
        assert result[stage]["max_abs_diff"] < 1e-5, stage
    for stage in ("crop", "rand_augment", "normalize", "erase", "mix"):
        assert result[stage]["hist_tv"] < 0.01, stage  # float stages: values on a bin edge may move
    assert result["targets"]["entropy"] == pytest.approx(result["targets"]["entropy_reference"], abs=1e-6)
    assert not any(op["differing_images"] for op in result["ops"].values())


def test_view_plan_computes_what_deit_computes_with_the_same_draws(digits, recipe):
    result = replay(*recipe, digits.train, seed=0, steps=STEPS)
    _assert_same_as_deit(result)
    assert sum(op["applied"] for op in result["ops"].values()) > 100  # RandAugment did run


def test_view_plan_computes_what_deit_computes_on_views_that_shrink(recipe, tmp_path, monkeypatch):
    """The demo set: 64 px images, 40 px views, so most crops are downscaled (the digits' 32 px
    images are always upscaled); Pillow 13 runs such resizes vertical pass first where the height
    shrinks much more than the width, and the CPU decoder must too."""
    from fastdeit.bench.fidelity_data import build_dataset

    monkeypatch.setenv("FASTDEIT_CACHE", str(tmp_path))
    demo = build_dataset("demo", tmp_path)
    result = replay(*recipe, demo.train, seed=0, steps=2)
    _assert_same_as_deit(result)


def _resize_box_in_place(img, origin, box, out, flip):
    # the decoder before issue 17: PIL resize(box=...) of the whole image (reads around the box)
    return resize_crop(img, box, out, flip)


def _erase_one_pixel_right(original):
    def erase(images, erase, boxes, seeds, mode="pixel", **kw):
        shifted = boxes.clone()
        shifted[:, 1] = torch.clamp(shifted[:, 1] + 1, max=images.shape[-1] - shifted[:, 3])
        return original(images, erase, shifted, seeds, mode, **kw)
    return erase


def _mix_smoothing_doubled(original):
    def mix(*args, smoothing=0.1, **kw):
        return original(*args, smoothing=2 * smoothing, **kw)
    return mix


BREAKS = {
    "crop: resize with the box's surroundings": ("crop", lambda mp: (
        mp.setattr(cpu_decoder, "REGION_DECODE_AVAILABLE", False),
        mp.setattr(cpu_decoder, "resize_box_alone", _resize_box_in_place))),
    "rand_augment: black fill instead of timm's img_mean": ("rand_augment", lambda mp: mp.setattr(
        fastdeit.augment.pipeline, "fill_from_mean", lambda mean: (0, 0, 0))),
    "erase: box one pixel off": ("erase", lambda mp: mp.setattr(
        fastdeit.augment, "random_erase", _erase_one_pixel_right(fastdeit.augment.random_erase))),
    "targets: label smoothing doubled": ("targets", lambda mp: mp.setattr(
        fastdeit.augment, "mix", _mix_smoothing_doubled(fastdeit.augment.mix))),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_replay_catches_a_broken_stage(digits, recipe, monkeypatch, name):
    stage, breaks = BREAKS[name]
    breaks(monkeypatch)
    result = replay(*recipe, digits.train, seed=0, steps=STEPS)
    with pytest.raises(AssertionError):
        _assert_same_as_deit(result)
    assert result[stage]["differing_share"] > 0, result[stage]  # caught at the stage that broke
    earlier = ("crop", "rand_augment", "normalize", "erase", "mix", "targets")
    for before in earlier[: earlier.index(stage)]:
        assert result[before]["max_abs_diff"] < 1e-5, before  # and not before it


def test_autocontrast_divides_as_pil(digits):
    from PIL import Image, ImageOps

    from fastdeit.augment.histogram import autocontrast

    # 78 * (255 / 234) is 84.99999999999999 in double: PIL keeps 84; reciprocal(234) * 255 gave 85
    a = np.zeros((8, 8, 3), np.uint8)
    a[1], a[2], a[3] = 78, 156, 234
    want = np.asarray(ImageOps.autocontrast(Image.fromarray(a)))
    got = autocontrast(torch.from_numpy(a).permute(2, 0, 1)[None].contiguous())[0].permute(1, 2, 0).numpy()
    assert np.array_equal(got, want) and sorted(np.unique(got)) == [0, 84, 169, 254]


def test_stage_statistics_side_by_side(digits, recipe):
    data, aug = recipe
    ref = collect("reference", data, aug, digits.train, seed=0, steps=STEPS)
    cpu = collect("cpu", data, aug, digits.train, seed=0, steps=STEPS)
    assert ref["images"] == cpu["images"] == STEPS * data.global_batch
    diff = compare(ref, cpu)
    for stage in ("crop", "rand_augment", "erase"):  # independent draws: sampling noise only
        assert diff["pixels"][stage]["hist_tv"] < 0.12, (stage, diff["pixels"][stage])
    assert abs(diff["crop"]["area"]) < 0.1 and abs(diff["rand_augment"]["applied_share"]) < 0.1
    assert ref["copies"] == cpu["copies"]  # the repeated-augmentation layout is deterministic
    assert 0.4 < cpu["rand_augment"]["applied_share"] < 0.6  # timm's p = 0.5 per layer
    # a view-plan recipe with erasing off is told apart from deit's
    no_erase = collect("cpu", data, dataclasses.replace(aug, reprob=0.0), digits.train, seed=0, steps=STEPS)
    assert no_erase["erase"]["share"] == 0.0 < ref["erase"]["share"]


def test_accuracy_table_and_welch():
    runs = [{"loader": l, "seed": s, "top1": v, "ema_top1": v} for l, vals in
            (("reference", (45.4, 45.0, 48.0)), ("cpu", (34.6, 43.1, 34.9))) for s, v in enumerate(vals)]
    table = accuracy_table(runs, ("reference", "cpu"))
    assert table["cpu"]["summary"]["mean"] == pytest.approx(37.533, abs=1e-3)
    test = table["cpu"]["welch_vs_reference"]
    assert test["t"] < 0 and 0.05 < test["p"] < 0.2  # issue 17's three seeds each: not decisive
    assert np.isnan(welch([1.0], [2.0, 3.0])["p"])


def test_bench_fidelity_tiny(tmp_path, monkeypatch, capsys):
    """What CI runs: `fastdeit bench fidelity --tiny`, K = 1, a few steps, every loader."""
    from fastdeit.cli import main

    try:
        import nvidia.dali  # noqa: F401
        loaders = "reference,cpu,dali"
    except ImportError:
        loaders = "reference,cpu"
    monkeypatch.setenv("FASTDEIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "fidelity.json"
    assert main(["bench", "fidelity", "--tiny", "--loaders", loaders, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    names = loaders.split(",")
    assert list(result["accuracy"]) == names and result["dataset"] == "digits"
    for name in names:
        row = result["accuracy"][name]
        assert 0.0 <= row["top1"]["0"] <= 100.0 and row["summary"]["n"] == 1
        assert result["stats"][name]["images"] == FidelitySettings.tiny().stats_steps * 64
    assert set(result["stats_diff"]) == set(names) - {"reference"}
    table = capsys.readouterr().out
    assert "| reference |" in table and "target entropy" in table and "crop area share" in table
    assert report(result) in table


def test_bench_fidelity_refuses_bad_arguments(tmp_path, monkeypatch):
    from fastdeit.bench.fidelity import check_settings

    with pytest.raises(ValueError, match="reference"):
        check_settings(FidelitySettings(loaders=("cpu",)))
    with pytest.raises(ValueError, match="'ffcv'"):
        check_settings(FidelitySettings(loaders=("reference", "ffcv")))
    from fastdeit.cli.bench import parse_seeds

    assert parse_seeds("3") == (0, 1, 2) and parse_seeds("1,3") == (1, 3)
    with pytest.raises(ValueError, match="--seeds"):
        parse_seeds("x")


def test_a_stopped_series_continues_where_it_stopped(tmp_path, monkeypatch):
    """A long series (`--out DIR`) run again reuses its finished runs and resumes the one that was
    cut short, instead of refusing the directory or training everything again."""
    from fastdeit.bench.fidelity import run

    monkeypatch.setenv("FASTDEIT_CACHE", str(tmp_path / "cache"))
    settings = dataclasses.replace(FidelitySettings.tiny(loaders=("reference", "cpu")), stats_steps=0,
                                   out=str(tmp_path / "runs"))
    first = run(settings)["runs"]
    log = tmp_path / "runs" / "runs.jsonl"
    lines = log.read_text().splitlines()
    assert [json.loads(x)["loader"] for x in lines] == ["reference", "cpu"]
    log.write_text(lines[0] + "\n" + '{"loader": "cpu", "se' + "\n")  # stopped while writing cpu's record
    reference_metrics = tmp_path / "runs" / "reference_s0" / "metrics.jsonl"
    before = reference_metrics.read_bytes()
    again = run(settings)["runs"]
    assert reference_metrics.read_bytes() == before  # reused, not trained again
    assert again[0] == first[0]
    assert again[1]["loader"] == "cpu" and again[1]["top1"] == pytest.approx(first[1]["top1"])
    other = run(dataclasses.replace(settings, loaders=("reference",), max_steps=2))["runs"]
    assert other[0]["settings"]["max_steps"] == 2  # another series' runs are not taken for these
