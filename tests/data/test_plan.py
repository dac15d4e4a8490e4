"""The view plan follows deit's sampler and torchvision/timm's augmentation draws."""

import math
import random

import numpy as np
import pytest
import torch
from scipy import stats
from timm.data.mixup import Mixup, cutmix_bbox_and_lam
from timm.data.random_erasing import RandomErasing
from torchvision.transforms import RandomResizedCrop

from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data import philox
from fastdeit.data.plan import (
    MIX_CUTMIX,
    MIX_MIXUP,
    PLAN_VERSION,
    RAND_INCREASING_OPS,
    SIGNED_OPS,
    PlanConfig,
    epoch_length,
    make_plan,
    make_plans,
    rrc_boxes,
    sample_indices,
    steps_per_epoch,
)

P = 1e-3  # KS / chi-square significance: a fixed seed makes these deterministic anyway


def small_cfg(**kw):
    base = dict(img_size=32, global_batch=256, mix_group=16, epoch_multiple=64)
    base.update(kw)
    return PlanConfig(**base)


def sizes(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(40, 500, n), rng.integers(40, 500, n)


def all_plans(cfg, seed, epoch, w, h):
    return [make_plan(cfg, seed, epoch, s, w, h) for s in range(steps_per_epoch(cfg, len(w)))]


def test_deit_defaults_and_epoch_length():
    cfg = PlanConfig.from_configs(DataConfig(), AugmentConfig())
    assert (cfg.ra_layers, cfg.ra_magnitude, cfg.ra_magnitude_std, cfg.ra_prob) == (2, 9.0, 0.5, 0.5)
    assert (cfg.global_batch, cfg.mix_group, cfg.n_groups, cfg.repeated_aug) == (1024, 64, 16, 3)
    # ImageNet-1k: deit's RASampler keeps 1281167 // 256 * 256 samples -> 1251 steps of 1024.
    assert steps_per_epoch(cfg, 1281167) == 1251
    assert epoch_length(cfg, 1281167) == 1251 * 1024


@pytest.mark.parametrize("spec", ["rand-m9-mstd0.5", "original", "rand-x3-inc1"])
def test_unsupported_recipes_are_refused(spec):
    with pytest.raises(ValueError):
        PlanConfig.from_configs(DataConfig(), AugmentConfig(auto_augment=spec))


@pytest.mark.parametrize("change", [{"interpolation": "bilinear"},
                                    {"auto_augment": "", "color_jitter": 0.4},
                                    {"recount": 2}, {"mixup_mode": "elem"}])
def test_recipes_the_plan_cannot_replay_are_refused(change):
    with pytest.raises(ValueError):
        PlanConfig.from_configs(DataConfig(), AugmentConfig(**change))
    assert PlanConfig.from_configs(DataConfig(), AugmentConfig(auto_augment="", color_jitter=0.0)).ra_layers == 0


def test_bad_plan_config_and_step_are_refused():
    with pytest.raises(ValueError):
        PlanConfig(global_batch=100, mix_group=64)
    w, h = sizes(300)
    with pytest.raises(ValueError):
        make_plan(small_cfg(), 0, 0, 1, w, h)  # 300 images -> 1 step only


def test_epoch_order_is_repeated_augmentation_of_a_permutation():
    cfg = small_cfg()
    n = 1000
    pos = np.arange(epoch_length(cfg, n))
    idx = sample_indices(cfg, 0, 0, pos, n)
    assert len(pos) == 768  # 1000 // 64 * 64 = 960 -> 3 whole steps of 256
    assert np.all(idx[0::3] == idx[1::3]) and np.all(idx[0::3] == idx[2::3])
    assert len(np.unique(idx[0::3])) == 256  # distinct images, each 3 times
    assert not np.array_equal(idx, sample_indices(cfg, 0, 1, pos, n))  # reshuffled per epoch


def test_copies_of_an_image_land_in_distinct_groups_of_the_same_step():
    cfg = PlanConfig(img_size=32)  # deit: B = 1024, 16 groups of 64
    w, h = sizes(3000)
    checked = 0
    for s in range(steps_per_epoch(cfg, 3000)):
        plan = make_plan(cfg, 7, 0, s, w, h)
        groups = plan.group_of_sample
        for image in np.unique(plan.indices):
            rows = np.flatnonzero(plan.indices == image)
            if len(rows) == 3:  # triples straddling two steps are split, as in deit
                assert len(set(groups[rows])) == 3
                checked += 1
    assert checked >= 2 * 340  # 1024 = 341 * 3 + 1: one triple straddles the two steps


PLAN_FIELDS = ("positions", "indices", "crop", "flip", "ra_op", "ra_apply", "ra_magnitude", "erase",
               "erase_box", "erase_seed", "mix_mode", "mix_lam", "mix_box")


def test_plan_is_pure_and_independent_of_how_groups_are_split():
    cfg = small_cfg()
    w, h = sizes(1000)
    full = make_plan(cfg, 3, 5, 2, w, h)
    again = make_plan(cfg, 3, 5, 2, w, h)
    parts = [make_plan(cfg, 3, 5, 2, w, h, groups=g) for g in ([0, 1, 2, 3], [4, 5, 6, 7],
                                                               list(range(8, 16)))]
    assert full.version == PLAN_VERSION and len(full) == 256
    for field in PLAN_FIELDS:
        a = getattr(full, field)
        assert np.array_equal(a, getattr(again, field)), field
        assert np.array_equal(a, np.concatenate([getattr(p, field) for p in parts])), field


def test_plans_made_in_a_block_equal_the_plans_made_one_by_one():
    """PlanStream plans 8 steps in one vectorised call: no value may depend on the block."""
    cfg = small_cfg()
    w, h = sizes(3000)
    for groups in (None, [5, 6, 7]):
        block = make_plans(cfg, 3, 4, range(2, 10), w, h, groups)
        assert [p.step for p in block] == list(range(2, 10))
        for p in block:
            alone = make_plan(cfg, 3, 4, p.step, w, h, groups)
            for field in PLAN_FIELDS:
                a, b = getattr(p, field), getattr(alone, field)
                assert a.dtype == b.dtype and a.flags.c_contiguous and np.array_equal(a, b), (p.step, field)
    with pytest.raises(ValueError, match="step 11 outside"):
        make_plans(cfg, 3, 4, [0, 11], w, h)


def test_partner_is_the_group_reversed():
    plan = make_plan(small_cfg(), 0, 0, 0, *sizes(1000))
    g = plan.mix_group
    assert np.array_equal(plan.partner[:g], np.arange(g)[::-1])
    assert np.array_equal(plan.partner[g:2 * g], g + np.arange(g)[::-1])


@pytest.mark.parametrize("wh,n", [((500, 375), 20000), ((120, 640), 8000)])
def test_crop_boxes_match_torchvision_random_resized_crop(wh, n):
    width, height = wh
    torch.manual_seed(0)
    img = torch.empty(1, height, width)
    ref = np.array([RandomResizedCrop.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
                    for _ in range(n)])
    u = philox.uniform(0, 0, np.arange(n), 1, 40)
    ours = rrc_boxes(u, np.full(n, width), np.full(n, height), (0.08, 1.0), (3 / 4, 4 / 3))
    for a in (ours, ref):
        assert np.all(a[:, 2] >= 1) and np.all(a[:, 0] + a[:, 2] <= height)
        assert np.all(a[:, 3] >= 1) and np.all(a[:, 1] + a[:, 3] <= width)

    def features(b):
        top, left, bh, bw = b.T.astype(float)
        return {"area": bh * bw / (width * height), "log_ratio": np.log(bw / bh),
                "top": top / (height - bh + 1), "left": left / (width - bw + 1)}

    fo, fr = features(ours), features(ref)
    for k in fo:
        assert stats.ks_2samp(fo[k], fr[k]).pvalue > P, k


def test_centre_crop_fallback_clamps_the_ratio():
    # a 1000x10 strip: no attempt can fit, so torchvision's fallback (h = 10, w = round(10*4/3))
    u = philox.uniform(0, 0, np.arange(100), 1, 40)
    box = rrc_boxes(u, np.full(100, 1000), np.full(100, 10), (0.08, 1.0), (3 / 4, 4 / 3))
    ref = RandomResizedCrop.get_params(torch.empty(1, 10, 1000), (0.08, 1.0), (3 / 4, 4 / 3))
    assert np.all(box == np.array(ref))


def test_rand_augment_ops_frequencies_and_magnitudes():
    cfg = small_cfg()
    w, h = sizes(12000)
    plans = all_plans(cfg, 1, 0, w, h)[:40]  # 10240 samples x 2 layers
    op = np.concatenate([p.ra_op for p in plans]).ravel()
    apply = np.concatenate([p.ra_apply for p in plans]).ravel()
    mag = np.concatenate([p.ra_magnitude for p in plans]).ravel()
    counts = np.bincount(op, minlength=15)
    assert len(counts) == len(RAND_INCREASING_OPS) == 15
    assert stats.chisquare(counts).pvalue > P
    assert abs(apply.mean() - 0.5) < 0.02
    a = np.abs(mag)
    # magnitude ~ N(9, 0.5) clipped to [0, 10] (timm AugmentOp, mstd0.5, _LEVEL_DENOM 10)
    assert a.max() <= 10.0 and a.min() >= 0.0
    ref = np.clip(np.random.default_rng(0).normal(9, 0.5, 200000), 0, 10)
    assert stats.ks_2samp(a, ref).pvalue > P
    signed = np.array([RAND_INCREASING_OPS[i] in SIGNED_OPS for i in op])
    assert np.all(mag[~signed] >= 0)
    assert abs((mag[signed] < 0).mean() - 0.5) < 0.02  # timm _randomly_negate


def reference_erasing_boxes(n, side):
    """Boxes timm's RandomErasing draws: erase a ones image with const 0 and find the zeros."""
    random.seed(0)
    torch.manual_seed(0)
    er = RandomErasing(probability=0.25, mode="const", device="cpu")
    out = []
    for _ in range(n):
        img = torch.ones(1, side, side)
        er(img)
        ys, xs = torch.nonzero(img[0] == 0, as_tuple=True)
        if len(ys):
            out.append((ys.min().item(), xs.min().item(), ys.max().item() - ys.min().item() + 1,
                        xs.max().item() - xs.min().item() + 1))
        else:
            out.append((0, 0, 0, 0))
    return np.array(out)


def test_erasing_boxes_match_timm_random_erasing():
    cfg = small_cfg(img_size=32)
    plans = all_plans(cfg, 2, 0, *sizes(12000))[:16]  # 4096 samples
    box = np.concatenate([p.erase_box for p in plans])
    erase = np.concatenate([p.erase for p in plans])
    ref = reference_erasing_boxes(4096, 32)
    ref_erase = ref[:, 2] > 0
    assert abs(erase.mean() - ref_erase.mean()) < 0.04
    assert np.all(box[~erase] == 0)
    assert np.all(box[erase, 0] + box[erase, 2] <= 32) and np.all(box[erase, 1] + box[erase, 3] <= 32)
    for col in range(4):
        assert stats.ks_2samp(box[erase, col], ref[ref_erase, col]).pvalue > P, col
    seeds = np.concatenate([p.erase_seed for p in plans])
    assert seeds.min() >= 0 and len(np.unique(seeds)) == len(seeds)


def test_mixup_cutmix_draws_match_timm_mixup():
    cfg = small_cfg(img_size=224, global_batch=64 * 16, mix_group=64)
    plans = all_plans(cfg, 4, 0, *sizes(64 * 1024))[:64]  # 1024 mixing groups
    mode = np.concatenate([p.mix_mode for p in plans])
    lam = np.concatenate([p.mix_lam for p in plans])
    box = np.concatenate([p.mix_box for p in plans])
    np.random.seed(0)
    mixer = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, num_classes=10)
    ref = {MIX_MIXUP: [], MIX_CUTMIX: []}
    for _ in range(4000):
        lam_ref, use_cutmix = mixer._params_per_batch()
        if use_cutmix:
            _, lam_ref = cutmix_bbox_and_lam((224, 224), lam_ref)
        ref[MIX_CUTMIX if use_cutmix else MIX_MIXUP].append(lam_ref)
    assert set(np.unique(mode)) == {MIX_MIXUP, MIX_CUTMIX}
    assert abs((mode == MIX_CUTMIX).mean() - 0.5) < 0.06
    for m in (MIX_MIXUP, MIX_CUTMIX):
        assert stats.ks_2samp(lam[mode == m], ref[m]).pvalue > P, m
    cut = mode == MIX_CUTMIX
    y0, y1, x0, x1 = box[cut].T
    assert np.all((0 <= y0) & (y0 <= y1) & (y1 <= 224) & (0 <= x0) & (x0 <= x1) & (x1 <= 224))
    np.testing.assert_allclose(lam[cut], 1 - (y1 - y0) * (x1 - x0) / 224**2)
    assert np.all(box[~cut] == 0)
