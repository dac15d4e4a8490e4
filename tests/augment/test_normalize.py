"""uint8 -> normalised float channels_last, as torchvision ToTensor + Normalize."""

from __future__ import annotations

import pytest
import torch
from torchvision import transforms

from fastdeit.augment.normalize import normalize
from fastdeit.augment.ops import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD


def test_matches_torchvision_and_is_channels_last():
    x = torch.randint(0, 256, (4, 3, 10, 12), dtype=torch.uint8)
    out = normalize(x, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    ref = transforms.Normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)(x.float() / 255)
    assert torch.allclose(out, ref, atol=1e-6, rtol=0)
    assert out.is_contiguous(memory_format=torch.channels_last)
    bf16 = normalize(x, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and bf16.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(bf16, out.to(torch.bfloat16))


def test_refuses_bad_input():
    x = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="std"):
        normalize(x, (0, 0, 0), (1, 0, 1))
    with pytest.raises(ValueError, match="3 values"):
        normalize(x, (0, 0), (1, 1))
    with pytest.raises(ValueError, match="floating"):
        normalize(x, (0, 0, 0), (1, 1, 1), torch.int32)
    with pytest.raises(ValueError, match="uint8"):
        normalize(x.float(), (0, 0, 0), (1, 1, 1))
