"""`fastdeit inspect`: summary text and JSON, export of decoded samples, clean errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fastdeit.cli import main
from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.beton import layout as L
from fastdeit.data.inspect import summarize
from fastdeit.data.sample_images import photo_crops


@pytest.fixture(scope="module")
def beton(tmp_path_factory):
    path = tmp_path_factory.mktemp("insp") / "d.beton"
    ims = photo_crops(3, (40, 30)) + photo_crops(2, (30, 50), seed=1)
    with BetonWriter(path, image_mode="smart", smart_threshold=4000, page_size=L.MIN_PAGE_SIZE) as w:
        for im, lab in zip(ims, [0, 2, 2, 4, 2]):
            w.add(im, lab)
    return path


def test_summary_values(beton):
    s = summarize(BetonReader(beton))
    assert s["num_samples"] == 5
    assert s["fields"] == [{"name": "image", "type": "rgb_image"}, {"name": "label", "type": "int"}]
    assert s["label_histogram"] == [1, 0, 3, 0, 1] and s["num_classes"] == 5
    assert (s["num_jpeg"], s["num_raw"]) == (2, 3)  # 30x50x3 = 4500 bytes > threshold
    assert s["width"]["min"] == 30 and s["width"]["max"] == 40
    assert s["height"]["max"] == 50
    assert s["bytes_per_sample"]["max"] == 40 * 30 * 3
    assert s["file_bytes"] == beton.stat().st_size and s["format_version"] == 2
    assert s["jpeg_check"] == {"checked": 2, "baseline_420": 2, "other": 0, "corrupt": 0, "corrupt_samples": []}
    assert s["labels"] == {"num_bad": 0, "bad": []}


def test_cli_text_json_and_export(beton, tmp_path, capsys):
    assert main(["inspect", str(beton)]) == 0
    text = capsys.readouterr().out
    assert "samples         5 (2 JPEG, 3 raw)" in text and "0:1 1:0 2:3 3:0 4:1" in text

    assert main(["inspect", str(beton), "--json", "--export", "3", str(tmp_path / "exp")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_samples"] == 5 and len(data["exported"]) == 3
    r = BetonReader(beton)
    files = sorted((tmp_path / "exp").iterdir())
    assert [f.name for f in files] == ["000000_label0.png", "000001_label2.png", "000002_label2.png"]
    for i, f in enumerate(files):
        np.testing.assert_array_equal(np.asarray(Image.open(f)), r.decode(i))


def test_cli_refuses_bad_file_cleanly(tmp_path, beton, capsys):
    bad = tmp_path / "cut.beton"
    bad.write_bytes(beton.read_bytes()[:5000])
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "cut.beton" in err and "truncated" in err and "Traceback" not in err
    assert main(["inspect", str(tmp_path / "none.beton")]) == 2
    assert main(["inspect", str(beton), "--export", "x", str(tmp_path)]) == 2


def test_jpeg_check_flags_progressive_jpegs(tmp_path, capsys):
    import io

    im = photo_crops(1, (40, 30))[0]
    buf = io.BytesIO()
    Image.fromarray(im).save(buf, format="JPEG", progressive=True)
    path = tmp_path / "p.beton"
    with BetonWriter(path, page_size=L.MIN_PAGE_SIZE) as w:
        w.add_encoded(buf.getvalue(), mode=L.MODE_JPG, width=40, height=30, label=0)
        w.add(im, 1)
    assert summarize(BetonReader(path))["jpeg_check"] == {"checked": 2, "baseline_420": 1, "other": 1,
                                                          "corrupt": 0, "corrupt_samples": []}
    assert main(["inspect", str(path)]) == 0
    assert "1 of 2 checked are baseline 4:2:0; 1 are not" in capsys.readouterr().out
