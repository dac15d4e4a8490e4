"""The reference (deit) loader: tensors, sharding, per-group mixup, and the Pillow-13 posterize fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import create_transform
from timm.data.auto_augment import RandAugment
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torchvision import transforms

from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.data import demo
from fastdeit.data.reference import (
    ReferenceMixup,
    build_eval_loader,
    build_train_loader,
    build_train_transform,
)
from fastdeit.data.repeated_aug import RepeatedAugSampler

MEAN = torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1)
PER_CLASS = 26  # 260 images: deit's RASampler keeps len // 256 * 256 of them


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ImageFolder of demo shapes."""
    root = tmp_path_factory.mktemp("imagefolder")
    for label in range(10):
        d = root / f"class{label}"
        d.mkdir()
        for i in range(PER_CLASS):
            demo.render(label, np.random.default_rng([label, i]), size=48).save(d / f"{i}.jpg")
    return root


def test_train_batches_are_normalised_float_images(folder: Path) -> None:
    data = DataConfig(global_batch=32, workers=0, img_size=40)
    loader, num_classes, sampler = build_train_loader(
        data, AugmentConfig(), str(folder), rank=0, world_size=1, seed=0
    )
    assert num_classes == 10
    assert isinstance(sampler, RepeatedAugSampler) and sampler.repeats == 3
    x, y = next(iter(loader))
    assert x.shape == (32, 3, 40, 40) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) < 10
    assert torch.isfinite(x).all()
    assert -3 < float(x.mean()) < 3  # normalised, not 0..255 or 0..1 images
    assert y[0] == y[1] == y[2]  # 3 copies of each image, one after the other on one rank


def test_per_rank_batch_is_global_batch_over_world_size(folder: Path) -> None:
    data = DataConfig(global_batch=32, workers=1, img_size=40)
    loader, _, sampler = build_train_loader(
        data, AugmentConfig(), str(folder), rank=1, world_size=2, seed=0
    )
    assert loader.batch_size == 16 and loader.persistent_workers
    assert (sampler.num_replicas, sampler.rank) == (2, 1)
    x, _ = next(iter(loader))  # through a worker process: the posterize fix travels along
    assert x.shape == (16, 3, 40, 40)
    with pytest.raises(ValueError, match="data.global_batch"):
        build_train_loader(data, AugmentConfig(), str(folder), rank=0, world_size=3, seed=0)


def test_eval_split_covers_every_image_once(folder: Path) -> None:
    data = DataConfig(global_batch=30, workers=0, img_size=40)
    seen: list[int] = []
    for rank in range(3):
        loader, num_classes = build_eval_loader(data, str(folder), rank=rank, world_size=3)
        assert num_classes == 10 and loader.batch_size == 10
        seen += list(loader.sampler)
    assert sorted(seen) == list(range(10 * PER_CLASS))


def test_eval_images_are_deterministic_centre_crops(folder: Path) -> None:
    data = DataConfig(global_batch=32, eval_batch=50, workers=0, img_size=40)
    loader, _ = build_eval_loader(data, str(folder), rank=0, world_size=1)
    x1, y1 = next(iter(loader))
    x2, y2 = next(iter(loader))
    assert x1.shape == (50, 3, 40, 40)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert float(x1.min()) >= float(((0 - MEAN) / STD).min()) - 1e-5
    assert float(x1.max()) <= float(((1 - MEAN) / STD).max()) + 1e-5


def test_beton_file_gives_the_same_batches_as_the_image_folder(
    folder: Path, tmp_path: Path
) -> None:
    """Same pixels (raw mode), same order: the eval batches must be identical."""
    from fastdeit.data.beton import BetonWriter
    from torchvision.datasets import ImageFolder

    png = tmp_path / "png"
    beton = tmp_path / "demo.beton"
    with BetonWriter(beton, image_mode="raw", max_resolution=None) as writer:
        for i, (path, label) in enumerate(ImageFolder(str(folder)).samples[:64]):
            img = Image.open(path).convert("RGB")
            (png / f"class{label}").mkdir(parents=True, exist_ok=True)
            img.save(png / f"class{label}" / f"{i:03d}.png")
            writer.add(np.asarray(img), label)
    data = DataConfig(global_batch=64, workers=0, img_size=40)
    from_beton, classes_beton = build_eval_loader(data, str(beton), rank=0, world_size=1)
    from_folder, classes_folder = build_eval_loader(data, str(png), rank=0, world_size=1)
    xb, yb = next(iter(from_beton))
    xf, yf = next(iter(from_folder))
    assert classes_beton == classes_folder
    assert torch.equal(yb, yf) and torch.equal(xb, xf)
    no_repeats = DataConfig(global_batch=16, workers=0, img_size=40, repeated_aug=1)
    train, _, _ = build_train_loader(no_repeats, AugmentConfig(), str(beton), rank=0, world_size=1, seed=0)
    x, _ = next(iter(train))
    assert len(train.dataset) == 64 and x.shape == (16, 3, 40, 40)


def test_bad_paths_are_named(tmp_path: Path) -> None:
    data = DataConfig(global_batch=8, workers=0, img_size=40)
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="nowhere"):
        build_train_loader(data, AugmentConfig(), missing, rank=0, world_size=1, seed=0)
    with pytest.raises(ValueError, match="demo"):
        build_eval_loader(data, "demo", rank=0, world_size=1)
    with pytest.raises(ValueError, match="absent.beton"):
        build_eval_loader(data, str(tmp_path / "absent.beton"), rank=0, world_size=1)


def _constant_images(n: int, size: int = 16) -> torch.Tensor:
    """Image i is filled with the value i: a mixed pixel tells which images it came from."""
    return torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, size, size).clone()


def test_mixup_draws_once_per_group_with_the_group_reversed_as_partner() -> None:
    aug = AugmentConfig(mix_group=4, smoothing=0.1)
    n, classes = 12, 12
    labels = torch.arange(n)  # label i for image i
    images, targets = ReferenceMixup(aug, classes, seed=0)(_constant_images(n), labels)
    assert targets.shape == (n, classes)
    assert torch.allclose(targets.sum(1), torch.ones(n))
    off = aug.smoothing / classes
    on = 1 - aug.smoothing + off
    lams = []
    for i in range(n):
        g = i // 4
        partner = g * 4 + (3 - i % 4)  # timm's Mixup pairs each sample with the reversed batch
        # the target mixes exactly the own and the partner's labels ...
        others = [c for c in range(classes) if c not in (i, partner)]
        assert torch.allclose(targets[i, others], torch.full((len(others),), off))
        lam = (float(targets[i, i]) - off) / (on - off)
        # ... with the lambda that mixed the pixels (mixup: blend; cutmix: pasted area)
        pixels = images[i]
        assert float(pixels.min()) >= min(i, partner) - 1e-4
        assert float(pixels.max()) <= max(i, partner) + 1e-4
        if i != partner:
            assert abs(float(((pixels - partner) / (i - partner)).mean()) - lam) < 1e-4
        lams.append(round(lam, 6))
    # one draw per group: the same lambda within a group, a new draw for each group
    assert all(len(set(lams[g * 4 : g * 4 + 4])) == 1 for g in range(3))
    assert len({lams[0], lams[4], lams[8]}) == 3


def test_mixup_with_a_seed_is_replayable_and_leaves_numpy_alone() -> None:
    aug = AugmentConfig(mix_group=4)
    labels = torch.arange(8) % 10
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = ReferenceMixup(aug, 10, seed=7)(_constant_images(8), labels)
    b = ReferenceMixup(aug, 10, seed=7)(_constant_images(8), labels)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert np.array_equal(np.random.get_state()[1], before)


def test_no_mixing_gives_smoothed_one_hot_targets() -> None:
    aug = AugmentConfig(mixup=0.0, cutmix=0.0, smoothing=0.1)
    x = _constant_images(4)
    out, targets = ReferenceMixup(aug, 5)(x.clone(), torch.tensor([0, 1, 2, 3]))
    assert torch.equal(out, x)
    assert torch.allclose(targets[1], torch.tensor([0.02, 0.92, 0.02, 0.02, 0.02]))


# ----------------------------------------------------------------------------- Pillow 13


def _only_posterize_at_magnitude_10(transform: transforms.Compose) -> None:
    """Make the RandAugment of `transform` apply PosterizeIncreasing at magnitude 10, always."""
    (ra,) = [t for t in transform.transforms if isinstance(t, RandAugment)]
    (op,) = [op for op in ra.ops if op.name == "PosterizeIncreasing"]
    op.prob, op.magnitude, op.magnitude_std = 1.0, 10, 0.0
    ra.ops, ra.num_layers = [op], 1


def test_posterize_keeping_zero_bits_gives_black_through_the_pipeline() -> None:
    """timm asks Pillow 13 for 0 bits at magnitude 10; the reference pipeline yields black."""
    aug = AugmentConfig(reprob=0.0)
    transform = build_train_transform(DataConfig(img_size=40), aug)
    _only_posterize_at_magnitude_10(transform)
    img = demo.render(3, np.random.default_rng(0), size=48)
    out = transform(img)
    black = ((torch.zeros(3, 1, 1) - MEAN) / STD).expand(3, 40, 40)
    assert torch.allclose(out, black, atol=1e-5)


def test_plain_timm_fails_on_this_pillow() -> None:
    """Why the fix exists: the same transform straight from timm raises on Pillow >= 13."""
    transform = create_transform(
        input_size=40, is_training=True, auto_augment="rand-m9-mstd0.5-inc1",
        interpolation="bicubic", re_prob=0.0,
    )
    _only_posterize_at_magnitude_10(transform)
    with pytest.raises(ValueError):
        transform(demo.render(3, np.random.default_rng(0), size=48))


def test_posterize_with_bits_left_is_unchanged() -> None:
    """Only the 0-bit case differs from timm: magnitude 5 keeps 2 bits, exactly as Pillow does."""
    from PIL import ImageOps

    transform = build_train_transform(DataConfig(img_size=40), AugmentConfig())
    (ra,) = [t for t in transform.transforms if isinstance(t, RandAugment)]
    (op,) = [op for op in ra.ops if op.name == "PosterizeIncreasing"]
    op.prob, op.magnitude, op.magnitude_std = 1.0, 5, 0.0
    img = demo.render(1, np.random.default_rng(1), size=48)
    assert np.array_equal(np.asarray(op(img)), np.asarray(ImageOps.posterize(img, 2)))


def test_deit_uses_random_crop_for_inputs_of_32_or_less() -> None:
    """deit datasets.py swaps RandomResizedCrop for RandomCrop(padding=4) at input size <= 32."""
    small = build_train_transform(DataConfig(img_size=32), AugmentConfig())
    assert any(isinstance(t, transforms.RandomCrop) for t in small.transforms)
    assert small(Image.new("RGB", (32, 32))).shape == (3, 32, 32)
    large = build_train_transform(DataConfig(img_size=40), AugmentConfig())
    assert "RandomResizedCrop" in type(large.transforms[0]).__name__


def test_small_input_size_refuses_larger_images_clearly(folder: Path) -> None:
    """deit does not resize at <= 32: 48 px images must be refused, not silently cropped."""
    data = DataConfig(global_batch=10, workers=0, img_size=32)
    loader, _ = build_eval_loader(data, str(folder), rank=0, world_size=1)
    with pytest.raises(ValueError, match="data.img_size"):
        next(iter(loader))
