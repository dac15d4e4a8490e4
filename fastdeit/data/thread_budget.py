"""One thread budget for a training process: loader threads, torch's and numba's, within the cores.

Why: every pool that spins past the cores costs far more than its share. On the demo (2 cores,
2 decode threads, torch's 2 OpenMP threads) steps alternated between 45 ms and 300-1,200 ms:
OpenMP's threads spin waiting for work while the decode threads hold the other core, and each
parallel region waits for a descheduled thread (measured in the demo, epochs 2.3 s with 1 torch
thread against 11-23 s with 2).

The split: the training process's main thread runs torch's ops and numba's parallel kernels
(CPU augmentation) one after the other, never both at once, so they share one "compute" share,
and numba gets as many threads as torch. Loader threads take what they asked for (`data.workers`)
but at most all cores but one, so that compute keeps at least one core:

    loader + compute <= cores       (whenever cores >= 2; with 1 core each gets the minimum, 1)

`data.workers` means, per loader:
  cpu        decode threads of the CPU loader (0 counts as 1)
  dali       DALI's CPU threads (the whole decode on the CPU twin; the Huffman decode of images
             the hardware decoder does not take on a GPU) (0 counts as 1)
  reference  DataLoader worker processes (0 = load in the main process); each worker runs
             torch with 1 thread (DataLoader's default), so the count is kept as given and only
             torch's threads in the main process shrink to make room.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

LOADERS = ("cpu", "dali", "reference")


@dataclass(frozen=True)
class ThreadBudget:
    """Threads of each pool of one training process."""

    loader: int  # cpu: decode threads; dali: DALI CPU threads; reference: DataLoader processes
    torch: int  # torch.set_num_threads (intra-op), the main thread included
    numba: int  # numba.set_num_threads for parallel CPU kernels (run from the main thread)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask: taskset, cgroups, SLURM), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cores_per_process(cores: int | None = None, local_processes: int | None = None,
                      all_cpus: int | None = None) -> int:
    """This process's share of the cores: its affinity mask, split among the processes of this node
    (torchrun's LOCAL_WORLD_SIZE) unless the mask is already narrower than the machine (a launcher
    such as srun --cpu-bind pinned each process to its own cores)."""
    cores = usable_cores() if cores is None else cores
    all_cpus = (os.cpu_count() or cores) if all_cpus is None else all_cpus
    if local_processes is None:
        try:
            local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        except ValueError:
            raise ValueError(f"LOCAL_WORLD_SIZE={os.environ['LOCAL_WORLD_SIZE']!r} is not an integer") from None
    if cores < all_cpus or local_processes <= 1:
        return cores
    return max(1, cores // local_processes)


def thread_budget(cores: int, workers: int, loader: str = "cpu") -> ThreadBudget:
    """The threads of each pool on `cores` cores for `data.workers` = `workers` of `loader`."""
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    if workers < 0:
        raise ValueError(f"data.workers must be >= 0, got {workers}")
    if loader not in LOADERS:
        raise ValueError(f"data.loader must be one of {LOADERS}, got {loader!r}")
    spare = max(cores - 1, 1)  # compute keeps one core
    if loader == "reference":
        loader_threads = workers  # processes: a different count would change nothing but speed,
        # yet users compare this baseline with deit's own --num_workers, so it stays as given
        compute = max(1, cores - min(workers, spare))
    else:
        loader_threads = min(max(workers, 1), spare)
        compute = max(1, cores - loader_threads)
    return ThreadBudget(loader=loader_threads, torch=compute, numba=compute)


def apply_thread_budget(budget: ThreadBudget) -> None:
    """Set torch's and numba's thread counts of this process (the loader reads `budget.loader`)."""
    import torch

    torch.set_num_threads(budget.torch)
    try:
        import numba
    except ImportError:  # numba is a dependency; without it there is no numba pool to size
        return
    numba.set_num_threads(min(budget.numba, numba.config.NUMBA_NUM_THREADS))
