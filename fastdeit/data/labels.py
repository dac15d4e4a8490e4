"""What a label may be: a class index 0..C-1, with C = max label + 1 classes and at most MAX_CLASSES.

A classification head has one output per class index up to the largest label, so a single sparse
huge label (10^6, 2^62) would silently build a head of that many classes; a negative label crashes
deep inside `scatter_` (a device-side assert on CUDA). Labels are checked when a `.beton` is written
(prepare, list files included) and when one is opened for training or evaluation.
"""

from __future__ import annotations

import numpy as np

# The largest head fastdeit builds: 100,000 classes covers ImageNet-21k (21,841) with room to spare;
# a larger label is almost surely an id (not a class index) and is refused rather than trained.
MAX_CLASSES = 100_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def label_error(label: int) -> str | None:
    """Why `label` cannot be a class index, or None if it can."""
    if not INT64_MIN <= label <= INT64_MAX:
        return f"label {label} does not fit a 64-bit integer"
    if label < 0:
        return f"label {label} is negative (labels are class indices 0..C-1)"
    if label >= MAX_CLASSES:
        return (f"label {label} is too large: labels are class indices 0..C-1 with C = the largest label + 1 "
                f"<= {MAX_CLASSES:,} classes (renumber sparse ids to 0..C-1)")
    return None


def bad_label_indices(labels: np.ndarray) -> np.ndarray:
    """Indices of the samples whose label is not a valid class index."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.flatnonzero((labels < 0) | (labels >= MAX_CLASSES))


def check_labels(labels: np.ndarray, source: str, num_classes: int | None = None) -> int:
    """The number of classes of a dataset (max label + 1), or a ValueError naming `source` and the
    first bad sample. With `num_classes` (the training set's), labels must also be below it."""
    labels = np.asarray(labels, dtype=np.int64)
    bad = bad_label_indices(labels)
    if len(bad):
        i = int(bad[0])
        more = f" ({len(bad) - 1} more bad labels)" if len(bad) > 1 else ""
        raise ValueError(f"{source}: sample {i}: {label_error(int(labels[i]))}{more}")
    classes = int(labels.max()) + 1 if len(labels) else 0
    if num_classes is not None and classes > num_classes:
        i = int(np.flatnonzero(labels >= num_classes)[0])
        raise ValueError(f"{source}: sample {i} has label {int(labels[i])}, but the model has {num_classes} classes "
                         f"(labels 0..{num_classes - 1}, from its training set)")
    return classes
