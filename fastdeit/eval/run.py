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


def resolve_val(val: str, loader: str) -> str:
    """`--val` as a path: 'demo' is the embedded demo's validation split (the .beton the view-plan
    loaders trained beside, or its folder for the reference loader); anything else must exist."""
    if val == "demo":
        from fastdeit.data.demo import ensure_demo_dataset
        from fastdeit.train.data_source import demo_beton

        split = ensure_demo_dataset().val_dir
        return str(split) if loader == "reference" else demo_beton(split, is_main=True)
    if not val:
        raise ValueError("--val is empty: pass a .beton file, an ImageFolder directory or 'demo'")
    if not Path(val).exists():
        raise ValueError(f"--val: no such file or directory {val}")
    return val


def checkpoint_val_loader(config: TrainConfig, val: str, path: Path, num_classes: int):
    """The validation loader for `val` (a .beton file or an ImageFolder directory, whichever loader
    trained the checkpoint) with the checkpoint recipe's eval transform."""
    from fastdeit.data.reference import build_eval_loader

    val_path = resolve_val(val, config.data.loader)
    config.data.val = val_path
    loader, val_classes = build_eval_loader(config.data, val_path, rank=0, world_size=1, key="--val")
    if val_classes > num_classes:
        raise ValueError(f"--val {val} has labels up to {val_classes - 1}; checkpoint {path} was trained on "
                         f"{num_classes} classes (labels 0..{num_classes - 1})")
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
