"""The online teacher: any timm model, weights from a checkpoint, inference only."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from fastdeit.config.schema import DistillConfig


def read_teacher_state(path: Path) -> dict:
    """deit's released teacher file keeps the state dict under `model`; a bare state dict works too."""
    if not path.is_file():
        raise ValueError(f"distill.teacher_checkpoint: no such file {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(f"distill.teacher_checkpoint: {path} is not a readable checkpoint ({err})") from None
    state = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"distill.teacher_checkpoint: {path} holds no state dict (expected one under 'model')")
    return state


def load_teacher(cfg: DistillConfig, num_classes: int, device: torch.device,
                 model_kwargs: dict | None = None) -> nn.Module:
    if not cfg.teacher_checkpoint:
        raise ValueError(f"distill.kind = {cfg.kind!r} needs distill.teacher_checkpoint "
                         "(deit's teacher: https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth)")
    state = read_teacher_state(Path(cfg.teacher_checkpoint))
    if cfg.teacher not in timm.list_models():
        raise ValueError(f"distill.teacher = {cfg.teacher!r}: not a timm model")
    teacher = timm.create_model(cfg.teacher, pretrained=False, num_classes=num_classes, **(model_kwargs or {}))
    try:
        teacher.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"distill.teacher_checkpoint: {cfg.teacher_checkpoint} does not fit "
                         f"{cfg.teacher} with {num_classes} classes: {str(err).splitlines()[0]}") from None
    teacher.to(device).eval().requires_grad_(False)
    if device.type == "cuda":
        teacher = teacher.to(memory_format=torch.channels_last)
    return teacher
