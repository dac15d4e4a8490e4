"""Write `.beton` files (FFCV 1.0.2 layout) with an RGB image field `image` and an int field `label`.

The writer appends each sample's bytes to whole pages of the data region (a sample never crosses
a page, as in FFCV), keeps the per-sample records in memory, and on `close()` writes the
allocation table, the metadata table and the header, then renames the temporary file
(`OUT.partial`) to its final name. A reader therefore never sees a half-written file under the
final name.

When `capacity` (an upper bound on the sample count) is known, the data goes straight to its final
place; otherwise it is spooled to a side file and copied behind the metadata table on close.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from fastdeit.data.beton import layout as L
from fastdeit.data.image_io import encode_jpeg, target_size
from fastdeit.data.labels import label_error

# One record per written sample; what the metadata and allocation tables are built from, and what
# `prepare` journals for --resume.
RECORD_DTYPE = np.dtype(
    [
        ("label", "<i8"),
        ("mode", "u1"),
        ("width", "<u2"),
        ("height", "<u2"),
        ("ptr", "<u8"),  # relative to the start of the data region
        ("size", "<u8"),
    ]
)

IMAGE_FIELD = "image"
LABEL_FIELD = "label"


def choose_mode(
    image_mode: str,
    raw_nbytes: int,
    *,
    jpeg_nbytes: int | None = None,
    smart_threshold: int | None = None,
    draw: float = 0.0,
    compress_probability: float = 0.5,
) -> int:
    """MODE_JPG or MODE_RAW for one sample, with FFCV's rules: 'smart' stores raw unless a
    smart_threshold is set and the raw pixels take more bytes than it; 'proportion' compresses
    when draw (uniform in [0, 1)) < compress_probability."""
    if image_mode == "jpg":
        return L.MODE_JPG
    if image_mode == "raw":
        return L.MODE_RAW
    if image_mode == "smart":
        if smart_threshold is not None and raw_nbytes > smart_threshold:
            return L.MODE_JPG
        return L.MODE_RAW
    if image_mode == "proportion":
        return L.MODE_JPG if draw < compress_probability else L.MODE_RAW
    raise ValueError(f"unknown image mode {image_mode!r}; expected one of {', '.join(L.IMAGE_MODES)}")


def proportion_draw(seed: int, index: int) -> float:
    """The uniform draw deciding 'proportion' mode for sample `index`: a pure function of
    (seed, index), so a resumed or multi-worker prepare stores exactly the same file."""
    return float(np.random.default_rng([seed, index]).random())


def encode_image(
    image: np.ndarray,
    image_mode: str = "jpg",
    max_resolution: int | None = 512,
    jpeg_quality: int = 90,
    *,
    smart_threshold: int | None = None,
    compress_probability: float = 0.5,
    draw: float = 0.0,
) -> tuple[bytes | np.ndarray, int, int, int]:
    """Resize (longest side to max_resolution, area filter) and encode one RGB uint8 image.
    Returns (data, mode, width, height)."""
    image = _as_rgb_array(image)
    h, w = image.shape[:2]
    tw, th = target_size(w, h, max_resolution or 0)
    if (tw, th) != (w, h):
        image = np.asarray(Image.fromarray(image).resize((tw, th), Image.Resampling.BOX))
        h, w = th, tw
    mode = choose_mode(
        image_mode,
        image.nbytes,
        smart_threshold=smart_threshold,
        draw=draw,
        compress_probability=compress_probability,
    )
    if mode == L.MODE_JPG:
        return encode_jpeg(image, jpeg_quality), mode, w, h
    return np.ascontiguousarray(image).reshape(-1), mode, w, h


def _as_rgb_array(image: np.ndarray | Image.Image) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array or PIL image, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: {image.shape}")
    return np.ascontiguousarray(image)


class BetonWriter:
    """Writes an FFCV-compatible `.beton` with fields `image` (RGBImageField) and `label` (IntField).

    image_mode: 'jpg' (baseline 4:2:0 JPEG), 'raw' (pixels), 'smart' or 'proportion' (FFCV's
    semantics, see `choose_mode`). max_resolution: longest side after area downscaling (None or
    0: keep). capacity: upper bound on the number of samples, if known (lets the data be written
    in place). resume_records: records of a previous, interrupted writer on the same temporary
    file (used by `prepare --resume`); requires capacity and page_size equal to that run's.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        image_mode: str = "jpg",
        max_resolution: int | None = 512,
        jpeg_quality: int = 90,
        *,
        smart_threshold: int | None = None,
        compress_probability: float = 0.5,
        seed: int = 0,
        page_size: int = L.DEFAULT_PAGE_SIZE,
        capacity: int | None = None,
        resume_records: np.ndarray | None = None,
    ) -> None:
        if image_mode not in L.IMAGE_MODES:
            raise ValueError(f"unknown image mode {image_mode!r}; expected one of {', '.join(L.IMAGE_MODES)}")
        if not (1 <= int(jpeg_quality) <= 100):
            raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
        if not L.is_power_of_2(page_size) or not (L.MIN_PAGE_SIZE <= page_size < L.MAX_PAGE_SIZE):
            raise ValueError(
                f"page_size must be a power of 2 in [{L.MIN_PAGE_SIZE}, {L.MAX_PAGE_SIZE}), got {page_size}"
            )
        if capacity is not None and capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.path = Path(path)
        self.tmp_path = Path(str(self.path) + ".partial")
        self.image_mode = image_mode
        self.max_resolution = max_resolution
        self.jpeg_quality = int(jpeg_quality)
        self.smart_threshold = smart_threshold
        self.compress_probability = compress_probability
        self.seed = seed
        self.page_size = page_size
        self.capacity = capacity
        self.type_ids = [L.TYPE_RGB_IMAGE, L.TYPE_INT]
        self.meta_dtype = L.metadata_dtype(self.type_ids)
        self._records: list[np.ndarray] = []
        self._pending: list[tuple] = []
        self._count = 0
        self._closed = False

        if capacity is not None:
            meta_end = L.metadata_start(len(self.type_ids)) + capacity * self.meta_dtype.itemsize
            self.data_start = L.align_up(meta_end, page_size)
            self._data_path = self.tmp_path
        else:
            self.data_start = 0
            self._data_path = Path(str(self.path) + ".data.partial")

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_records is not None:
            if capacity is None:
                raise ValueError("resume_records needs a capacity")
            records = np.asarray(resume_records, dtype=RECORD_DTYPE)
            self._records.append(records.copy())
            self._count = len(records)
            end = int((records["ptr"] + records["size"]).max()) if len(records) else 0
            self._pos = end
            if not self._data_path.exists():
                raise ValueError(f"{self._data_path}: cannot resume, the partial file is missing")
            self._fp = open(self._data_path, "r+b")
            self._fp.truncate(self.data_start + end)  # drop whatever was in flight
        else:
            self._pos = 0  # next free byte, relative to data_start
            self._fp = open(self._data_path, "wb")
            if capacity is not None:
                self._fp.truncate(self.data_start)

    def __len__(self) -> int:
        return self._count + len(self._pending)

    def __enter__(self) -> BetonWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def add(self, image: np.ndarray | Image.Image, label: int) -> None:
        """Resize, encode and append one sample."""
        draw = proportion_draw(self.seed, len(self)) if self.image_mode == "proportion" else 0.0
        data, mode, w, h = encode_image(
            image,
            self.image_mode,
            self.max_resolution,
            self.jpeg_quality,
            smart_threshold=self.smart_threshold,
            compress_probability=self.compress_probability,
            draw=draw,
        )
        self.add_encoded(data, mode=mode, width=w, height=h, label=label)

    def add_encoded(self, data: bytes | np.ndarray, *, mode: int, width: int, height: int, label: int) -> None:
        """Append one already encoded sample (JPEG bytes for MODE_JPG, RGB pixels for MODE_RAW)."""
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        buf = memoryview(np.ascontiguousarray(np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data))
        size = buf.nbytes
        if mode not in (L.MODE_JPG, L.MODE_RAW):
            raise ValueError(f"unknown mode {mode}")
        if not (0 < width < 65536 and 0 < height < 65536):
            raise ValueError(f"image size {width}x{height} does not fit the format (1..65535)")
        if mode == L.MODE_RAW and size != width * height * 3:
            raise ValueError(f"raw image of {width}x{height} must have {width * height * 3} bytes, got {size}")
        if size == 0:
            raise ValueError("empty image data")
        if size > self.page_size:
            raise ValueError(
                f"a sample of {size} bytes does not fit a {self.page_size}-byte page; "
                "lower the resolution or use a larger page size"
            )
        if self.capacity is not None and len(self) >= self.capacity:
            raise ValueError(f"{self.path}: more samples than the declared capacity {self.capacity}")
        problem = label_error(int(label))
        if problem is not None:
            raise ValueError(f"{self.path}: sample {len(self)}: {problem}")
        page_left = self.page_size - self._pos % self.page_size
        if size > page_left:
            self._pos += page_left  # start a fresh page; the gap stays zero
        self._fp.seek(self.data_start + self._pos)
        self._fp.write(buf)
        self._pending.append((int(label), mode, width, height, self._pos, size))
        self._pos += size

    def commit(self) -> np.ndarray:
        """Flush the samples added since the last commit to disk (fsync) and return their records:
        after this, they survive a crash (see `prepare --resume`)."""
        self._fp.flush()
        os.fsync(self._fp.fileno())
        new = np.array(self._pending, dtype=RECORD_DTYPE)
        self._pending = []
        self._records.append(new)
        self._count += len(new)
        return new

    def records(self) -> np.ndarray:
        self.commit()
        return np.concatenate(self._records) if self._records else np.zeros(0, RECORD_DTYPE)

    def detach(self) -> None:
        """Stop without finishing, keeping the temporary file (for a later resume)."""
        if not self._closed:
            self._closed = True
            self._fp.close()

    def abort(self) -> None:
        """Stop, leaving no file under the final name (the temporary file is removed)."""
        if self._closed:
            return
        self._closed = True
        self._fp.close()
        for p in {self.tmp_path, self._data_path}:
            p.unlink(missing_ok=True)

    def close(self) -> Path:
        """Write the tables and header, then rename the temporary file to the final name."""
        if self._closed:
            return self.path
        records = self.records()
        n = len(records)
        data_start = self.data_start
        if self.capacity is None:
            meta_end = L.metadata_start(len(self.type_ids)) + n * self.meta_dtype.itemsize
            data_start = L.align_up(meta_end, self.page_size)
            self._fp.close()
            self._fp = open(self.tmp_path, "wb")
            self._fp.truncate(data_start)
            self._fp.seek(data_start)
            with open(self._data_path, "rb") as src:
                while chunk := src.read(1 << 24):
                    self._fp.write(chunk)
        fp = self._fp
        n_pages = -(-self._pos // self.page_size)
        alloc_ptr = data_start + n_pages * self.page_size  # whole pages, as FFCV writes them
        fp.truncate(alloc_ptr)
        alloc = np.zeros(n, L.ALLOC_DTYPE)
        alloc["sample_id"] = np.arange(n)
        alloc["ptr"] = records["ptr"] + data_start
        alloc["size"] = records["size"]
        fp.seek(alloc_ptr)
        fp.write(alloc.tobytes())

        meta = np.zeros(n, self.meta_dtype)
        img, lab = self.meta_dtype.names
        meta[img]["mode"] = records["mode"]
        meta[img]["width"] = records["width"]
        meta[img]["height"] = records["height"]
        meta[img]["data_ptr"] = records["ptr"] + data_start
        meta[lab] = records["label"]
        fp.seek(L.metadata_start(len(self.type_ids)))
        fp.write(meta.tobytes())

        desc = np.zeros(len(self.type_ids), L.FIELD_DESC_DTYPE)
        for i, (type_id, name) in enumerate(zip(self.type_ids, (IMAGE_FIELD, LABEL_FIELD))):
            desc[i]["type_id"] = type_id
            enc = np.frombuffer(name.encode("ascii"), np.uint8)
            desc[i]["name"][: len(enc)] = enc
        header = np.zeros(1, L.HEADER_DTYPE)
        header["version"] = L.CURRENT_VERSION
        header["num_fields"] = len(self.type_ids)
        header["page_size"] = self.page_size
        header["num_samples"] = n
        header["alloc_table_ptr"] = alloc_ptr
        fp.seek(0)
        fp.write(header.tobytes())
        fp.write(desc.tobytes())
        fp.flush()
        os.fsync(fp.fileno())
        fp.close()
        self._closed = True
        if self._data_path != self.tmp_path:
            self._data_path.unlink(missing_ok=True)
        os.replace(self.tmp_path, self.path)
        return self.path
