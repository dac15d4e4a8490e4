"""Memory-mapped random-access reader for `.beton` files (FFCV 1.0.2 layout, version 2).

Everything a decoder will later trust (sizes, pointers, modes) is checked once when the file is
opened, so a truncated or corrupt file is refused with a message naming the file and the
problem instead of crashing in numpy or returning garbage.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

import numpy as np

from fastdeit.data.beton import layout as L
from fastdeit.data.image_io import decode_jpeg
from fastdeit.data.labels import check_labels

MAX_FIELDS = 256


class BetonReader:
    """Random access to the samples of a `.beton` file with an RGB image field and an int label
    field (named `image`/`label`, or the only field of each type).

    check_labels: refuse a file whose labels are not class indices (negative, or beyond
    fastdeit.data.labels.MAX_CLASSES) with the file and the sample named, before any loader is
    built on it; `inspect` opens with False to report them instead."""

    def __init__(self, path: str | os.PathLike, *, check_labels: bool = True) -> None:
        self.path = Path(path)
        self._check_labels = check_labels
        self._open_checked()

    def _open_checked(self) -> None:
        try:
            self._open()
        except BaseException:
            self.__dict__.pop("_buf", None)
            if getattr(self, "_mmap", None) is not None:
                try:
                    self._mmap.close()
                except BufferError:
                    pass
            raise

    # -- opening and validation ---------------------------------------------------------------

    def _fail(self, what: str) -> ValueError:
        return ValueError(f"{self.path}: not a valid .beton file: {what}")

    def _open(self) -> None:
        path = self.path
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        if path.is_dir():
            raise ValueError(f"{path}: is a directory, not a .beton file")
        size = path.stat().st_size
        self.file_size = size
        if size < L.HEADER_DTYPE.itemsize:
            raise self._fail(f"file is {size} bytes, shorter than the {L.HEADER_DTYPE.itemsize}-byte header")
        with open(path, "rb") as f:
            self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        buf = np.frombuffer(self._mmap, np.uint8)
        self._buf = buf

        header = buf[: L.HEADER_DTYPE.itemsize].view(L.HEADER_DTYPE)[0]
        version = int(header["version"])
        if version != L.CURRENT_VERSION:
            hint = " (an all-zero header: an unfinished write?)" if not buf[: L.HEADER_DTYPE.itemsize].any() else ""
            raise self._fail(f"format version {version}, expected {L.CURRENT_VERSION} (FFCV 1.0.x){hint}")
        self.version = version
        self.page_size = int(header["page_size"])
        self.num_fields = int(header["num_fields"])
        n = int(header["num_samples"])
        self.alloc_table_ptr = int(header["alloc_table_ptr"])
        if not L.is_power_of_2(self.page_size) or not (L.READ_MIN_PAGE_SIZE <= self.page_size < L.MAX_PAGE_SIZE):
            raise self._fail(f"page size {self.page_size} is not a power of 2 in [4 KiB, 4 GiB)")
        if not 1 <= self.num_fields <= MAX_FIELDS:
            raise self._fail(f"header says {self.num_fields} fields (expected 1..{MAX_FIELDS})")

        # Field descriptors.
        desc_start = L.HEADER_DTYPE.itemsize
        meta_start = L.metadata_start(self.num_fields)
        if meta_start > size:
            raise self._fail(f"truncated: field descriptors end at byte {meta_start}, file is {size} bytes")
        desc = buf[desc_start:meta_start].view(L.FIELD_DESC_DTYPE)
        self.field_names: list[str] = []
        self.field_types: list[int] = []
        for i, d in enumerate(desc):
            type_id = int(d["type_id"])
            raw_name = d["name"].tobytes().split(b"\x00")[0]
            try:
                name = raw_name.decode("ascii")
            except UnicodeDecodeError:
                raise self._fail(f"field {i} has a non-ASCII name {raw_name!r}") from None
            if type_id not in L.FIELD_META_DTYPES:
                raise self._fail(f"field {i} ({name!r}) has unknown type id {type_id}")
            self.field_names.append(name)
            self.field_types.append(type_id)
        self.meta_dtype = L.metadata_dtype(self.field_types)

        # Metadata table.
        meta_end = meta_start + n * self.meta_dtype.itemsize
        if meta_end > size:
            raise self._fail(
                f"truncated: header says {n} samples, whose metadata table ends at byte {meta_end}, "
                f"but the file is {size} bytes"
            )
        self.metadata = buf[meta_start:meta_end].view(self.meta_dtype)
        self.num_samples = n

        # Allocation table: from alloc_table_ptr to the end of the file.
        ap = self.alloc_table_ptr
        if ap > size:
            raise self._fail(
                f"truncated: the allocation table starts at byte {ap} but the file is only {size} bytes"
            )
        if ap < meta_end:
            raise self._fail(f"allocation table pointer {ap} points inside the header/metadata (ends at {meta_end})")
        if (size - ap) % L.ALLOC_DTYPE.itemsize:
            raise self._fail(
                f"allocation table of {size - ap} bytes is not a whole number of "
                f"{L.ALLOC_DTYPE.itemsize}-byte entries (truncated or extra bytes at the end)"
            )
        alloc = buf[ap:size].view(L.ALLOC_DTYPE)
        if len(alloc):
            a_ptr = alloc["ptr"].astype(np.int64)
            a_end = a_ptr + alloc["size"].astype(np.int64)
            bad = (alloc["ptr"] < meta_end) | (alloc["ptr"] > ap) | (alloc["size"] > ap) | (a_end > ap)
            bad |= alloc["sample_id"] >= max(n, 1)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise self._fail(
                    f"allocation entry {k} (sample {int(alloc['sample_id'][k])}, ptr {int(alloc['ptr'][k])}, "
                    f"size {int(alloc['size'][k])}) lies outside the data region [{meta_end}, {ap})"
                    " or names a sample that does not exist"
                )
        self.alloc_table = alloc

        self._select_fields()
        self._check_images(alloc, meta_end)
        if self._check_labels:
            self._num_classes = check_labels(self.labels, str(self.path))

    def _select_fields(self) -> None:
        def pick(type_id: int, preferred: str, what: str) -> int:
            idx = [i for i, t in enumerate(self.field_types) if t == type_id]
            named = [i for i in idx if self.field_names[i] == preferred]
            if named:
                return named[0]
            if len(idx) == 1:
                return idx[0]
            fields = ", ".join(f"{n}:{L.TYPE_NAMES[t]}" for n, t in zip(self.field_names, self.field_types))
            if not idx:
                raise self._fail(f"no {what} field (fields: {fields})")
            raise ValueError(f"{self.path}: several {what} fields and none named {preferred!r} ({fields})")

        self.image_field = self.field_names[pick(L.TYPE_RGB_IMAGE, "image", "RGB image")]
        self.label_field = self.field_names[pick(L.TYPE_INT, "label", "int label")]
        names = self.meta_dtype.names
        self._img_meta = self.metadata[names[self.field_names.index(self.image_field)]]
        self._label_meta = self.metadata[names[self.field_names.index(self.label_field)]]

    def _check_images(self, alloc: np.ndarray, meta_end: int) -> None:
        img = self._img_meta
        modes = img["mode"]
        if len(modes) and (modes > L.MODE_RAW).any():
            k = int(np.flatnonzero(modes > L.MODE_RAW)[0])
            raise self._fail(f"sample {k} has unknown image mode {int(modes[k])} (0=jpg, 1=raw)")
        widths = img["width"].astype(np.int64)
        heights = img["height"].astype(np.int64)
        if len(widths) and ((widths == 0) | (heights == 0)).any():
            k = int(np.flatnonzero((widths == 0) | (heights == 0))[0])
            raise self._fail(f"sample {k} has an empty image size {widths[k]}x{heights[k]}")
        ptrs = img["data_ptr"]
        order = np.argsort(alloc["ptr"], kind="stable")
        sorted_ptrs = alloc["ptr"][order]
        pos = np.searchsorted(sorted_ptrs, ptrs)
        found = pos < len(sorted_ptrs)
        found[found] = sorted_ptrs[pos[found]] == ptrs[found]
        if not found.all():
            k = int(np.flatnonzero(~found)[0])
            raise self._fail(
                f"sample {k}: image data pointer {int(ptrs[k])} is not in the allocation table "
                "(corrupt metadata or allocation table)"
            )
        sizes = alloc["size"][order][pos].astype(np.int64) if len(ptrs) else np.zeros(0, np.int64)
        is_raw = modes == L.MODE_RAW
        wrong_raw = is_raw & (sizes != widths * heights * 3)
        if wrong_raw.any():
            k = int(np.flatnonzero(wrong_raw)[0])
            raise self._fail(
                f"sample {k}: raw {widths[k]}x{heights[k]} image needs {widths[k] * heights[k] * 3} bytes, "
                f"the allocation holds {sizes[k]}"
            )
        self._offsets = ptrs.astype(np.int64)
        self._sizes = sizes
        self.labels = self._label_meta.astype(np.int64)
        self.widths = widths
        self.heights = heights
        self.is_jpeg = modes == L.MODE_JPG
        for a in (self.labels, self.widths, self.heights, self.is_jpeg, self._offsets, self._sizes):
            a.setflags(write=False)

    # -- public API ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.num_samples

    @property
    def sizes(self) -> np.ndarray:
        """Bytes stored per sample (JPEG size, or H*W*3 for raw)."""
        return self._sizes

    @property
    def offsets(self) -> np.ndarray:
        """File offset of each sample's stored bytes (int64): with `sizes` and `buffer`, what a
        batch decoder (numba, threads) needs without a Python call per sample."""
        return self._offsets

    @property
    def buffer(self) -> np.ndarray:
        """The whole mapped file as a read-only uint8 array."""
        return self._buf

    @property
    def num_classes(self) -> int:
        """Largest label + 1. Raises ValueError naming the file and the sample if a label is not a
        class index (negative, or beyond fastdeit.data.labels.MAX_CLASSES): every loader that
        trains or evaluates on the file asks this first."""
        if not hasattr(self, "_num_classes"):
            self._num_classes = check_labels(self.labels, str(self.path))
        return self._num_classes

    @property
    def fingerprint(self) -> str:
        """Stable identity of the file's content: a hash of its size, header, field descriptors,
        metadata table and allocation table (not of the image bytes, to stay cheap)."""
        if not hasattr(self, "_fingerprint"):
            h = hashlib.blake2b(digest_size=16)
            h.update(str(self.file_size).encode())
            h.update(self._buf[: L.metadata_start(self.num_fields)])
            h.update(self.metadata.view(np.uint8))
            h.update(self.alloc_table.view(np.uint8))
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def _index(self, i: int) -> int:
        i = int(i)
        if i < 0:
            i += self.num_samples
        if not 0 <= i < self.num_samples:
            raise IndexError(f"sample index {i} out of range for {self.num_samples} samples in {self.path}")
        return i

    def image_bytes(self, i: int) -> np.ndarray:
        """The stored bytes of sample i: a read-only uint8 view into the mapped file (JPEG bytes,
        or the raw H*W*3 RGB pixels)."""
        i = self._index(i)
        off = self._offsets[i]
        return self._buf[off : off + self._sizes[i]]

    def decode(self, i: int) -> np.ndarray:
        """Sample i as RGB uint8 (H, W, 3) (a new array)."""
        i = self._index(i)
        data = self.image_bytes(i)
        h, w = int(self.heights[i]), int(self.widths[i])
        if not self.is_jpeg[i]:
            return data.reshape(h, w, 3).copy()
        try:
            img = decode_jpeg(data)
        except Exception as err:  # noqa: BLE001 - libjpeg errors come in several types
            raise ValueError(f"{self.path}: sample {i}: corrupt JPEG data ({err})") from None
        if img.shape != (h, w, 3):
            raise ValueError(
                f"{self.path}: sample {i}: JPEG decodes to {img.shape[1]}x{img.shape[0]}, metadata says {w}x{h}"
            )
        return img

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.decode(i), int(self.labels[self._index(i)])

    def close(self) -> None:
        """Release the mapping (views from image_bytes must not be used afterwards)."""
        for name in ("_buf", "metadata", "alloc_table", "_img_meta", "_label_meta"):
            self.__dict__.pop(name, None)
        try:
            self._mmap.close()
        except BufferError:
            pass  # views still alive: the mapping goes when they do

    def __enter__(self) -> BetonReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {"path": self.path, "check_labels": self._check_labels}

    def __setstate__(self, state: dict) -> None:
        self.path = state["path"]
        self._check_labels = state.get("check_labels", True)
        self._open_checked()

    def __repr__(self) -> str:
        return f"BetonReader({str(self.path)!r}, samples={self.num_samples})"
