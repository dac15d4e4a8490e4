"""CpuLoader: the training loader over a `.beton` file, driven by the plan stream.

A producer thread runs ahead of the trainer: for each (epoch, step) that follows, it takes the
plan from the PlanStream (plan_stream.py), a free batch buffer (batch_slots.py) and has the
CpuDecoder's threads decode + crop + resize + flip every sample into it, a few batches ahead and
on across epoch boundaries (the next epoch's first batches decode while the last ones of this
epoch are consumed). The main thread's per-batch work is: take the ready batch, start its copy to
the device (on CUDA, on a side stream that the step's stream waits on through an event), hand it
over. The GPU augmentation (RandAugment, erasing, mixup/cutmix) takes its parameters from the
batch's plan.

Resuming: the loader's state is its plan stream's (epoch, step plus the stream's identity); the
batches are pure functions of those, so a loader loaded from `state_dict()` yields exactly the
batches the interrupted one would have.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from fastdeit.data.batch_slots import Slot, SlotPool
from fastdeit.data.cpu_decoder import CpuDecoder, SampleSource
from fastdeit.data.gil import DEFAULT_DECODE_SWITCH_INTERVAL, switch_interval_at_most
from fastdeit.data.plan import Plan, PlanConfig
from fastdeit.data.plan_stream import STATE_VERSION, FollowsPlanStream, PlanStream, too_few_images  # noqa: F401  (re-exported)
from fastdeit.data.stall_clock import StallClock

_POLL_S = 0.05  # how often a blocked producer looks whether it was told to stop


@dataclass
class Batch:
    """One step's share of this rank.

    images: uint8 tensor (n, S, S, 3) NHWC on the loader's device (S = plan.img_size).
    labels: int64 tensor (n,) on the device.
    positions: int64 numpy array (n,), the samples' positions in the epoch's stream.
    plan: the Plan of these n rows (RandAugment, erasing and mixing parameters).
    epoch, step: where this batch sits in the run.
    """

    images: torch.Tensor
    labels: torch.Tensor
    positions: np.ndarray
    plan: Plan
    epoch: int
    step: int


@dataclass
class _Filling:
    """A batch the producer has started: the decode futures fill `slot`."""

    key: tuple[int, int]
    plan: Plan
    slot: Slot
    futures: list

    def wait(self) -> None:
        for fut in self.futures:
            fut.result()

    def settle(self) -> None:
        """Wait for the chunks (errors ignored): only then may the slot be reused."""
        for fut in self.futures:
            fut.cancel()
        for fut in self.futures:
            if not fut.cancelled():
                fut.exception()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Producer:
    """The thread that plans and submits batches from `start` on, at most `ahead` queued.

    It holds no reference to the loader, so an abandoned loader is collected (and stops it).
    """

    def __init__(self, stream: PlanStream, decoder: CpuDecoder, slots: SlotPool, labels: np.ndarray,
                 start: tuple[int, int], ahead: int) -> None:
        self.next_key = start  # the key the consumer takes next
        self.waiting_for_buffer = False  # set by the thread while every pinned buffer is in flight
        self.ready: queue.Queue = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(
            target=_produce, args=(stream, decoder, slots, labels, start, self.ready, self._stop, self),
            name="fastdeit-plan", daemon=True)
        self._thread.start()

    def take(self) -> _Filling:
        item = self.ready.get()
        if isinstance(item, _Failure):
            raise item.error
        if item.key != self.next_key:  # a bug, not bad input
            raise RuntimeError(f"loader pipeline out of order: got {item.key}, expected {self.next_key}")
        return item

    def stop(self, slots: SlotPool) -> None:
        """Stop producing; wait for what was submitted and give its buffers back."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        while True:
            try:
                item = self.ready.get(timeout=_POLL_S)
            except queue.Empty:
                if not self._thread.is_alive():
                    break
                continue
            if isinstance(item, _Filling):
                item.settle()
                slots.release(item.slot)
        self._thread.join()


def _produce(stream: PlanStream, decoder: CpuDecoder, slots: SlotPool, labels: np.ndarray,
             start: tuple[int, int], ready: queue.Queue, stop: threading.Event, flags: _Producer) -> None:
    try:
        for key in stream.keys_from(*start):
            slot = slots.acquire(timeout=0)
            flags.waiting_for_buffer = slot is None
            while slot is None and not stop.is_set():
                slot = slots.acquire(timeout=_POLL_S)
            flags.waiting_for_buffer = False
            if stop.is_set():
                if slot is not None:
                    slots.release(slot)
                return
            plan = stream.plan(*key)
            np.take(labels, plan.indices, out=slot.label_array)
            item = _Filling(key, plan, slot, decoder.submit(plan, slot.image_array))
            while not stop.is_set():
                try:
                    ready.put(item, timeout=_POLL_S)
                    break
                except queue.Full:
                    continue
            else:
                item.settle()
                slots.release(slot)
                return
    except BaseException as err:  # noqa: BLE001 - handed to the consumer, which raises it
        if not stop.is_set():
            ready.put(_Failure(err))


class CpuLoader(FollowsPlanStream):
    """Iterate to get this rank's `Batch`es of the current epoch; see the module docstring.

    reader: a BetonReader (or any SampleSource with `labels` and `fingerprint`).
    threads: decode threads; prefetch: batches decoded ahead of the one being consumed.
    dct_scaling, region_decode: CpuDecoder's (region_decode=False only for A/B benchmarks).
    switch_interval: the GIL switch interval while iterating (fastdeit.data.gil; None = Python's).
    device: where images and labels go ("cpu", "cuda", torch.device); pinned buffers and copies
    on a side stream on CUDA. An iteration yields the rest of the current epoch from `step`
    (nothing if the epoch is done); when it runs to its end the loader moves to the next epoch,
    so iterating again without set_epoch continues the stream (already prefetched).
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
        dct_scaling: bool = True,
        region_decode: bool = True,
        switch_interval: float | None = DEFAULT_DECODE_SWITCH_INTERVAL,
    ) -> None:
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        self.reader = reader
        self.stream = PlanStream.for_reader(reader, plan_cfg, seed, rank, world_size)
        self.cfg = plan_cfg
        self.seed, self.rank, self.world_size = self.stream.seed, self.stream.rank, self.stream.world_size
        self.groups = self.stream.groups
        self.local_batch = self.stream.local_batch
        self.prefetch = prefetch
        self.switch_interval = switch_interval
        self.device = torch.device(device)
        self._labels = np.asarray(reader.labels, dtype=np.int64)
        self.decoder = CpuDecoder(
            reader, threads=threads, dct_scaling=dct_scaling, region_decode=region_decode
        )
        self._cuda = self.device.type == "cuda"
        # Batches queued ahead: prefetch + 1 (the one the consumer waits for). On CUDA, buffers
        # are reused: those queued, the one the producer fills, the one whose copy may run.
        ahead = prefetch + 1
        self.slots = SlotPool(ahead + 2, self.local_batch, plan_cfg.img_size, pin=self._cuda,
                              reuse=self._cuda)
        self._ahead = ahead
        self._copy_stream = torch.cuda.Stream(self.device) if self._cuda else None
        self._producer: _Producer | None = None
        self._finalizer = weakref.finalize(self, _shutdown, [None], self.slots, self.decoder)
        self.stall_clock = StallClock()  # the consumer's blocking waits, timed apart (fastdeit bench e2e)

    # -- iteration -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        with switch_interval_at_most(self.switch_interval):
            yield from self._iterate(self.stream.epoch, self.stream.step)

    def _producer_at(self, key: tuple[int, int]) -> _Producer:
        """The running producer if it is about to deliver `key`, else a new one from `key`."""
        if self._producer is not None and self._producer.next_key == key:
            return self._producer
        self.stop_prefetching()
        self._producer = _Producer(self.stream, self.decoder, self.slots, self._labels, key, self._ahead)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _shutdown, [self._producer], self.slots, self.decoder)
        return self._producer

    def stop_prefetching(self) -> None:
        """Stop decoding ahead and drop what was prefetched; the next iteration starts from the
        stream's cursor with an empty pipeline. Benchmarks call it so that a timed epoch gets no
        batches decoded before its clock started (training never needs it)."""
        if self._producer is not None:
            self._producer.stop(self.slots)
            self._producer = None

    def _iterate(self, epoch: int, start: int) -> Iterator[Batch]:
        steps = len(self)
        if start < steps:
            producer = self._producer_at((epoch, start))
        for step in range(start, steps):
            filling = None
            try:
                # the batch due is not queued: the producer is either decoding (waiting for data) or
                # blocked on a pinned buffer whose copy to the device still runs (backpressure)
                wait = (self.stall_clock.backpressure if producer.waiting_for_buffer
                        else self.stall_clock.waiting_for_data)
                with wait():
                    filling = producer.take()
                producer.next_key = self.stream.after(epoch, step)
                with self.stall_clock.waiting_for_data():
                    filling.wait()
            except BaseException:
                if filling is not None:
                    filling.settle()
                    self.slots.release(filling.slot)
                self.stop_prefetching()  # restart from the cursor at the next iteration
                raise
            batch = self._hand_over(filling)
            self.stream.handed_out(epoch, step)
            yield batch
        self.stream.epoch_finished()  # ran to the end: the next epoch follows (prefetched)

    def _hand_over(self, filling: _Filling) -> Batch:
        """Start the batch's copy to the device and return it (the main thread's whole share)."""
        slot, plan = filling.slot, filling.plan
        epoch, step = filling.key
        if not self._cuda:
            return Batch(slot.images, slot.labels, plan.positions, plan, epoch, step)
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._copy_stream):
            images = slot.images.to(self.device, non_blocking=True)
            labels = slot.labels.to(self.device, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record(self._copy_stream)
        compute.wait_event(copied)  # the step's kernels start after the copy
        images.record_stream(compute)  # allocated on the copy stream, used on the step's
        labels.record_stream(compute)
        self.slots.release(slot, copied)  # refilled only once the copy has finished
        return Batch(images, labels, plan.positions, plan, epoch, step)

    def close(self) -> None:
        """Stop the producer and the decode threads."""
        self.stop_prefetching()
        self._finalizer()


def _shutdown(producer: list, slots: SlotPool, decoder: CpuDecoder) -> None:
    if producer[0] is not None:
        producer[0].stop(slots)
    decoder.close()

