"""The binary layout of an FFCV 1.0.2 `.beton` file (format version 2), as constants and dtypes.

A file is, in order (all integers little-endian):

    header            HEADER_DTYPE, 24 bytes
    field descriptors FIELD_DESC_DTYPE x num_fields, 1041 bytes each
    metadata table    metadata_dtype(field types) x num_samples (numpy aligned struct)
    (zero padding up to a multiple of page_size)
    data region       whole pages of page_size bytes; a sample's data never crosses a page
    allocation table  ALLOC_DTYPE x entries, from header.alloc_table_ptr to the end of the file

Pointers (metadata `data_ptr`, allocation `ptr`) are absolute file offsets. FFCV looks up the
size of a sample's data by finding its pointer in the allocation table.
"""

from __future__ import annotations

import numpy as np

CURRENT_VERSION = 2

HEADER_DTYPE = np.dtype(
    [
        ("version", "<u2"),
        ("num_fields", "<u2"),
        ("page_size", "<u4"),
        ("num_samples", "<u8"),
        ("alloc_table_ptr", "<u8"),
    ],
    align=True,
)

FIELD_NAME_LEN = 16
FIELD_ARGS_LEN = 1024
FIELD_DESC_DTYPE = np.dtype(
    [
        ("type_id", "<u1"),
        ("name", ("<u1", FIELD_NAME_LEN)),
        ("arguments", ("<u1", (FIELD_ARGS_LEN,))),
    ],
    align=True,
)

ALLOC_DTYPE = np.dtype([("sample_id", "<u8"), ("ptr", "<u8"), ("size", "<u8")])

# Field type ids (FFCV's TYPE_ID_HANDLER).
TYPE_FLOAT = 0
TYPE_INT = 1
TYPE_RGB_IMAGE = 2
TYPE_BYTES = 3
TYPE_NDARRAY = 4
TYPE_JSON = 5
TYPE_TORCH_TENSOR = 6

TYPE_NAMES = {
    TYPE_FLOAT: "float",
    TYPE_INT: "int",
    TYPE_RGB_IMAGE: "rgb_image",
    TYPE_BYTES: "bytes",
    TYPE_NDARRAY: "ndarray",
    TYPE_JSON: "json",
    TYPE_TORCH_TENSOR: "torch_tensor",
}

# RGB image metadata: a packed (unaligned) struct of 13 bytes.
RGB_META_DTYPE = np.dtype([("mode", "u1"), ("width", "<u2"), ("height", "<u2"), ("data_ptr", "<u8")])
MODE_JPG = 0
MODE_RAW = 1

PTR_SIZE_META_DTYPE = np.dtype([("ptr", "<u8"), ("size", "<u8")])

FIELD_META_DTYPES = {
    TYPE_FLOAT: np.dtype("<f8"),
    TYPE_INT: np.dtype("<i8"),
    TYPE_RGB_IMAGE: RGB_META_DTYPE,
    TYPE_BYTES: PTR_SIZE_META_DTYPE,
    TYPE_NDARRAY: np.dtype("<u8"),
    TYPE_JSON: PTR_SIZE_META_DTYPE,
    TYPE_TORCH_TENSOR: np.dtype("<u8"),
}

MIN_PAGE_SIZE = 1 << 21  # FFCV's writer refuses smaller pages
DEFAULT_PAGE_SIZE = 4 * MIN_PAGE_SIZE  # FFCV's DatasetWriter default (8 MiB)
MAX_PAGE_SIZE = 1 << 32
# The reader accepts any power of two in [READ_MIN_PAGE_SIZE, MAX_PAGE_SIZE), as FFCV's reader does.
READ_MIN_PAGE_SIZE = 1 << 12

IMAGE_MODES = ("raw", "jpg", "proportion", "smart")


def metadata_dtype(type_ids: list[int]) -> np.dtype:
    """The per-sample metadata record for fields of these types, laid out as FFCV does."""
    return np.dtype([("", FIELD_META_DTYPES[t]) for t in type_ids], align=True)


def metadata_start(num_fields: int) -> int:
    return HEADER_DTYPE.itemsize + num_fields * FIELD_DESC_DTYPE.itemsize


def align_up(offset: int, page_size: int) -> int:
    return -(-offset // page_size) * page_size


def is_power_of_2(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0
