"""Fused AdamW (issue #8): used where torch has it, refused with a clear error where forced and absent."""

import pytest
import torch

from fastdeit.config.schema import ModelConfig, OptimizerConfig
from fastdeit.models import create_model
from fastdeit.train.optim import build_optimizer, use_fused

TINY = ModelConfig(name="deit_tiny_patch16_224", patch_size=8, embed_dim=32, depth=1, num_heads=2)


def test_auto_uses_fused_adamw_on_cpu_and_cuda_and_off_disables_it():
    model = create_model(TINY, 4, 32)
    assert build_optimizer(model, OptimizerConfig(), 64, torch.device("cpu")).defaults["fused"] is True
    assert use_fused(OptimizerConfig(fused="auto"), torch.device("cuda"))
    assert not build_optimizer(model, OptimizerConfig(fused="off"), 64, torch.device("cpu")).defaults["fused"]


def test_fused_on_for_a_device_without_it_is_refused():
    with pytest.raises(ValueError, match="optim.fused = 'on'.*meta"):
        use_fused(OptimizerConfig(fused="on"), torch.device("meta"))
    assert not use_fused(OptimizerConfig(fused="auto"), torch.device("meta"))


def test_fused_step_equals_the_plain_step():
    torch.manual_seed(0)
    a, b = create_model(TINY, 4, 32), create_model(TINY, 4, 32)
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    for model, fused in ((a, "on"), (b, "off")):
        opt = build_optimizer(model, OptimizerConfig(fused=fused), 64, torch.device("cpu"))
        for _ in range(2):
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            opt.zero_grad()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
