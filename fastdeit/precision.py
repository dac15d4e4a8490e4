"""The precision policy (`run.precision`), shared by training, evaluation, distillation and the
teacher-logit cache: which autocast dtype a device runs under."""

from __future__ import annotations

from contextlib import nullcontext

import torch

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype:
    """run.precision resolved: auto = bf16 on CUDA, fp32 on CPU (bf16 matmuls without AMX run several
    times slower there); fp16 only on CUDA (fp32 on CPU)."""
    if precision not in PRECISIONS:
        raise ValueError(f"run.precision = {precision!r}: must be one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type == "cpu":
        precision = "fp32"
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast_for(device: torch.device, precision: str):
    """The autocast context for `precision` on `device` (a no-op for fp32)."""
    dtype = autocast_dtype(device, precision)
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def needs_grad_scaler(device: torch.device, precision: str) -> bool:
    """fp16 training needs a GradScaler (bf16 and fp32 do not)."""
    return autocast_dtype(device, precision) == torch.float16
