"""Typed configuration, one dataclass per component.

Defaults are facebookresearch/deit's `main.py` defaults (the DeiT-B 300-epoch recipe of the
paper, Touvron et al. 2021, Table 9 / deit README); each number cites where it comes from.
A component receives only its own sub-config, never the whole `TrainConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    """Where the data comes from and how it is batched."""

    train: str = ""  # .beton file, ImageFolder directory, or "demo" (embedded dataset)
    val: str = ""  # same kinds as `train`; empty = no evaluation
    # cpu: view-plan loader (libjpeg-turbo threads) + device augmentation, reads .beton files;
    # dali: nvJPEG decode on the GPU; reference: torchvision + timm per-image transforms (deit's
    # own pipeline, kept as the fidelity baseline; reads ImageFolders or .beton files).
    loader: str = "cpu"
    global_batch: int = 1024  # deit: --batch-size 64 per GPU x 16 GPUs (paper, sec. 6)
    # per rank, by loader: cpu = decode threads; dali = DALI CPU threads; reference = DataLoader
    # worker processes (0 = in the main process). cpu/dali take at most all cores but one, and
    # torch's and numba's threads the rest (fastdeit/data/thread_budget.py)
    workers: int = 8
    repeated_aug: int = 3  # deit --repeated-aug: RASampler with 3 copies (paper, sec. 6)
    img_size: int = 224  # deit --input-size 224
    eval_crop_pct: float = 0.875  # deit --eval-crop-ratio 0.875: resize 256 -> center crop 224
    eval_interpolation: str = "bicubic"  # deit build_transform: InterpolationMode.BICUBIC
    eval_batch: int = 0  # 0 = same per-rank batch as training
    pin_memory: bool = True  # deit --pin-mem default True
    drop_last: bool = True  # deit: drop_last=True for the train loader


@dataclass
class AugmentConfig:
    """The train-time augmentation recipe (deit main.py defaults)."""

    interpolation: str = "bicubic"  # deit --train-interpolation bicubic
    scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop default scale (torchvision)
    ratio: tuple[float, float] = (0.75, 1.3333333333333333)  # RandomResizedCrop ratio 3/4..4/3
    hflip: float = 0.5  # timm create_transform default
    color_jitter: float = 0.3  # deit --color-jitter 0.3 (unused by timm when auto_augment is set)
    auto_augment: str = "rand-m9-mstd0.5-inc1"  # deit --aa
    reprob: float = 0.25  # deit --reprob
    remode: str = "pixel"  # deit --remode
    recount: int = 1  # deit --recount
    mixup: float = 0.8  # deit --mixup (alpha)
    cutmix: float = 1.0  # deit --cutmix (alpha)
    mixup_prob: float = 1.0  # deit --mixup-prob
    mixup_switch_prob: float = 0.5  # deit --mixup-switch-prob
    mixup_mode: str = "batch"  # deit --mixup-mode
    smoothing: float = 0.1  # deit --smoothing
    mix_group: int = 64  # one mixup/cutmix draw per group of 64: deit's per-GPU batch
    # Which kernels run DeviceAugment (speed only: same maths, see tests/kernels). auto = the fused
    # Triton kernels (fastdeit.kernels) on CUDA, the per-op torch path elsewhere.
    kernels: str = "auto"  # auto | triton | torch


@dataclass
class ModelConfig:
    """A timm DeiT. Zero-valued architecture fields keep timm's default for `name`."""

    name: str = "deit_base_patch16_224"  # timm registry name
    drop: float = 0.0  # deit --drop 0.0 (no dropout)
    drop_path: float = 0.1  # deit --drop-path 0.1
    patch_size: int = 0
    embed_dim: int = 0
    depth: int = 0
    num_heads: int = 0
    channels_last: bool = True  # NHWC input: the patch-embed conv is faster on GPU
    # torch.compile of the model and the loss (speed only: same maths). auto = on CUDA, off on CPU,
    # where compiling costs more than a short run gains.
    compile: str = "auto"  # auto | on | off
    # torch.compile mode; "reduce-overhead" adds CUDA graphs (bench model's "compiled-cudagraphs" row)
    compile_mode: str = "default"
    init_checkpoint: str = ""  # fine-tuning: weights to start from (pos_embed interpolated)


@dataclass
class DistillConfig:
    """Distillation through attention (deit --distillation-type/-alpha/-tau)."""

    kind: str = "none"  # none | soft | hard | hard_cls (class-token-only ablation)
    teacher: str = "regnety_160"  # deit --teacher-model
    teacher_checkpoint: str = ""  # deit --teacher-path (state dict under "model")
    alpha: float = 0.5  # deit --distillation-alpha
    tau: float = 1.0  # deit --distillation-tau
    cache: str = ""  # teacher-logit cache file; empty = online teacher
    teacher_compile: str = "auto"  # auto | on | off: torch.compile the teacher (auto = on CUDA only)


@dataclass
class OptimizerConfig:
    """AdamW as deit configures it through timm's create_optimizer."""

    name: str = "adamw"  # deit --opt adamw
    lr: float = 5e-4  # deit --lr, for a global batch of `lr_batch`
    lr_batch: int = 512  # deit main.py: lr * batch_size * world_size / 512
    eps: float = 1e-8  # deit --opt-eps
    betas: tuple[float, float] = (0.9, 0.999)  # timm AdamW default (deit --opt-betas None)
    weight_decay: float = 0.05  # deit --weight-decay
    clip_grad: float = 0.0  # deit --clip-grad None; 0 = off
    fused: str = "auto"  # auto | on | off: torch.optim.AdamW(fused=True) where supported


@dataclass
class ScheduleConfig:
    """Linear warmup then cosine decay (timm CosineLRScheduler semantics, see train/schedule.py)."""

    epochs: int = 300  # deit --epochs
    warmup_epochs: int = 5  # deit --warmup-epochs
    warmup_lr: float = 1e-6  # deit --warmup-lr
    min_lr: float = 1e-5  # deit --min-lr
    # epoch: deit main.py's lr_scheduler.step(epoch) once per epoch; iteration: timm's formula at
    # every step's fractional epoch
    step: str = "epoch"


@dataclass
class RunConfig:
    """Everything about a run that is not the recipe."""

    seed: int = 0  # deit --seed 0
    out: str = ""  # run directory; empty = runs/<preset>
    device: str = "auto"  # auto | cpu | cuda
    # auto | bf16 | fp16 | fp32. auto = bf16 autocast on CUDA, fp32 on CPU (where bf16 matmuls
    # without AMX run several times slower than fp32). fp16 uses a GradScaler.
    precision: str = "auto"
    ema: bool = True  # deit --model-ema
    ema_decay: float = 0.99996  # deit --model-ema-decay
    eval_every: int = 1  # epochs between evaluations
    checkpoint_every: int = 1  # epochs between checkpoints
    # minutes between step checkpoints (rank 0's clock), mid-epoch included; 0 = off. Our choice:
    # at most 30 minutes of work lost to a crash or a preemption without a signal
    checkpoint_every_minutes: float = 30.0
    log_every: int = 50  # steps between step lines in metrics.jsonl
    max_steps: int = 0  # stop after this many steps (0 = full schedule); for tests and smoke runs
    tensorboard: bool = False
    plot: bool = True
    progress: str = "auto"  # auto | bar | plain | none


@dataclass
class TrainConfig:
    """The whole run: one sub-config per component."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    optim: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)
