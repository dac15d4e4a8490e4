"""Batch buffers that the decoder fills and a device copy drains, each reused only once drained.

On CUDA the loader copies a filled pinned buffer on a side stream and records an event after the
copy (the buffer's *fence*); the buffer goes back to the pool with it, and `acquire` hands it out
again only after the fence has completed, so the decoder never writes into memory a copy is still
reading. A fence is anything with `synchronize()` (block until done) and `query()` (done yet?):
torch.cuda.Event is one. On the CPU nothing is copied: `SlotPool(reuse=False)` gives each batch
fresh memory that the batch then owns (numpy's allocation, which glibc serves from freed blocks:
a fresh torch.empty of this size page-faults on every batch, measured ~0.25 ms per image).
"""

from __future__ import annotations

import queue
from typing import Protocol

import numpy as np
import torch


class Fence(Protocol):
    def synchronize(self) -> None: ...

    def query(self) -> bool: ...


class Slot:
    """One batch: images (n, S, S, 3) uint8 and labels (n,) int64, as tensors and numpy views."""

    def __init__(self, n: int, size: int, pin: bool) -> None:
        if pin:
            self.images = torch.empty((n, size, size, 3), dtype=torch.uint8, pin_memory=True)
            self.labels = torch.empty((n,), dtype=torch.int64, pin_memory=True)
        else:
            self.images = torch.from_numpy(np.empty((n, size, size, 3), dtype=np.uint8))
            self.labels = torch.from_numpy(np.empty((n,), dtype=np.int64))
        self.image_array = self.images.numpy()
        self.label_array = self.labels.numpy()
        self.fence: Fence | None = None  # set while a copy out of this slot may be running


class SlotPool:
    """`count` reusable slots (reuse=True), or a fresh slot per acquire (reuse=False).

    acquire() blocks until a slot is free and its fence has completed; release(slot, fence)
    returns it once its copy has been queued (fence None: nothing reads it any more).
    """

    def __init__(self, count: int, n: int, size: int, pin: bool = False, reuse: bool = True) -> None:
        if count < 1:
            raise ValueError(f"a slot pool needs >= 1 slot, got {count}")
        self.n, self.size, self.pin, self.reuse = n, size, pin, reuse
        self._free: queue.Queue[Slot] = queue.Queue()
        self.slots: list[Slot] = []
        if reuse:
            for _ in range(count):
                slot = Slot(n, size, pin)
                self.slots.append(slot)
                self._free.put(slot)

    def acquire(self, timeout: float | None = None) -> Slot | None:
        """A slot no copy reads any more; None if none came free within `timeout` seconds."""
        if not self.reuse:
            return Slot(self.n, self.size, self.pin)
        try:
            slot = self._free.get(timeout=timeout)
        except queue.Empty:
            return None
        if slot.fence is not None:
            slot.fence.synchronize()  # the copy out of it has finished
            slot.fence = None
        return slot

    def release(self, slot: Slot, fence: Fence | None = None) -> None:
        """Give `slot` back; it is handed out again only after `fence` completes."""
        if not self.reuse:
            return
        slot.fence = fence
        self._free.put(slot)

    def free_count(self) -> int:
        return self._free.qsize() if self.reuse else -1
