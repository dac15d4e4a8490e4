"""The training loop: epochs of steps, evaluation, checkpoints, run outputs."""

from __future__ import annotations

import errno
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
import torch
from torch.nn.parallel import DistributedDataParallel

from fastdeit.atomic_write import atomic_write
from fastdeit.config.load import config_to_dict
from fastdeit.config.schema import TrainConfig
from fastdeit.distill.loss import distillation_loss
from fastdeit.eval.evaluate import evaluate
from fastdeit.precision import autocast_dtype, needs_grad_scaler
from fastdeit.models import create_model
from fastdeit.models.compile import maybe_compile
from fastdeit.models.factory import is_distilled
from fastdeit.train import checkpoint as ckpt
from fastdeit.train.data_source import Batches, build_train_data, build_val_loader, resolve_paths
from fastdeit.train.distributed import (
    DistContext,
    all_reduce_sum,
    any_rank,
    barrier,
    gather_to_main,
    init_distributed,
    run_on_main,
    shutdown_distributed,
)
from fastdeit.train.ema import build_ema
from fastdeit.train.metrics import MetricsLog, Progress
from fastdeit.train.optim import build_optimizer, scaled_lr
from fastdeit.train.preemption import CheckpointClock, StopRequests, TrainingStopped
from fastdeit.train.schedule import lr_at
from fastdeit.train.step import StepContext, train_step, unwrap

LAST_CHECKPOINT = "checkpoint.pt"
BEST_CHECKPOINT = "best.pt"
RUN_FILES = ("config.toml", LAST_CHECKPOINT, "metrics.jsonl")  # their presence means: a run lives here


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The RNG seed of `rank` resuming at `step` on a world size other than the checkpoint's:
    a pure function of the three, so such a resume is itself reproducible."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


def check_run_dir(out: Path, resume: bool) -> None:
    """Without --resume, refuse a directory that holds a run: nothing of it may be replaced."""
    if resume:
        return
    present = [name for name in RUN_FILES if (out / name).exists()]
    if not present:
        return
    if (out / LAST_CHECKPOINT).exists():
        raise ValueError(f"run directory {out} already holds a run ({', '.join(present)}): pass --resume to "
                         "continue it, or choose another --out")
    raise ValueError(f"run directory {out} already holds the start of a run that wrote no checkpoint yet "
                     f"({', '.join(present)}): choose another --out, or remove it to start over")


def disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno == errno.ENOSPC


def disk_full_error(path: Path) -> ValueError:
    return ValueError(f"no space left on the device writing {path}; the last complete checkpoint is kept: "
                      "free some space, then run the same command with --resume to continue")


def run_dir(config: TrainConfig, preset: str | None) -> Path:
    """The run directory; refused (before any work) where it or a parent is an existing file."""
    out = Path(config.run.out or f"runs/{preset or 'custom'}")
    for path in (out, *out.parents):
        if path.exists() and not path.is_dir():
            raise ValueError(f"run.out (--out) = {out}: {path} is a file, not a folder; pass a folder for the run "
                             "(created if missing)")
    return out


def write_resolved_config(out: Path, config: TrainConfig, preset: str | None) -> None:
    table = {"preset": preset or "", **config_to_dict(config)}
    atomic_write(out / "config.toml", lambda f: tomli_w.dump(table, f))


def train(config: TrainConfig, preset: str | None = None, resume: bool = False) -> dict[str, Any]:
    """Train per `config`; returns the final evaluation (empty without a validation set)."""
    check_run_dir(run_dir(config, preset), resume)
    dist_ctx = init_distributed(config.run.device)
    try:
        return Trainer(config, preset, dist_ctx).run(resume)
    finally:
        shutdown_distributed()


class Trainer:
    def __init__(self, config: TrainConfig, preset: str | None, dist_ctx: DistContext):
        self.config = config
        self.preset = preset
        self.dist = dist_ctx
        self.device = dist_ctx.device
        self.out = run_dir(config, preset)
        if config.data.global_batch % dist_ctx.world_size:
            raise ValueError(f"data.global_batch = {config.data.global_batch} is not divisible by the "
                             f"world size {dist_ctx.world_size}")
        # deit main.py: seed = args.seed + rank (each rank draws its own augmentations)
        seed_everything(config.run.seed + dist_ctx.rank)
        train_path, val_path = resolve_paths(config.data, dist_ctx.is_main)
        self.train_data = build_train_data(config.data, config.augment, train_path, rank=dist_ctx.rank,
                                           world_size=dist_ctx.world_size, seed=config.run.seed,
                                           device=self.device)
        self.num_classes = self.train_data.num_classes
        self.val_loader = None
        if val_path:
            self.val_loader, val_classes = build_val_loader(config.data, val_path, rank=dist_ctx.rank,
                                                            world_size=dist_ctx.world_size)
            if val_classes > self.num_classes:
                raise ValueError(f"data.val {val_path} has {val_classes} classes but data.train has "
                                 f"{self.num_classes}")
        self.batches = Batches(self.train_data, config.augment, self.num_classes, self.device,
                               autocast_dtype(self.device, config.run.precision))
        self.model = create_model(config.model, self.num_classes, config.data.img_size).to(self.device)
        if config.model.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if is_distilled(self.model):
            self.model.set_distilled_training(config.distill.kind in ("soft", "hard"))
        self.ema = build_ema(self.model, config.run) if config.run.ema else None
        self.optimizer = build_optimizer(self.model, config.optim, config.data.global_batch, self.device)
        self.base_lr = scaled_lr(config.optim, config.data.global_batch)
        use_scaler = needs_grad_scaler(self.device, config.run.precision)
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self.teacher = self.build_teacher()
        self.ddp_model = self.wrap_model()
        self.loss_fn = maybe_compile(distillation_loss, self.config.model, self.device)
        self.steps_per_epoch = len(self.train_data.loader)
        if self.steps_per_epoch == 0:
            raise ValueError(f"data.train {train_path}: too few samples for one step of data.global_batch = "
                             f"{config.data.global_batch}: lower it (--set data.global_batch=N, a multiple of "
                             f"augment.mix_group = {config.augment.mix_group}) or use more images")
        self.total_steps = config.schedule.epochs * self.steps_per_epoch
        if config.run.max_steps:
            self.total_steps = min(self.total_steps, config.run.max_steps)
        self.step = 0
        self.best_top1 = -1.0
        self.log = MetricsLog(self.out, dist_ctx.is_main, config.run.tensorboard)

    def build_teacher(self):
        if self.config.distill.kind == "none":
            return None
        if self.config.distill.cache:
            self.open_teacher_cache()
            return None
        from fastdeit.distill.teacher import load_teacher

        return load_teacher(self.config.distill, self.num_classes, self.device)

    def open_teacher_cache(self) -> None:
        """The teacher-logit cache replaces the online teacher; refused unless it holds this run's views."""
        if not self.train_data.planned:
            raise ValueError("distill.cache needs a view-plan loader (data.loader = cpu or dali): the "
                             "reference loader's views are not replayable")
        from fastdeit.distill.cache_reader import open_for_run

        c = self.config
        self.batches.teacher_cache = open_for_run(
            c.distill.cache, reader=self.train_data.loader.reader, data=c.data, augment=c.augment,
            distill=c.distill, seed=c.run.seed, device=self.device, precision=c.run.precision,
            epochs=(0, c.schedule.epochs), device_augment=self.batches.augment)

    def wrap_model(self):
        model = self.model
        model = maybe_compile(model, self.config.model, self.device)
        if self.dist.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)
        return model

    # ---- checkpoints -------------------------------------------------------------------------
    def checkpoint_payload(self, epoch_done: int, rngs: list[Any]) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "config": config_to_dict(self.config),
            "num_classes": self.num_classes,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "ema": self.ema.state_dict() if self.ema else None,
            "step": self.step,
            "epoch": epoch_done,
            "steps_per_epoch": self.steps_per_epoch,
            "best_top1": self.best_top1,
            "rng": rngs[0],
            # each rank's own RNG (drop path draws differ per rank: deit seeds seed + rank)
            "rng_per_rank": rngs,
            "world_size": self.dist.world_size,
            # the plan loader's stream identity (dataset fingerprint, seed, recipe) and the exact
            # position of the next batch: checked on resume
            "loader": self.loader_state() if self.train_data.planned else None,
        }

    def loader_state(self) -> dict[str, Any]:
        state = self.train_data.loader.state_dict()
        state.update(epoch=self.step // self.steps_per_epoch, step=self.step % self.steps_per_epoch)
        return state

    def save(self, name: str, epoch_done: int) -> None:
        """Rank 0 writes; every rank learns whether that worked and stops with the error if not."""
        rngs = gather_to_main(ckpt.rng_state())
        path = self.out / name

        def write() -> None:
            try:
                ckpt.save_checkpoint(path, self.checkpoint_payload(epoch_done, rngs))
            except OSError as err:
                if disk_full(err):
                    raise disk_full_error(path) from None
                raise

        run_on_main(write, f"to write {path}")

    def try_resume(self) -> None:
        path = self.out / LAST_CHECKPOINT
        if not path.exists():
            raise ValueError(f"--resume: no checkpoint at {path} (nothing to resume)")
        blob = ckpt.load_for_resume(path)
        ckpt.check_compatible(blob, config_to_dict(self.config), path)
        if blob["steps_per_epoch"] != self.steps_per_epoch:
            raise ValueError(f"checkpoint {path}: written with {blob['steps_per_epoch']} steps per epoch, "
                             f"this run has {self.steps_per_epoch} (different dataset or batch size)")
        unwrap(self.model).load_state_dict(blob["model"])
        self.optimizer.load_state_dict(blob["optimizer"])
        if self.scaler and blob["scaler"]:
            self.scaler.load_state_dict(blob["scaler"])
        if self.ema and blob["ema"]:
            self.ema.load_state_dict(blob["ema"])
        if self.train_data.planned and blob.get("loader"):
            try:
                self.train_data.loader.load_state_dict(blob["loader"])
            except ValueError as err:
                raise ValueError(f"checkpoint {path}: {err}") from None
        self.step = blob["step"]
        self.best_top1 = blob["best_top1"]
        self.restore_rng(blob, path)
        self.log.truncate_after(self.step)

    def restore_rng(self, blob: dict[str, Any], path: Path) -> None:
        """Each rank continues its own RNG stream; on another world size, re-derive them."""
        states = blob.get("rng_per_rank")
        if states is not None and len(states) == self.dist.world_size:
            ckpt.restore_rng_state(states[self.dist.rank])
            return
        if states is None and self.dist.world_size == 1:
            ckpt.restore_rng_state(blob["rng"])  # a checkpoint from before per-rank states
            return
        written_by = len(states) if states is not None else "an unknown number of"
        if self.dist.is_main:
            print(f"checkpoint {path} was written by {written_by} ranks, this run has {self.dist.world_size}: "
                  f"each rank's RNG (drop path) is re-seeded from (seed, rank, step {self.step})", flush=True)
        seed_everything(rank_seed(self.config.run.seed, self.dist.rank, self.step))

    # ---- the loop ----------------------------------------------------------------------------
    def run(self, resume: bool) -> dict[str, Any]:
        if resume:
            self.try_resume()  # before anything is written: a refused resume leaves every file as it was
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_resolved_config(self.out, self.config, self.preset)
        barrier()
        self.clock = CheckpointClock(self.config.run.checkpoint_every_minutes)
        progress = Progress(self.config.run.progress, self.total_steps, self.step, self.dist.is_main)
        progress.message(f"training {self.config.model.name} on {self.dist.world_size} x {self.device.type}: "
                         f"{self.num_classes} classes, {self.steps_per_epoch} steps/epoch, "
                         f"{self.total_steps} steps, out {self.out}")
        final: dict[str, Any] = {}
        try:
            with StopRequests(announce=self.dist.is_main) as self.stop_requests:
                while self.step < self.total_steps:
                    epoch = self.step // self.steps_per_epoch
                    self.train_epoch(epoch, progress)
                    epoch_done = self.step % self.steps_per_epoch == 0
                    last = self.step >= self.total_steps
                    if self.val_loader is not None and ((epoch + 1) % self.config.run.eval_every == 0 or last):
                        final = self.evaluate_and_log(epoch, progress)
                    saved = (epoch_done and (epoch + 1) % self.config.run.checkpoint_every == 0) or last
                    if saved:
                        self.save(LAST_CHECKPOINT, epoch + int(epoch_done))
                        self.clock.reset()
                    if not last:
                        self.stop_or_checkpoint(epoch + int(epoch_done), already_saved=saved)
        finally:
            progress.close()
            self.log.close()
        if self.dist.is_main and self.config.run.plot and self.log.path.exists():
            from fastdeit.train.plot import plot_metrics

            plot_metrics(self.log.path, self.out / "curves.png")
        return final

    def train_epoch(self, epoch: int, progress: Progress) -> None:
        self.ddp_model.train()
        start_in_epoch = self.step - epoch * self.steps_per_epoch
        loss_sum = torch.zeros((), device=self.device)
        window_start, window_steps, window_images = time.perf_counter(), 0, 0
        for images, targets, teacher_logits in self.batches.epoch(epoch, start_in_epoch):
            if self.step >= self.total_steps:
                break
            if self.config.model.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            lr = lr_at(self.step, self.steps_per_epoch, self.config.schedule, self.base_lr)
            ctx = self.step_context()
            loss_sum += train_step(ctx, images, targets, lr, teacher_logits)
            self.step += 1
            window_steps += 1
            window_images += images.shape[0] * self.dist.world_size
            if self.step % self.config.run.log_every == 0 or self.step == self.total_steps:
                all_reduce_sum(loss_sum)  # the logged loss is the global batch's, whatever the world size
                loss = float(loss_sum.item()) / (window_steps * self.dist.world_size)  # host sync: every log_every steps
                if not np.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss} at step {self.step}: training diverged; lower the "
                                             "learning rate (--set optim.lr=...) or clip gradients "
                                             "(--set optim.clip_grad=1.0)")
                img_per_s = window_images / max(time.perf_counter() - window_start, 1e-9)
                self.log.write("step", epoch=epoch, step=self.step, loss=loss, lr=lr, img_per_s=img_per_s)
                progress.update(self.step, epoch, loss, lr, img_per_s)
                loss_sum.zero_()
                window_start, window_steps, window_images = time.perf_counter(), 0, 0
            if self.step % self.steps_per_epoch and self.step < self.total_steps:
                self.stop_or_checkpoint(epoch)  # an epoch's last step: after its evaluation, in run()
        if self.step % self.steps_per_epoch == 0:
            self.log.write("epoch", epoch=epoch, step=self.step,
                           lr=lr_at(self.step - 1, self.steps_per_epoch, self.config.schedule, self.base_lr))

    def stop_or_checkpoint(self, epoch: int, already_saved: bool = False) -> None:
        """After a step: all ranks agree (one all-reduce) whether any got a stop signal and whether
        rank 0's clock says a step checkpoint is due, then write it, and stop if asked to."""
        stop, due = any_rank(self.stop_requests.received is not None, self.dist.is_main and self.clock.due())
        if not (stop or due):
            return
        if not already_saved:
            self.save(LAST_CHECKPOINT, epoch)
            self.clock.reset()
        if stop:
            raise TrainingStopped(self.stop_requests.received or "a signal on another rank", self.step, epoch,
                                  str(self.out / LAST_CHECKPOINT))

    def step_context(self) -> StepContext:
        return StepContext(model=self.ddp_model, optimizer=self.optimizer, scaler=self.scaler, ema=self.ema,
                           teacher=self.teacher, distill=self.config.distill,
                           precision=self.config.run.precision, clip_grad=self.config.optim.clip_grad,
                           device=self.device, loss_fn=self.loss_fn)

    def evaluate_and_log(self, epoch: int, progress: Progress) -> dict[str, Any]:
        model = unwrap(self.model)
        results = evaluate(model, self.val_loader, self.device, self.config.run.precision,
                           self.config.model.channels_last)
        self.log.write("eval", epoch=epoch, step=self.step, model="model", **results)
        summary = f"epoch {epoch} eval: top1 {results['top1']:.2f} top5 {results['top5']:.2f}"
        if self.ema is not None:
            ema_results = evaluate(self.ema.module, self.val_loader, self.device, self.config.run.precision,
                                   self.config.model.channels_last)
            self.log.write("eval", epoch=epoch, step=self.step, model="ema", **ema_results)
            results["ema"] = ema_results
            summary += f" (EMA top1 {ema_results['top1']:.2f})"
        progress.message(summary)
        if results["top1"] > self.best_top1:
            self.best_top1 = results["top1"]
            self.save(BEST_CHECKPOINT, epoch + 1)
        return results
