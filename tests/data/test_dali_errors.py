"""Asking for the DALI loader where it cannot run says why and how to fix it, before any work.

"DALI not installed" is produced for real: the module is hidden from the import system (or
really absent), the way Python reports an uninstalled package.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.plan import PlanConfig
from tests.extras import has_extra

HAVE_DALI = has_extra("nvidia.dali", "dali")
CFG = PlanConfig(img_size=32, global_batch=16, mix_group=8, epoch_multiple=16, repeated_aug=1)


@pytest.fixture(scope="module")
def beton(tmp_path_factory):
    path = tmp_path_factory.mktemp("dali_err") / "tiny.beton"
    rng = np.random.default_rng(0)
    with BetonWriter(path, "jpg", max_resolution=None) as w:
        for k in range(16):
            w.add(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), k % 2)
    return BetonReader(path)


def test_missing_dali_says_how_to_install_it(beton, monkeypatch):
    from fastdeit.data.dali_loader import DaliLoader

    for name in [m for m in sys.modules if m == "nvidia.dali" or m.startswith("nvidia.dali.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "nvidia.dali", None)  # as if the wheel were not installed
    with pytest.raises(ValueError, match=r"pip install 'fastdeit\[dali\]'.*nvidia-dali-cuda130"):
        DaliLoader(beton, CFG)


@pytest.mark.skipif(not HAVE_DALI, reason="nvidia.dali not installed")
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_decode_without_a_gpu_points_to_the_cpu_twin(beton):
    from fastdeit.data.dali_loader import DaliLoader
    from fastdeit.data.dali_pipeline import DaliDecoder, DaliSettings

    with pytest.raises(ValueError, match=r"no CUDA device.*device='cpu'.*data\.loader=cpu"):
        DaliLoader(beton, CFG, device="cuda")
    with pytest.raises(ValueError, match="mixed.*no CUDA device"):
        DaliDecoder(beton, 32, 16, DaliSettings("mixed"))


@pytest.mark.skipif(not HAVE_DALI, reason="nvidia.dali not installed")
def test_bad_arguments_are_refused(beton):
    from fastdeit.data.dali_loader import DaliLoader

    with pytest.raises(ValueError, match="'cpu' .*'cuda"):
        DaliLoader(beton, CFG, device="meta")
    with pytest.raises(ValueError, match="prefetch"):
        DaliLoader(beton, CFG, prefetch=-1)
    with pytest.raises(ValueError, match="hw_decoder_load"):
        DaliLoader(beton, CFG, hw_decoder_load=-0.1)
    with pytest.raises(ValueError, match="no step of data.global_batch"):
        DaliLoader(beton, PlanConfig(img_size=32, global_batch=32, mix_group=8, epoch_multiple=16))
