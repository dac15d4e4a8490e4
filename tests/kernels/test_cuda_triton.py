"""The fused Triton path on a real GPU (pytest -m gpu; benchmarks/gpu_check.sh runs these): it agrees
with the per-op torch path on CUDA, launches at most 8 kernels per batch (counted by the torch
profiler) and never synchronises with the host."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fastdeit.augment import AugmentParams, DeviceAugment
from fastdeit.augment.rand_augment import rand_augment as torch_rand_augment
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data import plan as P
from fastdeit.data.sample_images import photo_crops

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
BATCH, SIDE, CLASSES = 128, 64, 1000  # small crops: the check is agreement, not speed
GEOMETRIC = torch.tensor([3, 11, 12, 13, 14])


@pytest.fixture(scope="module")
def batch():
    crops = photo_crops(BATCH, (SIDE, SIDE), seed=1)
    images = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).cuda()  # NHWC memory, as the loader's
    cfg = P.PlanConfig.from_configs(DataConfig(img_size=SIDE, global_batch=BATCH), AugmentConfig())
    sizes = np.full(4096, 500), np.full(4096, 375)
    params = AugmentParams.from_plan(P.make_plan(cfg, 0, 0, 0, *sizes))
    return images, torch.arange(BATCH) % CLASSES, params


def _augment(kernels: str, images, labels, params):
    return DeviceAugment(AugmentConfig(kernels=kernels), CLASSES)(images, labels, params)


def test_rand_augment_agrees_with_the_torch_path_on_cuda(batch):
    from fastdeit.kernels import rand_augment

    images, _, p = batch
    out = rand_augment(images, p.ra_op, p.ra_magnitude, p.ra_apply)
    want = torch_rand_augment(images, p.ra_op, p.ra_magnitude, p.ra_apply)
    warped = (torch.isin(p.ra_op, GEOMETRIC) & p.ra_apply).any(1).cuda()
    assert torch.equal(out[~warped], want[~warped])  # LUT ops and blends: bit for bit
    close = ((out[warped].int() - want[warped].int()).abs() <= 1).float().mean().item()
    assert close >= 0.999


def test_whole_recipe_agrees_with_the_torch_path_on_cuda(batch):
    images, labels, params = batch
    x_ref, y_ref = _augment("torch", images, labels, params)
    x, y = _augment("triton", images, labels, params)
    assert x.dtype == torch.bfloat16 and x.is_contiguous(memory_format=torch.channels_last)
    assert (x == x_ref).float().mean().item() >= 0.999  # geometric ops: +-1 grey level on a few pixels
    assert torch.equal(y, y_ref)
    # without RandAugment (no resampling) the images are equal bit for bit
    no_ra = dataclasses.replace(params, ra_apply=torch.zeros_like(params.ra_apply))
    assert torch.equal(_augment("triton", images, labels, no_ra)[0], _augment("torch", images, labels, no_ra)[0])


def test_auto_is_the_fused_path_on_cuda_with_at_most_8_launches_and_no_sync(batch):
    images, labels, params = batch
    _augment("auto", images, labels, params)  # compile the kernels first
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any host synchronisation inside raises
    try:
        _augment("auto", images, labels, params)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        _augment("auto", images, labels, params)
        torch.cuda.synchronize()
    names = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
             and "memcpy" not in e.name.lower() and "memset" not in e.name.lower()]
    assert 0 < len(names) <= 8, names
    assert sum("_ra_kernel" in n for n in names) == 2 and sum("_finish_kernel" in n for n in names) == 1
