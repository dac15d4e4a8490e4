"""FastLoader: the training loader over a `.beton` file, driven by the view plan.

Each step it computes the plan of this rank's mixing groups (plan.py, sharding.py), has the
CpuDecoder's threads decode + crop + resize + flip every sample into a uint8 NHWC batch buffer,
a few batches ahead, and hands out the batch on the training device with its labels and plan,
from which the GPU augmentation (RandAugment, erasing, mixup/cutmix) takes its parameters.

Resuming: the loader's state is (epoch, step) plus the identity of the stream (seed, recipe,
dataset fingerprint, world layout); the batches are pure functions of those, so a loader loaded
from `state_dict()` yields exactly the batches the interrupted one would have.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from fastdeit.data.cpu_decoder import CpuDecoder, SampleSource
from fastdeit.data.gil import DEFAULT_DECODE_SWITCH_INTERVAL, switch_interval_at_most
from fastdeit.data.plan import PLAN_VERSION, Plan, PlanConfig, make_plan, steps_per_epoch
from fastdeit.data.sharding import rank_groups
from fastdeit.data.stall_clock import StallClock

STATE_VERSION = 1


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


class _Slot:
    """A batch buffer, pinned on CUDA, reusable once its device copy has completed."""

    def __init__(self, shape: tuple[int, ...], pin: bool) -> None:
        if pin:
            self.tensor = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
            self.array = self.tensor.numpy()
        else:
            # numpy's allocation: glibc reuses freed heap blocks, where a fresh torch.empty of
            # this size costs page faults on every batch (measured ~0.25 ms per image)
            self.array = np.empty(shape, dtype=np.uint8)
            self.tensor = torch.from_numpy(self.array)
        self.event: torch.cuda.Event | None = None

    def wait_free(self) -> None:
        if self.event is not None:
            self.event.synchronize()
            self.event = None


class FastLoader:
    """Iterate to get this rank's `Batch`es of the current epoch; see the module docstring.

    reader: a BetonReader (or any SampleSource with `labels` and `fingerprint`).
    threads: decode threads; prefetch: batches decoded ahead of the one being consumed.
    dct_scaling, region_decode: CpuDecoder's (region_decode=False only for A/B benchmarks).
    switch_interval: the GIL switch interval while iterating (fastdeit.data.gil; None = Python's).
    device: where images and labels go ("cpu", "cuda", torch.device); pinned buffers and
    non-blocking copies on CUDA. An iteration yields the rest of the current epoch from `step`
    (nothing if the epoch is done); when it runs to its end the loader moves to the next epoch,
    so iterating again without set_epoch continues the stream.
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
        self.cfg = plan_cfg
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.groups = rank_groups(plan_cfg.n_groups, self.rank, self.world_size)
        self.prefetch = prefetch
        self.switch_interval = switch_interval
        self.device = torch.device(device)
        self._widths = np.asarray(reader.widths)
        self._heights = np.asarray(reader.heights)
        self._labels = np.asarray(reader.labels, dtype=np.int64)
        self._n_images = len(self._widths)
        self._steps = steps_per_epoch(plan_cfg, self._n_images)
        if self._steps == 0:
            raise ValueError(
                f"{self._n_images} images give no whole global batch of {plan_cfg.global_batch} "
                f"(epoch = floor(N / {plan_cfg.epoch_multiple}) * {plan_cfg.epoch_multiple} samples)"
            )
        self.local_batch = len(self.groups) * plan_cfg.mix_group
        self.decoder = CpuDecoder(
            reader, threads=threads, dct_scaling=dct_scaling, region_decode=region_decode
        )
        self._cuda = self.device.type == "cuda"
        self._slots: list[_Slot] = []
        self.epoch = 0
        self.step = 0  # next step to yield
        self.stall_clock = StallClock()  # blocking waits, timed apart (fastdeit bench e2e)

    def __len__(self) -> int:
        """Steps (batches) per epoch."""
        return self._steps

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its first step at the next iteration."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch, self.step = int(epoch), 0

    def plan(self, epoch: int, step: int) -> Plan:
        """The plan of this rank's rows of global step `step` of `epoch`."""
        return make_plan(
            self.cfg, self.seed, epoch, step, self._widths, self._heights, self.groups
        )

    # -- state ---------------------------------------------------------------------------------

    def _identity(self) -> dict:
        return {
            "plan_version": PLAN_VERSION,
            "seed": self.seed,
            "plan_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.cfg).items()},
            "n_images": self._n_images,
            "fingerprint": str(getattr(self.reader, "fingerprint", "")),
        }

    def state_dict(self) -> dict:
        """Where the stream stands: the next batch to yield is (epoch, step).

        The world size is not part of it: the global stream is the same for any world size, so
        a run may resume on a different number of ranks (if the groups still divide evenly).
        """
        return {"version": STATE_VERSION, "epoch": self.epoch, "step": self.step, **self._identity()}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where `state` was taken; refuses a state from another stream."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"loader state version {state.get('version')!r}, expected {STATE_VERSION}")
        mine = self._identity()
        for key, value in mine.items():
            theirs = state.get(key)
            if isinstance(value, dict) and isinstance(theirs, dict):
                theirs = {k: list(v) if isinstance(v, tuple) else v for k, v in theirs.items()}
            if theirs != value:
                raise ValueError(
                    f"loader state does not match this loader: {key} is {theirs!r} in the state, "
                    f"{value!r} here (a different dataset, seed or recipe would replay other views)"
                )
        epoch, step = int(state["epoch"]), int(state["step"])
        if epoch < 0 or not 0 <= step <= self._steps:
            raise ValueError(f"loader state epoch {epoch} step {step} out of range ({self._steps} steps)")
        self.epoch, self.step = epoch, step

    # -- iteration -----------------------------------------------------------------------------

    def _slot(self, k: int) -> _Slot:
        shape = (self.local_batch, self.cfg.img_size, self.cfg.img_size, 3)
        if not self._cuda:
            return _Slot(shape, pin=False)  # CPU batches own their memory: safe to keep
        while len(self._slots) < self.prefetch + 2:
            self._slots.append(_Slot(shape, pin=True))
        slot = self._slots[k % len(self._slots)]
        with self.stall_clock.backpressure():
            slot.wait_free()
        return slot

    def __iter__(self) -> Iterator[Batch]:
        with switch_interval_at_most(self.switch_interval):
            yield from self._iterate(self.epoch, self.step)

    def _iterate(self, epoch: int, start: int) -> Iterator[Batch]:
        pending: collections.deque = collections.deque()
        next_submit = start
        try:
            for step in range(start, self._steps):
                while next_submit < self._steps and len(pending) <= self.prefetch:
                    plan = self.plan(epoch, next_submit)
                    slot = self._slot(next_submit)
                    pending.append((plan, slot, self.decoder.submit(plan, slot.array)))
                    next_submit += 1
                plan, slot, futures = pending.popleft()
                with self.stall_clock.waiting_for_data():
                    for fut in futures:
                        fut.result()
                batch = self._to_device(plan, slot, epoch, step)
                self.step = step + 1
                yield batch
            self.epoch, self.step = epoch + 1, 0  # ran to the end: the next epoch follows
        finally:
            for _, _, futures in pending:
                for fut in futures:
                    fut.cancel()
            for _, _, futures in pending:
                for fut in futures:
                    if not fut.cancelled():
                        fut.exception()  # let running chunks finish before buffers are reused

    def _to_device(self, plan: Plan, slot: _Slot, epoch: int, step: int) -> Batch:
        labels = torch.from_numpy(self._labels[plan.indices])
        if self._cuda:
            images = slot.tensor.to(self.device, non_blocking=True)
            slot.event = torch.cuda.Event()
            slot.event.record()
            labels = labels.pin_memory().to(self.device, non_blocking=True)
        else:
            images = slot.tensor
        return Batch(images, labels, plan.positions, plan, epoch, step)

    def close(self) -> None:
        self.decoder.close()
