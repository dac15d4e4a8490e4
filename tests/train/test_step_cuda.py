"""The training step never waits for the host on CUDA (issue #8): no .item(), no data-dependent
shapes, no blocking copies — checked with torch's sync debug mode, which raises on any sync."""

import pytest
import torch

from fastdeit.config.schema import DistillConfig, ModelConfig, OptimizerConfig, RunConfig
from fastdeit.models import create_model
from fastdeit.train.ema import build_ema
from fastdeit.train.optim import build_optimizer
from fastdeit.train.step import StepContext, train_step

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("kind", ["none", "hard", "soft"])
def test_bf16_step_with_clipping_ema_and_distillation_does_not_synchronise(kind):
    dev = torch.device("cuda")
    name = "deit_tiny_distilled_patch16_224" if kind != "none" else "deit_tiny_patch16_224"
    model = create_model(ModelConfig(name=name), 100, 224).to(dev).to(memory_format=torch.channels_last)
    model.train()
    optimizer = build_optimizer(model, OptimizerConfig(), 256, dev)
    ctx = StepContext(model=model, optimizer=optimizer, scaler=None, ema=build_ema(model, RunConfig()),
                      teacher=None, distill=DistillConfig(kind=kind), precision="bf16", clip_grad=5.0,
                      device=dev)
    images = torch.randn(32, 3, 224, 224, device=dev).contiguous(memory_format=torch.channels_last)
    targets = torch.softmax(torch.randn(32, 100, device=dev), 1)
    teacher = torch.randn(32, 100, device=dev) if kind != "none" else None
    loss_sum = torch.zeros((), device=dev)
    loss_sum += train_step(ctx, images, targets, 1e-4, teacher)  # first step: optimizer state is created
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            loss_sum += train_step(ctx, images, targets, 1e-4, teacher)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss_sum).item()
