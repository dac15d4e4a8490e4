"""DeviceAugment: deit's order, the recipe's switches, and agreement in distribution with
timm's per-image pipeline on photographs."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch

from augment_reference import to_batch
from fastdeit.augment.erasing import random_erase
from fastdeit.augment.mixup import mix, smoothed_one_hot
from fastdeit.augment.normalize import normalize
from fastdeit.augment.ops import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_FILL
from fastdeit.augment.params import AugmentParams
from fastdeit.augment.pipeline import DeviceAugment
from fastdeit.augment.rand_augment import rand_augment
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data import plan as P

K = 10


def plan_params(n: int, side: int, group: int = 64, seed: int = 0, step: int = 0) -> AugmentParams:
    aug = AugmentConfig(mix_group=group)
    cfg = P.PlanConfig.from_configs(DataConfig(img_size=side, global_batch=n), aug)
    plan = P.make_plan(cfg, seed=seed, epoch=0, step=step, widths=np.full(8 * n, 120), heights=np.full(8 * n, 100))
    return AugmentParams.from_plan(plan)


@pytest.fixture(scope="module")
def batch(photos):
    imgs = to_batch([c[:32, :32] for c in photos[(64, 64)]] * 64)  # 128 = two mixing groups of 64
    labels = torch.arange(128) % K
    return imgs, labels, plan_params(128, 32)


def test_applies_deit_order_randaugment_normalise_erase_mix(batch):
    imgs, labels, p = batch
    out, targets = DeviceAugment(AugmentConfig(), K, out_dtype=torch.float32)(imgs, labels, p)
    x = rand_augment(imgs, p.ra_op, p.ra_magnitude, p.ra_apply, fill=IMAGENET_FILL, interpolation="bicubic")
    x = normalize(x, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    x = random_erase(x, p.erase, p.erase_box, p.erase_seed, "pixel")
    x, t = mix(x, labels, p.mix_mode, p.mix_lam, p.mix_box, group_size=64, num_classes=K, smoothing=0.1)
    assert torch.equal(out, x) and torch.equal(targets, t)


def test_default_output_is_bf16_channels_last_with_soft_targets(batch):
    imgs, labels, p = batch
    out, targets = DeviceAugment(AugmentConfig(), K)(imgs, labels, p)
    assert out.dtype == torch.bfloat16 and out.shape == imgs.shape
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert targets.shape == (128, K) and targets.dtype == torch.float32
    assert torch.allclose(targets.sum(1), torch.ones(128))
    assert (targets >= 0.01 - 1e-6).all()  # smoothing 0.1 over 10 classes floors every class


def test_loader_batches_in_nhwc_give_the_same_result(batch):
    """The CPU loader hands NHWC uint8 batches with their plan; apply_to_batch takes them as is."""
    from types import SimpleNamespace

    imgs, labels, _ = batch
    cfg = P.PlanConfig.from_configs(DataConfig(img_size=32, global_batch=128), AugmentConfig())
    plan = P.make_plan(cfg, seed=0, epoch=0, step=0, widths=np.full(1024, 120), heights=np.full(1024, 100))
    aug = DeviceAugment(AugmentConfig(), K, out_dtype=torch.float32)
    nhwc = imgs.permute(0, 2, 3, 1).contiguous()
    out, targets = aug.apply_to_batch(SimpleNamespace(images=nhwc, labels=labels, plan=plan))
    ref, ref_t = aug(imgs, labels, AugmentParams.from_plan(plan))
    assert torch.equal(out, ref) and torch.equal(targets, ref_t)
    with pytest.raises(ValueError, match="NHWC"):
        aug.apply_to_batch(SimpleNamespace(images=imgs, labels=labels, plan=plan))


def test_switched_off_parts_are_skipped(batch):
    imgs, labels, p = batch
    cfg = dataclasses.replace(AugmentConfig(), auto_augment="", reprob=0.0, mixup=0.0, cutmix=0.0)
    out, targets = DeviceAugment(cfg, K, out_dtype=torch.float32)(imgs, labels, p)
    assert torch.equal(out, normalize(imgs, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD))
    assert torch.equal(targets, smoothed_one_hot(labels, K, 0.1))


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(interpolation="lanczos"), "interpolation"),
        (dict(remode="sparkle"), "remode"),
        (dict(recount=2), "recount"),
        (dict(mixup_mode="elem"), "mixup_mode"),
        (dict(auto_augment="rand-m9-mstd0.5"), "increasing"),
        (dict(smoothing=1.0), "smoothing"),
    ],
)
def test_unsupported_recipes_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        DeviceAugment(dataclasses.replace(AugmentConfig(), **change), K)


def test_params_from_plan_select_a_devices_share_of_groups():
    p = plan_params(256, 32)
    part = p.select_groups(slice(1, 3), 64)
    assert part.ra_op.shape == (128, 2) and part.mix_lam.shape == (2,)
    assert torch.equal(part.erase_seed, p.erase_seed[64:192]) and torch.equal(part.mix_box, p.mix_box[1:3])


def test_rand_augment_distribution_matches_timm_rand_augment(photos):
    """Plan-drawn RandAugment on the device vs timm's rand-m9-mstd0.5-inc1 on PIL images, over
    the same 512 crops: the per-image mean and contrast (std) agree in distribution
    (two-sample Kolmogorov-Smirnov; fixed seeds, so the test is deterministic)."""
    stats = pytest.importorskip("scipy.stats")
    from PIL import Image
    from timm.data.auto_augment import rand_augment_transform

    from fastdeit.data.reference import fix_posterize

    crops = [c[:40, :48] for c in photos[(56, 72)]] * 256
    p = plan_params(512, 64, seed=5)
    ours = rand_augment(to_batch(crops), p.ra_op, p.ra_magnitude, p.ra_apply).float()
    hparams = dict(translate_const=int(40 * 0.45), img_mean=IMAGENET_FILL,
                   interpolation=Image.BICUBIC)  # what timm's create_transform passes
    ra = rand_augment_transform("rand-m9-mstd0.5-inc1", hparams)
    fix_posterize(ra)
    random.seed(0)
    np.random.seed(0)
    theirs = to_batch([np.asarray(ra(Image.fromarray(c))) for c in crops]).float()
    for name, f in (("mean", lambda t: t.mean(dim=(1, 2, 3))), ("std", lambda t: t.std(dim=(1, 2, 3)))):
        result = stats.ks_2samp(f(ours).numpy(), f(theirs).numpy())
        assert result.pvalue > 0.001, (name, result)
    # the images themselves pair up: identical crops, so untouched ones must be equal in number
    same_ours = (ours == to_batch(crops).float()).flatten(1).all(1).float().mean()
    same_theirs = (theirs == to_batch(crops).float()).flatten(1).all(1).float().mean()
    assert abs(same_ours - same_theirs) < 0.08  # sd of the difference ~ 0.028 at p ~ 0.27
