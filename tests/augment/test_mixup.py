"""Per-group mixup/cutmix against timm's Mixup class on the same lambda and box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.data.mixup import Mixup, cutmix_bbox_and_lam

from fastdeit.augment.mixup import MIX_CUTMIX, MIX_MIXUP, MIX_NONE, mix, smoothed_one_hot

K, G = 10, 8


def timm_group(x: torch.Tensor, y: torch.Tensor, seed: int):
    """Run timm's Mixup (deit's settings) on one group, and replay its numpy draws to learn the
    lambda and box it used: (mixed, targets, mode, lam, box)."""
    mixer = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch",
                  label_smoothing=0.1, num_classes=K)
    np.random.seed(seed)
    mixed, targets = mixer(x.clone(), y)
    np.random.seed(seed)  # Mixup._params_per_batch, then cutmix_bbox_and_lam, in timm's order
    np.random.rand()
    use_cutmix = np.random.rand() < 0.5
    lam = np.random.beta(1.0, 1.0) if use_cutmix else np.random.beta(0.8, 0.8)
    box = (0, 0, 0, 0)
    if use_cutmix:
        box, lam = cutmix_bbox_and_lam(x.shape, lam)
    return mixed, targets, (MIX_CUTMIX if use_cutmix else MIX_MIXUP), float(lam), tuple(int(b) for b in box)


def test_groups_match_timm_mixup_and_cutmix():
    gen = torch.Generator().manual_seed(0)
    seeds = range(12)
    xs = [torch.randn(G, 3, 20, 24, generator=gen) for _ in seeds]
    ys = [torch.randint(0, K, (G,), generator=gen) for _ in seeds]
    ref = [timm_group(x, y, s) for x, y, s in zip(xs, ys, seeds)]
    modes = {r[2] for r in ref}
    assert modes == {MIX_MIXUP, MIX_CUTMIX}  # both kinds exercised
    out, targets = mix(
        torch.cat(xs), torch.cat(ys),
        torch.tensor([r[2] for r in ref]), torch.tensor([r[3] for r in ref], dtype=torch.float64),
        torch.tensor([r[4] for r in ref]), group_size=G, num_classes=K, smoothing=0.1,
    )
    for g, (mixed, t, *_rest) in enumerate(ref):
        assert torch.equal(out[g * G : (g + 1) * G], mixed), g
        assert torch.allclose(targets[g * G : (g + 1) * G], t, atol=1e-7, rtol=0), g


def test_cutmix_pastes_the_reversed_group_inside_the_box_only():
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 6, 6).contiguous()
    y = torch.tensor([0, 1, 2, 3])
    out, t = mix(x, y, torch.tensor([MIX_CUTMIX]), torch.tensor([1 - 6 / 36]), torch.tensor([[1, 3, 2, 5]]),
                 group_size=4, num_classes=4, smoothing=0.0)
    for i in range(4):
        inside = out[i, :, 1:3, 2:5]
        assert (inside == 3 - i).all()
        assert (out[i].sum() - inside.sum()) == i * (3 * 36 - 3 * 6)
    assert torch.allclose(t[0], torch.tensor([30 / 36, 0, 0, 6 / 36]))


def test_no_mixing_gives_smoothed_one_hot_and_unchanged_images():
    x = torch.randn(8, 3, 4, 4)
    y = torch.arange(8) % K
    out, t = mix(x, y, torch.full((2,), MIX_NONE), torch.tensor([0.3, 0.7]), torch.zeros(2, 4, dtype=torch.int64),
                 group_size=4, num_classes=K, smoothing=0.1)
    assert torch.equal(out, x)
    assert torch.allclose(t, smoothed_one_hot(y, K, 0.1))
    assert torch.allclose(t.sum(1), torch.ones(8))
    assert torch.allclose(t.max(1).values, torch.full((8,), 0.9 + 0.01))


def test_refuses_bad_input():
    x = torch.randn(6, 3, 4, 4)
    args = (torch.zeros(6, dtype=torch.int64), torch.zeros(1, dtype=torch.int64), torch.ones(1), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="whole number"):
        mix(x, *args, group_size=4, num_classes=K)
    with pytest.raises(ValueError, match="mode"):
        mix(x, *args, group_size=3, num_classes=K)
    with pytest.raises(ValueError, match="num_classes"):
        mix(x, *args, group_size=6, num_classes=0)
