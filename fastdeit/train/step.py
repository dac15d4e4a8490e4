"""One optimisation step: forward under autocast, loss, backward, clip, AdamW, EMA.

Losses accumulate on the device; nothing here synchronises with the host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fastdeit.config.schema import DistillConfig
from fastdeit.distill.loss import distillation_loss
from fastdeit.precision import autocast_for


@dataclass
class StepContext:
    model: nn.Module  # possibly DDP-wrapped
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    ema: nn.Module | None
    teacher: nn.Module | None
    distill: DistillConfig
    precision: str
    clip_grad: float
    device: torch.device
    loss_fn: Callable[..., torch.Tensor] = distillation_loss  # torch.compile'd when model.compile is on


def split_heads(outputs) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(outputs, (tuple, list)):
        return outputs[0], outputs[1]
    return outputs, None


def train_step(ctx: StepContext, images: torch.Tensor, targets: torch.Tensor, lr: float,
               teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Returns the loss as a 0-d device tensor (detached). `teacher_logits` come from the
    teacher-logit cache; without them an online teacher (if any) runs on `images`."""
    for group in ctx.optimizer.param_groups:
        group["lr"] = lr
    if teacher_logits is None and ctx.teacher is not None:
        with torch.no_grad(), autocast_for(ctx.device, ctx.precision):
            teacher_logits = ctx.teacher(images)  # deit: the teacher sees the final mixed input
    with autocast_for(ctx.device, ctx.precision):
        cls_logits, dist_logits = split_heads(ctx.model(images))
    loss = ctx.loss_fn(cls_logits, dist_logits, targets, teacher_logits, ctx.distill.kind,
                             ctx.distill.alpha, ctx.distill.tau)
    ctx.optimizer.zero_grad(set_to_none=True)
    if ctx.scaler is not None:
        ctx.scaler.scale(loss).backward()
        ctx.scaler.unscale_(ctx.optimizer)
        clip_gradients(ctx)
        ctx.scaler.step(ctx.optimizer)
        ctx.scaler.update()
    else:
        loss.backward()
        clip_gradients(ctx)
        ctx.optimizer.step()
    if ctx.ema is not None:
        ctx.ema.update(unwrap(ctx.model))
    return loss.detach()


def clip_gradients(ctx: StepContext) -> None:
    if ctx.clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(ctx.model.parameters(), ctx.clip_grad)


def unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "module", model)  # DDP
    return getattr(model, "_orig_mod", model)  # torch.compile
