"""The same augmentation on a CUDA device as on the CPU (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augment_reference import to_batch
from fastdeit.augment import AugmentParams, DeviceAugment, ops
from fastdeit.augment.noise import normal_noise
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data import plan as P

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("name", ops.RAND_INCREASING_OPS)
def test_op_on_cuda_matches_cpu(name, photos):
    x = to_batch(photos[(224, 224)] * 4)
    m = torch.tensor([0.0, 3.0, -7.0, 9.0, 10.0, -10.0, 5.5, -2.0])
    cpu = ops.OPS[name](x, m)
    gpu = ops.OPS[name](x.cuda(), m.cuda()).cpu()
    diff = (cpu.to(torch.int16) - gpu.to(torch.int16)).abs()
    # float32 results truncated to uint8 may land on either side of an integer (FMA on the GPU)
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01, name


def test_pipeline_on_cuda_matches_cpu(photos):
    n = 128
    cfg = P.PlanConfig.from_configs(DataConfig(img_size=64, global_batch=n), AugmentConfig())
    p = AugmentParams.from_plan(P.make_plan(cfg, 0, 0, 0, np.full(4 * n, 90), np.full(4 * n, 80)))
    x = to_batch(photos[(64, 64)] * (n // 2))
    y = torch.arange(n) % 10
    aug = DeviceAugment(AugmentConfig(), 10, out_dtype=torch.float32)
    cpu_x, cpu_t = aug(x, y, p)
    gpu_x, gpu_t = aug(x.cuda(), y.cuda(), p)  # plan parameters stay on the CPU
    assert gpu_x.is_cuda and torch.allclose(gpu_t.cpu(), cpu_t, atol=1e-6)
    # +-1 grey level from the geometric ops (1 / (255 * 0.224) in normalised units); a later op of
    # the second layer (posterize, solarize, equalize) can turn one level into more, rarely
    diff = (gpu_x.cpu() - cpu_x).abs()
    assert (diff < 0.03).float().mean() > 0.999 and diff.mean() < 1e-3


def test_noise_is_the_same_on_cuda():
    seeds = torch.tensor([1, 2**40 + 3])
    assert torch.equal(normal_noise(seeds.cuda(), 3, 32, 32).cpu(), normal_noise(seeds, 3, 32, 32))  # float64 inside


def test_pipeline_never_synchronises_the_device(photos):
    """With the plan's parameters on the CPU, a step's augmentation only queues GPU work."""
    n = 128
    cfg = P.PlanConfig.from_configs(DataConfig(img_size=64, global_batch=n), AugmentConfig())
    p = AugmentParams.from_plan(P.make_plan(cfg, 0, 0, 0, np.full(4 * n, 90), np.full(4 * n, 80)))
    x = to_batch(photos[(64, 64)] * (n // 2)).cuda()
    y = (torch.arange(n) % 10).cuda()
    aug = DeviceAugment(AugmentConfig(), 10)
    aug(x, y, p)  # warm-up: allocators, kernels
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        aug(x, y, p)
    finally:
        torch.cuda.set_sync_debug_mode(0)
