import pytest
import torch
import torch.nn.functional as F

from fastdeit.distill import distillation_loss
from fastdeit.augment.mixup import smoothed_one_hot
from fastdeit.train.loss import soft_target_cross_entropy


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    cls, dist, teacher = (torch.randn(8, 5, generator=g) for _ in range(3))
    targets = smoothed_one_hot(torch.arange(8) % 5, 5, 0.1)
    return cls, dist, targets, teacher


def test_none_is_soft_target_cross_entropy(batch):
    cls, dist, targets, teacher = batch
    assert distillation_loss(cls, dist, targets, None, "none", 0.5, 1.0) == soft_target_cross_entropy(cls, targets)


def test_hard_uses_teacher_argmax_on_the_distillation_head(batch):
    cls, dist, targets, teacher = batch
    expected = 0.5 * soft_target_cross_entropy(cls, targets) + 0.5 * F.cross_entropy(dist, teacher.argmax(1))
    assert distillation_loss(cls, dist, targets, teacher, "hard", 0.5, 1.0) == pytest.approx(expected.item())


def test_soft_is_deit_kl_times_tau_squared_over_numel(batch):
    cls, dist, targets, teacher = batch
    tau = 3.0
    p_teacher = F.softmax(teacher / tau, 1)
    kl = (p_teacher * (F.log_softmax(teacher / tau, 1) - F.log_softmax(dist / tau, 1))).sum()
    expected = 0.3 * soft_target_cross_entropy(cls, targets) + 0.7 * kl * tau * tau / dist.numel()
    got = distillation_loss(cls, dist, targets, teacher, "soft", 0.7, tau)
    assert got == pytest.approx(expected.item(), rel=1e-5)


def test_hard_cls_ablation_distils_into_the_class_head(batch):
    cls, _, targets, teacher = batch
    expected = 0.5 * soft_target_cross_entropy(cls, targets) + 0.5 * F.cross_entropy(cls, teacher.argmax(1))
    assert distillation_loss(cls, None, targets, teacher, "hard_cls", 0.5, 1.0) == pytest.approx(expected.item())


def test_smoothing_matches_timm():
    from timm.data.mixup import mixup_target

    labels = torch.tensor([0, 3, 1])
    assert torch.allclose(smoothed_one_hot(labels, 4, 0.1), mixup_target(labels, 4, lam=1.0, smoothing=0.1))
