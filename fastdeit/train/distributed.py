"""torchrun / SLURM process-group set-up. NCCL on GPU, gloo on CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def slurm_to_torchrun_env() -> None:
    """Under `srun` without torchrun, derive RANK/WORLD_SIZE/LOCAL_RANK from SLURM's variables."""
    if "RANK" in os.environ or "SLURM_PROCID" not in os.environ or "SLURM_NTASKS" not in os.environ:
        return
    if "MASTER_ADDR" not in os.environ:
        raise ValueError("running under SLURM: set MASTER_ADDR (e.g. the first host of "
                         "$SLURM_JOB_NODELIST) and MASTER_PORT before srun")
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    os.environ.setdefault("MASTER_PORT", "29500")


def resolve_device(requested: str, local_rank: int) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("run.device = 'cuda' but no CUDA device is available (use run.device=cpu)")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return torch.device("cpu")


def init_distributed(requested_device: str) -> DistContext:
    slurm_to_torchrun_env()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    global _CONTROL_GROUP
    if world_size > 1 and _CONTROL_GROUP is None and dist.get_backend() != "gloo":
        # stop flags, RNG states and save outcomes travel on the CPU: no GPU sync per step
        _CONTROL_GROUP = dist.new_group(backend="gloo")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed() -> None:
    global _CONTROL_GROUP
    _CONTROL_GROUP = None
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_rank(*flags: bool) -> list[bool]:
    """Each flag is True on every rank if it is True on any rank (one small gloo all-reduce):
    what makes all ranks stop, or checkpoint, at the same step."""
    if not dist.is_initialized():
        return [bool(f) for f in flags]
    t = torch.tensor([int(bool(f)) for f in flags], dtype=torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_CONTROL_GROUP)
    return [bool(v) for v in t.tolist()]


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None elsewhere); [obj] when not distributed."""
    if not dist.is_initialized():
        return [obj]
    gathered = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, gathered, dst=0, group=_CONTROL_GROUP)
    return gathered


def scatter_from_main(objs: list[Any] | None) -> Any:
    """Rank r receives objs[r] (objs given on rank 0); objs[0] when not distributed."""
    if not dist.is_initialized():
        return objs[0]
    out = [None]
    dist.scatter_object_list(out, objs if dist.get_rank() == 0 else None, src=0, group=_CONTROL_GROUP)
    return out[0]


class MainRankFailed(RuntimeError):
    """Raised on the other ranks when rank 0 failed at something they waited for."""


T = TypeVar("T")


def run_on_main(action: Callable[[], T], what: str) -> T | None:
    """Run `action` on rank 0; every rank learns whether it worked (instead of a bare barrier, at
    which the others would wait forever for a rank 0 that failed) and raises if it did not."""
    if not dist.is_initialized():
        return action()
    result, error = None, None
    if dist.get_rank() == 0:
        try:
            result = action()
        except BaseException as err:  # noqa: BLE001 - told to the other ranks, then re-raised
            error = err
    outcome = [None if error is None else f"{type(error).__name__}: {error}"]
    dist.broadcast_object_list(outcome, src=0, group=_CONTROL_GROUP)
    if error is not None:
        raise error
    if outcome[0] is not None:
        raise MainRankFailed(f"rank 0 failed {what}: {outcome[0]}")
    return result


_CONTROL_GROUP = None  # a gloo group beside NCCL's; None = the default group (already gloo)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
