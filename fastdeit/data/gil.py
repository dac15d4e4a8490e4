"""A shorter GIL switch interval while decode threads work beside a busy main thread.

The decode threads spend most of their time in libjpeg and numba with the GIL released, but they
need it back briefly several times per image. While the main thread runs Python (launching the
training step's kernels, device augmentation), a thread asking for the GIL waits up to the switch
interval (CPython's default: 5 ms) before the holder is made to drop it, so the decoders stall in a
convoy behind the trainer. 0.5 ms makes the hand-over ten times more prompt at a negligible cost
(`python benchmarks/bench_gil.py` measures both, side by side).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_DECODE_SWITCH_INTERVAL = 5e-4  # seconds


@contextmanager
def switch_interval_at_most(seconds: float | None) -> Iterator[None]:
    """Lower `sys.setswitchinterval` to `seconds` (never raise it) inside the block; None: unchanged."""
    previous = sys.getswitchinterval()
    if seconds is None or seconds >= previous:
        yield
        return
    if seconds <= 0:
        raise ValueError(f"switch interval must be positive, got {seconds}")
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
