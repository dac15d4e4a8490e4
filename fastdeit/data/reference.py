"""The reference loader: facebookresearch/deit's data pipeline, built from timm and torchvision.

Why keep it: it is the fidelity baseline. The fast loaders and GPU augmentation are checked
against what this one does, and it is what `data.loader = "reference"` trains with. It mirrors
deit's `datasets.build_transform` and `main.py` exactly: timm `create_transform` with deit's
arguments for training (deit replaces the RandomResizedCrop by RandomCrop(padding=4) when the
input size is <= 32, and so do we), Resize(int(size / crop_pct), bicubic) + CenterCrop for
evaluation, deit's RASampler (`RepeatedAugSampler`), and timm's `Mixup` applied once per mixing
group of `aug.mix_group` samples (deit mixes each 64-image GPU batch separately).

One deliberate deviation: timm 1.0.31's PosterizeIncreasing asks Pillow for 0 bits when the noisy
magnitude clips to 10; Pillow >= 13 raises there while Pillow <= 12 returned a black image. The
train transform built here replaces the posterize op function of its own RandAugment ops with
one that keeps Pillow 12's result (see `_posterize_pillow12`); timm itself is left untouched.

Data comes from an ImageFolder directory or a `.beton` file (decoded to RGB by BetonReader, then
the same PIL transforms). The path "demo" is not resolved here: the trainer turns it into the
demo dataset's directories.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image, ImageOps
from timm.data import Mixup, create_transform
from timm.data.auto_augment import AugmentOp
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.data.mixup import mixup_target
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import datasets, transforms

from fastdeit.config.recipe import check_augment_recipe
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data.repeated_aug import RepeatedAugSampler

_POSTERIZE_OPS = ("Posterize", "PosterizeIncreasing", "PosterizeOriginal")
_INTERPOLATION = {
    "bicubic": transforms.InterpolationMode.BICUBIC,
    "bilinear": transforms.InterpolationMode.BILINEAR,
    "nearest": transforms.InterpolationMode.NEAREST,
}


# ----------------------------------------------------------------------------- posterize fix


def _posterize_pillow12(img: Image.Image, bits_to_keep: int, **_: Any) -> Image.Image:
    """timm's posterize with Pillow <= 12 semantics: keeping 0 bits gives a black image.

    Pillow 12 computed the mask ~(2 ** (8 - bits) - 1), which is 0 for bits = 0; Pillow 13 rejects
    bits < 1. Everything else is timm's `posterize` unchanged.
    """
    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return img.point([0] * 256 * len(img.getbands()))
    return ImageOps.posterize(img, bits_to_keep)


def _augment_ops(obj: Any, seen: set[int] | None = None) -> Iterator[AugmentOp]:
    """Every timm AugmentOp inside a (possibly nested) transform."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, AugmentOp):
        yield obj
        return
    if isinstance(obj, (list, tuple)):
        children: list[Any] = list(obj)
    else:
        children = [getattr(obj, a) for a in ("transforms", "ops", "policy") if hasattr(obj, a)]
    for child in children:
        yield from _augment_ops(child, seen)


def fix_posterize(transform: Any) -> int:
    """Give the posterize ops of `transform` Pillow 12's semantics; returns how many it changed."""
    n = 0
    for op in _augment_ops(transform):
        if op.name in _POSTERIZE_OPS:
            op.aug_fn = _posterize_pillow12
            n += 1
    return n


# ----------------------------------------------------------------------------- transforms


class _ExpectSize:
    """deit's path for input size <= 32 (CIFAR) never resizes: refuse images of another size.

    Without this check, larger images would silently train on small random windows and then
    fail deep inside the model at evaluation.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        if img.size != (self.size, self.size):
            raise ValueError(
                f"data.img_size = {self.size} (<= 32) follows deit's CIFAR path, which does not "
                f"resize: images must be {self.size}x{self.size}, got {img.size[0]}x{img.size[1]}; "
                "use data.img_size > 32 for larger images"
            )
        return img

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.size})"


def build_train_transform(data: DataConfig, aug: AugmentConfig) -> transforms.Compose:
    """deit's `build_transform(is_training=True)`: timm create_transform with deit's arguments."""
    if aug.interpolation not in (*_INTERPOLATION, "random"):
        raise ValueError(f"augment.interpolation: unknown mode {aug.interpolation!r}")
    transform = create_transform(
        input_size=data.img_size,
        is_training=True,
        scale=tuple(aug.scale),
        ratio=tuple(aug.ratio),
        hflip=aug.hflip,
        color_jitter=aug.color_jitter,
        auto_augment=aug.auto_augment or None,
        interpolation=aug.interpolation,
        re_prob=aug.reprob,
        re_mode=aug.remode,
        re_count=aug.recount,
    )
    if data.img_size <= 32:
        # deit datasets.py: "replace RandomResizedCropAndInterpolation with RandomCrop"
        transform.transforms[0] = transforms.RandomCrop(data.img_size, padding=4)
        transform.transforms.insert(0, _ExpectSize(data.img_size))
    fix_posterize(transform)
    return transform


def build_eval_transform(data: DataConfig) -> transforms.Compose:
    """deit's `build_transform(is_training=False)`."""
    if data.eval_interpolation not in _INTERPOLATION:
        raise ValueError(f"data.eval_interpolation: unknown mode {data.eval_interpolation!r}")
    if not 0.0 < data.eval_crop_pct <= 1.0:
        raise ValueError(f"data.eval_crop_pct must be in (0, 1], got {data.eval_crop_pct}")
    t: list[Callable] = []
    if data.img_size <= 32:
        t.append(_ExpectSize(data.img_size))
    else:
        size = int(data.img_size / data.eval_crop_pct)
        t.append(transforms.Resize(size, interpolation=_INTERPOLATION[data.eval_interpolation]))
        t.append(transforms.CenterCrop(data.img_size))
    t.append(transforms.ToTensor())
    t.append(transforms.Normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD))
    return transforms.Compose(t)


# ----------------------------------------------------------------------------- datasets


class _BetonImages(Dataset):
    """(transformed PIL image, label) pairs from a .beton file (the reader pickles by path)."""

    def __init__(self, reader: Any, transform: Callable) -> None:
        self.reader = reader
        self.transform = transform

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        try:
            pixels = self.reader.decode(i)
        except ValueError as err:  # name the file, the sample and how to look at it
            from fastdeit.data.cpu_decoder import undecodable_sample_message

            raise ValueError(undecodable_sample_message(self.reader, i, None, err)) from None
        return self.transform(Image.fromarray(pixels)), int(self.reader.labels[i])


def _dataset(path: str, transform: Callable, key: str) -> tuple[Dataset, int]:
    """An ImageFolder directory or a .beton file, and its number of classes."""
    if not path:
        raise ValueError(f"{key}: no dataset path given")
    if path == "demo":
        raise ValueError(
            f"{key}: 'demo' must be resolved to the demo dataset's directories by the caller "
            "(fastdeit.data.demo.ensure_demo_dataset)"
        )
    p = Path(path)
    if p.suffix == ".beton":
        if not p.is_file():
            raise ValueError(f"{key}: {path} is not a file")
        try:
            from fastdeit.data.beton import BetonReader
        except ImportError as e:
            raise ValueError(
                f"{key}: {path} is a .beton file, but the .beton reader "
                "(fastdeit.data.beton) is not available in this installation"
            ) from e
        reader = BetonReader(p)  # refuses a corrupt file with a ValueError naming it
        if len(reader) == 0:
            raise ValueError(f"{key}: {path} holds no images")
        return _BetonImages(reader, transform), int(reader.num_classes)
    if not p.is_dir():
        raise ValueError(f"{key}: {path} is neither an ImageFolder directory nor a .beton file")
    try:
        folder = datasets.ImageFolder(str(p), transform=transform)
    except (FileNotFoundError, RuntimeError) as e:
        raise ValueError(f"{key}: {path} is not a usable ImageFolder directory: {e}") from e
    return folder, len(folder.classes)


# ----------------------------------------------------------------------------- loaders


class _ShardSampler(Sampler[int]):
    """Rank r of w takes indices r, r + w, ...: every image evaluated exactly once overall.

    Unlike DistributedSampler this never pads with duplicates, so the per-rank correct counts
    summed over ranks are the exact accuracy of the whole set.
    """

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, n, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside [0, {world_size})")


def _per_rank_batch(data: DataConfig, world_size: int) -> int:
    if data.global_batch < 1 or data.global_batch % world_size:
        raise ValueError(
            f"data.global_batch {data.global_batch} is not a positive multiple of the world "
            f"size {world_size}"
        )
    return data.global_batch // world_size


def _loader_kwargs(data: DataConfig) -> dict[str, Any]:
    if data.workers < 0:
        raise ValueError(f"data.workers must be >= 0, got {data.workers}")
    return dict(
        num_workers=data.workers,
        persistent_workers=data.workers > 0,
        pin_memory=bool(data.pin_memory and torch.cuda.is_available()),
    )


def build_train_loader(
    data: DataConfig, aug: AugmentConfig, path: str, *, rank: int, world_size: int, seed: int
) -> tuple[DataLoader, int, Sampler]:
    """deit's train loader for one rank: (loader, num_classes, sampler).

    Call `sampler.set_epoch(epoch)` before each epoch. Batches are (images float NCHW normalised,
    integer labels); mix them with `ReferenceMixup`. Worker augmentation RNGs derive from
    (seed, rank); with workers = 0 the process-global python/numpy/torch RNGs are used, as in
    deit, so seed those.
    """
    _check_rank(rank, world_size)
    batch = _per_rank_batch(data, world_size)
    if data.repeated_aug < 1:
        raise ValueError(f"data.repeated_aug must be >= 1, got {data.repeated_aug}")
    dataset, num_classes = _dataset(path, build_train_transform(data, aug), "data.train")
    sampler: Sampler
    if data.repeated_aug > 1:
        sampler = RepeatedAugSampler(
            len(dataset), world_size, rank, repeats=data.repeated_aug, seed=seed
        )
    else:
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
        )
    gen = torch.Generator()
    gen.manual_seed(seed * 1_000_003 + rank)
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        drop_last=data.drop_last,
        generator=gen,
        **_loader_kwargs(data),
    )
    return loader, num_classes, sampler


def build_eval_loader(
    data: DataConfig, path: str, *, rank: int, world_size: int, key: str = "data.val"
) -> tuple[DataLoader, int]:
    """deit's eval loader for one rank: (loader, num_classes), in order, no duplicates. It reads
    ImageFolder directories and .beton files, whichever loader trained the model.

    Per-rank batch is data.eval_batch when set, else global_batch // world_size. `key` names the
    setting or option `path` came from in error messages (data.val, --val).
    """
    _check_rank(rank, world_size)
    batch = data.eval_batch if data.eval_batch > 0 else _per_rank_batch(data, world_size)
    dataset, num_classes = _dataset(path, build_eval_transform(data), key)
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=_ShardSampler(len(dataset), rank, world_size),
        drop_last=False,
        **_loader_kwargs(data),
    )
    return loader, num_classes


# ----------------------------------------------------------------------------- mixup


class ReferenceMixup:
    """timm's Mixup (deit's settings from AugmentConfig), one draw per group of `aug.mix_group`.

    Returns (mixed images, soft targets of shape [N, num_classes]). With mixup and cutmix both
    off it returns the images unchanged and label-smoothed one-hot targets. Randomness: numpy's
    global RNG as in deit, or, with `seed`, a private numpy stream (the global state is restored
    after each call, so other code sees no difference).
    """

    def __init__(self, aug: AugmentConfig, num_classes: int, seed: int | None = None) -> None:
        check_augment_recipe(aug)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.group = aug.mix_group
        self.num_classes = num_classes
        self.smoothing = aug.smoothing
        self.active = aug.mixup > 0 or aug.cutmix > 0
        self.mixup = Mixup(
            mixup_alpha=aug.mixup,
            cutmix_alpha=aug.cutmix,
            prob=aug.mixup_prob,
            switch_prob=aug.mixup_switch_prob,
            mode=aug.mixup_mode,
            label_smoothing=aug.smoothing,
            num_classes=num_classes,
        )
        self._state = None if seed is None else np.random.RandomState(seed).get_state()

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.active:
            return images, mixup_target(labels, self.num_classes, 1.0, self.smoothing)
        n = len(images)
        if n % 2:
            raise ValueError(f"mixup needs an even batch, got {n} images")
        if self._state is not None:
            saved = np.random.get_state()
            np.random.set_state(self._state)
        try:
            out_x, out_y = [], []
            for start in range(0, n, self.group):
                x, y = images[start : start + self.group], labels[start : start + self.group]
                if len(x) % 2:
                    raise ValueError(
                        f"the last mixing group has {len(x)} images (odd); use a per-rank batch "
                        f"that is a multiple of augment.mix_group {self.group} or even"
                    )
                mx, my = self.mixup(x.clone(), y)
                out_x.append(mx)
                out_y.append(my)
        finally:
            if self._state is not None:
                self._state = np.random.get_state()
                np.random.set_state(saved)
        return torch.cat(out_x), torch.cat(out_y)


def mix_batch(
    images: torch.Tensor, labels: torch.Tensor, aug: AugmentConfig, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-shot `ReferenceMixup(aug, num_classes)(images, labels)` on numpy's global RNG."""
    return ReferenceMixup(aug, num_classes)(images, labels)
