"""`fastdeit prepare`: sources, odd real-world images, skip/fail, workers, atomic output, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastdeit.cli import main
from fastdeit.data.beton import BetonReader
from fastdeit.data.beton import layout as L
from fastdeit.data.image_io import jpeg_info
from fastdeit.data.prepare import image_folder_items, prepare_dataset
from fastdeit.data.sample_images import photo_crops, write_image_folder

PAGE = L.MIN_PAGE_SIZE
FAST = dict(max_res=64, page_size=PAGE, progress=False)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@pytest.fixture()
def folder(tmp_path) -> Path:
    write_image_folder(tmp_path / "src", num_classes=3, per_class=4, size=(96, 64))
    return tmp_path / "src"


def test_image_folder_classes_sorted_like_torchvision(tmp_path):
    for cls in ["zebra", "Apple", "mango", "apple"]:
        (tmp_path / "root" / cls / "sub").mkdir(parents=True)
        Image.fromarray(photo_crops(1, (32, 24))[0]).save(tmp_path / "root" / cls / "sub" / "x.jpeg")
        Image.fromarray(photo_crops(1, (32, 24))[0]).save(tmp_path / "root" / cls / "b.PNG")
        (tmp_path / "root" / cls / "notes.txt").write_text("not an image")
    items = image_folder_items(tmp_path / "root")
    # torchvision: classes sorted (case-sensitive), files by sorted os.walk, known extensions only
    assert [(Path(p).relative_to(tmp_path / "root").as_posix(), lab) for p, lab in items] == [
        ("Apple/b.PNG", 0), ("Apple/sub/x.jpeg", 0), ("apple/b.PNG", 1), ("apple/sub/x.jpeg", 1),
        ("mango/b.PNG", 2), ("mango/sub/x.jpeg", 2), ("zebra/b.PNG", 3), ("zebra/sub/x.jpeg", 3),
    ]  # fmt: skip


def test_prepare_folder_labels_sizes_and_baseline_jpeg(tmp_path, folder):
    out = tmp_path / "train.beton"
    report = prepare_dataset(folder, out, quality=90, **FAST)
    assert (report.num_written, report.num_skipped, report.num_classes) == (12, 0, 3)
    r = BetonReader(out)
    assert r.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert (np.maximum(r.widths, r.heights) == 64).all()
    assert r.is_jpeg.all()
    for i in range(len(r)):
        info = jpeg_info(r.image_bytes(i))
        assert info["baseline"] and [c[1:] for c in info["components"]] == [(2, 2), (1, 1), (1, 1)]
    # same pixels as the source image downscaled
    src = np.asarray(Image.open(sorted((folder / "class_01").iterdir())[2]).convert("RGB").resize((64, 42), Image.Resampling.BOX))
    assert psnr(r.decode(6), src) > 28
    assert not list(tmp_path.glob("train.beton.*"))  # no temp, journal or records left


def test_prepare_from_list_file_with_limit(tmp_path, folder):
    (tmp_path / "val").mkdir()
    lines = ["# path,label", ""]
    for k, p in enumerate(sorted(folder.rglob("*.JPEG"))[:5]):
        dst = tmp_path / "val" / f"ILSVRC, val {k}.JPEG"  # a comma inside the name
        dst.write_bytes(p.read_bytes())
        lines.append(f"val/{dst.name},{(7 * k) % 5}")
    lst = tmp_path / "val.txt"
    lst.write_text("\n".join(lines) + "\n")
    r = BetonReader(prepare_dataset(lst, tmp_path / "val.beton", limit=4, **FAST).out)
    assert r.labels.tolist() == [0, 2, 4, 1]

    lst.write_text("val/a.JPEG;3\n")
    with pytest.raises(ValueError, match=r"val.txt:1: expected 'path,label'"):
        prepare_dataset(lst, tmp_path / "x.beton", **FAST)
    lst.write_text("val/a.JPEG,cat\n")
    with pytest.raises(ValueError, match="not an integer"):
        prepare_dataset(lst, tmp_path / "x.beton", **FAST)
    lst.write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not a list")
    with pytest.raises(ValueError, match="not a text file"):
        prepare_dataset(lst, tmp_path / "x.beton", **FAST)


def _odd_images(d: Path) -> dict[str, np.ndarray]:
    """The kinds of files real ImageNet holds; returns the expected upright RGB of each."""
    d.mkdir(parents=True)
    base = photo_crops(1, (60, 40), seed=3)[0]
    expect = {}
    Image.fromarray(base).convert("CMYK").save(d / "a_cmyk.JPEG", quality=95)
    expect["a_cmyk"] = base
    gray = np.asarray(Image.fromarray(base).convert("L"))
    Image.fromarray(gray).save(d / "b_gray.JPEG", quality=95)
    expect["b_gray"] = np.repeat(gray[:, :, None], 3, axis=2)
    Image.fromarray(base).save(d / "c_png.JPEG", format="PNG")
    expect["c_png"] = base
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    Image.fromarray(base).save(d / "d_exif.JPEG", quality=95, exif=exif)
    expect["d_exif"] = np.rot90(base, k=-1)
    Image.fromarray(base).save(d / "e_progressive.JPEG", quality=95, progressive=True)
    expect["e_progressive"] = base
    rgba = np.dstack([base, np.full(base.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(d / "f_rgba.png")
    expect["f_rgba"] = base
    huge = np.asarray(Image.fromarray(base).resize((3000, 2000), Image.Resampling.BICUBIC))
    Image.fromarray(huge).save(d / "g_huge.JPEG", quality=90)
    expect["g_huge"] = np.asarray(Image.fromarray(huge).resize((60, 40), Image.Resampling.BOX))
    return expect


def test_odd_inputs_are_upright_rgb(tmp_path):
    expect = _odd_images(tmp_path / "src" / "odd")
    good = (tmp_path / "src" / "odd" / "e_progressive.JPEG").read_bytes()
    (tmp_path / "src" / "odd" / "x_truncated.JPEG").write_bytes(good[: len(good) // 2])
    (tmp_path / "src" / "odd" / "y_empty.JPEG").write_bytes(b"")
    (tmp_path / "src" / "odd" / "z_text.jpg").write_text("<html>404</html>")
    report = prepare_dataset(tmp_path / "src", tmp_path / "odd.beton", max_res=60, page_size=PAGE, progress=False)
    assert sorted(Path(p).name for p, _ in report.skipped) == ["x_truncated.JPEG", "y_empty.JPEG", "z_text.jpg"]
    assert all(reason for _, reason in report.skipped)
    r = BetonReader(report.out)
    assert len(r) == len(expect) == report.num_written
    for i, (name, want) in enumerate(sorted(expect.items())):
        got = r.decode(i)
        assert got.shape == want.shape, name
        assert psnr(got, want) > 25, name


def test_on_error_fail_names_the_file(tmp_path, folder):
    bad = folder / "class_01" / "img_0002.JPEG"
    bad.write_bytes(bad.read_bytes()[:300])
    out = tmp_path / "o.beton"
    with pytest.raises(ValueError, match="img_0002.JPEG"):
        prepare_dataset(folder, out, on_error="fail", chunk_size=2, **FAST)
    assert not out.exists()
    rep = prepare_dataset(folder, out, on_error="skip", resume=True, chunk_size=2, **FAST)
    assert [Path(p).name for p, _ in rep.skipped] == ["img_0002.JPEG"]
    assert rep.resumed_samples == 6  # the three chunks before the bad file (index 6) were kept
    assert BetonReader(out).labels.tolist() == [0] * 4 + [1] * 3 + [2] * 4


def test_workers_write_the_same_file(tmp_path, folder):
    (folder / "class_00" / "img_0001.JPEG").write_bytes(b"broken")
    a = prepare_dataset(folder, tmp_path / "a.beton", workers=1, chunk_size=3, mode="proportion", **FAST)
    b = prepare_dataset(folder, tmp_path / "b.beton", workers=2, chunk_size=3, mode="proportion", **FAST)
    assert a.num_skipped == b.num_skipped == 1
    assert a.out.read_bytes() == b.out.read_bytes()


def test_resume_after_kill_gives_the_same_file(tmp_path, folder):
    clean = prepare_dataset(folder, tmp_path / "clean.beton", chunk_size=2, **FAST).out
    out = tmp_path / "killed.beton"
    script = textwrap.dedent(
        f"""
        import os, signal
        from fastdeit.data.prepare import prepare_dataset
        def die(n):
            if n == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        prepare_dataset({str(folder)!r}, {str(out)!r}, max_res=64, page_size={PAGE}, progress=False,
                        chunk_size=2, on_chunk_committed=die)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert not out.exists()
    partial = Path(str(out) + ".partial")
    journal = Path(str(out) + ".journal")
    assert [json.loads(x)["chunk"] for x in journal.read_text().splitlines()[1:]] == [0, 1, 2]
    # what a kill during the next chunk leaves: unjournaled data and a torn journal line
    with open(partial, "ab") as f:
        f.write(os.urandom(5000))
    with open(journal, "a") as f:
        f.write('{"chunk": 3, "reco')

    with pytest.raises(ValueError, match="--resume"):
        prepare_dataset(folder, out, chunk_size=2, **FAST)
    with pytest.raises(ValueError, match="quality"):
        prepare_dataset(folder, out, chunk_size=2, resume=True, quality=80, **FAST)

    report = prepare_dataset(folder, out, chunk_size=2, resume=True, **FAST)
    assert report.resumed_samples == 6 and report.num_written == 12
    assert out.read_bytes() == clean.read_bytes()
    assert not partial.exists() and not journal.exists()


def test_resume_without_journal_starts_fresh(tmp_path, folder):
    rep = prepare_dataset(folder, tmp_path / "o.beton", resume=True, **FAST)
    assert rep.resumed_samples == 0 and rep.num_written == 12


def test_cli_prepare_and_errors(tmp_path, folder, capsys):
    out = tmp_path / "cli.beton"
    rc = main(["prepare", str(folder), str(out), "--max-res", "48", "--quality", "80", "--workers", "1",
               "--mode", "raw", "--no-progress"])  # fmt: skip
    assert rc == 0
    assert "12 images, 3 classes, 0 skipped" in capsys.readouterr().out
    r = BetonReader(out)
    assert not r.is_jpeg.any() and int(np.maximum(r.widths, r.heights).max()) == 48

    assert main(["prepare", str(tmp_path / "missing"), str(tmp_path / "m.beton"), "--no-progress"]) == 2
    assert "missing: no such file" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "a" / "x.JPEG").write_bytes(b"nope")
    assert main(["prepare", str(empty), str(tmp_path / "e.beton"), "--no-progress", "--workers", "1"]) == 2
    assert "none of the 1 images could be read" in capsys.readouterr().err


def test_progress_bar_shows_rate(tmp_path, folder, capsys):
    prepare_dataset(folder, tmp_path / "p.beton", max_res=64, page_size=PAGE, progress=True)
    err = capsys.readouterr().err
    assert "12/12" in err and "img/s" in err


def test_image_too_big_for_a_page_is_reported(tmp_path):
    d = tmp_path / "src" / "a"
    d.mkdir(parents=True)
    big = np.asarray(Image.fromarray(photo_crops(1, (100, 80))[0]).resize((1000, 800)))
    Image.fromarray(big).save(d / "big.JPEG")
    Image.fromarray(big[:100, :100]).save(d / "small.JPEG")
    rep = prepare_dataset(tmp_path / "src", tmp_path / "o.beton", max_res=0, mode="raw", page_size=PAGE, progress=False)
    assert [(Path(p).name, "does not fit" in why) for p, why in rep.skipped] == [("big.JPEG", True)]
    assert rep.num_written == 1


# -- OUT is never what the user did not ask to replace ---------------------------------------------


def leftovers(out: Path) -> list[Path]:
    return [p for p in (Path(f"{out}.partial"), Path(f"{out}.records"), Path(f"{out}.journal")) if p.exists()]


def test_an_existing_out_is_refused_without_overwrite_and_replaced_with_it(tmp_path, folder, capsys):
    out = tmp_path / "old.beton"
    out.write_bytes(b"an older dataset")
    assert main(["prepare", str(folder), str(out), "--no-progress", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{out} already exists" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == b"an older dataset" and not leftovers(out)
    assert main(["prepare", str(folder), str(out), "--no-progress", "--workers", "1", "--overwrite"]) == 0
    assert len(BetonReader(out)) == 12


def test_out_that_is_an_input_or_a_directory_is_refused_even_with_overwrite(tmp_path, folder, capsys):
    image = sorted((folder / "class_00").iterdir())[0]
    before = image.read_bytes()
    assert main(["prepare", str(folder), str(image), "--no-progress", "--overwrite"]) == 2
    assert "one of prepare's own inputs" in capsys.readouterr().err
    assert image.read_bytes() == before and not leftovers(image)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{image},0\n")
    assert main(["prepare", str(listing), str(listing), "--no-progress", "--overwrite"]) == 2
    assert "one of prepare's own inputs" in capsys.readouterr().err
    assert listing.read_text() == f"{image},0\n"
    target = tmp_path / "a_folder"
    target.mkdir()
    assert main(["prepare", str(folder), str(target), "--no-progress", "--overwrite"]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert list(target.iterdir()) == [] and not leftovers(target)


def test_out_checks_come_before_any_image_is_read(tmp_path, folder, monkeypatch):
    import fastdeit.data.prepare as prepare_module

    def no_reading(*args, **kwargs):
        raise AssertionError("an image was read before OUT was checked")

    monkeypatch.setattr(prepare_module, "load_rgb", no_reading)
    (tmp_path / "x.beton").write_bytes(b"keep")
    with pytest.raises(ValueError, match="already exists"):
        prepare_dataset(folder, tmp_path / "x.beton", workers=1, **FAST)
    with pytest.raises(ValueError, match="is a directory"):
        prepare_dataset(folder, tmp_path, workers=1, **FAST)


def test_a_full_disk_is_one_line_and_resume_completes(tmp_path, folder, capsys, monkeypatch):
    import errno

    import fastdeit.data.prepare as prepare_module

    clean = prepare_dataset(folder, tmp_path / "clean.beton", chunk_size=2, workers=1, max_res=64, progress=False).out
    out = tmp_path / "full.beton"
    real_append = prepare_module._fsync_append
    calls = []

    def append_until_full(path, data):  # the 5th write (chunk 1's records) finds the disk full
        calls.append(path)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_append(path, data)

    monkeypatch.setattr(prepare_module, "_fsync_append", append_until_full)
    args = ["prepare", str(folder), str(out), "--no-progress", "--workers", "1", "--chunk-size", "2",
            "--max-res", "64"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err and "--resume" in err and "Traceback" not in err
    monkeypatch.setattr(prepare_module, "_fsync_append", real_append)
    assert main(args + ["--resume"]) == 0
    assert out.read_bytes() == clean.read_bytes()
