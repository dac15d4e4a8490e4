"""Model EMA (deit --model-ema, decay 0.99996), kept and evaluated separately."""

from __future__ import annotations

from timm.utils import ModelEmaV3
from torch import nn

from fastdeit.config.schema import RunConfig


def build_ema(model: nn.Module, cfg: RunConfig) -> ModelEmaV3:
    # timm ModelEma as deit uses it: ema = decay * ema + (1 - decay) * model after every step,
    # no warmup of the decay.
    return ModelEmaV3(model, decay=cfg.ema_decay)
