"""PlanStream: the one mapping from (seed, recipe, dataset, world layout) and (epoch, step) to a plan.

Every view-plan consumer (the CPU loader, the DALI loader, the teacher-cache builder) holds a
PlanStream and asks it for plans; none computes a plan, keeps its own epoch/step, or writes
another's. The stream also keeps the cursor, the next (epoch, step) to hand out, and its
`state_dict` is what a checkpoint stores: the cursor plus the identity of the stream (plan
version, seed, recipe, dataset size and fingerprint). Because plans are pure functions of those,
a stream loaded from a state continues exactly, on any world size whose ranks still take whole
mixing groups (see sharding.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict

import numpy as np

from fastdeit.data.plan import PLAN_VERSION, Plan, PlanConfig, make_plans, steps_per_epoch
from fastdeit.data.sharding import rank_groups

STATE_VERSION = 1
PLAN_BLOCK = 8  # steps planned in one vectorised call (make_plans): 1/8 of the per-call overhead


def _plain(cfg: PlanConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


class PlanStream:
    """This rank's plans, step after step, across epochs; see the module docstring.

    widths, heights: stored sizes of all N images of the dataset; fingerprint: the dataset's
    identity (BetonReader.fingerprint). rank/world_size choose the mixing groups of each step.
    """

    def __init__(
        self,
        cfg: PlanConfig,
        seed: int,
        widths: np.ndarray,
        heights: np.ndarray,
        fingerprint: str = "",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.cfg = cfg
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.groups = rank_groups(cfg.n_groups, self.rank, self.world_size)
        self.local_batch = len(self.groups) * cfg.mix_group
        self._widths = np.asarray(widths)
        self._heights = np.asarray(heights)
        self.n_images = int(self._widths.shape[0])
        self.fingerprint = str(fingerprint)
        self.steps = steps_per_epoch(cfg, self.n_images)
        if self.steps == 0:
            raise ValueError(too_few_images(self.n_images, cfg.global_batch, cfg.epoch_multiple, cfg.mix_group))
        self._epoch, self._step = 0, 0
        self._block_lock = threading.Lock()
        self._planned: OrderedDict[tuple[int, int], Plan] = OrderedDict()  # the last block's plans

    @classmethod
    def for_reader(cls, reader, cfg: PlanConfig, seed: int = 0, rank: int = 0,
                   world_size: int = 1) -> "PlanStream":
        """The stream over a BetonReader (or any source with widths, heights, fingerprint)."""
        return cls(cfg, seed, reader.widths, reader.heights, getattr(reader, "fingerprint", ""),
                   rank, world_size)

    # -- the mapping ---------------------------------------------------------------------------

    def plan(self, epoch: int, step: int) -> Plan:
        """The plan of this rank's rows of global step `step` of `epoch` (pure; any thread).

        Plans are made PLAN_BLOCK steps at a time (make_plans, the same values as one by one) and
        kept until asked for: consumers ask in order, so 7 of 8 calls return at once.
        """
        with self._block_lock:
            plan = self._planned.pop((epoch, step), None)
            if plan is None:
                if not 0 <= step < self.steps:
                    raise ValueError(f"step {step} outside the epoch's {self.steps} steps (N={self.n_images})")
                block = range(step, min(step + PLAN_BLOCK, self.steps))
                plans = make_plans(self.cfg, self.seed, epoch, block, self._widths, self._heights, self.groups)
                self._planned.clear()  # a consumer that moved elsewhere does not come back for them
                self._planned.update(((epoch, p.step), p) for p in plans[1:])
                plan = plans[0]
        return plan

    def after(self, epoch: int, step: int) -> tuple[int, int]:
        """The (epoch, step) that follows (epoch, step) in the run: the stream crosses epochs."""
        return (epoch, step + 1) if step + 1 < self.steps else (epoch + 1, 0)

    def keys_from(self, epoch: int, step: int) -> Iterator[tuple[int, int]]:
        """(epoch, step), then every following step, without end (producers stop on their own)."""
        if step >= self.steps:
            epoch, step = epoch + 1, 0
        while True:
            yield epoch, step
            epoch, step = self.after(epoch, step)

    # -- the cursor ----------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """Epoch of the next batch to hand out."""
        return self._epoch

    @property
    def step(self) -> int:
        """Next step to hand out (== steps when `epoch` is done)."""
        return self._step

    def seek(self, epoch: int, step: int = 0) -> None:
        """Hand out (epoch, step) next: any step of any epoch is directly addressable."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if not 0 <= step <= self.steps:
            raise ValueError(f"step {step} outside [0, {self.steps}]")
        self._epoch, self._step = int(epoch), int(step)

    def handed_out(self, epoch: int, step: int) -> None:
        """Record that (epoch, step) was handed out: the cursor moves just past it."""
        self._epoch, self._step = int(epoch), int(step) + 1

    def epoch_finished(self) -> None:
        """The consumer ran to the end of the epoch: the next one follows."""
        self._epoch, self._step = self._epoch + 1, 0

    # -- state ---------------------------------------------------------------------------------

    def identity(self) -> dict:
        """What makes two streams the same stream (the world layout is not part of it)."""
        return {
            "plan_version": PLAN_VERSION,
            "seed": self.seed,
            "plan_config": _plain(self.cfg),
            "n_images": self.n_images,
            "fingerprint": self.fingerprint,
        }

    def state_dict(self) -> dict:
        """Where the stream stands: the next batch to hand out is (epoch, step).

        The world size is not part of it: the global stream is the same for any world size, so
        a run may resume on a different number of ranks (if the groups still divide evenly).
        """
        return {"version": STATE_VERSION, "epoch": self._epoch, "step": self._step, **self.identity()}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where `state` was taken; refuses a state from another stream."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            found = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"loader state version {found!r}, expected {STATE_VERSION}")
        for key, value in self.identity().items():
            theirs = state.get(key)
            if isinstance(value, dict) and isinstance(theirs, dict):
                theirs = {k: list(v) if isinstance(v, tuple) else v for k, v in theirs.items()}
            if theirs != value:
                raise ValueError(
                    f"loader state does not match this loader: {key} is {theirs!r} in the state, "
                    f"{value!r} here (a different dataset, seed or recipe would replay other views)"
                )
        try:
            epoch, step = int(state["epoch"]), int(state["step"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"loader state: epoch/step missing or not integers: "
                             f"{state.get('epoch')!r}, {state.get('step')!r}") from None
        if epoch < 0 or not 0 <= step <= self.steps:
            raise ValueError(f"loader state epoch {epoch} step {step} out of range ({self.steps} steps)")
        self._epoch, self._step = epoch, step


def too_few_images(n_images: int, global_batch: int, epoch_multiple: int, mix_group: int) -> str:
    """Why an epoch has no step, and which setting to change."""
    used = n_images // epoch_multiple * epoch_multiple
    need = -(-global_batch // epoch_multiple) * epoch_multiple
    smaller = max(mix_group, used // mix_group * mix_group)
    fix = (f"set data.global_batch to {smaller} or less (--set data.global_batch={smaller}; a multiple of "
           f"augment.mix_group = {mix_group})" if used >= mix_group else "")
    more = f"use at least {need} images"
    return (f"{n_images} images give no step of data.global_batch = {global_batch}: an epoch uses "
            f"floor(N / {epoch_multiple}) * {epoch_multiple} = {used} of them (deit's RASampler); "
            + (f"{fix}, or {more}" if fix else more))


class FollowsPlanStream:
    """What a loader driven by a PlanStream (`self.stream`) exposes of it: the cursor is read here
    and moved only through these methods, so no object writes another's epoch or step."""

    stream: PlanStream

    def __len__(self) -> int:
        """Steps (batches) per epoch."""
        return self.stream.steps

    @property
    def epoch(self) -> int:
        return self.stream.epoch

    @property
    def step(self) -> int:
        """The next step to yield."""
        return self.stream.step

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its first step at the next iteration."""
        self.stream.seek(epoch, 0)

    def seek(self, epoch: int, step: int) -> None:
        """Yield (epoch, step) next: the plan makes any step of any epoch directly addressable."""
        self.stream.seek(epoch, step)

    def plan(self, epoch: int, step: int) -> Plan:
        """The plan of this rank's rows of global step `step` of `epoch`."""
        return self.stream.plan(epoch, step)

    def state_dict(self) -> dict:
        """Where the stream stands (PlanStream.state_dict; the CPU and DALI loaders resume each other's)."""
        return self.stream.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where `state` was taken; refuses a state from another stream."""
        self.stream.load_state_dict(state)
