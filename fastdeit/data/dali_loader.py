"""DaliLoader: the plan stream (plan, sharding, epochs, resume) with DALI as the decode stage.

Order, sharding and every view come from a PlanStream (plan_stream.py), the same class the CPU
loader uses, so the DALI loader yields the same positions, labels and plans as `data.loader=cpu`
for every rank and world size, and a state saved by one resumes the other; only the pixels
differ, by the decoders' and resamplers' rounding (see tests/data/test_dali_loader.py).

On `device="cuda"` the JPEGs are decoded by nvJPEG / the hardware decoder (DALI "mixed") and
batches are CUDA tensors; on `device="cpu"` the same graph runs on DALI's CPU operators (the CPU
twin). Batches are kept in flight across epoch boundaries, so the GPU never waits at the start
of an epoch; set_epoch / seek / load_state_dict discard what was in flight.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from fastdeit.data.cpu_decoder import SampleSource
from fastdeit.data.dali_pipeline import DaliDecoder, DaliSettings, check_decode_device, require_dali
from fastdeit.data.loader import Batch
from fastdeit.data.plan import PlanConfig
from fastdeit.data.plan_stream import FollowsPlanStream, PlanStream
from fastdeit.data.stall_clock import StallClock


class DaliLoader(FollowsPlanStream):
    """Iterate to get this rank's `Batch`es of the current epoch (same interface as CpuLoader).

    reader: a BetonReader. threads: DALI CPU threads (the whole decode on the twin; Huffman
    decoding of the images the hardware decoder does not take on a GPU). prefetch: batches
    decoded ahead of the one being consumed. device: "cpu" (the CPU twin) or "cuda[:k]" (GPU
    decode; images and labels on that GPU). hw_decoder_load, fancy_upsampling: see DaliSettings.
    """

    def __init__(
        self,
        reader: SampleSource,
        plan_cfg: PlanConfig,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        threads: int = 2,
        prefetch: int = 2,
        device: str | torch.device = "cpu",
        hw_decoder_load: float = 0.65,
        fancy_upsampling: bool = True,
    ) -> None:
        require_dali()  # errors first, before the plan or the pipeline cost anything
        self.device = torch.device(device)
        if self.device.type not in ("cpu", "cuda"):
            raise ValueError(f"DaliLoader device {device!r}: expected 'cpu' (CPU twin) or 'cuda[:k]'")
        decode_device = "mixed" if self.device.type == "cuda" else "cpu"
        check_decode_device(decode_device)
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        settings = DaliSettings(decode_device, threads, hw_decoder_load, fancy_upsampling)
        self.stream = PlanStream.for_reader(reader, plan_cfg, seed, rank, world_size)
        self.reader = reader
        self.cfg = plan_cfg
        self.seed, self.rank, self.world_size = self.stream.seed, self.stream.rank, self.stream.world_size
        self.groups = self.stream.groups
        self.local_batch = self.stream.local_batch
        self.prefetch = prefetch
        self._labels = np.asarray(reader.labels, dtype=np.int64)
        device_id = None
        if self.device.type == "cuda":
            device_id = self.device.index if self.device.index is not None else torch.cuda.current_device()
            self.device = torch.device("cuda", device_id)
        self.decoder = DaliDecoder(reader, plan_cfg.img_size, self.local_batch, settings, device_id)
        self.stall_clock = StallClock()  # blocking waits, timed apart (fastdeit bench e2e)

    # -- iteration -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        s = self.stream  # same epoch/step semantics as CpuLoader.__iter__
        epoch, start = s.epoch, s.step
        dec = self.decoder
        if dec.in_flight and dec.peek_tag() != (epoch, start):
            dec.drain()  # set_epoch / seek / load_state_dict moved the stream
        for step in range(start, len(self)):
            nxt = (epoch, step) if not dec.in_flight else s.after(*dec.last_tag())
            while dec.in_flight <= self.prefetch:
                dec.submit(s.plan(*nxt), tag=nxt)
                nxt = s.after(*nxt)
            with self.stall_clock.waiting_for_data():  # DALI's run of this batch not finished
                (tag_epoch, tag_step), plan, images = dec.result()
            assert (tag_epoch, tag_step) == (epoch, step)
            labels = torch.from_numpy(self._labels[plan.indices])
            if self.device.type == "cuda":
                labels = labels.pin_memory().to(self.device, non_blocking=True)
            s.handed_out(epoch, step)
            yield Batch(images, labels, plan.positions, plan, epoch, step)
        s.epoch_finished()  # ran to the end: the next epoch follows (prefetched)

    def close(self) -> None:
        self.decoder.close()
