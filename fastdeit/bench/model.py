"""`fastdeit bench model`: training-step images/s and MFU of DeiT-Ti/S/B, eager against compiled,
attention backends side by side, on synthetic inputs (the model alone, no data loading).

FLOPs are counted with torch.utils.flop_counter.FlopCounterMode on one forward + backward
(matmuls, convolutions and SDPA; 2 FLOPs per multiply-add), the method of the MFU literature;
`forward_gmacs` checks the forward count against the paper's 1.3 / 4.6 / 17.6 GMACs at 224.
MFU = counted FLOPs per second / the device's peak dense bf16 FLOPs (--peak-tflops, or a table
of known GPUs; none on CPU).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from fastdeit.config.schema import ModelConfig
from fastdeit.models import create_model
from fastdeit.models.attention import sdpa_backend_used

# Dense bf16 peak of known accelerators (vendor datasheets, without sparsity).
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.0}
PAPER_GMACS = {"deit_tiny_patch16_224": 1.3, "deit_small_patch16_224": 4.6, "deit_base_patch16_224": 17.6}
# "compiled-cudagraphs" is torch.compile's reduce-overhead mode: the step's kernels replayed as CUDA
# graphs (on a CPU it is plain compiled). It earns a default only where this row beats "compiled".
# "compiled-max-autotune" lets inductor benchmark Triton/cuBLAS kernel choices (minutes of compile).
COMPILE_MODES = {"eager": None, "compiled": "default", "compiled-cudagraphs": "reduce-overhead",
                 "compiled-max-autotune": "max-autotune"}
BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}


@dataclass
class StepResult:
    model: str
    mode: str
    attention: str
    ran: str  # the SDPA backend observed in the step's aten ops (models.attention)
    batch: int
    img_per_s: float
    tflops_per_s: float
    mfu: float | None


def count_flops(fn) -> int:
    # The math SDPA backend decomposes attention into matmuls the counter sees on every device
    # (the CPU flash kernel has no FLOP formula registered and would count as zero).
    with sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def forward_gmacs(name: str, img_size: int = 224, **arch) -> float:
    """Forward multiply-accumulates of one image, in billions."""
    model = create_model(ModelConfig(name=name, drop_path=0.0, **arch), 1000, img_size).eval()
    x = torch.randn(1, 3, img_size, img_size)
    with torch.no_grad():
        return count_flops(lambda: model(x)) / 2 / 1e9


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def make_step(model, optimizer, x, y, dtype):
    autocast = torch.autocast(x.device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()

    def step():
        with autocast:
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def time_steps(step, device: torch.device, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def bench_one(name: str, mode: str, attention: str, *, batch: int, img_size: int, device: torch.device,
              dtype: torch.dtype, steps: int, warmup: int, peak: float | None, arch: dict) -> StepResult:
    model = create_model(ModelConfig(name=name, drop_path=0.1, **arch), 1000, img_size).to(device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type in ("cuda", "cpu"))
    x = torch.randn(batch, 3, img_size, img_size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    flops = count_flops(make_step(model, optimizer, x, y, dtype))
    if mode not in COMPILE_MODES:
        raise ValueError(f"mode {mode!r}: one of {', '.join(COMPILE_MODES)}")
    compile_mode = COMPILE_MODES[mode]
    runner = model if compile_mode is None else torch.compile(model, mode=compile_mode)
    step = make_step(runner, optimizer, x, y, dtype)
    with sdpa_kernel([BACKENDS[attention]]) if attention != "default" else nullcontext():
        ran = sdpa_backend_used(make_step(model, optimizer, x, y, dtype))  # eager: compiled hides aten ops
        seconds = time_steps(step, device, steps, warmup)
    tflops = flops / seconds / 1e12
    return StepResult(name, mode, attention, ran, batch, batch / seconds, tflops,
                      tflops / peak if peak else None)


def run(models: tuple[str, ...] = tuple(PAPER_GMACS), *, batch: int = 256, img_size: int = 224,
        device: str = "auto", modes: tuple[str, ...] = ("eager", "compiled"),
        attentions: tuple[str, ...] = ("default",), steps: int = 10, warmup: int = 3,
        peak: float | None = None, arch: dict | None = None, print_table: bool = True) -> dict:
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    peak_value = peak_tflops(dev, peak)
    rows = []
    for name in models:
        for mode in modes:
            for attention in attentions:
                try:
                    result = bench_one(name, mode, attention, batch=batch, img_size=img_size, device=dev,
                                       dtype=dtype, steps=steps, warmup=warmup, peak=peak_value, arch=arch or {})
                    rows.append(result.__dict__)
                except RuntimeError as err:  # a backend this GPU lacks: report, do not stop
                    rows.append({"model": name, "mode": mode, "attention": attention, "error": str(err)[:200]})
                if print_table:  # row by row: a run stopped by a time limit keeps what it measured
                    print(format_table(rows[-1:], header=len(rows) == 1), flush=True)
    result = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
              "dtype": str(dtype), "peak_tflops": peak_value, "img_size": img_size, "rows": rows}
    return result


def format_table(rows: list[dict], header: bool = True) -> str:
    lines = [] if not header else [f"{'model':<28} {'mode':<19} {'attention':<10} {'ran':<9} {'img/s':>10} {'TFLOP/s':>9} {'MFU':>6}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['model']:<28} {r['mode']:<19} {r['attention']:<10} unavailable: {r['error'][:60]}")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        lines.append(f"{r['model']:<28} {r['mode']:<19} {r['attention']:<10} {r['ran']:<9} {r['img_per_s']:>10.1f} "
                     f"{r['tflops_per_s']:>9.3f} {mfu:>6}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
