"""The embedded demo dataset: complete, byte-identical on regeneration, never half-written."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from torchvision.datasets import ImageFolder

from fastdeit.data import demo
from fastdeit.data.demo import ensure_demo_dataset


SMALL = dict(train_per_class=60, val_per_class=10)  # the full set is 300 + 50 per class


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> demo.DemoDataset:
    return ensure_demo_dataset(tmp_path_factory.mktemp("demo") / "ds", **SMALL)


def test_layout_is_two_imagefolders_of_ten_shape_classes(generated: demo.DemoDataset) -> None:
    train, val = ImageFolder(str(generated.train_dir)), ImageFolder(str(generated.val_dir))
    assert generated.num_classes == 10 == len(train.classes) == len(val.classes)
    # ImageFolder's sorted class order is the order of class_names
    assert [c.split("_", 1)[1] for c in train.classes] == list(generated.class_names)
    assert len(train) == 10 * 60 and len(val) == 10 * 10
    assert sorted(set(train.targets)) == list(range(10))
    with Image.open(train.samples[0][0]) as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (demo.IMAGE_SIZE,) * 2)


def test_second_call_reuses_the_dataset(generated: demo.DemoDataset) -> None:
    marker = generated.root / demo.MARKER
    before = marker.stat().st_mtime_ns
    again = ensure_demo_dataset(generated.root, **SMALL)
    assert again == generated
    assert marker.stat().st_mtime_ns == before


def test_smaller_sets_are_prefixes_of_larger_ones(
    generated: demo.DemoDataset, tmp_path: Path
) -> None:
    small = _files(ensure_demo_dataset(tmp_path / "small", train_per_class=7, val_per_class=3).root)
    large = _files(generated.root)
    images = [name for name in small if name.endswith(".jpg")]
    assert len(images) == 10 * (7 + 3)
    assert all(small[name] == large[name] for name in images)


def test_images_differ_and_are_not_blank(generated: demo.DemoDataset) -> None:
    paths = sorted(generated.train_dir.rglob("*.jpg"))[:50]
    assert len({p.read_bytes() for p in paths}) == len(paths)
    with Image.open(paths[0]) as img:
        lo, hi = img.convert("L").getextrema()
    assert hi - lo > 60


def test_mean_colour_does_not_predict_the_class(generated: demo.DemoDataset) -> None:
    """Class is the shape: a nearest-class-mean colour classifier is close to chance (10%)."""
    import numpy as np

    def mean_colours(split: Path) -> tuple[np.ndarray, np.ndarray]:
        samples = ImageFolder(str(split)).samples
        x = [np.asarray(Image.open(p), dtype=np.float32).mean((0, 1)) for p, _ in samples]
        return np.stack(x), np.array([y for _, y in samples])

    x, y = mean_colours(generated.train_dir)
    xv, yv = mean_colours(generated.val_dir)
    centres = np.stack([x[y == c].mean(0) for c in range(10)])
    predicted = ((xv[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    assert (predicted == yv).mean() < 0.3


def test_default_root_follows_fastdeit_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FASTDEIT_CACHE", str(tmp_path))
    assert demo.default_root() == tmp_path / "demo"


def test_killed_generation_leaves_no_dataset_and_rerun_is_byte_identical(
    generated: demo.DemoDataset, tmp_path: Path
) -> None:
    root = tmp_path / "ds"
    code = (
        "from fastdeit.data.demo import ensure_demo_dataset; "
        f"ensure_demo_dataset({str(root)!r}, **{SMALL!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        # kill it as soon as it has written some images
        while not any(tmp_path.glob(".ds.tmp-*/train/00_circle/*.jpg")):
            assert proc.poll() is None, "generation ended before it could be interrupted"
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    assert not root.exists()  # nothing half-written under the real name
    assert list(tmp_path.glob(".ds.tmp-*"))  # the partial work was only in a temporary dir

    again = ensure_demo_dataset(root, **SMALL)
    assert not list(tmp_path.glob(".ds.tmp-*"))  # the dead generator's leftovers are cleaned
    assert _files(again.root) == _files(generated.root)


def test_concurrent_callers_share_one_complete_dataset(tmp_path: Path) -> None:
    """All ranks of a job call ensure_demo_dataset at once: all must get the same full copy."""
    root = tmp_path / "ds"
    code = (
        "from fastdeit.data.demo import ensure_demo_dataset; "
        f"ensure_demo_dataset({str(root)!r}, train_per_class=10, val_per_class=2)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
    assert [p.wait() for p in procs] == [0, 0, 0]
    assert len(list(root.rglob("*.jpg"))) == 10 * (10 + 2)
    assert not list(tmp_path.glob(".ds.tmp-*"))


def test_outdated_version_is_regenerated(generated: demo.DemoDataset, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    marker = json.loads((generated.root / demo.MARKER).read_text())
    marker["version"] = demo.VERSION - 1
    (root / demo.MARKER).write_text(json.dumps(marker))
    (root / "stale.txt").write_text("from an old format")
    ensure_demo_dataset(root, **SMALL)
    assert not (root / "stale.txt").exists()
    assert json.loads((root / demo.MARKER).read_text())["version"] == demo.VERSION
    assert not list(tmp_path.glob(".ds.tmp-*")) and not list(tmp_path.glob(".ds.old-*"))


def test_foreign_directory_is_refused_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(ValueError, match=str(tmp_path)):
        ensure_demo_dataset(tmp_path, **SMALL)
    assert (tmp_path / "mine.txt").read_text() == "user data"
