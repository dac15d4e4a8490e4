"""timm's RandAugment level -> argument functions, vectorised over a batch of magnitudes.

Each function mirrors the one of the same role in `timm.data.auto_augment` (`_LEVEL_DENOM` = 10)
and evaluates in float64 with the same operation order, so that the integer arguments
(posterize bits, solarize thresholds) truncate exactly as Python's `int()` does there.
timm negates signed arguments at random; here the sign of the magnitude is that sign.
Magnitudes are clipped to [0, 10] in absolute value, as timm's AugmentOp clips them.
"""

from __future__ import annotations

import torch

LEVEL_DENOM = 10.0
ROTATE_MAX_DEG = 30.0  # _rotate_level_to_arg
SHEAR_MAX = 0.3  # _shear_level_to_arg
TRANSLATE_PCT = 0.45  # _translate_rel_level_to_arg default translate_pct
ENHANCE_RANGE = 0.9  # _enhance_increasing_level_to_arg
SOLARIZE_ADD_MAX = 110.0  # _solarize_add_level_to_arg


def _level_and_sign(magnitude: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m = magnitude.to(torch.float64)
    sign = torch.where(m < 0, -1.0, 1.0).to(torch.float64)
    return m.abs().clamp(0.0, LEVEL_DENOM), sign


def rotate_degrees(magnitude: torch.Tensor) -> torch.Tensor:
    """Counter-clockwise degrees, range [-30, 30]."""
    level, sign = _level_and_sign(magnitude)
    return (level / LEVEL_DENOM) * ROTATE_MAX_DEG * sign


def shear_factor(magnitude: torch.Tensor) -> torch.Tensor:
    """Shear factor, range [-0.3, 0.3]."""
    level, sign = _level_and_sign(magnitude)
    return (level / LEVEL_DENOM) * SHEAR_MAX * sign


def translate_fraction(magnitude: torch.Tensor, translate_pct: float = TRANSLATE_PCT) -> torch.Tensor:
    """Translation as a fraction of the image side, range [-0.45, 0.45]."""
    level, sign = _level_and_sign(magnitude)
    return (level / LEVEL_DENOM) * translate_pct * sign


def enhance_factor(magnitude: torch.Tensor) -> torch.Tensor:
    """ImageEnhance blend factor for the *Increasing ops, range [0.1, 1.9], 1 = unchanged."""
    level, sign = _level_and_sign(magnitude)
    return (1.0 + (level / LEVEL_DENOM) * ENHANCE_RANGE * sign).clamp_min(0.1)


def posterize_bits(magnitude: torch.Tensor) -> torch.Tensor:
    """Bits kept by PosterizeIncreasing, 4 at magnitude 0 down to 0 at magnitude 10 (int64)."""
    level, _ = _level_and_sign(magnitude)
    return 4 - torch.floor((level / LEVEL_DENOM) * 4).to(torch.int64)


def solarize_threshold(magnitude: torch.Tensor) -> torch.Tensor:
    """SolarizeIncreasing threshold, 256 (no change) at magnitude 0 down to 0 (int64)."""
    level, _ = _level_and_sign(magnitude)
    return 256 - torch.floor((level / LEVEL_DENOM) * 256).clamp_max(256).to(torch.int64)


def solarize_add_amount(magnitude: torch.Tensor) -> torch.Tensor:
    """Amount SolarizeAdd adds below 128, range [0, 110] (int64)."""
    level, _ = _level_and_sign(magnitude)
    return torch.floor((level / LEVEL_DENOM) * SOLARIZE_ADD_MAX).clamp_max(128).to(torch.int64)
