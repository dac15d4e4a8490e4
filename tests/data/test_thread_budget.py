"""The thread budget: loader threads, torch's and numba's together never exceed the cores."""

import pytest
import torch

from fastdeit.data.thread_budget import ThreadBudget, cores_per_process, thread_budget


@pytest.mark.parametrize("cores", [2, 3, 4, 8, 16, 64])
@pytest.mark.parametrize("workers", [0, 1, 2, 8, 16, 100])
@pytest.mark.parametrize("loader", ["cpu", "dali", "reference"])
def test_loader_and_compute_threads_fit_the_cores(cores, workers, loader):
    b = thread_budget(cores, workers, loader)
    assert b.torch >= 1 and b.numba == b.torch  # numba's kernels run on the main thread, as torch's ops
    if loader == "reference":
        assert b.loader == workers  # DataLoader processes, as deit's --num_workers
        assert b.torch + min(workers, cores - 1) <= cores
    else:
        assert 1 <= b.loader <= max(workers, 1)  # never more than asked
        assert b.loader + b.torch <= cores


def test_examples():
    assert thread_budget(2, 2, "cpu") == ThreadBudget(loader=1, torch=1, numba=1)  # the demo
    assert thread_budget(16, 8, "cpu") == ThreadBudget(loader=8, torch=8, numba=8)
    assert thread_budget(16, 16, "cpu") == ThreadBudget(loader=15, torch=1, numba=1)
    assert thread_budget(1, 4, "cpu") == ThreadBudget(loader=1, torch=1, numba=1)  # the minimum
    assert thread_budget(8, 0, "reference") == ThreadBudget(loader=0, torch=8, numba=8)


def test_ranks_of_one_node_share_its_cores():
    assert cores_per_process(16, local_processes=8, all_cpus=16) == 2  # torchrun, 8 ranks
    assert cores_per_process(2, local_processes=2, all_cpus=2) == 1
    assert cores_per_process(4, local_processes=8, all_cpus=64) == 4  # already pinned by srun
    assert cores_per_process(16, local_processes=1, all_cpus=16) == 16


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="data.workers"):
        thread_budget(4, -1)
    with pytest.raises(ValueError, match="data.loader"):
        thread_budget(4, 2, "ffcv")
    with pytest.raises(ValueError, match="cores"):
        thread_budget(0, 2)


def test_after_building_a_trainers_loader_its_threads_fit_the_cores(tmp_path):
    import numba

    from fastdeit.config.schema import AugmentConfig, DataConfig
    from fastdeit.data.beton import BetonWriter
    from fastdeit.data.sample_images import photo_crops
    from fastdeit.train.data_source import build_train_data

    path = tmp_path / "t.beton"
    with BetonWriter(path, "jpg", max_resolution=None, jpeg_quality=85) as w:
        for k, img in enumerate(photo_crops(256, (48, 48), seed=0)):
            w.add(img, k % 2)
    before = torch.get_num_threads()
    try:
        data = DataConfig(train=str(path), loader="cpu", global_batch=64, workers=8, img_size=32)
        td = build_train_data(data, AugmentConfig(), str(path), rank=0, world_size=1, seed=0,
                              device=torch.device("cpu"))
        cores = cores_per_process()
        decode = td.loader.decoder.threads
        assert decode >= 1 and torch.get_num_threads() >= 1
        if cores >= 2:
            assert torch.get_num_threads() + decode <= cores
        assert numba.get_num_threads() <= torch.get_num_threads()
        td.loader.close()
    finally:
        torch.set_num_threads(before)
