"""Evaluate a checkpoint file: rebuild its model from the stored config, then score model and EMA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fastdeit.config.load import config_from_dict
from fastdeit.eval.evaluate import evaluate
from fastdeit.models import create_model
from fastdeit.train.checkpoint import load_checkpoint
from fastdeit.train.distributed import resolve_device


def evaluate_checkpoint(path: Path, val: str, device_name: str = "auto") -> dict[str, Any]:
    from fastdeit.train.data_source import build_val_loader, resolve_paths

    blob = load_checkpoint(path)
    config = config_from_dict(blob["config"], f"checkpoint {path}")
    config.data.train, config.data.val = "demo" if val == "demo" else val, val
    _, val_path = resolve_paths(config.data)
    device = resolve_device(device_name, 0)
    loader, num_classes = build_val_loader(config.data, val_path, rank=0, world_size=1)
    if num_classes > blob["num_classes"]:
        raise ValueError(f"--val {val} has {num_classes} classes; checkpoint {path} was trained on "
                         f"{blob['num_classes']}")
    results = {}
    for name in ("model", "ema"):
        state = blob.get(name)
        if state is None:
            continue
        model = create_model(config.model, blob["num_classes"], config.data.img_size)
        if name == "ema":
            state = {k.removeprefix("module."): v for k, v in state.items()}
        model.load_state_dict(state)
        model.to(device)
        results[name] = evaluate(model, loader, device, config.run.precision)
    return results


