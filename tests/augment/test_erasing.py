"""Random erasing with given boxes: the box, and only the box, gets N(0, 1) noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from timm.data.random_erasing import RandomErasing

from fastdeit.augment.erasing import random_erase
from fastdeit.augment.noise import normal_noise


def test_only_the_box_changes_and_the_noise_is_standard_normal():
    x = torch.full((3, 3, 40, 50), 7.0)
    erase = torch.tensor([True, False, True])
    boxes = torch.tensor([[5, 10, 20, 30], [0, 0, 10, 10], [0, 0, 40, 1]])
    out = random_erase(x, erase, boxes, torch.tensor([1, 2, 3]))
    changed = out != 7.0
    assert changed[0, :, 5:25, 10:40].all() and changed[0].sum() == 3 * 20 * 30
    assert not changed[1].any()
    assert changed[2, :, :, 0].all() and changed[2].sum() == 3 * 40
    noise = out[0, :, 5:25, 10:40]
    assert abs(noise.mean().item()) < 0.1 and abs(noise.std().item() - 1) < 0.1
    # the box holds the sample's noise at box-relative positions
    assert torch.equal(noise, normal_noise(torch.tensor([1]), 3, 20, 30)[0])
    channels_last = random_erase(x.contiguous(memory_format=torch.channels_last), erase, boxes, torch.tensor([1, 2, 3]))
    assert torch.equal(channels_last, out)
    assert torch.equal(x, torch.full((3, 3, 40, 50), 7.0))  # input untouched


def test_noise_is_normal_and_a_function_of_seed_and_position_only():
    seeds = torch.tensor([0, 12345, 2**62 + 7], dtype=torch.int64)
    z = normal_noise(seeds, 3, 100, 100)
    flat = z.flatten().numpy()
    assert abs(flat.mean()) < 0.01 and abs(flat.std() - 1) < 0.01
    # quantiles of N(0, 1): 2.5 %, 16 %, 50 %, 84 %, 97.5 %
    q = np.quantile(flat, [0.025, 0.16, 0.5, 0.84, 0.975])
    assert np.allclose(q, [-1.96, -0.994, 0.0, 0.994, 1.96], atol=0.03)
    # channels and samples are uncorrelated
    assert abs(np.corrcoef(z[0, 0].flatten(), z[0, 1].flatten())[0, 1]) < 0.03
    assert abs(np.corrcoef(z[0, 0].flatten(), z[1, 0].flatten())[0, 1]) < 0.03
    # same seed -> same noise, whatever else is in the batch or the requested size
    alone = normal_noise(seeds[1:2], 3, 50, 60)
    assert torch.equal(alone[0], z[1, :, :50, :60])


def test_box_noise_does_not_depend_on_batch_composition():
    x = torch.zeros(4, 3, 32, 32)
    boxes = torch.tensor([[1, 2, 10, 12], [0, 0, 31, 5], [3, 3, 3, 3], [4, 4, 20, 20]])
    seeds = torch.tensor([11, 22, 33, 44])
    full = random_erase(x, torch.ones(4, dtype=torch.bool), boxes, seeds)
    part = random_erase(x[2:], torch.ones(2, dtype=torch.bool), boxes[2:], seeds[2:])
    assert torch.equal(full[2:], part)


def test_erased_area_and_aspect_match_timm_random_erasing():
    """Plan-drawn boxes through random_erase against timm's RandomErasing itself (deit's
    settings, mode pixel), measuring the erased rectangle in the output images."""
    from fastdeit.config.schema import AugmentConfig, DataConfig
    from fastdeit.data import plan as P

    side, n = 48, 2048
    cfg = P.PlanConfig.from_configs(DataConfig(img_size=side, global_batch=n), AugmentConfig())
    plan = P.make_plan(cfg, seed=3, epoch=0, step=0, widths=np.full(4 * n, 100), heights=np.full(4 * n, 90))
    ours = random_erase(torch.zeros(n, 3, side, side), torch.from_numpy(plan.erase),
                        torch.from_numpy(plan.erase_box), torch.from_numpy(plan.erase_seed))
    torch.manual_seed(0)
    import random

    random.seed(0)
    timm = RandomErasing(probability=0.25, mode="pixel", device="cpu")(torch.zeros(n, 3, side, side))

    def stats(batch: torch.Tensor) -> tuple[float, np.ndarray, np.ndarray]:
        changed = batch.ne(0).any(dim=1)  # N x H x W
        hit = changed.flatten(1).any(dim=1)
        rows = changed.any(dim=2).sum(dim=1)[hit].double()
        cols = changed.any(dim=1).sum(dim=1)[hit].double()
        area = (rows * cols / (side * side)).numpy()
        log_aspect = torch.log(rows / cols).numpy()
        return hit.double().mean().item(), area, log_aspect

    p_ours, area_ours, asp_ours = stats(ours)
    p_timm, area_timm, asp_timm = stats(timm)
    # erase probability 0.25: binomial sd over 2048 samples ~ 0.0096
    assert abs(p_ours - 0.25) < 0.04 and abs(p_timm - 0.25) < 0.04
    # area fraction ~ U(0.02, 1/3) before rounding; log-aspect ~ U(log 0.3, log 3.33)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(np.quantile(area_ours, q) - np.quantile(area_timm, q)) < 0.04, q
        assert abs(np.quantile(asp_ours, q) - np.quantile(asp_timm, q)) < 0.3, q
    assert 0.02 - 0.01 < area_ours.min() and area_ours.max() < 1 / 3 + 0.05
    assert abs(asp_ours).max() <= math.log(1 / 0.3) + 0.2


def test_modes_and_bad_input():
    x = torch.zeros(1, 3, 8, 8)
    args = (torch.tensor([True]), torch.tensor([[1, 1, 4, 4]]), torch.tensor([5]))
    const = random_erase(x, *args, mode="const")
    assert torch.equal(const, x)
    rand = random_erase(x, *args, mode="rand")[0, :, 1:5, 1:5]
    assert (rand == rand[:, :1, :1]).all() and rand.std() > 0  # one colour per channel
    with pytest.raises(ValueError, match="mode"):
        random_erase(x, *args, mode="sparkle")
    with pytest.raises(ValueError, match="inside"):
        random_erase(x, args[0], torch.tensor([[6, 6, 4, 4]]), args[2])
    with pytest.raises(ValueError, match="floating"):
        random_erase(x.to(torch.uint8), *args)
    with pytest.raises(ValueError, match="bool"):
        random_erase(x, torch.tensor([1]), args[1], args[2])
