"""fastdeit's hand-written kernels (Triton, numba, C), importable as `fastdeit.kernels`.

This folder sits at the top of the repository, apart from the package, and is mapped into it by
setup.py's `package_dir`. Each kernel lives beside the plain reference (torch or PIL) it is tested
against, and stays only where a benchmark shows it beats that reference.

Triton (DeviceAugment's fused path; reference: the per-op torch path in fastdeit/augment):
  rand_augment_triton.py     RandAugment, 2 launches per layer; `rand_augment` has the
                             signature of fastdeit.augment.rand_augment.rand_augment
  augment_finish_triton.py   normalise + erasing + mixup/cutmix + bf16 channels_last; targets
  device_augment_triton.py   `fused_augment`: the whole recipe of a batch in 6 launches
  launches.py                launch counting, interpreter detection
They run on CUDA, or on CPU tensors under TRITON_INTERPRET=1 (set before triton is imported).
"""

from typing import Any

_TRITON = {
    "rand_augment": "rand_augment_triton",  # fastdeit.augment.rand_augment.rand_augment on Triton
    "fused_augment": "device_augment_triton",  # DeviceAugment's whole recipe on Triton
    "count_launches": "launches",
}


def __getattr__(name: str) -> Any:
    # Lazy: importing triton (and decorating the kernels, which reads TRITON_INTERPRET) only when
    # a Triton kernel is asked for, so the numba and C kernels here import without it.
    if name in _TRITON:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_TRITON[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
