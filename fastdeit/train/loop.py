"""The training loop: epochs of steps, evaluation, checkpoints, run outputs."""

from __future__ import annotations

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
from fastdeit.eval.evaluate import autocast_dtype, evaluate
from fastdeit.models import create_model
from fastdeit.models.compile import maybe_compile
from fastdeit.models.factory import is_distilled
from fastdeit.train import checkpoint as ckpt
from fastdeit.train.data_source import Batches, build_train_data, build_val_loader, resolve_paths
from fastdeit.train.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    init_distributed,
    shutdown_distributed,
)
from fastdeit.train.ema import build_ema
from fastdeit.train.metrics import MetricsLog, Progress
from fastdeit.train.optim import build_optimizer, scaled_lr
from fastdeit.train.schedule import lr_at
from fastdeit.train.step import StepContext, train_step, unwrap

LAST_CHECKPOINT = "checkpoint.pt"
BEST_CHECKPOINT = "best.pt"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_dir(config: TrainConfig, preset: str | None) -> Path:
    return Path(config.run.out or f"runs/{preset or 'custom'}")


def write_resolved_config(out: Path, config: TrainConfig, preset: str | None) -> None:
    table = {"preset": preset or "", **config_to_dict(config)}
    atomic_write(out / "config.toml", lambda f: tomli_w.dump(table, f))


def train(config: TrainConfig, preset: str | None = None, resume: bool = False) -> dict[str, Any]:
    """Train per `config`; returns the final evaluation (empty without a validation set)."""
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
        use_scaler = config.run.precision == "fp16" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self.teacher = self.build_teacher()
        self.ddp_model = self.wrap_model()
        self.loss_fn = maybe_compile(distillation_loss, self.config.model, self.device)
        self.steps_per_epoch = len(self.train_data.loader)
        if self.steps_per_epoch == 0:
            raise ValueError(f"data.train {train_path}: too few samples for one global batch of "
                             f"{config.data.global_batch}")
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
    def checkpoint_payload(self, epoch_done: int) -> dict[str, Any]:
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
            "rng": ckpt.rng_state(),
            # the plan loader's stream identity (dataset fingerprint, seed, recipe): checked on resume
            "loader": self.train_data.loader.state_dict() if self.train_data.planned else None,
        }

    def save(self, name: str, epoch_done: int) -> None:
        if self.dist.is_main:
            ckpt.save_checkpoint(self.out / name, self.checkpoint_payload(epoch_done))
        barrier()

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
        ckpt.restore_rng_state(blob["rng"])
        self.log.truncate_after(self.step)

    # ---- the loop ----------------------------------------------------------------------------
    def run(self, resume: bool) -> dict[str, Any]:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_resolved_config(self.out, self.config, self.preset)
        barrier()
        if resume:
            self.try_resume()
        progress = Progress(self.config.run.progress, self.total_steps, self.step, self.dist.is_main)
        progress.message(f"training {self.config.model.name} on {self.dist.world_size} x {self.device.type}: "
                         f"{self.num_classes} classes, {self.steps_per_epoch} steps/epoch, "
                         f"{self.total_steps} steps, out {self.out}")
        final: dict[str, Any] = {}
        try:
            while self.step < self.total_steps:
                epoch = self.step // self.steps_per_epoch
                self.train_epoch(epoch, progress)
                epoch_done = self.step % self.steps_per_epoch == 0
                last = self.step >= self.total_steps
                if self.val_loader is not None and ((epoch + 1) % self.config.run.eval_every == 0 or last):
                    final = self.evaluate_and_log(epoch, progress)
                if (epoch_done and (epoch + 1) % self.config.run.checkpoint_every == 0) or last:
                    self.save(LAST_CHECKPOINT, epoch + int(epoch_done))
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
                    raise FloatingPointError(f"loss is {loss} at step {self.step}; lower optim.lr or "
                                             "set optim.clip_grad")
                img_per_s = window_images / max(time.perf_counter() - window_start, 1e-9)
                self.log.write("step", epoch=epoch, step=self.step, loss=loss, lr=lr, img_per_s=img_per_s)
                progress.update(self.step, epoch, loss, lr, img_per_s)
                loss_sum.zero_()
                window_start, window_steps, window_images = time.perf_counter(), 0, 0
        if self.step % self.steps_per_epoch == 0:
            self.log.write("epoch", epoch=epoch, step=self.step,
                           lr=lr_at(self.step - 1, self.steps_per_epoch, self.config.schedule, self.base_lr))

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
