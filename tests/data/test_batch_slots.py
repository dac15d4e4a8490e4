"""SlotPool: a batch buffer is handed out again only after the copy out of it has finished."""

import threading

import numpy as np
import pytest
import torch

from fastdeit.data.batch_slots import SlotPool


class CopyFence:
    """Stands for the CUDA event recorded after a copy: done when the test says the copy ended."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def synchronize(self) -> None:
        self.done.wait()

    def query(self) -> bool:
        return self.done.is_set()


def test_a_buffer_is_not_handed_out_again_while_its_copy_is_in_flight():
    pool = SlotPool(2, n=4, size=8)
    first, second = pool.acquire(), pool.acquire()
    assert first is not second and pool.acquire(timeout=0.01) is None  # both out: none free
    fence = CopyFence()
    pool.release(first, fence)  # its copy was queued, not finished
    got = []
    taker = threading.Thread(target=lambda: got.append(pool.acquire()))
    taker.start()
    taker.join(timeout=0.2)
    assert taker.is_alive() and got == []  # still waiting on the copy
    fence.done.set()
    taker.join(timeout=10)
    assert got == [first] and first.fence is None
    pool.release(second)  # nothing reads it: free at once
    assert pool.acquire(timeout=0.01) is second


def test_slots_hold_images_and_labels_and_cpu_batches_own_fresh_memory():
    pool = SlotPool(1, n=4, size=8, reuse=False)
    a, b = pool.acquire(), pool.acquire()
    assert a.images.shape == (4, 8, 8, 3) and a.images.dtype == torch.uint8
    assert a.labels.shape == (4,) and a.labels.dtype == torch.int64
    assert not np.shares_memory(a.image_array, b.image_array)
    a.image_array[:] = 7
    assert int(a.images.sum()) == 7 * a.images.numel()  # the tensor is the numpy buffer
    with pytest.raises(ValueError):
        SlotPool(0, n=4, size=8)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_slots_are_pinned_and_wait_for_the_copy_event():
    pool = SlotPool(1, n=4, size=8, pin=True)
    slot = pool.acquire()
    assert slot.images.is_pinned() and slot.labels.is_pinned()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        dev = slot.images.to("cuda", non_blocking=True)
        done = torch.cuda.Event()
        done.record(side)
    pool.release(slot, done)
    again = pool.acquire()
    assert again is slot and done.query()  # acquire returned only after the copy completed
    assert dev.shape == (4, 8, 8, 3)
