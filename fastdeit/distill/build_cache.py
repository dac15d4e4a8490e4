"""Build a teacher-logit cache by replaying training's views through the teacher.

The views come from the same path training takes (the trainer's loader over the .beton file, then
DeviceAugment with the plan's draws, in the dtype the teacher sees in training), one whole global
step (all mixing groups) at a time, so the teacher sees exactly the mixed inputs of the run.
Because eval-mode teachers treat samples independently, the logits do not depend on how a run
later splits the step over ranks.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fastdeit.augment.pipeline import DeviceAugment
from fastdeit.config.schema import AugmentConfig, DataConfig, DistillConfig
from fastdeit.data.plan import PLAN_VERSION
from fastdeit.distill.cache_format import CacheHeader, CacheWriter, mismatch, read_header
from fastdeit.distill.cache_identity import check_planned_loader, run_views, teacher_identity
from fastdeit.precision import autocast_for


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def open_beton(path: str, key: str = "data.train"):
    """The view-plan loaders (and so the cache) read .beton files only."""
    from fastdeit.data.beton import BetonReader

    if not path or not Path(path).is_file():
        raise ValueError(f"{key}: {path!r} is not a .beton file; the teacher cache replays the view-plan loader, "
                         "which reads .beton files (make one with `fastdeit prepare SRC OUT.beton`)")
    return BetonReader(path)


def default_k(kind: str, num_classes: int) -> int:
    """k = 1 suffices for hard distillation; soft keeps the top 10 (TinyViT's choice)."""
    return 1 if kind in ("hard", "hard_cls") else min(10, num_classes)


@torch.no_grad()
def teacher_topk(teacher: nn.Module, images: torch.Tensor, k: int, device: torch.device, precision: str,
                 micro_batch: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k (values, indices) of the teacher on `images`, run as train_step runs it."""
    parts = images.split(micro_batch) if micro_batch > 0 else (images,)
    values, indices = [], []
    for x in parts:
        with autocast_for(device, precision):
            logits = teacher(x)
        v, i = logits.float().topk(k, dim=1)
        values.append(v)
        indices.append(i)
    return torch.cat(values), torch.cat(indices)


def build_teacher_cache(
    out: str | Path,
    *,
    data: DataConfig,
    augment: AugmentConfig,
    distill: DistillConfig,
    seed: int,
    epochs: tuple[int, int],
    k: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    shard: tuple[int, int] = (0, 1),
    resume: bool = False,
    threads: int = 0,
    micro_batch: int = 0,
    max_steps: int = 0,
    progress: bool = True,
) -> Path | None:
    """Build (shard i of n of) the cache for epochs [start, end) at `out`.

    Returns the finished file, or None when `max_steps` (> 0) stopped the build early: the
    work so far stays in OUT.partial and `resume=True` continues it.
    """
    from fastdeit.distill.teacher import load_teacher
    from fastdeit.train.data_source import build_train_data, resolve_paths

    check_planned_loader(data)
    dev = resolve_device(device)
    train_path, _ = resolve_paths(replace(data, val=""))  # as the trainer does: `demo` -> its .beton
    data = replace(data, train=train_path)
    reader = open_beton(train_path)
    views = run_views(reader, data, augment, dev, precision)
    k = default_k(distill.kind, views.num_classes) if k is None else int(k)
    name, checksum = teacher_identity(distill)
    header = CacheHeader(
        dataset=views.dataset, seed=int(seed), recipe=views.recipe_hash, plan_version=PLAN_VERSION,
        teacher=name, teacher_checksum=checksum, k=k, epochs=(int(epochs[0]), int(epochs[1])),
        samples_per_epoch=views.samples_per_epoch, chunk_samples=views.plan_cfg.global_batch,
        num_classes=views.num_classes, shard=tuple(shard), recipe_detail=views.recipe,
        precision=f"{precision} on {dev.type}",
    )
    out = Path(out)
    if resume and out.is_file() and not out.with_name(out.name + ".partial").exists():
        done, _ = read_header(out)
        why = mismatch(header, done)
        if why:
            raise ValueError(f"--resume: {out} is a finished cache of another build: {why}")
        return out  # nothing left to do
    # the teacher is checked (model name and shapes against its weights) before OUT.partial exists:
    # a refused teacher leaves nothing behind that would block the corrected command
    teacher = load_teacher(distill, views.num_classes, dev)
    augmenter = DeviceAugment(augment, views.num_classes, out_dtype=views.input_dtype)
    writer = CacheWriter(out, header, resume=resume)
    try:
        todo = writer.todo()
        if max_steps > 0:
            todo = todo[:max_steps]
        if todo:
            loader = build_train_data(replace(data, workers=threads or data.workers), augment, data.train,
                                      rank=0, world_size=1, seed=seed, device=dev).loader  # training's loader
            bar = _bar(len(todo) * header.chunk_samples, progress)
            try:
                for chunk, batch in _replay(loader, header, todo):
                    images, _ = augmenter.apply_to_batch(batch)
                    values, indices = teacher_topk(teacher, images, k, dev, precision, micro_batch)
                    order = np.argsort(batch.positions)  # rows -> position order within the step
                    values = values[torch.from_numpy(order).to(values.device)].half().cpu().numpy()
                    indices = indices[torch.from_numpy(order).to(indices.device)].short().cpu().numpy()
                    writer.write_chunk(chunk, values, indices)
                    if bar is not None:
                        bar.update(header.chunk_samples)
            finally:
                loader.close()
                if bar is not None:
                    bar.close()
        if writer.todo():
            return None
        return writer.finish()
    finally:
        writer.close()


def _replay(loader, header: CacheHeader, chunks: list[int]):
    """Yield (chunk, Batch) for the given chunks, one loader pass per run of consecutive steps."""
    i = 0
    while i < len(chunks):
        epoch, step = header.epoch_step(chunks[i])
        j = i
        while (j + 1 < len(chunks) and chunks[j + 1] == chunks[j] + 1
               and header.epoch_step(chunks[j + 1])[0] == epoch):
            j += 1
        loader.seek(epoch, step)  # the loader's plan stream hands out this step next
        it = iter(loader)
        try:
            for c in chunks[i:j + 1]:
                batch = next(it)
                if batch.step != header.epoch_step(c)[1] or len(batch.positions) != header.chunk_samples:
                    raise RuntimeError("loader did not replay the expected step")  # a bug, not bad input
                yield c, batch
        finally:
            it.close()
        i = j + 1


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="teacher-cache", file=sys.stderr, dynamic_ncols=True, smoothing=0.05)
