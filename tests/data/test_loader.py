"""CpuLoader: the same global batches whatever the world size or thread count, exact resume."""

import numpy as np
import pytest
import torch

from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.loader import CpuLoader
from fastdeit.data.plan import PlanConfig
from fastdeit.data.sample_images import photo_crops

CFG = PlanConfig(img_size=32, global_batch=64, mix_group=16, epoch_multiple=16)


@pytest.fixture(scope="module")
def beton(tmp_path_factory):
    """200 real photo crops of assorted sizes, 7 classes: 192 samples = 3 steps of 64."""
    path = tmp_path_factory.mktemp("loader") / "train.beton"
    rng = np.random.default_rng(0)
    photos = photo_crops(200, (120, 120), seed=0)
    with BetonWriter(path, "jpg", max_resolution=None, jpeg_quality=85) as w:
        for k, img in enumerate(photos):
            h, w_ = int(rng.integers(40, 121)), int(rng.integers(40, 121))
            w.add(np.ascontiguousarray(img[:h, :w_]), k % 7)
    return BetonReader(path)


def epoch_batches(loader, epoch=0):
    loader.set_epoch(epoch)
    return [(b.images.clone(), b.labels.clone(), b.positions.copy()) for b in loader]


def global_stream(beton, world, threads, epoch=0):
    """Per step, the ranks' batches concatenated in rank order."""
    per_rank = []
    for rank in range(world):
        loader = CpuLoader(beton, CFG, seed=3, rank=rank, world_size=world, threads=threads)
        per_rank.append(epoch_batches(loader, epoch))
        loader.close()
    return [tuple(torch.cat([torch.as_tensor(r[s][k]) for r in per_rank]) for k in range(3))
            for s in range(len(per_rank[0]))]


def test_global_batches_are_identical_for_any_world_size_and_thread_count(beton):
    ref = global_stream(beton, 1, 1)
    assert len(ref) == 3 and ref[0][0].shape == (64, 32, 32, 3) and ref[0][0].dtype == torch.uint8
    for world, threads in [(1, 3), (2, 1), (4, 3)]:
        other = global_stream(beton, world, threads)
        for (a, la, pa), (b, lb, pb) in zip(ref, other):
            assert torch.equal(a, b) and torch.equal(la, lb) and torch.equal(pa, pb)


def test_batch_contents_follow_the_plan(beton):
    loader = CpuLoader(beton, CFG, seed=3, threads=2)
    assert len(loader) == 3
    batch = next(iter(loader))
    plan = batch.plan
    assert np.array_equal(batch.positions, plan.positions)
    assert np.array_equal(batch.labels.numpy(), beton.labels[plan.indices])
    # positions of step 0 are 0..63, group-major; all images of the batch are distinct triples
    assert sorted(batch.positions.tolist()) == list(range(64))
    assert not torch.equal(batch.images[0], batch.images[1])
    loader.close()


def test_resume_mid_epoch_replays_the_remaining_stream(beton):
    full = CpuLoader(beton, CFG, seed=3, threads=2)
    full.set_epoch(2)
    expected = [b.images.clone() for b in full]
    first = CpuLoader(beton, CFG, seed=3, threads=2)
    first.set_epoch(2)
    it = iter(first)
    next(it)
    state = first.state_dict()
    assert (state["epoch"], state["step"]) == (2, 1)
    resumed = CpuLoader(beton, CFG, seed=3, threads=1)
    resumed.load_state_dict(state)
    rest = [b.images for b in resumed]
    assert len(rest) == 2
    assert all(torch.equal(a, b) for a, b in zip(rest, expected[1:]))
    # iterating on continues with the next epoch; a finished epoch yields nothing more
    assert next(iter(resumed)).epoch == 3
    resumed.load_state_dict({**state, "step": len(resumed)})
    assert list(resumed) == [] and resumed.state_dict()["epoch"] == 3
    for loader in (full, first, resumed):
        loader.close()


def test_epochs_differ_and_state_from_another_stream_is_refused(beton):
    loader = CpuLoader(beton, CFG, seed=3, threads=2)
    e0, e1 = epoch_batches(loader, 0), epoch_batches(loader, 1)
    assert not torch.equal(e0[0][0], e1[0][0])
    other = CpuLoader(beton, CFG, seed=4, threads=1)
    with pytest.raises(ValueError, match="seed"):
        other.load_state_dict(loader.state_dict())
    with pytest.raises(ValueError):
        CpuLoader(beton, CFG, world_size=3)  # 4 groups cannot split over 3 ranks
    for x in (loader, other):
        x.close()


def test_breaking_out_and_iterating_again_continues_where_it_stopped(beton):
    loader = CpuLoader(beton, CFG, seed=3, threads=2, prefetch=2)
    expected = [b.positions.copy() for b in loader]  # epoch 0, then the loader is at epoch 1
    loader.set_epoch(0)
    for batch in loader:
        break  # abandons the prefetched work of later steps
    assert loader.state_dict()["step"] == 1
    rest = [b.positions for b in loader]
    got = [batch.positions, *rest]
    assert len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected))
    loader.close()


def test_a_run_may_resume_on_another_world_size(beton):
    single = CpuLoader(beton, CFG, seed=3, threads=1)
    expected = [b.images.clone() for b in single][1:]
    single.set_epoch(0)
    next(iter(single))
    state = single.state_dict()
    ranks = [CpuLoader(beton, CFG, seed=3, rank=r, world_size=2, threads=1) for r in range(2)]
    for loader in ranks:
        loader.load_state_dict(state)
    parts = [[b.images for b in loader] for loader in ranks]
    got = [torch.cat([parts[0][s], parts[1][s]]) for s in range(len(parts[0]))]
    assert len(got) == 2 and all(torch.equal(a, b) for a, b in zip(got, expected))
    for loader in (single, *ranks):
        loader.close()


def test_iteration_shortens_the_gil_switch_interval_and_restores_it(beton):
    import sys

    from fastdeit.data.gil import DEFAULT_DECODE_SWITCH_INTERVAL, switch_interval_at_most

    before = sys.getswitchinterval()
    seen = [sys.getswitchinterval() for _ in CpuLoader(beton, CFG, seed=3, threads=2)]
    assert seen and all(v == pytest.approx(DEFAULT_DECODE_SWITCH_INTERVAL) for v in seen)
    assert sys.getswitchinterval() == before
    seen = [sys.getswitchinterval() for _ in CpuLoader(beton, CFG, seed=3, threads=2, switch_interval=None)]
    assert all(v == before for v in seen)
    with switch_interval_at_most(1e-4):  # a user's shorter setting is never raised
        assert [sys.getswitchinterval() for _ in CpuLoader(beton, CFG, seed=3)][0] == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="switch interval"):
        with switch_interval_at_most(-1.0):
            pass


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_come_from_pinned_buffers_copied_on_a_side_stream_and_equal_the_cpu_batches(beton):
    cpu_loader = CpuLoader(beton, CFG, seed=3, threads=2)
    cpu = [b.images.clone() for e in (0, 1) for b in epoch_batches_iter(cpu_loader, e)]
    loader = CpuLoader(beton, CFG, seed=3, threads=2, prefetch=0, device="cuda")  # fewest buffers
    cuda = []
    for e in (0, 1):
        for b in epoch_batches_iter(loader, e):
            torch.cuda._sleep(20_000_000)  # a long step on the compute stream while copies go on
            cuda.append((b.images.float() + 0).to(torch.uint8).cpu())  # read on the compute stream
    assert loader._copy_stream != torch.cuda.current_stream()
    assert all(slot.images.is_pinned() for slot in loader.slots.slots)  # non-blocking host-to-device copies
    assert all(slot.fence is None or isinstance(slot.fence, torch.cuda.Event) for slot in loader.slots.slots)
    assert len(cuda) == len(cpu) and all(torch.equal(a, b) for a, b in zip(cpu, cuda))
    loader.close()
    cpu_loader.close()


def epoch_batches_iter(loader, epoch):
    loader.set_epoch(epoch)
    yield from loader


def test_plans_are_built_off_the_main_thread_and_the_next_epoch_is_prefetched(beton, monkeypatch):
    import threading
    import time

    import fastdeit.data.plan_stream as plan_stream

    built = []  # (thread name, epoch, step) of every plan the loader builds
    real = plan_stream.make_plans

    def recording(cfg, seed, epoch, steps, *args):
        built.extend((threading.current_thread().name, epoch, step) for step in steps)
        return real(cfg, seed, epoch, steps, *args)

    monkeypatch.setattr(plan_stream, "make_plans", recording)
    loader = CpuLoader(beton, CFG, seed=3, threads=2, prefetch=1)
    first = [b.positions.copy() for b in loader]  # all of epoch 0
    deadline = time.monotonic() + 30
    while (1, 0) not in [(e, s) for _, e, s in built] and time.monotonic() < deadline:
        time.sleep(0.01)  # the producer goes on into epoch 1 while nobody iterates
    assert (1, 0) in [(e, s) for _, e, s in built]
    assert all(name == "fastdeit-plan" for name, _, _ in built)  # never the main thread
    second = [b for b in loader]
    assert [(b.epoch, b.step) for b in second] == [(1, 0), (1, 1), (1, 2)]
    fresh = CpuLoader(beton, CFG, seed=3, threads=1)
    fresh.set_epoch(1)
    assert all(torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
               for a, b in zip(second, fresh))  # the prefetched epoch equals a fresh one
    loader.close()
    fresh.close()


def test_a_corrupt_sample_is_named_and_the_loader_recovers(beton):
    from fastdeit.data.plan import make_plan

    bad = int(make_plan(CFG, 3, 0, 1, beton.widths, beton.heights).indices[5])  # in step 1 of epoch 0

    class OneBroken:
        """The beton with one sample's bytes replaced by garbage."""

        def __init__(self, reader):
            self.reader = reader
            for name in ("widths", "heights", "is_jpeg", "labels", "fingerprint"):
                setattr(self, name, getattr(reader, name))

        def image_bytes(self, i):
            return np.frombuffer(b"\xff\xd8broken", np.uint8) if i == bad else self.reader.image_bytes(i)

    loader = CpuLoader(OneBroken(beton), CFG, seed=3, threads=2)
    it = iter(loader)
    assert next(it).step == 0
    with pytest.raises(ValueError, match=f"sample {bad} "):
        next(it)
    assert (loader.epoch, loader.step) == (0, 1)  # the failed step was not handed out
    with pytest.raises(ValueError, match=f"sample {bad} "):
        list(loader)  # restarts from the cursor and meets the same sample again
    loader.seek(0, 2)
    assert [b.step for b in loader] == [2]  # the rest of the stream still flows
    loader.close()
