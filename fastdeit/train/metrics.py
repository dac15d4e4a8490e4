"""Run outputs: metrics.jsonl (one JSON object a line), optional TensorBoard, console progress."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from fastdeit.atomic_write import atomic_write_bytes


class MetricsLog:
    """Appends `kind` = step/epoch/eval lines to OUT/metrics.jsonl; no-op on non-main ranks."""

    def __init__(self, out_dir: Path, enabled: bool, tensorboard: bool = False):
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ValueError("run.tensorboard = true needs the tensorboard package "
                                 "(pip install 'fastdeit[tensorboard]')") from err
            self.writer = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"))

    def write(self, kind: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"kind": kind, "time": round(time.time(), 3), **fields}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in fields.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    self.writer.add_scalar(f"{kind}/{key}", value, fields.get("step", 0))

    def truncate_after(self, step: int) -> None:
        """On resume: drop a torn last line (a kill while appending, with a one-line warning) and the
        lines a crashed run wrote past the checkpoint, so curves stay single; rewritten atomically."""
        if not self.enabled or not self.path.exists():
            return
        records, torn = parse_metrics(self.path)
        if torn is not None:
            print(f"warning: {self.path}: dropped a partial last line left by an interrupted run "
                  f"({len(torn)} bytes: {torn[:40]!r}...)", file=sys.stderr, flush=True)
        kept = [r for r in records if r.get("step", 0) <= step]
        atomic_write_bytes(self.path, "".join(json.dumps(r) + "\n" for r in kept).encode())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def parse_metrics(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The records of a metrics.jsonl, and its torn last line if it has one (else None).

    Only the last line can be torn (the file is append-only, one write per line); a bad line
    before it is a ValueError naming the file and line.
    """
    path = Path(path)
    lines = path.read_bytes().decode("utf-8", errors="replace").rstrip("\x00").split("\n")
    numbered = [(i, line) for i, line in enumerate(lines, 1) if line.strip("\x00 \t\r")]
    records: list[dict[str, Any]] = []
    for position, (number, line) in enumerate(numbered):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            if position == len(numbered) - 1:
                return records, line
            raise ValueError(f"{path}:{number}: not a metrics record ({err}); only a torn last line is "
                             "repaired on --resume, this one is in the middle of the file") from None
        records.append(record)
    return records, None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl; a torn last line (a run being written or killed) is left out."""
    return parse_metrics(path)[0]


class Progress:
    """tqdm bar with img/s and ETA on a terminal; plain log lines otherwise."""

    def __init__(self, mode: str, total_steps: int, initial: int, enabled: bool):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "plain"
        self.mode = mode if enabled else "none"
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=initial, unit="step", dynamic_ncols=True)

    def update(self, step: int, epoch: int, loss: float, lr: float, img_per_s: float) -> None:
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{img_per_s:.0f}")
        elif self.mode == "plain":
            print(f"epoch {epoch} step {step} loss {loss:.4f} lr {lr:.3e} {img_per_s:.0f} img/s", flush=True)

    def message(self, text: str) -> None:
        if self.mode == "none":
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
