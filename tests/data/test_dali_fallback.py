"""DALI's fallback where region decode crashes (nvImageCodec 0.9.0, NVIDIA/nvImageCodec issue 55):
the isolated probe in a child process, and the whole-decode-then-crop graph, on the CPU twin.

The fallback graph must give the plan's crops as the region-decode graph and fastdeit's CPU
decoder do, within the bounds of tests/data/test_dali_pipeline.py (same resampler arithmetic; a
whole-image decode and a region decode of a baseline JPEG give the same pixels inside the box).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("nvidia.dali")

from fastdeit.data import dali_pipeline  # noqa: E402
from fastdeit.data.beton import BetonReader, BetonWriter  # noqa: E402
from fastdeit.data.cpu_decoder import CpuDecoder  # noqa: E402
from fastdeit.data.dali_pipeline import (DaliDecoder, DaliSettings, choose_region_decode,  # noqa: E402
                                         probe_region_decode)
from fastdeit.data.plan import PlanConfig, make_plan  # noqa: E402
from fastdeit.data.sample_images import photo_crops  # noqa: E402

from tests.data.test_dali_pipeline import assert_agrees  # noqa: E402

N = 32
SEGFAULT = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    path = tmp_path_factory.mktemp("dali_fallback") / "jpg.beton"
    with BetonWriter(path, "jpg", max_resolution=256, jpeg_quality=90) as w:
        for k, img in enumerate(photo_crops(N, (500, 375), seed=3)):
            w.add(img, k % 4)
    return BetonReader(path)


def decode_all(reader, settings: DaliSettings, plan) -> np.ndarray:
    with DaliDecoder(reader, plan.img_size, N, settings) as dec:
        return dec.decode(plan).numpy()


def test_whole_decode_then_crop_gives_the_region_decode_crops(reader):
    cfg = PlanConfig(img_size=96, global_batch=N, mix_group=16, epoch_multiple=16, repeated_aug=1)
    plan = make_plan(cfg, 0, 0, 0, reader.widths, reader.heights, list(range(cfg.n_groups)))
    whole = decode_all(reader, DaliSettings("cpu", 2, region_decode="off"), plan)
    region = decode_all(reader, DaliSettings("cpu", 2, region_decode="on"), plan)
    decoder = CpuDecoder(reader, threads=1)
    cpu = decoder.decode(plan)
    decoder.close()
    assert_agrees(whole, cpu)
    assert_agrees(whole, region)


def test_a_probe_child_killed_by_sigsegv_chooses_the_fallback_and_names_the_upstream_issue():
    result = probe_region_decode(0, [b"unused"], command=SEGFAULT)
    assert not result.ok and "SIGSEGV" in result.reason and "NVIDIA/nvImageCodec issue 55" in result.reason
    dali_pipeline._PROBED.clear()
    region, note = choose_region_decode(DaliSettings("mixed", 2), 0, None,
                                        probe=lambda dev, jpegs, load: probe_region_decode(dev, jpegs, load,
                                                                                           command=SEGFAULT))
    assert region is False
    assert "\n" not in note and "issue 55" in note and "decoding whole images on the GPU" in note
    dali_pipeline._PROBED.clear()


def test_a_probe_child_that_exits_cleanly_keeps_region_decode_and_errors_are_named():
    assert probe_region_decode(0, [b"x"], command=[sys.executable, "-c", "pass"]).ok
    failed = probe_region_decode(0, [b"x"], command=[sys.executable, "-c", "raise SystemExit('no nvjpeg here')"])
    assert not failed.ok and "exit 1" in failed.reason and "no nvjpeg here" in failed.reason


def test_only_auto_gpu_decode_probes():
    def never(*_):
        raise AssertionError("probed")

    assert choose_region_decode(DaliSettings("cpu", 2), None, probe=never) == (True, "")
    assert choose_region_decode(DaliSettings("mixed", 2, region_decode="off"), 0, probe=never) == (False, "")
    assert choose_region_decode(DaliSettings("mixed", 2, region_decode="on"), 0, probe=never) == (True, "")
    with pytest.raises(ValueError, match="region_decode 'maybe'"):
        DaliSettings("cpu", 2, region_decode="maybe")
