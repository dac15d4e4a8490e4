"""The DALI CPU twin decodes the plan's crops as fastdeit's CPU decoder does, within rounding.

Tolerance, and why: both decode the same JPEG with libjpeg-turbo (fancy chroma upsampling) at
full resolution and resize with a bicubic a = -0.5 filter widened for antialiasing, over the
same integer crop box. They differ only in arithmetic: Pillow's resampler (which the CPU
decoder reproduces bit for bit) works in 22-bit fixed point and clips to uint8 after the
horizontal pass, DALI's in float without the intermediate clip; the two disagree by one grey
level here and there and by more only where the intermediate clip cuts bicubic overshoot at
hard edges. Measured on real photographs (500x375 crops stored at max side 256, outputs 64..224):
mean |d| 0.15-0.18, 99th percentile 1, worst sample mean 0.32. Bounds: mean < 0.5, 99th
percentile <= 2, every sample's mean < 1. Raw samples (no JPEG decode) isolate the resampler and
meet the same bounds.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.extras import import_extra

import_extra("nvidia.dali", "dali")

from fastdeit.data.beton import BetonReader, BetonWriter  # noqa: E402
from fastdeit.data.cpu_decoder import CpuDecoder  # noqa: E402
from fastdeit.data.dali_pipeline import DaliDecoder, DaliSettings, storage_kind  # noqa: E402
from fastdeit.data.plan import PlanConfig, make_plan  # noqa: E402
from fastdeit.data.sample_images import photo_crops  # noqa: E402

N = 64


def write(path, mode: str, photos: list[np.ndarray]) -> BetonReader:
    with BetonWriter(path, mode, max_resolution=256, jpeg_quality=90, seed=1) as w:
        for k, img in enumerate(photos):
            w.add(img, k % 5)
    return BetonReader(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same 64 real photo crops (ImageNet's typical 500x375) stored three ways."""
    root = tmp_path_factory.mktemp("dali_pipe")
    photos = photo_crops(N, (500, 375), seed=0)
    return {mode: write(root / f"{mode}.beton", mode, photos) for mode in ("jpg", "raw", "proportion")}


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(d.mean()), float(np.percentile(d, 99)), float(d.reshape(len(d), -1).mean(1).max())


def assert_agrees(twin: np.ndarray, cpu: np.ndarray) -> None:
    assert twin.shape == cpu.shape and twin.dtype == cpu.dtype == np.uint8
    mean, p99, worst = agreement(twin, cpu)
    assert mean < 0.5 and p99 <= 2 and worst < 1.0, (mean, p99, worst)


@pytest.mark.parametrize("size", [64, 112])
def test_cpu_twin_matches_the_cpu_decoder_on_the_same_plan(files, size):
    r = files["jpg"]
    cfg = PlanConfig(img_size=size, global_batch=N, mix_group=16, epoch_multiple=16, repeated_aug=1)
    plan = make_plan(cfg, 0, 1, 0, r.widths, r.heights)
    with DaliDecoder(r, size, N, DaliSettings("cpu", threads=2)) as dali:
        twin = dali.decode(plan)
    assert twin.device.type == "cpu" and tuple(twin.shape) == (N, size, size, 3)
    with CpuDecoder(r, threads=2, dct_scaling=False) as cpu:
        ref = cpu.decode(plan)
    assert_agrees(twin.numpy(), ref)
    # the flip really is the plan's: mirroring a flipped row makes it far from the reference
    row = int(np.flatnonzero(plan.flip)[0])
    assert agreement(twin.numpy()[row:row + 1, :, ::-1], ref[row:row + 1])[0] > 5


@pytest.mark.parametrize("mode", ["raw", "proportion"])
def test_raw_and_mixed_files_go_through_the_same_pipeline(files, mode):
    r = files[mode]
    kind = storage_kind(r.is_jpeg)
    assert kind == ("raw" if mode == "raw" else "mixed")
    cfg = PlanConfig(img_size=64, global_batch=N, mix_group=16, epoch_multiple=16, repeated_aug=1)
    plan = make_plan(cfg, 0, 0, 0, r.widths, r.heights)
    with DaliDecoder(r, 64, N, DaliSettings("cpu", threads=2)) as dali:
        assert dali.kind == kind
        twin = dali.decode(plan).numpy()
    with CpuDecoder(r, threads=1, dct_scaling=False) as cpu:
        ref = cpu.decode(plan)
    assert_agrees(twin, ref)


def test_batches_come_back_in_submission_order_and_smaller_batches_work(files):
    r = files["jpg"]
    cfg = PlanConfig(img_size=32, global_batch=N, mix_group=16, epoch_multiple=16, repeated_aug=1)
    plans = [make_plan(cfg, 0, e, 0, r.widths, r.heights) for e in range(3)]
    small = make_plan(cfg, 0, 0, 0, r.widths, r.heights, groups=np.array([2]))
    with DaliDecoder(r, 32, N, DaliSettings("cpu", threads=2)) as dali:
        alone = [dali.decode(p) for p in plans]
        for k, p in enumerate(plans):
            dali.submit(p, tag=k)
        got = [dali.result() for _ in plans]
        part = dali.decode(small)
    assert [tag for tag, _, _ in got] == [0, 1, 2]
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, (_, _, b) in zip(alone, got))
    # one group of 16 = rows 32..47 of the full batch: a sample's pixels do not depend on its batch
    assert np.array_equal(part.numpy(), alone[0].numpy()[32:48])


def test_bad_settings_and_batches_are_refused(files):
    with pytest.raises(ValueError, match="hw_decoder_load"):
        DaliSettings("mixed", hw_decoder_load=1.5)
    with pytest.raises(ValueError, match="decode device 'gpu'"):
        DaliSettings("gpu")
    with pytest.raises(ValueError, match="threads"):
        DaliSettings("cpu", threads=0)
    r = files["jpg"]
    cfg = PlanConfig(img_size=32, global_batch=N, mix_group=16, epoch_multiple=16, repeated_aug=1)
    plan = make_plan(cfg, 0, 0, 0, r.widths, r.heights)
    with DaliDecoder(r, 32, 16, DaliSettings("cpu", threads=1)) as dali:
        with pytest.raises(ValueError, match="1..16"):
            dali.submit(plan)
        with pytest.raises(ValueError, match="no batch in flight"):
            dali.result()
