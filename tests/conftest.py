"""Suite-wide settings that must hold before any test module imports triton.

On a machine without CUDA the Triton kernels (kernels/) run under Triton's interpreter, which
Triton reads when its functions are decorated, i.e. at its first import: whichever test imports it
first (torch.compile, the bench, the kernel tests), the interpreter must already be chosen."""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
