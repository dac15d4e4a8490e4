"""The trainer runs the full recipe on the DALI CPU twin (data.loader=dali) across an epoch
boundary: the batches DALI prefetches into the next epoch are the ones the trainer asks for."""

from __future__ import annotations

import math

import pytest

from tests.extras import import_extra

import_extra("nvidia.dali", "dali")

from fastdeit.config.load import build_config  # noqa: E402
from fastdeit.data.beton import BetonWriter  # noqa: E402
from fastdeit.data.sample_images import photo_crops  # noqa: E402
from fastdeit.train.checkpoint import load_checkpoint  # noqa: E402
from fastdeit.train.loop import train  # noqa: E402
from fastdeit.train.metrics import read_metrics  # noqa: E402
from tests.train.conftest import TINY_MODEL  # noqa: E402

TINY = TINY_MODEL + ["data.workers=2", "data.loader=dali"]  # later keys override earlier ones


def test_full_recipe_trains_on_the_dali_cpu_twin(tmp_path):
    beton = tmp_path / "train.beton"
    with BetonWriter(beton, "jpg", max_resolution=64) as w:  # 256 images: one deit epoch, 4 steps
        for k, img in enumerate(photo_crops(256, (48, 40), seed=0)):
            w.add(img, k % 4)
    out = tmp_path / "run"
    overrides = TINY + [f'data.train="{beton}"', 'data.val=""', f'run.out="{out}"', "run.max_steps=6"]
    train(build_config("deit_ti_300ep", overrides=overrides))
    steps = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "step"]
    assert [r["step"] for r in steps][-1] == 6 and {r["epoch"] for r in steps} == {0, 1}
    assert all(math.isfinite(r["loss"]) for r in steps)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 6
