"""DaliLoader: the CPU loader's stream (positions, labels, plans, ranks, resume) with DALI pixels.

Pixels are compared with CpuLoader as shipped (DCT-scaled decoding on): at the training ratio
used here (stored max side 256 -> 112, as 512 -> 224) almost no crop is large enough for DCT
scaling, and the loaders agree to rounding (measured mean |d| 0.17, 99th percentile 1). Bound:
mean < 3 and 99th percentile < 20 grey levels, the CPU decoder's own allowance for DCT-scaled
crops versus full decodes (tests/data/test_cpu_decoder.py), so the test holds whichever samples
the CPU loader decodes scaled.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.extras import import_extra
import torch

import_extra("nvidia.dali", "dali")

from fastdeit.data.beton import BetonReader, BetonWriter  # noqa: E402
from fastdeit.data.dali_loader import DaliLoader  # noqa: E402
from fastdeit.data.loader import Batch, CpuLoader  # noqa: E402
from fastdeit.data.plan import PlanConfig  # noqa: E402
from fastdeit.data.sample_images import photo_crops  # noqa: E402

CFG = PlanConfig(img_size=112, global_batch=16, mix_group=8, epoch_multiple=16)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def beton(tmp_path_factory):
    """48 real photo crops (500x375) stored at max side 256, 5 classes: 3 steps of 16."""
    path = tmp_path_factory.mktemp("dali_loader") / "train.beton"
    with BetonWriter(path, "jpg", max_resolution=256, jpeg_quality=90) as w:
        for k, img in enumerate(photo_crops(48, (500, 375), seed=2)):
            w.add(img, k % 5)
    return BetonReader(path)


def epoch(loader, e=None):
    if e is not None:
        loader.set_epoch(e)
    return [(b.images.clone(), b.labels.clone(), b.positions.copy(), (b.epoch, b.step)) for b in loader]


def test_same_stream_as_the_cpu_loader_and_pixels_within_tolerance(beton):
    dali = DaliLoader(beton, CFG, seed=5, threads=2, prefetch=2)
    cpu = CpuLoader(beton, CFG, seed=5, threads=2)
    assert len(dali) == len(cpu) == 3
    got, ref = list(dali), list(cpu)
    assert all(isinstance(b, Batch) for b in got) and len(got) == 3
    for a, b in zip(got, ref):
        assert a.images.dtype == torch.uint8 and a.images.device.type == "cpu"
        assert a.images.shape == b.images.shape == (16, 112, 112, 3)
        assert (a.epoch, a.step) == (b.epoch, b.step)
        assert np.array_equal(a.positions, b.positions)
        assert torch.equal(a.labels, b.labels)
        assert np.array_equal(a.plan.crop, b.plan.crop) and np.array_equal(a.plan.mix_lam, b.plan.mix_lam)
        d = (a.images.int() - b.images.int()).abs().float()
        assert d.mean() < 3 and torch.quantile(d.flatten()[::7], 0.99) < 20
    assert dali.state_dict() == cpu.state_dict()
    dali.close()
    cpu.close()


def test_rank_shares_equal_the_cpu_loaders_and_unite_to_the_global_batch(beton):
    whole = epoch(DaliLoader(beton, CFG, seed=5, threads=2))
    ranks = []
    for rank in range(2):
        d = DaliLoader(beton, CFG, seed=5, rank=rank, world_size=2, threads=1, prefetch=1)
        c = CpuLoader(beton, CFG, seed=5, rank=rank, world_size=2, threads=1)
        mine, theirs = epoch(d), epoch(c)
        for (_, la, pa, _), (_, lb, pb, _) in zip(mine, theirs):
            assert np.array_equal(pa, pb) and torch.equal(la, lb)
        ranks.append(mine)
    for step, (img, lab, pos, _) in enumerate(whole):
        assert torch.equal(img, torch.cat([r[step][0] for r in ranks]))  # bit for bit
        assert torch.equal(lab, torch.cat([r[step][1] for r in ranks]))
        assert np.array_equal(pos, np.concatenate([r[step][2] for r in ranks]))


def test_resume_mid_epoch_and_epochs_in_a_row(beton):
    full = DaliLoader(beton, CFG, seed=5, threads=2, prefetch=2)
    e1, e2 = epoch(full, 1), epoch(full)  # iterating again goes on with epoch 2 (prefetched)
    assert [k for *_, k in e2] == [(2, 0), (2, 1), (2, 2)] and (full.epoch, full.step) == (3, 0)
    fresh = DaliLoader(beton, CFG, seed=5, threads=1, prefetch=0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(e2, epoch(fresh, 2)))

    first = DaliLoader(beton, CFG, seed=5, threads=2, prefetch=2)
    first.set_epoch(1)
    next(iter(first))
    state = first.state_dict()
    assert (state["epoch"], state["step"]) == (1, 1)
    first.set_epoch(2)  # batches of epoch 1 in flight are dropped, not served
    assert torch.equal(next(iter(first)).images, e2[0][0])
    for resumed in (DaliLoader(beton, CFG, seed=5, threads=1), CpuLoader(beton, CFG, seed=5, threads=1)):
        resumed.load_state_dict(state)  # one state format for both loaders
        rest = list(resumed)
        assert [b.step for b in rest] == [1, 2]
        assert all(np.array_equal(b.positions, r[2]) for b, r in zip(rest, e1[1:]))
    resumed = DaliLoader(beton, CFG, seed=5, threads=1)
    resumed.load_state_dict(state)
    assert all(torch.equal(b.images, r[0]) for b, r in zip(resumed, e1[1:]))
    with pytest.raises(ValueError, match="seed"):
        DaliLoader(beton, CFG, seed=6).load_state_dict(state)
    jump = DaliLoader(beton, CFG, seed=5, threads=1)
    jump.seek(1, 2)  # as the trainer addresses a step directly
    assert [(b.epoch, b.step) for b in jump] == [(1, 2)]
    with pytest.raises(ValueError, match="outside"):
        jump.seek(1, 4)


def test_the_dali_loader_runs_on_the_plan_stream_without_a_cpu_loader(beton):
    import threading

    from fastdeit.data.plan_stream import PlanStream

    before = {t.ident for t in threading.enumerate()}
    dali = DaliLoader(beton, CFG, seed=5, threads=1)
    assert isinstance(dali.stream, PlanStream) and not any(isinstance(v, CpuLoader) for v in vars(dali).values())
    list(dali)
    started = [t.name for t in threading.enumerate() if t.ident not in before]
    assert not any(name.startswith(("fastdeit-decode", "fastdeit-plan")) for name in started)
    assert (dali.epoch, dali.step) == (1, 0)
    dali.close()


def test_batches_feed_the_device_augmentation(beton):
    from fastdeit.augment import DeviceAugment
    from fastdeit.config.schema import AugmentConfig

    batch = next(iter(DaliLoader(beton, CFG, seed=5, threads=2)))
    aug = DeviceAugment(AugmentConfig(mix_group=8), num_classes=5, out_dtype=torch.float32)
    x, y = aug.apply_to_batch(batch)
    assert x.shape == (16, 3, 112, 112) and y.shape == (16, 5) and torch.isfinite(x.float()).all()


@pytest.mark.gpu
@needs_cuda
def test_gpu_decode_gives_cuda_batches_close_to_the_cpu_twin(beton):
    twin = epoch(DaliLoader(beton, CFG, seed=5, threads=2))
    for load in (0.0, 1.0):
        gpu = DaliLoader(beton, CFG, seed=5, threads=2, device="cuda", hw_decoder_load=load)
        for (a, la, pa, _), b in zip(twin, gpu):
            assert b.images.is_cuda and b.labels.is_cuda and b.images.dtype == torch.uint8
            assert np.array_equal(pa, b.positions) and torch.equal(la, b.labels.cpu())
            # nvJPEG's IDCT/colour conversion and the GPU resampler's rounding differ slightly
            d = (a.int() - b.images.cpu().int()).abs().float()
            assert d.mean() < 3 and torch.quantile(d.flatten()[::7], 0.99) < 20, (load, d.mean())
        gpu.close()


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("mode", ["raw", "proportion"])
def test_gpu_pipeline_takes_raw_and_mixed_files(tmp_path, mode):
    path = tmp_path / f"{mode}.beton"
    with BetonWriter(path, mode, max_resolution=128, jpeg_quality=90) as w:
        for k, img in enumerate(photo_crops(32, (200, 150), seed=4)):
            w.add(img, k % 3)
    r = BetonReader(path)
    cfg = PlanConfig(img_size=64, global_batch=32, mix_group=8, epoch_multiple=16, repeated_aug=1)
    twin, gpu = DaliLoader(r, cfg, threads=2), DaliLoader(r, cfg, threads=2, device="cuda")
    a, b = next(iter(twin)), next(iter(gpu))
    assert b.images.is_cuda
    assert (a.images.int() - b.images.cpu().int()).abs().float().mean() < 3
