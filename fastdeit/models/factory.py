"""DeiT-Ti/S/B (and distilled twins) from timm's registry, configured by `ModelConfig`.

timm's VisionTransformer uses truncated-normal init (std .02) and, where torch has it,
`F.scaled_dot_product_attention` (its `fused_attn` path) — the FlashAttention/cuDNN kernels on GPU.

Any other timm model (a convnet teacher such as `test_resnet` or `regnety_160`) builds too, at
timm's own architecture: image size and the ViT fields (patch_size, embed_dim, depth, num_heads)
are passed only to the ViT families, which take them; setting them for another model is an error.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from fastdeit.config.schema import ModelConfig

# deit main.py builds the optimizer with timm's filter_bias_and_bn, skipping weight decay on
# 1-D parameters (biases, norm weights) and on model.no_weight_decay() = pos_embed, cls_token,
# dist_token.
NO_WEIGHT_DECAY_NAMES = ("pos_embed", "cls_token", "dist_token")


# timm modules whose models take img_size, patch_size, embed_dim, depth and num_heads (VisionTransformer)
VIT_MODULES = ("vision_transformer", "deit")


def is_vit_family(name: str) -> bool:
    return timm.models.is_model_in_modules(name, VIT_MODULES)


def architecture_overrides(cfg: ModelConfig) -> dict[str, int]:
    fields = {"patch_size": cfg.patch_size, "embed_dim": cfg.embed_dim, "depth": cfg.depth,
              "num_heads": cfg.num_heads}
    return {k: v for k, v in fields.items() if v > 0}


def create_model(cfg: ModelConfig, num_classes: int, img_size: int) -> nn.Module:
    """A freshly initialised timm model (no pretrained download), optionally fine-tune-initialised."""
    if cfg.name not in timm.list_models():
        raise ValueError(f"model.name = {cfg.name!r}: not a timm model "
                         f"(e.g. {', '.join(timm.list_models('deit_*')[:4])}, ...)")
    if is_vit_family(cfg.name):
        shape = {"img_size": img_size, **architecture_overrides(cfg)}
    else:  # a convnet is size-agnostic (global pooling); its width and depth are its name's
        overrides = architecture_overrides(cfg)
        if overrides:
            keys = ", ".join(f"model.{k} = {v}" for k, v in overrides.items())
            raise ValueError(f"{keys}: only ViT/DeiT models (timm modules {', '.join(VIT_MODULES)}) take "
                             f"these; {cfg.name!r} is not one: pick a timm variant of the size you want "
                             "and leave them 0")
        shape = {}
    model = timm.create_model(
        cfg.name,
        pretrained=False,
        num_classes=num_classes,
        drop_rate=cfg.drop,
        drop_path_rate=cfg.drop_path,
        **shape,
    )
    if cfg.init_checkpoint:
        load_finetune_weights(model, Path(cfg.init_checkpoint))
    return model


def is_distilled(model: nn.Module) -> bool:
    return hasattr(model, "head_dist")


def load_finetune_weights(model: nn.Module, path: Path) -> None:
    """deit main.py --finetune: drop a mismatched head, interpolate pos_embed to the new grid."""
    from timm.layers import resample_abs_pos_embed

    from fastdeit.train.safe_load import load_weights_file

    blob = load_weights_file(path, "model.init_checkpoint")
    state = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"model.init_checkpoint: {path} holds no state dict")
    own = model.state_dict()
    for key in ("head.weight", "head.bias", "head_dist.weight", "head_dist.bias"):
        if key in state and key in own and state[key].shape != own[key].shape:
            del state[key]
    if "pos_embed" in state and state["pos_embed"].shape != own["pos_embed"].shape:
        num_prefix = getattr(model, "num_prefix_tokens", 1)
        grid = model.patch_embed.grid_size
        state["pos_embed"] = resample_abs_pos_embed(
            state["pos_embed"], new_size=list(grid), num_prefix_tokens=num_prefix, interpolation="bicubic"
        )
    missing, unexpected = model.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected]
    if unexpected:
        raise ValueError(f"model.init_checkpoint: {path} has keys this model lacks: {unexpected[:5]}")
    if any(not k.startswith("head") for k in missing):
        raise ValueError(f"model.init_checkpoint: {path} lacks keys: {[k for k in missing][:5]}")


def param_groups_for_weight_decay(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or name in NO_WEIGHT_DECAY_NAMES:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": no_decay, "weight_decay": 0.0},
        {"params": decay, "weight_decay": weight_decay},
    ]
