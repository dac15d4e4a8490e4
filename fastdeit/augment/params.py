"""The per-sample parameters of the device augmentation: what the view plan hands over.

All tensors share one device (the CPU, as the plan makes them, costs no device syncs).
N samples in whole mixing groups (group-major), L RandAugment layers, g = N / mix_group groups:

  ra_op         int   (N, L)  index into ops.RAND_INCREASING_OPS (timm's order)
  ra_apply      bool  (N, L)  whether layer l is applied (timm AugmentOp prob)
  ra_magnitude  float (N, L)  0..10, negative where timm would negate a signed op
  erase         bool  (N,)    whether the sample gets an erasing box
  erase_box     int   (N, 4)  (top, left, height, width) in output pixels
  erase_seed    int64 (N,)    seed of the box's per-pixel noise (>= 0)
  mix_mode      int   (g,)    0 none, 1 mixup, 2 cutmix
  mix_lam       float (g,)    weight of the sample itself; cutmix: corrected by the box area
  mix_box       int   (g, 4)  cutmix (y0, y1, x0, x1), half-open, output pixels
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class AugmentParams:
    """Explicit per-sample draws for DeviceAugment (see the module docstring for shapes)."""

    ra_op: torch.Tensor
    ra_apply: torch.Tensor
    ra_magnitude: torch.Tensor
    erase: torch.Tensor
    erase_box: torch.Tensor
    erase_seed: torch.Tensor
    mix_mode: torch.Tensor
    mix_lam: torch.Tensor
    mix_box: torch.Tensor

    @classmethod
    def from_plan(cls, plan: Any) -> "AugmentParams":
        """Wrap a fastdeit.data.plan.Plan's arrays as CPU tensors (no copy where possible)."""
        values = {}
        for f in fields(cls):
            array = getattr(plan, f.name)
            values[f.name] = torch.from_numpy(np.ascontiguousarray(array))
        values["ra_op"] = values["ra_op"].to(torch.int64)
        values["mix_mode"] = values["mix_mode"].to(torch.int64)
        values["erase_box"] = values["erase_box"].to(torch.int64)
        values["mix_box"] = values["mix_box"].to(torch.int64)
        return cls(**values)

    def select_groups(self, groups: slice, group_size: int) -> "AugmentParams":
        """The parameters of a contiguous range of mixing groups (e.g. one device's share)."""
        rows = slice(groups.start * group_size if groups.start else 0,
                     None if groups.stop is None else groups.stop * group_size)
        per_group = {"mix_mode", "mix_lam", "mix_box"}
        return AugmentParams(**{f.name: getattr(self, f.name)[groups if f.name in per_group else rows]
                                for f in fields(self)})
