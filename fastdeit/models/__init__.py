"""DeiT models from timm."""

from fastdeit.models.factory import create_model, param_groups_for_weight_decay

__all__ = ["create_model", "param_groups_for_weight_decay"]
