"""Real photographs for the augmentation tests: crops of scikit-learn's two sample images."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# The tests import their shared timm helpers (augment_reference.py) from this directory, which
# pytest's importlib import mode does not put on sys.path.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def photos() -> dict[tuple[int, int], list[np.ndarray]]:
    """HWC uint8 crops keyed by (height, width): 64x64, 224x224 and a non-square 56x72."""
    datasets = pytest.importorskip("sklearn.datasets")
    china, flower = datasets.load_sample_images().images  # 427 x 640 each
    return {
        (64, 64): [china[40:104, 300:364].copy(), flower[200:264, 250:314].copy()],
        (224, 224): [china[100:324, 150:374].copy(), flower[60:284, 300:524].copy()],
        (56, 72): [china[250:306, 420:492].copy(), flower[10:66, 40:112].copy()],
    }
