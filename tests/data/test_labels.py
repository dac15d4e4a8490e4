"""Labels are class indices 0..C-1 (issue 16, point 1): checked when a .beton is written (prepare,
list files included), when one is opened for training or evaluation, and reported by inspect."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastdeit.cli import main
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.beton import layout as L
from fastdeit.data.labels import MAX_CLASSES, check_labels
from fastdeit.data.prepare import prepare_dataset
from fastdeit.data.sample_images import photo_crops

PAGE = L.MIN_PAGE_SIZE


def write_beton(path: Path, labels: list[int]) -> Path:
    with BetonWriter(path, page_size=PAGE) as w:
        for im in photo_crops(len(labels), (40, 32)):
            w.add(im, 0)
    rewrite_labels(path, labels)
    return path


def rewrite_labels(path: Path, labels: list[int]) -> None:
    """Put labels no writer would accept into a valid file (a file from elsewhere, or damaged)."""
    with BetonReader(path, check_labels=False) as r:
        start, dtype, n = L.metadata_start(r.num_fields), r.meta_dtype, len(r)
        name = dtype.names[r.field_names.index(r.label_field)]
    raw = bytearray(path.read_bytes())
    meta = np.frombuffer(raw, dtype, count=n, offset=start)
    meta[name] = np.array(labels, dtype=np.int64)
    path.write_bytes(bytes(raw))


@pytest.fixture()
def images(tmp_path) -> list[Path]:
    paths = []
    for i, im in enumerate(photo_crops(3, (48, 40))):
        p = tmp_path / f"im{i}.png"
        Image.fromarray(im).save(p)
        paths.append(p)
    return paths


@pytest.mark.parametrize("label, why", [(-1, "negative"), (10**12, "too large"), (2**63, "does not fit"),
                                        (2**63 - 1, "too large"), (MAX_CLASSES, "too large")])
def test_prepare_refuses_a_list_label_by_line(tmp_path, images, capsys, label, why):
    lst = tmp_path / "list.txt"
    lst.write_text(f"{images[0].name},0\n{images[1].name},{label}\n")
    assert main(["prepare", str(lst), str(tmp_path / "o.beton")]) == 2
    err = capsys.readouterr().err
    assert f"list.txt:2: label {label}" in err and why in err and "Traceback" not in err
    assert not (tmp_path / "o.beton").exists()


def test_prepare_accepts_the_largest_class_index(tmp_path, images):
    lst = tmp_path / "list.txt"
    lst.write_text(f"{images[0].name},{MAX_CLASSES - 1}\n{images[1].name},3\n")
    report = prepare_dataset(lst, tmp_path / "o.beton", max_res=32, page_size=PAGE, progress=False)
    assert report.num_classes == MAX_CLASSES
    assert BetonReader(tmp_path / "o.beton").num_classes == MAX_CLASSES


def test_writer_refuses_a_bad_label(tmp_path):
    with BetonWriter(tmp_path / "w.beton", page_size=PAGE) as w:
        w.add(photo_crops(1, (20, 20))[0], 1)
        with pytest.raises(ValueError, match=r"w.beton: sample 1: label -3 is negative"):
            w.add(photo_crops(1, (20, 20))[0], -3)


@pytest.mark.parametrize("labels, sample, why", [([0, 1, -1, 1], 2, "negative"), ([-2, -2], 0, "negative"),
                                                 ([0, 10**6, 1], 1, "too large"),
                                                 ([0, 2**63 - 1], 1, "too large")])
def test_opening_for_training_names_the_file_and_sample(tmp_path, labels, sample, why):
    from fastdeit.train.data_source import build_train_data

    path = write_beton(tmp_path / "bad.beton", labels)
    with pytest.raises(ValueError, match=rf"bad.beton: sample {sample}: label .*{why}"):
        BetonReader(path)
    data = DataConfig(train=str(path), global_batch=2, workers=1, img_size=32)
    aug = AugmentConfig(mix_group=2)
    for loader in ("cpu", "reference"):
        data.loader = loader
        with pytest.raises(ValueError, match=rf"bad.beton: sample {sample}: label .*{why}"):
            build_train_data(data, aug, str(path), rank=0, world_size=1, seed=0, device=__import__("torch").device("cpu"))


def test_validation_labels_beyond_the_training_classes_are_refused():
    with pytest.raises(ValueError, match=r"val.beton: sample 2 has label 7, but the model has 5 classes"):
        check_labels(np.array([0, 4, 7]), "val.beton", num_classes=5)
    assert check_labels(np.array([0, 4, 3]), "val.beton", num_classes=5) == 5


def test_inspect_reports_bad_labels_and_fails(tmp_path, capsys):
    path = write_beton(tmp_path / "bad.beton", [0, -1, 3, 10**9])
    assert main(["inspect", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"BAD LABEL       {path}: sample 1: label -1 is negative" in out
    assert f"{path}: sample 3: label 1000000000 is too large" in out
    assert "classes         4" in out  # the histogram counts the good labels: 0 and 3
    assert main(["inspect", str(path), "--json"]) == 1
    s = json.loads(capsys.readouterr().out)
    assert s["labels"]["num_bad"] == 2 and [b["index"] for b in s["labels"]["bad"]] == [1, 3]
    assert s["label_histogram"] == [1, 0, 0, 1]


def test_inspect_verify_decodes_every_sample_and_names_the_bad_ones(tmp_path, capsys):
    path = write_beton(tmp_path / "d.beton", [0, 1, 2, 0, 1])
    with BetonReader(path) as r:
        soi, body = int(r.offsets[1]), int(r.offsets[3]) + int(r.sizes[3]) // 2
    raw = bytearray(path.read_bytes())
    raw[soi: soi + 2] = b"\x00\x00"  # sample 1: no SOI marker
    raw[body: body + 64] = b"\xff\xd9" * 32  # sample 3: EOI markers in the middle of the scan
    path.write_bytes(bytes(raw))

    assert main(["inspect", str(path)]) == 1  # the header check alone sees sample 1 as corrupt
    out = capsys.readouterr().out
    assert f"CORRUPT         {path}: sample 1: not a JPEG (no SOI marker)" in out and "slower GPU" not in out

    assert main(["inspect", str(path), "--verify", "--json"]) == 1
    v = json.loads(capsys.readouterr().out)["verify"]
    assert "sample 3" not in out  # decodable headers: only decoding finds sample 3
    assert v["checked"] == 5 and [b["index"] for b in v["bad"]] == [1, 3]
    assert main(["inspect", str(path), "--verify"]) == 1
    out = capsys.readouterr().out
    assert f"{path}: sample 1: corrupt JPEG data" in out and f"{path}: sample 3: corrupt JPEG data" in out


def test_inspect_export_writes_a_corrupt_sample_as_its_bytes(tmp_path, capsys):
    path = write_beton(tmp_path / "d.beton", [0, 1])
    with BetonReader(path) as r:
        soi = int(r.offsets[0])
    raw = bytearray(path.read_bytes())
    raw[soi: soi + 2] = b"\x00\x00"
    path.write_bytes(bytes(raw))
    main(["inspect", str(path), "--export", "2", str(tmp_path / "x")])
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["000000_label0.corrupt.jpg", "000001_label1.png"]
