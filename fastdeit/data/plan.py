"""The view plan: every random decision of the data pipeline as a pure function.

A plan is computed from (seed, epoch, global step, mixing groups) and the recipe, plus the
stored image sizes, and nothing else: not the world size, the rank, the number of threads or
the timing of a run (DESIGN.md, invariant 1). All draws come from Philox keyed by (seed, epoch)
with the sample's *position* in the epoch's stream (or the mixing group's id) as counter, so any
process recomputes any sample's view on its own, and a resumed run replays it exactly.

Layout of an epoch (deit's RASampler, facebookresearch/deit samplers.py, made world-size free):

* order: a permutation of the N images per epoch; with repeated augmentation r (= 3) each image
  is repeated r times consecutively; the epoch's stream is the first floor(N / 256) * 256 of
  those positions (deit: ``num_selected_samples``), cut to whole global batches (drop_last).
* global step s covers positions [s*B, (s+1)*B). Position q = p - s*B within the step goes to
  mixing group ``q % n_groups`` at slot ``q // n_groups`` (n_groups = B / G, G = 64): exactly how
  deit deals the stream round-robin to its 16 ranks of 64 images. So the r copies of an image,
  being consecutive, land in r different groups of the same step (unless the triple straddles a
  step boundary, as in deit).
* a batch is laid out group-major: batch row ``g_local * G + slot``; a mixing group is a
  contiguous block of G rows, its partner order the block reversed (timm Mixup ``x.flip(0)``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fastdeit.config.recipe import check_augment_recipe, check_mix_group
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data import philox

PLAN_VERSION = 1

# timm.data.auto_augment._RAND_INCREASING_TRANSFORMS, in timm's order (ra_op indexes this); the one
# definition, which fastdeit.augment.ops imports too.
RAND_INCREASING_OPS: tuple[str, ...] = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "PosterizeIncreasing",
    "SolarizeIncreasing",
    "SolarizeAdd",
    "ColorIncreasing",
    "ContrastIncreasing",
    "BrightnessIncreasing",
    "SharpnessIncreasing",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
)
# Ops whose timm level function calls _randomly_negate: Rotate, and every op from ColorIncreasing
# on (enhance-increasing, shear, translate).
SIGNED_OPS: frozenset[str] = frozenset(
    ("Rotate", *RAND_INCREASING_OPS[RAND_INCREASING_OPS.index("ColorIncreasing"):])
)
_SIGNED_MASK = np.array([name in SIGNED_OPS for name in RAND_INCREASING_OPS])

MIX_NONE, MIX_MIXUP, MIX_CUTMIX = 0, 1, 2

# Philox streams: one per independent decision, so adding a decision never shifts another.
_S_PERM = 0
_S_CROP = 1
_S_FLIP = 2
_S_RA_CHOICE = 3
_S_RA_MAG = 4
_S_ERASE = 5
_S_MIX = 6
_S_MIX_BETA_MIXUP = 10  # uses 10..13
_S_MIX_BETA_CUTMIX = 20  # uses 20..23

_RRC_ATTEMPTS = 10  # torchvision RandomResizedCrop.get_params
_ERASE_ATTEMPTS = 10  # timm RandomErasing._erase


@dataclass(frozen=True)
class PlanConfig:
    """The recipe as the plan needs it; defaults are deit's (see AugmentConfig/DataConfig)."""

    img_size: int = 224
    global_batch: int = 1024
    mix_group: int = 64
    repeated_aug: int = 3
    epoch_multiple: int = 256  # deit RASampler: floor(N // 256 * 256) samples per epoch
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    hflip: float = 0.5
    ra_layers: int = 2  # timm rand-…: n (0 = no RandAugment)
    ra_prob: float = 0.5  # timm rand-…: p
    ra_magnitude: float = 9.0  # rand-m9
    ra_magnitude_std: float = 0.5  # mstd0.5 (inf = uniform in [0, m], timm's mstd > 100)
    ra_magnitude_max: float = 10.0  # timm _LEVEL_DENOM unless mmax
    reprob: float = 0.25
    erase_min_area: float = 0.02  # timm RandomErasing defaults
    erase_max_area: float = 1.0 / 3.0
    erase_min_aspect: float = 0.3
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    mix_prob: float = 1.0
    mix_switch_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.img_size <= 0 or self.mix_group <= 0 or self.global_batch <= 0:
            raise ValueError("img_size, mix_group and global_batch must be positive")
        check_mix_group(self.mix_group, self.global_batch)
        if self.repeated_aug < 1 or self.epoch_multiple < 1:
            raise ValueError("repeated_aug and epoch_multiple must be >= 1")
        if not (0 < self.scale[0] <= self.scale[1]) or not (0 < self.ratio[0] <= self.ratio[1]):
            raise ValueError(f"bad scale {self.scale} or ratio {self.ratio}")

    @property
    def n_groups(self) -> int:
        """Mixing groups per global step (deit: 16 GPUs)."""
        return self.global_batch // self.mix_group

    @classmethod
    def from_configs(cls, data: DataConfig, augment: AugmentConfig) -> "PlanConfig":
        """Build from the run's data and augment sub-configs (raises ValueError if unsupported)."""
        check_augment_recipe(augment)
        if augment.interpolation != "bicubic":
            raise ValueError(
                f"augment.interpolation={augment.interpolation!r}: the plan loaders resize bicubic "
                "(deit's --train-interpolation); use data.loader=reference for other filters"
            )
        ra = parse_rand_augment(augment.auto_augment)
        if ra["ra_layers"] == 0 and augment.color_jitter > 0:
            # timm create_transform applies ColorJitter only when there is no auto_augment
            raise ValueError(
                f"augment.color_jitter={augment.color_jitter} without auto_augment: colour jitter "
                "is not part of the plan; set augment.color_jitter=0 or use data.loader=reference"
            )
        return cls(
            img_size=data.img_size,
            global_batch=data.global_batch,
            mix_group=augment.mix_group,
            repeated_aug=data.repeated_aug,
            scale=tuple(augment.scale),
            ratio=tuple(augment.ratio),
            hflip=augment.hflip,
            reprob=augment.reprob,
            mixup_alpha=augment.mixup,
            cutmix_alpha=augment.cutmix,
            mix_prob=augment.mixup_prob,
            mix_switch_prob=augment.mixup_switch_prob,
            **ra,
        )


def parse_rand_augment(spec: str) -> dict:
    """Parse a timm RandAugment string ('rand-m9-mstd0.5-inc1') into PlanConfig fields."""
    if spec in ("", "none"):
        return {"ra_layers": 0}
    parts = spec.split("-")
    if parts[0] != "rand":
        raise ValueError(f"auto_augment {spec!r}: only timm 'rand-…' RandAugment is supported")
    out = {"ra_layers": 2, "ra_prob": 0.5, "ra_magnitude": 10.0, "ra_magnitude_std": 0.0}
    increasing = False
    for part in parts[1:]:
        m = re.fullmatch(r"(mstd|mmax|inc|m|n|p)(\d.*)", part)
        if m is None:
            raise ValueError(f"auto_augment {spec!r}: unknown section {part!r}")
        key, val = m.groups()
        if key == "mstd":
            out["ra_magnitude_std"] = math.inf if float(val) > 100 else float(val)
        elif key == "mmax":
            out["ra_magnitude_max"] = float(int(val))
        elif key == "inc":
            increasing = bool(int(val))
        elif key == "m":
            out["ra_magnitude"] = float(int(val))
        elif key == "n":
            out["ra_layers"] = int(val)
        else:
            out["ra_prob"] = float(val)
    if not increasing:
        raise ValueError(f"auto_augment {spec!r}: only the increasing op set (inc1) is supported")
    return out


@dataclass(frozen=True)
class Plan:
    """The views of one global step's samples in whole mixing groups (a rank's share or all).

    n = len(groups) * mix_group samples, group-major (row = local_group * mix_group + slot).
    Per-sample arrays have leading dimension n; per-group arrays len(groups).

    Fields:
      version       int, PLAN_VERSION.
      epoch, step   ints: the epoch and the global step within it.
      img_size      int: output side in pixels (crops are resized to img_size × img_size).
      mix_group     int: G, samples per mixing group.
      groups        int64 (g,): group numbers within the step (0 .. global_batch/G - 1).
      positions     int64 (n,): positions in the epoch's stream (step*B + slot*n_groups + group).
      indices       int64 (n,): dataset indices of the samples.
      crop          int32 (n, 4): RandomResizedCrop box (top, left, height, width) in pixels of
                    the stored image (as torchvision's get_params returns i, j, h, w).
      flip          bool (n,): horizontal flip after the crop.
      ra_op         int8 (n, L): RandAugment op index into RAND_INCREASING_OPS, L = ra_layers.
      ra_apply      bool (n, L): whether layer l is applied (timm AugmentOp prob 0.5).
      ra_magnitude  float32 (n, L): magnitude on timm's 0..10 scale, already clipped; negative
                    when timm's _randomly_negate flips a signed op (never for unsigned ops).
      erase         bool (n,): whether a random-erasing box is applied.
      erase_box     int32 (n, 4): (top, left, height, width) in output pixels; 0 where not erase.
      erase_seed    int64 (n,): seed in [0, 2**63) for the box's per-pixel normal noise.
      mix_mode      int8 (g,): MIX_NONE, MIX_MIXUP or MIX_CUTMIX per group.
      mix_lam       float64 (g,): weight of the sample itself (1 - weight of its partner); for
                    cutmix already corrected by the clipped box area (timm correct_lam).
      mix_box       int32 (g, 4): cutmix box (y0, y1, x0, x1), half-open, output pixels, where
                    the partner's pixels are pasted; 0 unless cutmix.
    """

    version: int
    epoch: int
    step: int
    img_size: int
    mix_group: int
    groups: np.ndarray
    positions: np.ndarray
    indices: np.ndarray
    crop: np.ndarray
    flip: np.ndarray
    ra_op: np.ndarray
    ra_apply: np.ndarray
    ra_magnitude: np.ndarray
    erase: np.ndarray
    erase_box: np.ndarray
    erase_seed: np.ndarray
    mix_mode: np.ndarray
    mix_lam: np.ndarray
    mix_box: np.ndarray

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def group_of_sample(self) -> np.ndarray:
        """int64 (n,): the step-level group number of each row."""
        return np.repeat(self.groups, self.mix_group)

    @property
    def partner(self) -> np.ndarray:
        """int64 (n,): row of each sample's mixing partner (its group reversed)."""
        g = self.mix_group
        rows = np.arange(len(self))
        return (rows // g) * g + (g - 1 - rows % g)


# ---------------------------------------------------------------------------------- epoch order


def epoch_length(cfg: PlanConfig, n_images: int) -> int:
    """Samples in an epoch's stream: deit's floor(N/256)*256, cut to whole global batches."""
    return steps_per_epoch(cfg, n_images) * cfg.global_batch


def steps_per_epoch(cfg: PlanConfig, n_images: int) -> int:
    """Global steps per epoch (deit: len(data_loader_train) with drop_last)."""
    if n_images < 0:
        raise ValueError(f"n_images must be >= 0, got {n_images}")
    selected = n_images // cfg.epoch_multiple * cfg.epoch_multiple
    return selected // cfg.global_batch


@functools.lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, n_images: int) -> np.ndarray:
    words = philox.random_words(seed, epoch, np.arange(n_images), _S_PERM, 2).astype(np.uint64)
    keys = (words[:, 0] << np.uint64(32)) | words[:, 1]
    perm = np.argsort(keys, kind="stable")
    perm.setflags(write=False)
    return perm


def epoch_permutation(seed: int, epoch: int, n_images: int) -> np.ndarray:
    """The epoch's image order, a permutation of range(n_images) (read-only int64 array)."""
    return _permutation(int(seed), int(epoch), int(n_images))


def sample_indices(
    cfg: PlanConfig, seed: int, epoch: int, positions: np.ndarray, n_images: int
) -> np.ndarray:
    """Dataset index of each stream position: image perm[p // repeated_aug] (RASampler)."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size and (positions.min() < 0 or positions.max() >= epoch_length(cfg, n_images)):
        raise ValueError("positions outside the epoch's stream")
    return epoch_permutation(seed, epoch, n_images)[positions // cfg.repeated_aug]


def step_positions(cfg: PlanConfig, step: int, groups: np.ndarray) -> np.ndarray:
    """Stream positions of the given groups of a step, group-major (G per group)."""
    groups = np.asarray(groups, dtype=np.int64)
    if groups.size and (groups.min() < 0 or groups.max() >= cfg.n_groups):
        raise ValueError(f"groups must be in [0, {cfg.n_groups})")
    slots = np.arange(cfg.mix_group, dtype=np.int64)
    q = slots[None, :] * cfg.n_groups + groups[:, None]
    return (step * cfg.global_batch + q).reshape(-1)


# ----------------------------------------------------------------------------- per-sample draws


def rrc_boxes(
    u: np.ndarray,
    width: np.ndarray,
    height: np.ndarray,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> np.ndarray:
    """torchvision RandomResizedCrop.get_params, vectorised: int32 (n, 4) (top, left, h, w).

    `u` holds 4 uniforms per attempt (scale, log-ratio, top, left): shape (n, 4 * 10). The
    first attempt whose box fits wins; with none, the centre crop with the ratio clamped.
    """
    width = np.asarray(width, dtype=np.int64)[:, None]
    height = np.asarray(height, dtype=np.int64)[:, None]
    u = u.reshape(u.shape[0], _RRC_ATTEMPTS, 4)
    area = (width * height).astype(np.float64)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    log_r0, log_r1 = math.log(ratio[0]), math.log(ratio[1])
    aspect = np.exp(log_r0 + (log_r1 - log_r0) * u[..., 1])
    w = np.rint(np.sqrt(target * aspect)).astype(np.int64)  # int(round()) : half to even
    h = np.rint(np.sqrt(target / aspect)).astype(np.int64)
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    top = np.floor(u[..., 2] * (height - h + 1)).astype(np.int64)
    left = np.floor(u[..., 3] * (width - w + 1)).astype(np.int64)
    first = np.argmax(fits, axis=1)
    rows = np.arange(u.shape[0])
    box = np.stack([top[rows, first], left[rows, first], h[rows, first], w[rows, first]], 1)
    fb = _centre_fallback(width[:, 0], height[:, 0], ratio)
    return np.where(fits.any(axis=1)[:, None], box, fb).astype(np.int32)


def _centre_fallback(width: np.ndarray, height: np.ndarray, ratio: tuple[float, float]) -> np.ndarray:
    in_ratio = width / height
    lo, hi = min(ratio), max(ratio)
    w = np.where(in_ratio < lo, width, np.where(in_ratio > hi, np.rint(height * hi), width))
    h = np.where(in_ratio < lo, np.rint(width / lo), height)
    w, h = w.astype(np.int64), h.astype(np.int64)
    return np.stack([(height - h) // 2, (width - w) // 2, h, w], 1)


def _rand_augment(cfg: PlanConfig, seed: int, epoch: int, pos: np.ndarray):
    n, layers = pos.size, cfg.ra_layers
    u = philox.uniform(seed, epoch, pos, _S_RA_CHOICE, 3 * layers).reshape(n, layers, 3)
    n_ops = len(RAND_INCREASING_OPS)
    op = np.minimum((u[..., 0] * n_ops).astype(np.int64), n_ops - 1)
    apply = u[..., 1] < cfg.ra_prob
    if math.isinf(cfg.ra_magnitude_std):
        mag = philox.uniform(seed, epoch, pos, _S_RA_MAG, layers) * cfg.ra_magnitude
    elif cfg.ra_magnitude_std > 0:
        z = philox.normal(seed, epoch, pos, _S_RA_MAG, layers)
        mag = cfg.ra_magnitude + cfg.ra_magnitude_std * z
    else:
        mag = np.full((n, layers), cfg.ra_magnitude)
    mag = np.clip(mag, 0.0, cfg.ra_magnitude_max)
    negate = _SIGNED_MASK[op] & (u[..., 2] > 0.5)  # timm: -v if random() > 0.5
    mag = np.where(negate, -mag, mag)
    return op.astype(np.int8), apply, mag.astype(np.float32)


def _erasing(cfg: PlanConfig, seed: int, epoch: int, pos: np.ndarray):
    """timm RandomErasing._erase with count 1 on an img_size square."""
    n, side = pos.size, cfg.img_size
    u = philox.uniform(seed, epoch, pos, _S_ERASE, 1 + 4 * _ERASE_ATTEMPTS)
    a = u[:, 1:].reshape(n, _ERASE_ATTEMPTS, 4)
    area = float(side * side)
    target = area * (cfg.erase_min_area + (cfg.erase_max_area - cfg.erase_min_area) * a[..., 0])
    log_a0, log_a1 = math.log(cfg.erase_min_aspect), math.log(1.0 / cfg.erase_min_aspect)
    aspect = np.exp(log_a0 + (log_a1 - log_a0) * a[..., 1])
    h = np.rint(np.sqrt(target * aspect)).astype(np.int64)
    w = np.rint(np.sqrt(target / aspect)).astype(np.int64)
    fits = (w < side) & (h < side)
    top = np.floor(a[..., 2] * (side - h + 1)).astype(np.int64)
    left = np.floor(a[..., 3] * (side - w + 1)).astype(np.int64)
    first = np.argmax(fits, axis=1)
    rows = np.arange(n)
    erase = (u[:, 0] < cfg.reprob) & fits.any(axis=1)
    box = np.stack([top[rows, first], left[rows, first], h[rows, first], w[rows, first]], 1)
    box = np.where(erase[:, None], box, 0).astype(np.int32)
    words = philox.random_words(seed, epoch, pos, _S_ERASE + 100, 2).astype(np.uint64)
    noise_seed = ((words[:, 0] << np.uint64(31)) ^ words[:, 1]).astype(np.int64)
    noise_seed &= np.int64(0x7FFFFFFFFFFFFFFF)
    return erase, box, noise_seed


def _mixing(cfg: PlanConfig, seed: int, epoch: int, group_ids: np.ndarray):
    """timm Mixup._params_per_batch + cutmix_bbox_and_lam, one draw per group."""
    side = cfg.img_size
    u = philox.uniform(seed, epoch, group_ids, _S_MIX, 4)
    applied = u[:, 0] < cfg.mix_prob
    if cfg.mixup_alpha > 0 and cfg.cutmix_alpha > 0:
        cutmix = u[:, 1] < cfg.mix_switch_prob
    elif cfg.mixup_alpha > 0:
        cutmix = np.zeros(group_ids.size, dtype=bool)
    elif cfg.cutmix_alpha > 0:
        cutmix = np.ones(group_ids.size, dtype=bool)
    else:
        applied = np.zeros(group_ids.size, dtype=bool)
        cutmix = applied.copy()
    lam_mixup = _beta_or_one(seed, epoch, group_ids, _S_MIX_BETA_MIXUP, cfg.mixup_alpha)
    lam_cutmix = _beta_or_one(seed, epoch, group_ids, _S_MIX_BETA_CUTMIX, cfg.cutmix_alpha)
    lam = np.where(applied, np.where(cutmix, lam_cutmix, lam_mixup), 1.0)
    cutmix &= applied
    # timm rand_bbox with margin 0: randint(0, side) centres, box clipped to the image.
    cut = (side * np.sqrt(1.0 - lam)).astype(np.int64)
    cy = np.floor(u[:, 2] * side).astype(np.int64)
    cx = np.floor(u[:, 3] * side).astype(np.int64)
    y0, y1 = np.clip(cy - cut // 2, 0, side), np.clip(cy + (cut + 1) // 2, 0, side)
    x0, x1 = np.clip(cx - cut // 2, 0, side), np.clip(cx + (cut + 1) // 2, 0, side)
    box = np.stack([y0, y1, x0, x1], 1)
    lam = np.where(cutmix, 1.0 - (y1 - y0) * (x1 - x0) / float(side * side), lam)
    box = np.where(cutmix[:, None], box, 0).astype(np.int32)
    mode = np.where(cutmix, MIX_CUTMIX, np.where(applied, MIX_MIXUP, MIX_NONE)).astype(np.int8)
    return mode, lam, box


def _beta_or_one(seed: int, epoch: int, ids: np.ndarray, stream: int, alpha: float) -> np.ndarray:
    if alpha <= 0:
        return np.ones(ids.size)
    return philox.beta(seed, epoch, ids, stream, alpha, alpha)


# ------------------------------------------------------------------------------------ the plan


def make_plan(
    cfg: PlanConfig,
    seed: int,
    epoch: int,
    step: int,
    widths: np.ndarray,
    heights: np.ndarray,
    groups: np.ndarray | None = None,
) -> Plan:
    """The plan of global step `step` of `epoch` for `groups` (default: all groups of the step).

    `widths`/`heights` are the stored sizes of all N images of the dataset (int, shape (N,)).
    """
    return make_plans(cfg, seed, epoch, [step], widths, heights, groups)[0]


def make_plans(
    cfg: PlanConfig,
    seed: int,
    epoch: int,
    steps: Sequence[int],
    widths: np.ndarray,
    heights: np.ndarray,
    groups: np.ndarray | None = None,
) -> list[Plan]:
    """The plans of several steps of `epoch` at once: equal to make_plan for each, but every draw
    is one vectorised call over all their rows. Why: a plan of one 64-image batch is a dozen
    numpy calls on tiny arrays (~1.5 ms of the producer thread's time under the GIL, most of it
    call overhead), which the trainer's main thread pays for when it waits for the GIL; a block
    of 8 steps costs little more than one. Every draw is a function of its own row (position or
    group id) alone, so the values do not depend on what else is in the block.
    """
    widths, heights = np.asarray(widths), np.asarray(heights)
    if widths.shape != heights.shape or widths.ndim != 1:
        raise ValueError("widths and heights must be 1-D arrays of the same length")
    n_images = widths.shape[0]
    n_steps = steps_per_epoch(cfg, n_images)
    for step in steps:
        if not 0 <= step < n_steps:
            raise ValueError(f"step {step} outside the epoch's {n_steps} steps (N={n_images})")
    if not len(steps):
        return []
    groups = np.arange(cfg.n_groups) if groups is None else np.asarray(groups, dtype=np.int64)
    pos = np.concatenate([step_positions(cfg, step, groups) for step in steps])
    idx = sample_indices(cfg, seed, epoch, pos, n_images)
    crop = rrc_boxes(
        philox.uniform(seed, epoch, pos, _S_CROP, 4 * _RRC_ATTEMPTS),
        widths[idx],
        heights[idx],
        cfg.scale,
        cfg.ratio,
    )
    flip = philox.uniform(seed, epoch, pos, _S_FLIP, 1)[:, 0] < cfg.hflip
    ra_op, ra_apply, ra_mag = _rand_augment(cfg, seed, epoch, pos)
    erase, erase_box, erase_seed = _erasing(cfg, seed, epoch, pos)
    group_ids = np.concatenate([step * cfg.n_groups + groups for step in steps])
    mix_mode, mix_lam, mix_box = _mixing(cfg, seed, epoch, group_ids)
    per_sample = dict(positions=pos, indices=idx, crop=crop, flip=flip, ra_op=ra_op, ra_apply=ra_apply,
                      ra_magnitude=ra_mag, erase=erase, erase_box=erase_box, erase_seed=erase_seed)
    per_group = dict(mix_mode=mix_mode, mix_lam=mix_lam, mix_box=mix_box)
    n, g = groups.size * cfg.mix_group, groups.size
    plans = []
    for k, step in enumerate(steps):
        rows, grp = slice(k * n, (k + 1) * n), slice(k * g, (k + 1) * g)
        plans.append(Plan(
            version=PLAN_VERSION, epoch=int(epoch), step=int(step), img_size=cfg.img_size,
            mix_group=cfg.mix_group, groups=groups.copy(),
            **{name: a[rows].copy() for name, a in per_sample.items()},
            **{name: a[grp].copy() for name, a in per_group.items()},
        ))
    return plans
