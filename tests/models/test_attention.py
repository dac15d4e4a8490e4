"""The attention kernel SDPA really runs for fastdeit's models (observed, not assumed)."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from fastdeit.config.schema import ModelConfig
from fastdeit.models import create_model
from fastdeit.models.attention import FUSED_BACKENDS, backend_of, sdpa_backend_used


def forward_backward(name: str, device: str, dtype: torch.dtype, img_size: int, **arch):
    model = create_model(ModelConfig(name=name, drop_path=0.0, **arch), 10, img_size).to(device)
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, img_size, img_size, device=device).contiguous(memory_format=torch.channels_last)

    def run():
        with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
            out = model(x)
        (out[0] if isinstance(out, tuple) else out).float().sum().backward()

    return run


def test_backend_names_are_read_from_aten_ops():
    assert backend_of({"_scaled_dot_product_flash_attention.default", "mm.default"}) == "flash"
    assert backend_of({"_scaled_dot_product_cudnn_attention_backward.default"}) == "cudnn"
    assert backend_of({"bmm.default", "_softmax.default"}) == "math"


@pytest.mark.parametrize("name", ["deit_tiny_patch16_224", "deit_tiny_distilled_patch16_224"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_training_step_runs_the_fused_flash_kernel(name, dtype):
    run = forward_backward(name, "cpu", dtype, 32, patch_size=8, embed_dim=64, depth=1, num_heads=2)
    assert sdpa_backend_used(run) == "flash"  # aten::_scaled_dot_product_flash_attention_for_cpu


def test_forcing_the_math_backend_is_detected():
    run = forward_backward("deit_tiny_patch16_224", "cpu", torch.float32, 32, patch_size=8, embed_dim=64,
                           depth=1, num_heads=2)
    with sdpa_kernel([SDPBackend.MATH]):
        assert sdpa_backend_used(run) == "math"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224",
                                  "deit_base_distilled_patch16_224"])
def test_cuda_bf16_step_runs_flash_or_cudnn_attention(name):
    # head dim 64, bf16, 197/198 tokens: flash (FlashAttention-2) or cuDNN's fused attention are the
    # fastest kernels on Ampere/Hopper; the memory-efficient and math paths are slower fallbacks.
    backend = sdpa_backend_used(forward_backward(name, "cuda", torch.bfloat16, 224))
    assert backend in ("flash", "cudnn"), backend
    assert backend in FUSED_BACKENDS
