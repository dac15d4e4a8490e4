"""TeacherCache: read a teacher-logit cache during training, a few steps ahead.

Training asks, each step, for the teacher logits of its rows: `logits_for(epoch, positions,
num_classes, device)` gathers their top-k values and class indices from the memory-mapped file
and scatters them into a dense (n, num_classes) float32 tensor whose other entries are far
below the row's k-th value, so that argmax is the teacher's hard label and, with
k = num_classes, soft distillation is exact. The chunk (global step) after the one asked for is
read and checksummed on a background thread while the step runs.

What top-k loses (k < num_classes): hard distillation nothing, the argmax is kept. Soft
distillation sees the teacher's distribution renormalised over its top k: per sample, the
gradient on the student's logits moves by exactly 2 * m * tau / numel in L1, where m is the
teacher's probability mass outside its top k at temperature tau (tested). A trained ImageNet
teacher keeps most of its mass in its top 10, so k = 10 is close; k = num_classes is exact.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from fastdeit.config.schema import AugmentConfig, DataConfig, DistillConfig
from fastdeit.data.plan import PLAN_VERSION
from fastdeit.distill.cache_format import CacheHeader, chunk_crc, mismatch, read_header, read_table
from fastdeit.distill.cache_identity import run_views, teacher_identity

# Below the row's smallest stored logit: exp(-BACKGROUND_GAP / tau) underflows to 0 in fp32 for
# any tau <= ~100, and the value stays finite (no inf - inf = nan in KL or log_softmax).
BACKGROUND_GAP = 1e4


class TeacherCache:
    """A complete cache file, memory-mapped read-only. ValueError if corrupt or incomplete."""

    def __init__(self, path: str | os.PathLike, prefetch: int = 2) -> None:
        self.path = Path(path)
        self.header, self.layout = read_header(self.path)
        h = self.header
        if h.shard != (0, 1):
            raise ValueError(f"teacher cache {self.path}: a shard ({h.shard[0]}/{h.shard[1]}) of a build; "
                             "merge the shards first (fastdeit teacher-cache merge OUT PARTS...)")
        table = read_table(self.path, self.layout, h)
        if not (table[:, 1] == 1).all():
            left = int((table[:, 1] != 1).sum())
            raise ValueError(f"teacher cache {self.path}: incomplete, {left} of {h.n_chunks} steps missing "
                             "(rerun the build with --resume)")
        self._crc = table[:, 0].astype(np.int64)
        shape = (h.n_rows, h.k)
        self._values = np.memmap(self.path, dtype="<f2", mode="r", offset=self.layout.values_offset, shape=shape)
        self._indices = np.memmap(self.path, dtype="<i2", mode="r", offset=self.layout.indices_offset, shape=shape)
        self.prefetch = max(0, int(prefetch))
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="teacher-cache") if self.prefetch else None
        self._chunks: dict[int, Future | tuple[torch.Tensor, torch.Tensor]] = {}
        self._lock = threading.Lock()

    # -- checks --------------------------------------------------------------------------------

    def check_matches(
        self,
        *,
        dataset: str,
        seed: int,
        recipe: str,
        plan_version: int,
        teacher: str,
        teacher_checksum: str,
        epochs: tuple[int, int],
        samples_per_epoch: int,
        global_batch: int,
        num_classes: int,
        min_k: int = 1,
    ) -> None:
        """Refuse (ValueError naming the field) a cache that is not this run's: other dataset,
        seed, recipe, plan version, teacher, batch layout or classes, fewer than `min_k`
        logits per sample, or an epoch range [start, end) the cache does not cover."""
        h = self.header
        expected = CacheHeader(dataset=dataset, seed=seed, recipe=recipe, plan_version=plan_version,
                               teacher=teacher, teacher_checksum=teacher_checksum, k=h.k,
                               epochs=h.epochs, samples_per_epoch=samples_per_epoch,
                               chunk_samples=global_batch, num_classes=num_classes)
        why = mismatch(expected, h)
        if why is None and h.k < min_k:
            why = f"k (top-k logits per sample) is {h.k}, this run needs at least {min_k}"
        if why is None and not (h.epochs[0] <= epochs[0] and epochs[1] <= h.epochs[1]):
            why = (f"epoch range differs: the cache holds epochs {h.epochs[0]}:{h.epochs[1]}, this run "
                   f"needs {epochs[0]}:{epochs[1]}")
        if why:
            raise ValueError(f"distill.cache {self.path} does not match this run: {why}")

    # -- reading -------------------------------------------------------------------------------

    def _load(self, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.header
        rows = slice(chunk * h.chunk_samples, (chunk + 1) * h.chunk_samples)
        values = np.array(self._values[rows])
        indices = np.array(self._indices[rows])
        e, s = h.epoch_step(chunk)
        if chunk_crc(values, indices) != self._crc[chunk]:
            raise ValueError(f"teacher cache {self.path}: corrupt data at epoch {e} step {s} (checksum)")
        if indices.min() < 0 or indices.max() >= h.num_classes:
            raise ValueError(f"teacher cache {self.path}: corrupt class index at epoch {e} step {s}")
        return torch.from_numpy(values), torch.from_numpy(indices.astype(np.int64))

    def _chunk(self, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        with self._lock:
            for old in [c for c in self._chunks if c < chunk - 1 or c > chunk + self.prefetch]:
                del self._chunks[old]  # training reads forward: keep the previous and the next few
            entry = self._chunks.get(chunk)
            if entry is None:
                entry = self._chunks[chunk] = self._submit(chunk)
            for ahead in range(chunk + 1, min(chunk + 1 + self.prefetch, self.header.n_chunks)):
                if ahead not in self._chunks:
                    self._chunks[ahead] = self._submit(ahead)
        if isinstance(entry, Future):
            entry = entry.result()
        return entry

    def _submit(self, chunk: int) -> Future | tuple[torch.Tensor, torch.Tensor]:
        if self._pool is None:
            return self._load(chunk)
        return self._pool.submit(self._load, chunk)

    def topk(self, epoch: int, positions: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(values float16 (n, k), class indices int64 (n, k)) on the CPU, largest first."""
        h = self.header
        pos = np.asarray(positions.cpu() if isinstance(positions, torch.Tensor) else positions, dtype=np.int64)
        if not h.epochs[0] <= epoch < h.epochs[1]:
            raise ValueError(f"teacher cache {self.path}: epoch {epoch} outside its range {h.epochs[0]}:{h.epochs[1]}")
        if pos.size and (pos.min() < 0 or pos.max() >= h.samples_per_epoch):
            raise ValueError(f"teacher cache {self.path}: positions outside 0..{h.samples_per_epoch - 1}")
        steps = pos // h.chunk_samples
        values = torch.empty((pos.size, h.k), dtype=torch.float16)
        indices = torch.empty((pos.size, h.k), dtype=torch.int64)
        for step in np.unique(steps):
            sel = np.flatnonzero(steps == step)
            v, i = self._chunk(h.chunk_of(epoch, int(step)))
            rows = torch.from_numpy(pos[sel] - step * h.chunk_samples)
            values[torch.from_numpy(sel)] = v[rows]
            indices[torch.from_numpy(sel)] = i[rows]
        return values, indices

    def logits_for(self, epoch: int, positions: np.ndarray | torch.Tensor, num_classes: int,
                   device: torch.device | str = "cpu") -> torch.Tensor:
        """Dense teacher logits float32 (n, num_classes) on `device` for these stream positions."""
        if num_classes != self.header.num_classes:
            raise ValueError(f"teacher cache {self.path}: holds {self.header.num_classes} classes, "
                             f"asked for {num_classes}")
        values, indices = self.topk(epoch, positions)
        device = torch.device(device)
        non_blocking = device.type == "cuda"
        if non_blocking:
            values, indices = values.pin_memory(), indices.pin_memory()
        values = values.to(device, non_blocking=non_blocking).float()
        indices = indices.to(device, non_blocking=non_blocking)
        background = values.min(dim=1, keepdim=True).values - BACKGROUND_GAP
        out = background.expand(-1, num_classes).contiguous()
        return out.scatter_(1, indices, values)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._chunks.clear()

    def __enter__(self) -> "TeacherCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_for_run(
    path: str | os.PathLike,
    *,
    reader,
    data: DataConfig,
    augment: AugmentConfig,
    distill: DistillConfig,
    seed: int,
    device: torch.device | str,
    precision: str,
    epochs: tuple[int, int],
    device_augment: Any = None,
    prefetch: int = 2,
) -> TeacherCache:
    """The trainer's entry point: open `distill.cache` and refuse it unless it holds exactly this
    run's views (dataset `reader`, seed, recipe, teacher) for epochs [start, end).

    device_augment: the run's DeviceAugment (pass it): its out_dtype, mean and std are part of the
    recipe, so a run whose teacher input differs from the builder's (which uses
    DeviceAugment(augment, C, out_dtype=teacher_input_dtype(device, precision))) is refused.
    """
    views = run_views(reader, data, augment, torch.device(device), precision, device_augment)
    name, checksum = teacher_identity(distill)  # first: a missing teacher says how to train it
    if not Path(path).is_file():
        raise ValueError(f"distill.cache: no such file {path}; build it first with `fastdeit teacher-cache` "
                         "and this run's --preset/--config/--set (it writes distill.cache by default)")
    cache = TeacherCache(path, prefetch=prefetch)
    try:
        cache.check_matches(dataset=views.dataset, seed=int(seed), recipe=views.recipe_hash,
                            plan_version=PLAN_VERSION, teacher=name, teacher_checksum=checksum,
                            epochs=(int(epochs[0]), int(epochs[1])), samples_per_epoch=views.samples_per_epoch,
                            global_batch=views.plan_cfg.global_batch, num_classes=views.num_classes)
    except ValueError as err:
        cache.close()
        raise ValueError(f"{err}; rebuild it with `fastdeit teacher-cache` and this run's "
                         "--preset/--config/--set") from None
    return cache
