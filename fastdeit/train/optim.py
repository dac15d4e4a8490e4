"""AdamW as deit builds it (timm create_optimizer, filter_bias_and_bn), fused where supported."""

from __future__ import annotations

import torch
from torch import nn

from fastdeit.config.schema import OptimizerConfig
from fastdeit.models import param_groups_for_weight_decay


def scaled_lr(cfg: OptimizerConfig, global_batch: int) -> float:
    """deit main.py: linear_scaled_lr = lr * batch_size * world_size / 512."""
    return cfg.lr * global_batch / cfg.lr_batch


def use_fused(cfg: OptimizerConfig, device: torch.device) -> bool:
    if cfg.fused == "off":
        return False
    supported = device.type in ("cuda", "cpu")  # torch's fused AdamW runs on CUDA and CPU
    if cfg.fused == "on" and not supported:
        raise ValueError(f"optim.fused = 'on' but fused AdamW does not support device {device}")
    return supported


def build_optimizer(model: nn.Module, cfg: OptimizerConfig, global_batch: int,
                    device: torch.device) -> torch.optim.Optimizer:
    groups = param_groups_for_weight_decay(model, cfg.weight_decay)
    return torch.optim.AdamW(
        groups,
        lr=scaled_lr(cfg, global_batch),
        betas=cfg.betas,
        eps=cfg.eps,
        fused=use_fused(cfg, device),
    )
