"""torch.compile policy shared by the trainer and the benchmarks (`model.compile`, `model.compile_mode`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from fastdeit.config.schema import ModelConfig

T = TypeVar("T", bound=Callable[..., Any])


def wants_compile(setting: str, device: torch.device) -> bool:
    """auto | on | off; auto compiles on CUDA only: on a CPU the compile time outweighs the gain."""
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def compile_enabled(cfg: ModelConfig, device: torch.device) -> bool:
    return wants_compile(cfg.compile, device)


def maybe_compile(fn: T, cfg: ModelConfig, device: torch.device) -> T:
    """`fn` (a module or a function) compiled per the config, or unchanged."""
    if not compile_enabled(cfg, device):
        return fn
    options = {} if cfg.compile_mode == "default" else {"mode": cfg.compile_mode}
    return torch.compile(fn, **options)
