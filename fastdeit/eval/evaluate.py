"""Validation accuracy. Distilled models report the class head, the distillation head, and their
average (what deit's inference uses, VisionTransformerDistilled in eval mode)."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from fastdeit.precision import autocast_for
from fastdeit.train.distributed import all_reduce_sum


def head_logits(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    if hasattr(model, "head_dist"):
        features = model.forward_features(images)
        cls = model.head(features[:, 0])
        dist = model.head_dist(features[:, 1])
        return {"": (cls + dist) / 2, "_cls": cls, "_dist": dist}
    return {"": model(images)}


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device, precision: str = "bf16",
             channels_last: bool = False) -> dict[str, float]:
    """top1/top5 in percent (plus top1_cls, top1_dist, ... for distilled models), summed over ranks."""
    was_training = model.training
    model.eval()
    counts: dict[str, torch.Tensor] = {}
    total = torch.zeros((), dtype=torch.float64, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    for images, labels in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(device, non_blocking=True)
        with autocast_for(device, precision):
            outputs = head_logits(model, images)
        k = min(5, outputs[""].shape[1])
        for suffix, logits in outputs.items():
            top = logits.float().topk(k, dim=1).indices
            hit = top.eq(labels.view(-1, 1))
            for name, value in ((f"top1{suffix}", hit[:, :1].any(1)), (f"top5{suffix}", hit.any(1))):
                counts.setdefault(name, torch.zeros((), dtype=torch.float64, device=device))
                counts[name] += value.sum()
        loss_sum += torch.nn.functional.cross_entropy(outputs[""].float(), labels, reduction="sum")
        total += labels.numel()
    all_reduce_sum(total)
    all_reduce_sum(loss_sum)
    results = {"samples": int(total.item()), "loss": float(loss_sum.item() / max(total.item(), 1))}
    for name, value in counts.items():
        all_reduce_sum(value)
        results[name] = float(100.0 * value.item() / max(total.item(), 1))
    model.train(was_training)
    return results
