"""The machine's ceiling for the loader's scaling and contention figures (fastdeit.bench.machine_ceiling)."""

import numpy as np
import pytest

from fastdeit.bench.loader import thread_scaling
from fastdeit.bench.loader_contention import _ceiling_figures
from fastdeit.bench.machine_ceiling import DecodeProcesses
from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.plan import PlanConfig
from fastdeit.data.sample_images import photo_crops

CFG = PlanConfig(img_size=32, global_batch=64, mix_group=64, repeated_aug=1, epoch_multiple=1)


def _write_beton(path, n=64):
    with BetonWriter(path, "jpg", max_resolution=None, jpeg_quality=85) as w:
        for k, img in enumerate(photo_crops(n, (64, 48), seed=1)):
            w.add(img, k % 4)
    return path


@pytest.mark.slow
def test_decode_processes_time_the_loaders_batches_alone_in_pairs_and_beside_a_busy_main_thread(tmp_path):
    beton = _write_beton(tmp_path / "small.beton")
    with DecodeProcesses(beton, CFG, 2) as procs:
        one, two = procs.rate(128, 1), procs.rate(128, 2)
        rate, main = procs.rate_beside_work(128, 2000, busy=0.5)
    assert one > 0 and two > 0 and rate > 0 and main > 0


@pytest.mark.slow
def test_a_sample_that_does_not_decode_stops_the_ceiling_with_an_error_naming_file_and_sample(tmp_path):
    beton = _write_beton(tmp_path / "broken.beton")
    reader = BetonReader(beton)
    off, size = int(reader.offsets[5]), int(reader.sizes[5])
    reader.close()
    with open(beton, "r+b") as f:  # sample 5 no longer starts like a JPEG
        f.seek(off)
        f.write(b"\0" * size)
    # every batch holds all 64 samples: the warm-up batch already meets sample 5
    with pytest.raises(RuntimeError, match=r"broken\.beton.*sample 5") as err:
        DecodeProcesses(beton, CFG, 1)
    assert "does not decode" in str(err.value)


def test_ceiling_figures_compare_round_k_with_round_k():
    fig = _ceiling_figures(process_alone=[100.0, 50.0], process_both=[90.0, 50.0],
                           main_alone_rate=[10.0, 20.0], main_beside=[10.0, 16.0],
                           loader_ratio=[0.81, 0.95], main_ratio=[0.9, 0.8])
    assert fig["ceiling_process_rate_ratio_worst"] == 0.9
    assert fig["ceiling_main_speed_ratio_worst"] == 0.8
    # round 1: 0.81 / 0.9 = 0.9 and 0.95 / 1.0; the median of the two, not a ratio of medians
    assert fig["loader_rate_ratio_over_ceiling"] == round(float(np.median([0.9, 0.95])), 3)
    assert fig["main_speed_ratio_over_ceiling"] == round(float(np.median([0.9, 1.0])), 3)


def test_thread_scaling_sets_w_threads_against_w_processes_round_by_round():
    rows = [{"loader": "fastdeit CpuLoader (threads, region decode)", "max_res": 256, "workers": w,
             "img_per_s": ips, "rounds_img_per_s": rounds, "img_per_s_net_of_cpu_wait": None}
            for w, ips, rounds in ((1, 100.0, [100.0, 120.0]), (2, 180.0, [170.0, 228.0]))]
    (s,) = thread_scaling(rows, {256: [{1: 50.0, 2: 90.0}, {1: 60.0, 2: 120.0}]})
    assert s["img_per_s_over_1_thread"] == 1.8
    assert s["machine_ceiling_over_1_process"] == round(float(np.median([1.8, 2.0])), 2)
    assert s["machine_ceiling_worst_round"] == 1.8
    # rounds: 1.7 / 1.8 and 1.9 / 2.0
    assert s["img_per_s_over_1_thread_over_ceiling"] == round(float(np.median([1.7 / 1.8, 1.9 / 2.0])), 2)
    (plain,) = thread_scaling(rows)
    assert "machine_ceiling_over_1_process" not in plain


def test_thread_scaling_takes_each_thread_count_against_as_many_processes():
    rows = [{"loader": "fastdeit CpuLoader (threads, region decode)", "max_res": 512, "workers": w,
             "img_per_s": ips, "rounds_img_per_s": [ips], "img_per_s_net_of_cpu_wait": None}
            for w, ips in ((1, 100.0), (4, 380.0), (16, 1200.0))]
    four, sixteen = thread_scaling(rows, {512: [{1: 50.0, 4: 190.0, 16: 700.0}]})
    assert (four["threads"], four["machine_ceiling_over_1_process"]) == (4, 3.8)
    assert (sixteen["threads"], sixteen["machine_ceiling_over_1_process"]) == (16, 14.0)
    assert sixteen["img_per_s_over_1_thread_over_ceiling"] == round(12.0 / 14.0, 2)
