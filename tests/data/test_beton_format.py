"""The .beton writer and reader: layout, round trips in every image mode, pages, atomic writes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.beton import layout as L
from fastdeit.data.image_io import jpeg_info
from fastdeit.data.sample_images import photo_crops

PAGE = L.MIN_PAGE_SIZE


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    sizes = [(96, 64), (64, 96), (80, 80), (33, 17)]
    out = []
    for k, s in enumerate(sizes):
        out += photo_crops(2, s, seed=k)
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def write(path, images, labels, **kw):
    kw.setdefault("page_size", PAGE)
    with BetonWriter(path, **kw) as w:
        for im, lab in zip(images, labels):
            w.add(im, lab)
    return path


def test_layout_is_ffcv_1_0_2():
    assert L.HEADER_DTYPE.itemsize == 24
    assert L.FIELD_DESC_DTYPE.itemsize == 1041
    assert L.RGB_META_DTYPE.itemsize == 13
    meta = L.metadata_dtype([L.TYPE_RGB_IMAGE, L.TYPE_INT])
    assert meta.itemsize == 24
    assert [meta.fields[n][1] for n in meta.names] == [0, 16]
    assert L.ALLOC_DTYPE.itemsize == 24


def test_raw_round_trip_is_exact(tmp_path, images):
    labels = list(range(len(images)))
    r = BetonReader(write(tmp_path / "raw.beton", images, labels, image_mode="raw"))
    assert len(r) == len(images)
    assert r.labels.dtype == np.int64 and r.labels.tolist() == labels
    assert r.num_classes == len(images)
    assert not r.is_jpeg.any()
    for i, im in enumerate(images):
        assert (r.widths[i], r.heights[i]) == (im.shape[1], im.shape[0])
        np.testing.assert_array_equal(r.decode(i), im)
        b = r.image_bytes(i)
        assert b.dtype == np.uint8 and b.ndim == 1 and b.size == im.size == r.sizes[i]
        np.testing.assert_array_equal(r.buffer[r.offsets[i] : r.offsets[i] + r.sizes[i]], b)
    img, lab = r[-1]
    np.testing.assert_array_equal(img, images[-1])
    assert lab == labels[-1]
    with pytest.raises(IndexError):
        r.decode(len(images))


def test_jpg_round_trip_is_baseline_420_and_close(tmp_path, images):
    r = BetonReader(write(tmp_path / "jpg.beton", images, [3] * len(images), image_mode="jpg", jpeg_quality=95))
    assert r.is_jpeg.all() and r.num_classes == 4
    for i, im in enumerate(images):
        info = jpeg_info(r.image_bytes(i))
        assert info["baseline"] and not info["progressive"]
        assert [c[1:] for c in info["components"]] == [(2, 2), (1, 1), (1, 1)]
        out = r.decode(i)
        assert out.shape == im.shape
        assert psnr(out, im) > 30  # JPEG tolerance: q95 with 4:2:0 chroma on sharp photo crops


def test_max_resolution_downscales_longest_side(tmp_path):
    im = photo_crops(1, (300, 200))[0]
    r = BetonReader(write(tmp_path / "a.beton", [im], [0], image_mode="raw", max_resolution=64))
    assert (r.widths[0], r.heights[0]) == (64, 42)  # floor(200 * 64 / 300), as FFCV
    small = photo_crops(1, (40, 30))[0]
    r = BetonReader(write(tmp_path / "b.beton", [small], [0], image_mode="raw", max_resolution=64))
    np.testing.assert_array_equal(r.decode(0), small)  # never upscaled


def test_smart_and_proportion_modes(tmp_path, images):
    big = photo_crops(2, (96, 64))  # 18432 raw bytes
    small = photo_crops(2, (20, 20))  # 1200 raw bytes
    r = BetonReader(write(tmp_path / "s.beton", big + small, [0, 1, 2, 3], image_mode="smart", smart_threshold=5000))
    assert r.is_jpeg.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(r.decode(2), small[0])

    many = images * 4
    a = write(tmp_path / "p1.beton", many, [0] * len(many), image_mode="proportion", compress_probability=0.5)
    b = write(tmp_path / "p2.beton", many, [0] * len(many), image_mode="proportion", compress_probability=0.5)
    ra = BetonReader(a)
    assert 0 < ra.is_jpeg.sum() < len(many)
    assert a.read_bytes() == b.read_bytes()  # the draw is a function of (seed, index)
    for i in np.flatnonzero(~ra.is_jpeg):
        np.testing.assert_array_equal(ra.decode(i), many[i])


def test_samples_never_cross_a_page(tmp_path):
    ims = photo_crops(7, (512, 400), seed=1)  # 614400 raw bytes: 3 per 2 MiB page
    r = BetonReader(write(tmp_path / "pages.beton", ims, list(range(7)), image_mode="raw", max_resolution=None))
    starts = r.offsets % PAGE
    assert (starts + r.sizes <= PAGE).all()
    assert len(set((r.offsets // PAGE).tolist())) == 3
    data_start = r.offsets.min()
    assert data_start % PAGE == 0
    for i in range(7):
        np.testing.assert_array_equal(r.decode(i), ims[i])


def test_oversized_sample_is_refused(tmp_path):
    w = BetonWriter(tmp_path / "x.beton", image_mode="raw", max_resolution=None, page_size=PAGE)
    with pytest.raises(ValueError, match="does not fit"):
        w.add(np.zeros((1000, 1000, 3), np.uint8), 0)
    w.abort()


def test_capacity_in_place_writes_the_same_file(tmp_path, images):
    a = write(tmp_path / "a.beton", images, range(len(images)))
    b = write(tmp_path / "b.beton", images, range(len(images)), capacity=len(images))
    assert a.read_bytes() == b.read_bytes()
    assert not list(tmp_path.glob("*.partial"))


def test_no_file_under_final_name_until_closed(tmp_path, images):
    out = tmp_path / "o.beton"
    w = BetonWriter(out, capacity=4, page_size=PAGE)
    w.add(images[0], 1)
    assert not out.exists() and (tmp_path / "o.beton.partial").exists()
    w.close()
    assert out.exists() and not (tmp_path / "o.beton.partial").exists()

    out2 = tmp_path / "failed.beton"
    with pytest.raises(RuntimeError):
        with BetonWriter(out2, page_size=PAGE) as w2:
            w2.add(images[0], 0)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == [out]


def test_bad_writer_arguments(tmp_path):
    with pytest.raises(ValueError, match="image mode"):
        BetonWriter(tmp_path / "a.beton", image_mode="png")
    with pytest.raises(ValueError, match="page_size"):
        BetonWriter(tmp_path / "a.beton", page_size=3 << 20)
    with BetonWriter(tmp_path / "a.beton", page_size=PAGE) as w:
        with pytest.raises(ValueError, match="uint8"):
            w.add(np.zeros((4, 4, 3), np.float32), 0)
        w.add(np.zeros((4, 4, 3), np.uint8), 0)


def test_fingerprint_and_pickle(tmp_path, images):
    p = write(tmp_path / "a.beton", images, range(len(images)))
    q = write(tmp_path / "b.beton", images, [0] * len(images))
    r = BetonReader(p)
    assert r.fingerprint == BetonReader(p).fingerprint
    assert r.fingerprint != BetonReader(q).fingerprint
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.fingerprint == r.fingerprint
    np.testing.assert_array_equal(r2.decode(1), r.decode(1))
