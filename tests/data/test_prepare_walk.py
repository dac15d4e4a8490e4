"""prepare's input walk (issue 16, point 3): directory symlinks followed at most once, what was
left out said, empty files reported as empty."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from fastdeit.cli import main
from fastdeit.data.beton import BetonReader
from fastdeit.data.beton import layout as L
from fastdeit.data.prepare import image_folder_items, prepare_dataset
from fastdeit.data.sample_images import photo_crops

FAST = dict(max_res=32, page_size=L.MIN_PAGE_SIZE, progress=False)


def image(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo_crops(1, (40, 32), seed=seed)[0]).save(path)
    return path


def test_a_symlink_loop_adds_nothing_and_is_reported(tmp_path, capsys):
    root = tmp_path / "T"
    image(root / "a" / "x.png", 0)
    image(root / "b" / "y.png", 1)
    os.symlink("..", root / "b" / "up")  # T/b/up -> T: would list a/x.png again, as class b
    skipped: list[tuple[str, str]] = []
    items = image_folder_items(root, skipped)
    assert items == [(str(root / "a" / "x.png"), 0), (str(root / "b" / "y.png"), 1)]
    assert [p for p, _ in skipped] == [str(root / "b" / "up")] and "already read" in skipped[0][1]

    assert main(["prepare", str(root), str(tmp_path / "t.beton"), "--max-res", "32", "--no-progress"]) == 0
    out = capsys.readouterr()
    assert f"skipped folder {root / 'b' / 'up'}: links to {root.resolve()}" in out.err
    assert BetonReader(tmp_path / "t.beton").labels.tolist() == [0, 1]


def test_a_linked_folder_is_read_once(tmp_path):
    shared = tmp_path / "shared"
    image(shared / "s.png", 2)
    root = tmp_path / "T"
    image(root / "a" / "x.png", 0)
    image(root / "b" / "y.png", 1)
    os.symlink(shared, root / "a" / "ext")  # followed: a folder outside the tree
    os.symlink(shared, root / "b" / "ext")  # the same folder again: left out, reported
    skipped: list[tuple[str, str]] = []
    items = image_folder_items(root, skipped)
    assert items == [(str(root / "a" / "x.png"), 0), (str(root / "a" / "ext" / "s.png"), 0),
                     (str(root / "b" / "y.png"), 1)]  # torchvision's order: sorted (folder, file)
    assert [p for p, _ in skipped] == [str(root / "b" / "ext")]


def test_a_loop_inside_a_class_terminates(tmp_path):
    root = tmp_path / "T"
    image(root / "a" / "deep" / "x.png", 0)
    os.symlink("../..", root / "a" / "deep" / "back")  # -> T
    os.symlink("..", root / "a" / "deep" / "here")  # -> T/a
    skipped: list[tuple[str, str]] = []
    assert image_folder_items(root, skipped) == [(str(root / "a" / "deep" / "x.png"), 0)]
    assert sorted(Path(p).name for p, _ in skipped) == ["back", "here"]


def test_an_empty_file_is_reported_as_empty(tmp_path):
    root = tmp_path / "T"
    image(root / "a" / "x.png", 0)
    (root / "a" / "empty.JPEG").write_bytes(b"")
    (root / "a" / "text.jpg").write_bytes(b"not an image at all")
    report = prepare_dataset(root, tmp_path / "t.beton", **FAST)
    reasons = dict(report.skipped)
    assert reasons[str(root / "a" / "empty.JPEG")] == "empty file (0 bytes)"
    assert "BytesIO" not in reasons[str(root / "a" / "text.jpg")]
    assert report.num_written == 1
