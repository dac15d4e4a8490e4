"""The teacher-logit cache holds exactly what the online teacher computes on training's views."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fastdeit.augment.pipeline import DeviceAugment
from fastdeit.data.beton import BetonReader
from fastdeit.data.loader import CpuLoader
from fastdeit.data.plan import PLAN_VERSION
from fastdeit.distill import distillation_loss
from fastdeit.distill.build_cache import build_teacher_cache
from fastdeit.distill.cache_format import merge_caches, read_header
from fastdeit.distill.cache_identity import run_views, teacher_identity
from fastdeit.distill.cache_reader import TeacherCache, open_for_run
from fastdeit.distill.teacher import load_teacher

from .conftest import CLASSES

CPU = torch.device("cpu")


def build(setup, out: Path, **kw):
    args = dict(data=setup.data, augment=setup.augment, distill=setup.distill, seed=7, epochs=(0, 2),
                k=CLASSES, device="cpu", precision="fp32", progress=False)
    return build_teacher_cache(out, **{**args, **kw})


@pytest.fixture(scope="module")
def full(setup) -> Path:
    return build(setup, setup.tmp / "full.cache")


def run_fields(setup, reader=None, seed=7, distill=None) -> dict:
    reader = reader or BetonReader(setup.data.train)
    views = run_views(reader, setup.data, setup.augment, CPU, "fp32")
    name, checksum = teacher_identity(distill or setup.distill)
    return dict(dataset=views.dataset, seed=seed, recipe=views.recipe_hash, plan_version=PLAN_VERSION,
                teacher=name, teacher_checksum=checksum, epochs=(0, 2), samples_per_epoch=views.samples_per_epoch,
                global_batch=setup.data.global_batch, num_classes=views.num_classes)


def all_topk(path: Path):
    with TeacherCache(path) as cache:
        h = cache.header
        out = [cache.topk(e, np.arange(h.samples_per_epoch)) for e in range(*h.epochs)]
    return torch.cat([v for v, _ in out]), torch.cat([i for _, i in out])


def test_cached_logits_equal_the_online_teacher_on_the_training_steps_inputs(setup, full):
    """For every sample of every step of epoch 1, seen as rank r of 2 would see it in training."""
    reader = BetonReader(setup.data.train)
    views = run_views(reader, setup.data, setup.augment, CPU, "fp32")
    teacher = load_teacher(setup.distill, CLASSES, CPU)
    augment = DeviceAugment(setup.augment, CLASSES, out_dtype=views.input_dtype)
    cache = open_for_run(full, reader=reader, data=setup.data, augment=setup.augment, distill=setup.distill,
                         seed=7, device=CPU, precision="fp32", epochs=(0, 2), device_augment=augment)
    checked = 0
    for rank in range(2):
        loader = CpuLoader(reader, views.plan_cfg, seed=7, rank=rank, world_size=2, threads=1)
        loader.set_epoch(1)
        for batch in loader:
            images, targets = augment.apply_to_batch(batch)
            with torch.no_grad():
                online = teacher(images).float()
            cached = cache.logits_for(batch.epoch, batch.positions, CLASSES, CPU)
            assert cached.shape == online.shape == (32, CLASSES)
            torch.testing.assert_close(cached, online, rtol=1e-3, atol=2e-3)  # fp16 storage
            assert torch.equal(cached.argmax(1), online.argmax(1))
            for kind in ("soft", "hard"):
                a = distillation_loss(online, online, targets, online, kind, 0.5, 1.0)
                b = distillation_loss(online, online, targets, cached, kind, 0.5, 1.0)
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
            checked += len(batch.positions)
        loader.close()
    assert checked == 2 * 128  # every sample of the epoch's 4 steps
    cache.close()


def replay(setup, path, device, precision: str, epochs: tuple[int, int]):
    """What a run training from the cache at `path` sees: the reader, the run's views, the device
    augmentation (its output dtype the teacher's input dtype), the online teacher, the opened cache."""
    reader = BetonReader(setup.data.train)
    views = run_views(reader, setup.data, setup.augment, device, precision)
    augment = DeviceAugment(setup.augment, CLASSES, out_dtype=views.input_dtype)
    teacher = load_teacher(setup.distill, CLASSES, device)
    cache = open_for_run(path, reader=reader, data=setup.data, augment=setup.augment, distill=setup.distill,
                         seed=7, device=device, precision=precision, epochs=epochs, device_augment=augment)
    return reader, views, augment, teacher, cache


def test_training_steps_from_the_cache_give_the_online_teachers_losses(setup, full):
    """Two identical students, four soft-distillation steps each through the trainer's train_step:
    one with the online teacher, one whose teacher is the cache read at the batch's positions."""
    from fastdeit.config.schema import ModelConfig, OptimizerConfig
    from fastdeit.models import create_model
    from fastdeit.train.optim import build_optimizer
    from fastdeit.train.step import StepContext, train_step

    reader, views, augment, online, cache = replay(setup, full, CPU, "fp32", (0, 2))
    arch = ModelConfig(name="deit_tiny_distilled_patch16_224", patch_size=8, embed_dim=32, depth=2, num_heads=2,
                       drop_path=0.0, channels_last=False)
    losses = {}
    for source in ("online", "cache"):
        torch.manual_seed(0)
        model = create_model(arch, CLASSES, 32)
        model.set_distilled_training(True)
        ctx = StepContext(model=model, optimizer=build_optimizer(model, OptimizerConfig(), 64, CPU), scaler=None,
                          ema=None, teacher=None, distill=setup.distill, precision="fp32", clip_grad=0.0, device=CPU)
        loader = CpuLoader(reader, views.plan_cfg, seed=7, threads=1)
        loader.set_epoch(1)
        losses[source] = []
        for batch in loader:
            images, targets = augment.apply_to_batch(batch)
            ctx.teacher = online if source == "online" else (
                lambda _images, b=batch: cache.logits_for(b.epoch, b.positions, CLASSES, CPU))
            losses[source].append(float(train_step(ctx, images, targets, 1e-3)))
        loader.close()
    cache.close()
    assert len(losses["cache"]) == 4
    np.testing.assert_allclose(losses["cache"], losses["online"], rtol=1e-3)


def test_top_k_cache_keeps_hard_labels_and_loses_only_the_tail_mass_in_soft_distillation(setup, full):
    """k < num_classes: argmax is still the teacher's label, and the soft-distillation gradient on
    the student's logits differs from the full-logit one by exactly 2 * tail mass * tau / numel in
    L1 per sample (tail = the teacher's probability outside its top k, at temperature tau)."""
    k2 = build(setup, setup.tmp / "k2.cache", k=2)
    pos = np.arange(256)
    with TeacherCache(k2) as small, TeacherCache(full) as big:
        top, dense = small.logits_for(0, pos, CLASSES), big.logits_for(0, pos, CLASSES)
    assert torch.isfinite(top).all()  # a finite background: no nan in KL or log_softmax
    assert torch.equal(top.argmax(1), dense.argmax(1))
    tau = 2.0
    student = torch.randn(256, CLASSES, generator=torch.Generator().manual_seed(0))
    grads = []
    for teacher in (dense, top):
        s = student.clone().requires_grad_(True)
        distillation_loss(s, s, torch.full_like(s, 1 / CLASSES), teacher, "soft", 1.0, tau).backward()
        grads.append(s.grad)
    p = torch.softmax(dense / tau, 1)
    tail = 1 - p.topk(2, dim=1).values.sum(1)
    err = (grads[0] - grads[1]).abs().sum(1)
    torch.testing.assert_close(err, 2 * tail * tau / student.numel(), rtol=1e-3, atol=1e-9)
    assert 0 < tail.mean() < 0.5  # this random teacher spreads mass; a trained one far less


def test_sharded_build_merged_equals_unsharded(setup, full):
    parts = [build(setup, setup.tmp / f"part{i}.cache", shard=(i, 3)) for i in range(3)]
    with pytest.raises(ValueError, match="shard"):
        TeacherCache(parts[0])
    with pytest.raises(ValueError, match="none of the parts"):
        merge_caches(setup.tmp / "bad.cache", parts[:2])
    merged = merge_caches(setup.tmp / "merged.cache", parts)
    for a, b in zip(all_topk(merged), all_topk(full)):
        assert torch.equal(a, b)


def test_killed_build_resumes_to_the_same_cache(setup, full):
    out = setup.tmp / "resumed.cache"
    assert build(setup, out, max_steps=3) is None  # stopped part-way, like a killed job
    partial = out.with_name(out.name + ".partial")
    assert partial.exists() and not out.exists()
    with pytest.raises(ValueError, match="incomplete, 5 of 8 steps missing"):
        TeacherCache(partial)
    with pytest.raises(ValueError, match="--resume"):
        build(setup, out)
    with pytest.raises(ValueError, match="seed differs"):
        build(setup, out, resume=True, seed=8)
    with open(partial, "r+b") as f:  # a torn write in a step marked done: resume must redo it
        f.seek(read_header(partial)[1].values_offset + 5)
        f.write(b"\xff\xff")
    assert build(setup, out, resume=True) == out and not partial.exists()
    for a, b in zip(all_topk(out), all_topk(full)):
        assert torch.equal(a, b)


def test_a_cache_from_another_run_is_refused_naming_the_field(setup, full):
    cache = TeacherCache(full)
    other_teacher = replace(setup.distill, teacher_checkpoint=setup.other_teacher)
    cases = {
        "seed differs": run_fields(setup, seed=8),
        "dataset": run_fields(setup, reader=BetonReader(setup.other_beton)),
        r"teacher \(weights checksum\) differs": run_fields(setup, distill=other_teacher),
        "epoch range differs": {**run_fields(setup), "epochs": (0, 3)},
        "recipe": {**run_fields(setup), "recipe": "0" * 16},
    }
    for field, fields in cases.items():
        with pytest.raises(ValueError, match=field):
            cache.check_matches(**fields)
    with pytest.raises(ValueError, match=r"k \(top-k"):
        cache.check_matches(**run_fields(setup), min_k=CLASSES + 1)
    bf16 = run_views(BetonReader(setup.data.train), setup.data, setup.augment, CPU, "bf16")
    with pytest.raises(ValueError, match="recipe"):  # the teacher saw fp32 inputs, bf16 training differs
        cache.check_matches(**{**run_fields(setup), "recipe": bf16.recipe_hash})
    cache.check_matches(**{**run_fields(setup), "epochs": (1, 2)})  # a resumed run needs fewer epochs
    cache.close()
    bf16_augment = DeviceAugment(setup.augment, CLASSES)  # bf16 out: not the fp32 pixels the teacher saw
    with pytest.raises(ValueError, match=r"does not match this run: recipe"):
        open_for_run(full, reader=BetonReader(setup.data.train), data=setup.data, augment=setup.augment,
                     distill=setup.distill, seed=7, device=CPU, precision="fp32", epochs=(0, 2),
                     device_augment=bf16_augment)
    with pytest.raises(ValueError, match="data.loader = 'reference'"):  # its views are not replayable
        build(setup, setup.tmp / "ref.cache", data=replace(setup.data, loader="reference"))
    with pytest.raises(ValueError, match=r"distill.cache .* does not match this run: seed differs"):
        open_for_run(full, reader=BetonReader(setup.data.train), data=setup.data, augment=setup.augment,
                     distill=setup.distill, seed=8, device=CPU, precision="fp32", epochs=(0, 2))


def test_corrupt_or_truncated_files_are_refused(setup, full):
    truncated = setup.tmp / "truncated.cache"
    truncated.write_bytes(full.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated"):
        TeacherCache(truncated)
    garbage = setup.tmp / "garbage.cache"
    garbage.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ValueError, match="not a fastdeit teacher cache"):
        TeacherCache(garbage)
    flipped = setup.tmp / "flipped.cache"
    shutil.copy(full, flipped)
    with TeacherCache(flipped) as cache:
        offset = cache.layout.values_offset + 64 * CLASSES * 2 + 10  # inside epoch 0 step 1
    with open(flipped, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    with TeacherCache(flipped, prefetch=0) as cache:
        cache.logits_for(0, np.arange(64), CLASSES)  # step 0 is intact
        with pytest.raises(ValueError, match="corrupt data at epoch 0 step 1"):
            cache.logits_for(0, np.arange(64, 128), CLASSES)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_cache_equals_the_online_teacher(setup):
    """The GPU path: teacher in bf16 autocast, channels_last, on bf16 views, as training runs it."""
    from fastdeit.precision import autocast_for

    dev = torch.device("cuda")
    out = build(setup, setup.tmp / "cuda.cache", device="cuda", precision="bf16", epochs=(0, 1))
    reader, views, augment, teacher, cache = replay(setup, out, dev, "bf16", (0, 1))
    assert views.input_dtype == torch.bfloat16
    loader = CpuLoader(reader, views.plan_cfg, seed=7, rank=1, world_size=2, threads=2, device=dev)
    for batch in loader:
        images, _ = augment.apply_to_batch(batch)
        with torch.no_grad(), autocast_for(dev, "bf16"):
            online = teacher(images).float()
        cached = cache.logits_for(batch.epoch, batch.positions, CLASSES, dev)
        # bf16 logits are exact in fp16; the tolerance covers kernels chosen for another batch size
        torch.testing.assert_close(cached, online, rtol=2e-2, atol=5e-2)
    loader.close()
    cache.close()


@pytest.mark.parametrize("module, name", [("fastdeit.augment", "AUGMENT_VERSION"),
                                          ("fastdeit.data.cpu_decoder", "DECODER_VERSION")])
def test_a_cache_from_other_augmentation_or_decoder_pixels_is_refused(setup, full, monkeypatch, module, name):
    # same plan draws but changed op/resize pixels: the teacher saw other inputs than training will
    import importlib

    monkeypatch.setattr(importlib.import_module(module), name, 999)
    views = run_views(BetonReader(setup.data.train), setup.data, setup.augment, CPU, "fp32")
    with TeacherCache(full) as cache, pytest.raises(ValueError, match="recipe"):
        cache.check_matches(**{**run_fields(setup), "recipe": views.recipe_hash})
