"""Distillation through attention (deit's DistillationLoss) and the teacher."""

from fastdeit.distill.loss import distillation_loss

__all__ = ["distillation_loss"]
