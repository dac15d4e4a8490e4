"""The Triton kernel tests run on CUDA where there is one, else on the CPU under Triton's
interpreter. TRITON_INTERPRET must be set before the kernels are decorated (at their import),
so it is set here, when this folder is collected, and only on a machine without CUDA (where no
other test can want compiled Triton kernels)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton")


@pytest.fixture(scope="session")
def device() -> torch.device:
    """Where the kernels run: CUDA, or the CPU through the interpreter."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="session")
def small_photos() -> torch.Tensor:
    """8 uint8 crops (3 x 32 x 40, channels_last as the loader hands them) of scikit-learn's two
    photographs: small enough for the interpreter, real enough for histograms and edges."""
    datasets = pytest.importorskip("sklearn.datasets")
    china, flower = datasets.load_sample_images().images  # 427 x 640 each
    corners = [(40, 300), (250, 420), (100, 150), (10, 40)]
    crops = [photo[y:y + 32, x:x + 40] for photo in (china, flower) for y, x in corners]
    nhwc = torch.from_numpy(np.stack(crops))
    return nhwc.permute(0, 3, 1, 2)  # N x 3 x H x W view of NHWC memory
