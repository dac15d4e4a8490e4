"""Which fused attention kernel SDPA actually runs: read off the aten ops a forward/backward calls.

`F.scaled_dot_product_attention` picks a backend at run time (flash, cuDNN, memory-efficient or the
unfused math fallback) from the device, dtype, shapes and what is compiled in. A silent fall back to
math (e.g. after a shape or dtype change) costs several times the attention time, so the choice is
observed, not assumed: `fastdeit bench model` prints it and tests assert it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# aten kernel name fragment -> backend; the math fallback calls no fused kernel at all
KERNEL_BACKENDS = {
    "_scaled_dot_product_flash_attention": "flash",
    "_scaled_dot_product_cudnn_attention": "cudnn",
    "_scaled_dot_product_efficient_attention": "efficient",
    "_scaled_dot_product_fused_attention_overrideable": "overrideable",
}
FUSED_BACKENDS = ("flash", "cudnn", "efficient", "overrideable")


class _OpNames(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.__name__)
        return func(*args, **(kwargs or {}))


def backend_of(op_names: set[str]) -> str:
    """The SDPA backend named by a set of aten op names; "math" when no fused kernel ran."""
    found = {backend for name in op_names for frag, backend in KERNEL_BACKENDS.items() if frag in name}
    if len(found) > 1:
        return "+".join(sorted(found))
    return found.pop() if found else "math"


def sdpa_backend_used(run: Callable[[], object]) -> str:
    """Run `run()` (e.g. a forward + backward) and return the SDPA backend its attention used."""
    with _OpNames() as ops:
        run()
    return backend_of(ops.names)
