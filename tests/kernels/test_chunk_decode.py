"""The chunk kernel (fastdeit.kernels.chunk_decode, one nogil call per chunk) fills batches bit for
bit as the per-sample reference path does, for any thread count and chunk size, for JPEG and raw
samples, from a memory-mapped .beton or any other source; it names a corrupt sample; and it really
runs without the GIL."""

import threading

import numpy as np
import pytest

from fastdeit.data import cpu_decoder
from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.cpu_decoder import CpuDecoder, decode_crop_resize
from fastdeit.data.plan import PlanConfig, make_plan
from fastdeit.data.sample_images import photo_crops
from fastdeit.kernels import chunk_decode

needs_ext = pytest.mark.skipif(not chunk_decode.AVAILABLE, reason="_jpeg_region not built")
SIZES = [(301, 447), (427, 640), (250, 199), (97, 131), (40, 33), (512, 384)] * 4  # 24 images


def write(path, mode, sizes=SIZES, seed=0):
    with BetonWriter(path, mode, max_resolution=None, jpeg_quality=90) as w:
        for k, (h, wd) in enumerate(sizes):
            w.add(photo_crops(1, (wd, h), seed=seed + k)[0], k % 3)
    return BetonReader(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("chunk")
    return {"jpg": write(d / "jpg.beton", "jpg"), "raw": write(d / "raw.beton", "raw"),
            "mixed": write(d / "mixed.beton", "proportion")}


def reference_batch(src, plan, dct_scaling=True):
    """The per-sample path, one decode_crop_resize per row."""
    out = np.empty((len(plan), plan.img_size, plan.img_size, 3), np.uint8)
    for r in range(len(plan)):
        i = int(plan.indices[r])
        decode_crop_resize(src.image_bytes(i), bool(src.is_jpeg[i]), int(src.widths[i]), int(src.heights[i]),
                           plan.crop[r], bool(plan.flip[r]), out[r], dct_scaling)
    return out


def plans(src, img_size, steps=2):
    cfg = PlanConfig(img_size=img_size, global_batch=12, mix_group=4, repeated_aug=1, epoch_multiple=1)
    return [make_plan(cfg, 7, 0, s, src.widths, src.heights) for s in range(steps)]


class ViaImageBytes:
    """A source with only image_bytes (no memory map): the chunk's bytes are gathered."""

    def __init__(self, reader):
        self.reader, self.widths, self.heights, self.is_jpeg = reader, reader.widths, reader.heights, reader.is_jpeg

    def image_bytes(self, i):
        return self.reader.image_bytes(i)


@needs_ext
@pytest.mark.parametrize("kind", ["jpg", "raw", "mixed"])
@pytest.mark.parametrize("img_size", [32, 112, 224])
def test_batches_equal_the_per_sample_path_for_any_threads_and_chunks(files, kind, img_size):
    src = files[kind]
    for plan in plans(src, img_size):
        want = reference_batch(src, plan)
        for threads, chunk in [(1, 1), (1, 12), (2, 3), (3, 8), (2, 5)]:
            with CpuDecoder(src, threads=threads, chunk=chunk) as dec:
                assert np.array_equal(dec.decode(plan), want), (kind, img_size, threads, chunk)
        with CpuDecoder(ViaImageBytes(src), threads=2, chunk=4) as dec:
            assert np.array_equal(dec.decode(plan), want)


@needs_ext
def test_without_dct_scaling_too(files):
    src = files["jpg"]
    plan = plans(src, 64, steps=1)[0]
    with CpuDecoder(src, threads=2, chunk=5, dct_scaling=False) as dec:
        assert np.array_equal(dec.decode(plan), reference_batch(src, plan, dct_scaling=False))


@needs_ext
def test_the_compiled_dct_factor_is_the_reference_one():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        h, w = (int(v) for v in rng.integers(1, 3000, 2))
        ch, cw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        s = int(rng.integers(1, 400))
        assert chunk_decode.dct_factor(ch, cw, s, s, h, w) == cpu_decoder.dct_factor(ch, cw, s, s, h, w)


@needs_ext
def test_a_corrupt_sample_in_a_chunk_is_named(files, tmp_path):
    src = files["jpg"]

    plan = plans(src, 48, steps=1)[0]
    row = 5
    victim = int(plan.indices[row])

    class OneBroken(ViaImageBytes):
        def image_bytes(self, i):
            data = self.reader.image_bytes(i)
            return data[: len(data) // 3] if i == victim else data

    with CpuDecoder(OneBroken(src), threads=1, chunk=len(plan)) as dec:
        with pytest.raises(ValueError, match=rf"sample {victim} \(stream position {int(plan.positions[row])}\) does not decode: libjpeg"):
            dec.decode(plan)


@needs_ext
def test_a_raw_sample_of_the_wrong_size_is_named(files):
    src = files["raw"]

    plan = plans(src, 16, steps=1)[0]
    victim = int(plan.indices[3])

    class Short(ViaImageBytes):
        def image_bytes(self, i):
            data = self.reader.image_bytes(i)
            return data[:-3] if i == victim else data

    with CpuDecoder(Short(src), threads=1, chunk=len(plan)) as dec:
        with pytest.raises(ValueError, match=rf"sample {victim} .*raw image has"):
            dec.decode(plan)


@needs_ext
def test_a_python_thread_runs_while_a_chunk_decodes(tmp_path):
    """The chunk call releases the GIL: a Python thread spinning beside it sees the batch half
    filled (rows written, later rows not yet) and counts iterations meanwhile. With the GIL held
    for the whole call, no Python could run between its first and its last row."""
    reader = write(tmp_path / "big.beton", "jpg", [(512, 512)] * 8)
    cfg = PlanConfig(img_size=224, global_batch=96, mix_group=96, repeated_aug=1, epoch_multiple=1,
                     scale=(1.0, 1.0), ratio=(1.0, 1.0))  # whole images: no DCT scaling, slow rows
    plan = make_plan(cfg, 0, 0, 0, np.full(96, 512), np.full(96, 512))

    class Tiled(ViaImageBytes):  # the 8 images seen as 96 samples
        def image_bytes(self, i):
            return self.reader.image_bytes(i % 8)

    tiled = Tiled(reader)
    tiled.widths, tiled.heights, tiled.is_jpeg = np.full(96, 512), np.full(96, 512), np.ones(96, bool)
    out = np.zeros((96, 224, 224, 3), np.uint8)
    seen = {"mid": 0, "spins": 0}
    done = threading.Event()

    def spin():
        while not done.is_set():
            seen["spins"] += 1
            if out[0].any() and not out[-1].any():
                seen["mid"] += 1

    with CpuDecoder(tiled, threads=1, chunk=96) as dec:
        dec.decode(plan, np.empty_like(out))  # compile outside the observed call
        t = threading.Thread(target=spin)
        t.start()
        try:
            dec.decode(plan, out)
        finally:
            done.set()
            t.join()
    assert seen["mid"] > 0, seen
    assert out[-1].any()
