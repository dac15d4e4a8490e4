"""Typed per-component configs, presets and overrides."""

from fastdeit.config.schema import (
    AugmentConfig,
    DataConfig,
    DistillConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
)

__all__ = [
    "AugmentConfig", "DataConfig", "DistillConfig", "ModelConfig", "OptimizerConfig",
    "RunConfig", "ScheduleConfig", "TrainConfig",
]
