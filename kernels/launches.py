"""Launch bookkeeping for the Triton augmentation kernels.

Every launch goes through `launch`, which counts it: tests assert the number of kernel launches
per batch (the issue's budget is 8) by counting here on the CPU interpreter, and with the torch
profiler on CUDA. `interpreting()` says whether Triton runs its CPU interpreter
(TRITON_INTERPRET=1), the only way these kernels take CPU tensors.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from typing import Any, Iterator

import torch

LAUNCHES: Counter[str] = Counter()  # kernel name -> launches since the process started


def interpreting() -> bool:
    """True when Triton's CPU interpreter is on (read where the kernels are decorated)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def check_device(tensor: torch.Tensor, what: str = "images") -> None:
    """ValueError unless the Triton kernels can run on `tensor`'s device."""
    if tensor.device.type == "cuda":
        return
    if tensor.device.type == "cpu" and interpreting():
        return
    raise ValueError(f"the Triton kernels need {what} on CUDA (or CPU tensors with TRITON_INTERPRET=1 set "
                     f"before triton is imported), got {what} on {tensor.device}")


def launch(kernel: Any, grid: tuple[int, ...], *args: Any, **kwargs: Any) -> None:
    """kernel[grid](*args, **kwargs) without fp fusion, counted in LAUNCHES under the kernel's name."""
    LAUNCHES[kernel.fn.__name__ if hasattr(kernel, "fn") else kernel.__name__] += 1
    # No multiply-add contraction: the torch references round every product and sum apart.
    kernel[grid](*args, enable_fp_fusion=False, **kwargs)


@contextlib.contextmanager
def count_launches() -> Iterator[Counter[str]]:
    """Yield a Counter filled, on exit, with the launches made inside the block."""
    before = LAUNCHES.copy()
    counted: Counter[str] = Counter()
    try:
        yield counted
    finally:
        counted.update(LAUNCHES - before)
