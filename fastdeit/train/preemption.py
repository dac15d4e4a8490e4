"""Stopping a run cleanly: SIGTERM, SIGUSR1 (SLURM's `--signal`) and a first Ctrl-C ask the trainer
to finish its step, write a checkpoint and exit with EXIT_PREEMPTED; a second Ctrl-C aborts at once.
Also the wall clock of `run.checkpoint_every_minutes`."""

from __future__ import annotations

import signal
import sys
import threading
import time

# sysexits.h EX_TEMPFAIL: "temporary failure, the user is invited to retry" (--resume)
EXIT_PREEMPTED = 75
STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGINT")


class TrainingStopped(Exception):
    """The run stopped on a signal after writing its checkpoint; `--resume` continues it."""

    def __init__(self, signal_name: str, step: int, epoch: int, checkpoint: str):
        self.signal_name, self.step, self.epoch, self.checkpoint = signal_name, step, epoch, checkpoint
        super().__init__(f"stopped by {signal_name} at step {step} (epoch {epoch}); checkpoint {checkpoint} "
                         f"written; continue with --resume")


class StopRequests:
    """While active, records the first stop signal instead of dying; a second SIGINT raises
    KeyboardInterrupt. Signal handlers can only be installed from the main thread: elsewhere
    (a trainer run in a thread) nothing is installed and signals keep their usual effect."""

    def __init__(self, announce: bool = True):
        self.received: str | None = None
        self.announce = announce
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is not None and name == "SIGINT":
            raise KeyboardInterrupt  # the second Ctrl-C: abort now, without a checkpoint
        if self.received is None:
            self.received = name
            if self.announce:
                again = " (Ctrl-C again to abort without one)" if name == "SIGINT" else ""
                print(f"{name} received: finishing this step, then writing a checkpoint{again}",
                      file=sys.stderr, flush=True)


class CheckpointClock:
    """True once `minutes` have passed since the last checkpoint; 0 = never."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60.0
        self.last = time.monotonic()

    def due(self) -> bool:
        return self.seconds > 0 and time.monotonic() - self.last >= self.seconds

    def reset(self) -> None:
        self.last = time.monotonic()
