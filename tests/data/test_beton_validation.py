"""Bad .beton files are refused with a message naming the file and the problem: never a crash
deep in numpy, never silent garbage."""

from __future__ import annotations

import numpy as np
import pytest

from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.beton import layout as L
from fastdeit.data.sample_images import photo_crops

PAGE = L.MIN_PAGE_SIZE


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("good") / "good.beton"
    with BetonWriter(path, page_size=PAGE, image_mode="proportion") as w:
        for k, im in enumerate(photo_crops(6, (48, 32))):
            w.add(im, k % 3)
    return path.read_bytes()


def header(data: bytes) -> np.ndarray:
    return np.frombuffer(data[:24], L.HEADER_DTYPE).copy()


def with_header(data: bytes, **fields) -> bytes:
    h = header(data)
    for k, v in fields.items():
        h[k] = v
    return h.tobytes() + data[24:]


def refused(tmp_path, data: bytes, match: str) -> str:
    p = tmp_path / "bad.beton"
    p.write_bytes(data)
    with pytest.raises(ValueError, match=match) as err:
        BetonReader(p)
    assert str(p) in str(err.value)
    return str(err.value)


def test_good_file_opens(tmp_path, good):
    p = tmp_path / "ok.beton"
    p.write_bytes(good)
    r = BetonReader(p)
    assert len(r) == 6 and r.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert 0 < r.is_jpeg.sum() < 6


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.beton"):
        BetonReader(tmp_path / "nope.beton")
    with pytest.raises(ValueError, match="directory"):
        BetonReader(tmp_path)


def test_empty_and_tiny_files(tmp_path):
    refused(tmp_path, b"", "shorter than the 24-byte header")
    refused(tmp_path, b"\x02\x00\x02", "shorter than the 24-byte header")


def test_wrong_version_or_not_a_beton(tmp_path, good):
    refused(tmp_path, with_header(good, version=3), "version 3, expected 2")
    refused(tmp_path, b"\xff\xd8\xff\xe0" + b"\x00" * 4000, "version")  # a JPEG, not a .beton
    refused(tmp_path, b"\x00" * len(good), "unfinished write")


def test_truncated_files(tmp_path, good):
    n = len(good)
    alloc_ptr = int(header(good)["alloc_table_ptr"][0])
    refused(tmp_path, good[:100], "truncated")  # inside the field descriptors
    refused(tmp_path, good[:2200], "truncated")  # inside the metadata table
    refused(tmp_path, good[: alloc_ptr // 2], "truncated")  # inside the data region
    refused(tmp_path, good[: n - 5], "not a whole number")  # inside the allocation table
    refused(tmp_path, good[: n - 24], "not in the allocation table")  # a whole entry lost


def test_corrupt_header_fields(tmp_path, good):
    refused(tmp_path, with_header(good, page_size=3000), "page size")
    refused(tmp_path, with_header(good, num_fields=0), "fields")
    refused(tmp_path, with_header(good, num_samples=10**12), "truncated")
    refused(tmp_path, with_header(good, alloc_table_ptr=10), "inside the header")


def test_corrupt_tables(tmp_path, good):
    meta_start = L.metadata_start(2)
    rec = L.metadata_dtype([L.TYPE_RGB_IMAGE, L.TYPE_INT])
    data = bytearray(good)
    data[24] = 99  # type id of field 0
    refused(tmp_path, bytes(data), "unknown type id 99")

    data = bytearray(good)
    meta = np.frombuffer(data, rec, count=6, offset=meta_start)
    meta["f0"]["data_ptr"][2] += 1
    refused(tmp_path, bytes(data), "sample 2: image data pointer")

    data = bytearray(good)
    meta = np.frombuffer(data, rec, count=6, offset=meta_start)
    meta["f0"]["mode"][1] = 7
    refused(tmp_path, bytes(data), "unknown image mode 7")

    data = bytearray(good)
    meta = np.frombuffer(data, rec, count=6, offset=meta_start)
    raw = np.flatnonzero(meta["f0"]["mode"] == L.MODE_RAW)[0]
    meta["f0"]["width"][raw] += 1
    refused(tmp_path, bytes(data), f"sample {raw}: raw")

    data = bytearray(good)
    alloc_ptr = int(header(good)["alloc_table_ptr"][0])
    alloc = np.frombuffer(data, L.ALLOC_DTYPE, offset=alloc_ptr)
    alloc["size"][0] = 1 << 40
    refused(tmp_path, bytes(data), "allocation entry 0")


def test_corrupt_jpeg_data_fails_on_decode(tmp_path, good):
    p = tmp_path / "j.beton"
    p.write_bytes(good)
    r = BetonReader(p)
    i = int(np.flatnonzero(r.is_jpeg)[0])
    off, size = int(r.offsets[i]), int(r.sizes[i])
    r.close()
    data = bytearray(good)
    data[off : off + size] = bytes(size)
    p.write_bytes(bytes(data))
    r = BetonReader(p)
    with pytest.raises(ValueError, match=f"sample {i}: corrupt JPEG"):
        r.decode(i)


def test_random_corruption_never_crashes(tmp_path, good):
    """Flip bytes in the header and tables: every outcome is a clean refusal or a file whose
    samples all decode (to the right shapes) or raise ValueError."""
    rng = np.random.default_rng(0)
    alloc_ptr = int(header(good)["alloc_table_ptr"][0])
    regions = [(0, 24), (24, 24 + 2 * 1041), (L.metadata_start(2), L.metadata_start(2) + 6 * 24), (alloc_ptr, len(good))]
    p = tmp_path / "fuzz.beton"
    for trial in range(120):
        data = bytearray(good)
        lo, hi = regions[trial % len(regions)]
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(lo, hi))] = int(rng.integers(0, 256))
        p.write_bytes(bytes(data))
        try:
            r = BetonReader(p)
        except ValueError:
            continue
        for i in range(len(r)):
            try:
                img = r.decode(i)
            except ValueError:
                continue
            assert img.shape == (r.heights[i], r.widths[i], 3)
        r.close()
