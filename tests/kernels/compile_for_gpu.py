"""Compile the Triton kernels for an H100/H200 (sm_90) without a GPU: Triton's own compiler and
its bundled ptxas, outside the interpreter, with the argument types and constexprs the launches
use. Run as a script (TRITON_INTERPRET unset) by test_compiles_for_sm90.py; prints one line per
kernel."""

from __future__ import annotations

import os

os.environ.pop("TRITON_INTERPRET", None)

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler.compiler import ASTSource  # noqa: E402

from fastdeit.kernels import augment_finish_triton as F  # noqa: E402
from fastdeit.kernels import rand_augment_triton as R  # noqa: E402

IMG = dict(sn="i32", sc="i32", sh="i32", sw="i32")
KERNELS = [
    (R._stats_kernel, dict(img="*u8", **IMG, ops="*i32", op_stride="i32", lut="*i32", level="*i32", H="i32",
                           W="i32", BLOCK="constexpr"), dict(BLOCK=R.STATS_BLOCK)),
    (R._ra_kernel, dict(src="*u8", dst="*u8", **IMG, ops="*i32", mags="*fp32", op_stride="i32", lut="*i32",
                        level="*i32", H="i32", W="i32", fill_r="i32", fill_g="i32", fill_b="i32",
                        BICUBIC="constexpr", BLOCK="constexpr"), dict(BICUBIC=True, BLOCK=R.BLOCK_PIXELS)),
    (F._finish_kernel, dict(img="*u8", **IMG, out="*bf16", sample="*i32", group="*i32", H="i32", W="i32", G="i32",
                            scale_r="fp32", scale_g="fp32", scale_b="fp32", shift_r="fp32", shift_g="fp32",
                            shift_b="fp32", HAS_ERASE="constexpr", ERASE_MODE="constexpr", HAS_MIX="constexpr",
                            S_COLS="constexpr", OUT_BF16="constexpr", BLOCK="constexpr"),
     dict(HAS_ERASE=True, ERASE_MODE=0, HAS_MIX=True, S_COLS=12, OUT_BF16=True, BLOCK=R.BLOCK_PIXELS)),
    (F._targets_kernel, dict(labels="*i32", label_stride="i32", group="*i32", targets="*fp32", K="i32", G="i32",
                             off_value="fp32", on_value="fp32", HAS_MIX="constexpr", BLOCK="constexpr"),
     dict(HAS_MIX=True, BLOCK=1024)),
]

if __name__ == "__main__":
    for fn, signature, constexprs in KERNELS:
        compiled = triton.compile(ASTSource(fn, signature, constexprs), target=GPUTarget("cuda", 90, 32),
                                  options={"enable_fp_fusion": False})
        print(f"{fn.__name__}: cubin {len(compiled.asm['cubin'])} bytes")
