"""The online teacher: any timm model, weights from a checkpoint, inference only."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from fastdeit.config.schema import DistillConfig
from fastdeit.models.compile import wants_compile


def train_first_hint(path: Path) -> str:
    """For a missing runs/NAME/best.pt where NAME is a preset: the command that writes it."""
    from fastdeit.config.presets import preset_names

    if path.name not in ("best.pt", "checkpoint.pt") or path.parent.parent.name != "runs":
        return ""
    try:
        known = preset_names()
    except ValueError:  # no preset folder: nothing to suggest
        return ""
    name = path.parent.name
    if name not in known:
        return ""
    return f" (run `fastdeit train --preset {name}` first: it writes {path})"


def read_teacher_file(path: Path) -> object:
    """The teacher file, loaded safely (weights_only=True); a fastdeit checkpoint is verified too."""
    from fastdeit.train.safe_load import load_weights_file

    if not path.is_file():
        raise ValueError(f"distill.teacher_checkpoint: no such file {path}{train_first_hint(path)}")
    return load_weights_file(path, "distill.teacher_checkpoint")


def teacher_state(blob: object, path: Path) -> dict:
    """deit's released teacher file keeps the state dict under `model`; a bare state dict works too."""
    state = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"distill.teacher_checkpoint: {path} holds no state dict (expected one under 'model')")
    return state


def read_teacher_state(path: Path) -> dict:
    return teacher_state(read_teacher_file(path), path)


def teacher_from_fastdeit_checkpoint(cfg: DistillConfig, path: Path, blob: dict, num_classes: int) -> nn.Module:
    """A checkpoint written by `fastdeit train` carries its model config: rebuild that model."""
    from fastdeit.config.load import config_from_dict
    from fastdeit.models import create_model

    run_config = config_from_dict(blob["config"], f"distill.teacher_checkpoint {path}")
    if run_config.model.name != cfg.teacher:
        raise ValueError(f"distill.teacher = {cfg.teacher!r} but {path} holds a {run_config.model.name!r}")
    if blob["num_classes"] != num_classes:
        raise ValueError(f"distill.teacher_checkpoint: {path} was trained on {blob['num_classes']} classes, "
                         f"this run has {num_classes}")
    model = create_model(run_config.model, num_classes, run_config.data.img_size)
    model.load_state_dict(blob["model"])
    return model


def load_teacher(cfg: DistillConfig, num_classes: int, device: torch.device) -> nn.Module:
    from fastdeit.train.checkpoint import is_fastdeit_checkpoint

    if not cfg.teacher_checkpoint:
        raise ValueError(f"distill.kind = {cfg.kind!r} needs distill.teacher_checkpoint "
                         "(deit's teacher: https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth)")
    path = Path(cfg.teacher_checkpoint)
    blob = read_teacher_file(path)
    state = teacher_state(blob, path)
    if is_fastdeit_checkpoint(blob):
        teacher = teacher_from_fastdeit_checkpoint(cfg, path, blob, num_classes)
        return prepare_for_inference(teacher, device, cfg.teacher_compile)
    if cfg.teacher not in timm.list_models():
        raise ValueError(f"distill.teacher = {cfg.teacher!r}: not a timm model")
    teacher = timm.create_model(cfg.teacher, pretrained=False, num_classes=num_classes)
    try:
        teacher.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"distill.teacher_checkpoint: {cfg.teacher_checkpoint} does not fit "
                         f"{cfg.teacher} with {num_classes} classes: {str(err).splitlines()[0]}") from None
    return prepare_for_inference(teacher, device, cfg.teacher_compile)


def prepare_for_inference(teacher: nn.Module, device: torch.device, compile: str = "off") -> nn.Module:
    """Eval mode, frozen, channels_last on CUDA (NHWC convolutions), compiled when `compile` says so
    (auto = on CUDA only, as `model.compile`)."""
    teacher.to(device).eval().requires_grad_(False)
    if device.type == "cuda":
        teacher = teacher.to(memory_format=torch.channels_last)
    if wants_compile(compile, device):
        teacher = torch.compile(teacher)
    return teacher
