"""benchmarks/small_photos.py makes the small-photo .beton of the loader figures with `fastdeit prepare`."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fastdeit.data.beton import BetonReader

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "small_photos.py"


def test_small_photos_have_sides_100_to_420_px(tmp_path):
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("small_photos", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main([str(tmp_path / "small.beton"), "--images", "24", "--max-res", "512"])
    r = BetonReader(out)
    assert len(r) == 24 and r.is_jpeg.all() and r.num_classes == 10
    sides = np.concatenate([r.widths, r.heights])
    assert sides.min() >= 100 and sides.max() <= 420 and len(np.unique(r.widths)) > 5
