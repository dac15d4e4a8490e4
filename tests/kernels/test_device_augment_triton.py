"""DeviceAugment's fused Triton path against its per-op torch path, on real photographs and the
view plan's own draws: normalisation, erasing noise, mixup/cutmix, the cast to bfloat16
channels_last and the soft targets, and the launch count per batch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fastdeit.augment import AugmentParams, DeviceAugment
from fastdeit.augment.noise import normal_noise
from fastdeit.augment.normalize import normalize
from fastdeit.augment.ops import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data import plan as P

CLASSES = 10
GROUP = 4  # mixing groups of 4 so that 8 images hold 2 groups (deit: 64)


def plan_params(n: int, side: int, cfg: AugmentConfig, step: int = 0) -> AugmentParams:
    """The view plan's draws for one step of n samples (groups of cfg.mix_group)."""
    pcfg = P.PlanConfig.from_configs(DataConfig(img_size=side, global_batch=n), cfg)
    sizes = np.full(1024, 500), np.full(1024, 375)  # an epoch of at least 256 images (deit RASampler)
    return AugmentParams.from_plan(P.make_plan(pcfg, 0, 0, step, *sizes))


def forced(params: AugmentParams, **changes: torch.Tensor) -> AugmentParams:
    return dataclasses.replace(params, **changes)


def both_paths(cfg: AugmentConfig, images: torch.Tensor, labels: torch.Tensor, params: AugmentParams,
               device: torch.device, out_dtype: torch.dtype = torch.float32):
    from fastdeit.kernels import count_launches

    ref = DeviceAugment(dataclasses.replace(cfg, kernels="torch"), CLASSES, out_dtype=out_dtype)(images, labels, params)
    with count_launches() as launches:
        fused = DeviceAugment(dataclasses.replace(cfg, kernels="triton"), CLASSES, out_dtype=out_dtype)(
            images.to(device), labels, params)
    return ref, tuple(t.cpu() for t in fused), launches


@pytest.fixture(scope="module")
def labels() -> torch.Tensor:
    return torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])


def test_whole_recipe_equals_the_torch_path_in_bf16_in_six_launches(small_photos, labels, device):
    """deit's recipe with the plan's draws (RandAugment m9 x 2, erasing, mixup or cutmix per
    group): the images bit for bit, bfloat16 channels_last; the targets equal."""
    cfg = AugmentConfig(mix_group=GROUP)
    params = plan_params(8, 32, cfg)
    # make sure no op is geometric (+-1 there is the RandAugment test's business): swap them for Invert
    geometric = torch.tensor([3, 11, 12, 13, 14])
    params = forced(params, ra_op=torch.where(torch.isin(params.ra_op, geometric), 2, params.ra_op),
                    erase=torch.tensor([True, False] * 4) | params.erase, mix_mode=torch.tensor([1, 2]),
                    erase_box=torch.where(params.erase.view(-1, 1), params.erase_box, torch.tensor([4, 6, 10, 12])))
    images = small_photos[:, :, :, :32]
    (x_ref, y_ref), (x, y), launches = both_paths(cfg, images, labels, params, device, torch.bfloat16)
    assert x.dtype == torch.bfloat16 and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, x_ref)
    assert torch.equal(y, y_ref)
    assert dict(launches) == {"_stats_kernel": 2, "_ra_kernel": 2, "_finish_kernel": 1, "_targets_kernel": 1}


@pytest.mark.parametrize("mode", ["pixel", "rand", "const"])
def test_erasing_noise_is_the_plans_noise(small_photos, labels, device, mode):
    """Erasing alone (no RandAugment, no mixing), in float32: the box holds exactly the noise of
    the sample's seed (fastdeit.augment.noise), the rest is the normalised image."""
    cfg = AugmentConfig(auto_augment="none", color_jitter=0.0, mixup=0.0, cutmix=0.0, remode=mode, mix_group=GROUP)
    params = forced(plan_params(8, 32, cfg), erase=torch.tensor([True] * 6 + [False] * 2),
                    erase_box=torch.tensor([[2, 3, 10, 20], [0, 0, 32, 40], [31, 39, 1, 1], [5, 0, 7, 40]] * 2))
    (x_ref, _), (x, _), launches = both_paths(cfg, small_photos, labels, params, device)
    assert torch.equal(x, x_ref)
    assert dict(launches) == {"_finish_kernel": 1, "_targets_kernel": 1}
    top, left, h, w = params.erase_box[0].tolist()
    noise = normal_noise(params.erase_seed[:1], 3, h, w)[0]
    if mode == "rand":
        noise = noise[:, :1, :1].expand(3, h, w)
    elif mode == "const":
        noise = torch.zeros_like(noise)
    assert torch.equal(x[0, :, top:top + h, left:left + w], noise)
    plain = normalize(small_photos[6:], IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    assert torch.equal(x[6:], plain)


def test_normalisation_equals_torch_for_every_byte(device):
    """All 256 values of each channel: the kernel's float64 multiply-add rounds as torch's fused
    addcmul does."""
    cfg = AugmentConfig(auto_augment="none", color_jitter=0.0, reprob=0.0, mixup=0.0, cutmix=0.0, mix_group=2)
    images = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(2, 3, 16, 16).contiguous()
    params = plan_params(2, 16, cfg)
    (x_ref, _), (x, _), _ = both_paths(cfg, images, torch.tensor([0, 1]), params, device)
    assert torch.equal(x, x_ref)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_mixup_and_cutmix_pair_each_sample_with_its_partner(small_photos, labels, device, mode):
    """Group g's sample j is mixed with sample G-1-j (timm's flip), lam from the plan; targets are
    timm's mixup_target on smoothed one-hots."""
    cfg = AugmentConfig(auto_augment="none", color_jitter=0.0, reprob=0.0, mix_group=GROUP)
    params = forced(plan_params(8, 32, cfg), mix_mode=torch.tensor([mode, mode]),
                    mix_lam=torch.tensor([0.3, 0.8], dtype=torch.float64),
                    mix_box=torch.tensor([[0, 10, 5, 20], [4, 32, 0, 40]]))
    (x_ref, y_ref), (x, y), _ = both_paths(cfg, small_photos, labels, params, device)
    assert torch.equal(x, x_ref)
    assert torch.equal(y, y_ref)
    assert torch.allclose(y.sum(1), torch.ones(8))
    if mode == 0:
        assert torch.equal(y.argmax(1), labels)
    else:
        assert y[0, labels[3]] > 0.1 and y[4, labels[7]] > 0.1  # the partner's label is in the target


def test_auto_picks_triton_on_cuda_and_torch_elsewhere():
    aug = DeviceAugment(AugmentConfig(), CLASSES)
    assert aug.uses_triton(torch.device("cuda")) and not aug.uses_triton(torch.device("cpu"))
    assert not DeviceAugment(AugmentConfig(kernels="torch"), CLASSES).uses_triton(torch.device("cuda"))
    assert DeviceAugment(AugmentConfig(kernels="triton"), CLASSES).uses_triton(torch.device("cpu"))
    with pytest.raises(ValueError, match="augment.kernels='cuda'"):
        DeviceAugment(AugmentConfig(kernels="cuda"), CLASSES)


def test_refuses_boxes_outside_the_image(small_photos, labels, device):
    cfg = AugmentConfig(auto_augment="none", color_jitter=0.0, mix_group=GROUP)
    params = forced(plan_params(8, 32, cfg), erase=torch.ones(8, dtype=torch.bool),
                    erase_box=torch.tensor([[30, 0, 5, 5]] * 8))
    with pytest.raises(ValueError, match="inside the 32x40 image"):
        DeviceAugment(dataclasses.replace(cfg, kernels="triton"), CLASSES)(small_photos.to(device), labels, params)


def test_the_kernels_key_is_a_checked_recipe_setting():
    from fastdeit.config.load import build_config

    assert build_config("deit_s_300ep").augment.kernels == "auto"
    assert build_config("deit_s_300ep", overrides=["augment.kernels=torch"]).augment.kernels == "torch"
    with pytest.raises(ValueError, match=r"augment\.kernels"):
        build_config("deit_s_300ep", overrides=["augment.kernels=cuda"])


def test_cpu_tensors_without_the_interpreter_are_refused_by_name(tmp_path):
    """Outside the interpreter the kernels want CUDA: a CPU batch gets a ValueError, not a crash."""
    import os
    import subprocess
    import sys

    code = ("import torch\nfrom fastdeit.kernels import rand_augment\n"
            "try:\n    rand_augment(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 1, dtype=torch.long), "
            "torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool))\n"
            "except ValueError as e:\n    print('refused:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "refused:" in out.stdout and "TRITON_INTERPRET=1" in out.stdout, out.stderr[-2000:]
