"""Evaluate a checkpoint file: rebuild its model from the stored config, then score model and EMA."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastdeit.config.load import config_from_dict
from fastdeit.config.schema import TrainConfig
from fastdeit.eval.evaluate import evaluate
from fastdeit.models import create_model
from fastdeit.train.checkpoint import load_checkpoint
from fastdeit.train.distributed import resolve_device


def read_checkpoint(path: Path) -> tuple[dict[str, Any], TrainConfig]:
    """The checkpoint blob and the run config it carries."""
    blob = load_checkpoint(path)
    return blob, config_from_dict(blob["config"], f"checkpoint {path}")


def model_from_checkpoint(blob: dict[str, Any], config: TrainConfig, which: str = "model") -> nn.Module | None:
    """The checkpoint's `model` or `ema` weights in a freshly built model (None if absent)."""
    state = blob.get(which)
    if state is None:
        return None
    # the stored weights replace any fine-tune initialisation: don't read model.init_checkpoint again
    model_cfg = dataclasses.replace(config.model, init_checkpoint="")
    model = create_model(model_cfg, blob["num_classes"], config.data.img_size)
    if which == "ema":
        state = {k.removeprefix("module."): v for k, v in state.items()}
    model.load_state_dict(state)
    return model


def checkpoint_val_loader(config: TrainConfig, val: str, path: Path, num_classes: int):
    """The validation loader for `val` with the checkpoint recipe's eval transform."""
    from fastdeit.train.data_source import build_val_loader, resolve_paths

    config.data.train, config.data.val = "demo" if val == "demo" else val, val
    _, val_path = resolve_paths(config.data)
    loader, val_classes = build_val_loader(config.data, val_path, rank=0, world_size=1)
    if val_classes > num_classes:
        raise ValueError(f"--val {val} has {val_classes} classes; checkpoint {path} was trained on "
                         f"{num_classes}")
    return loader


def evaluate_checkpoint(path: Path, val: str, device_name: str = "auto") -> dict[str, Any]:
    blob, config = read_checkpoint(path)
    device = resolve_device(device_name, 0)
    loader = checkpoint_val_loader(config, val, path, blob["num_classes"])
    results = {}
    for name in ("model", "ema"):
        model = model_from_checkpoint(blob, config, name)
        if model is None:
            continue
        model.to(device)
        results[name] = evaluate(model, loader, device, config.run.precision)
    return results
