"""deit's DistillationLoss (deit/losses.py) as a pure function."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fastdeit.train.loss import soft_target_cross_entropy


def distillation_loss(
    cls_logits: torch.Tensor,
    dist_logits: torch.Tensor | None,
    targets: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    kind: str,
    alpha: float,
    tau: float,
) -> torch.Tensor:
    """base * (1 - alpha) + distill * alpha, base = soft-target CE of the class head.

    soft: KL(log_softmax(dist/tau) || log_softmax(teacher/tau), log_target) * tau^2 / numel
    hard: CE(dist head, argmax teacher). hard_cls: the paper's ablation with no distillation
    token, the class head itself learns from the teacher's argmax (pass dist_logits=None).
    """
    base = soft_target_cross_entropy(cls_logits, targets)
    if kind == "none":
        return base
    if teacher_logits is None:
        raise ValueError(f"distill.kind = {kind!r} needs teacher logits")
    student = cls_logits if kind == "hard_cls" or dist_logits is None else dist_logits
    student = student.float()
    teacher = teacher_logits.float()
    if kind == "soft":
        distill = F.kl_div(
            F.log_softmax(student / tau, dim=1),
            F.log_softmax(teacher / tau, dim=1),
            reduction="sum",
            log_target=True,
        ) * (tau * tau) / student.numel()
    elif kind in ("hard", "hard_cls"):
        distill = F.cross_entropy(student, teacher.argmax(dim=1))
    else:
        raise ValueError(f"distill.kind = {kind!r}: must be none, soft, hard or hard_cls")
    return base * (1 - alpha) + distill * alpha
