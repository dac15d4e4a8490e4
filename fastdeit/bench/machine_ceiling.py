"""The machine's own ceiling for the loader's scaling and contention figures: the same work, no GIL.

On a VM, one vCPU runs slower while the other is busy (shared physical cores, caches, memory
bandwidth, the host's other tenants), whatever the busy code is. Then no in-process loader can
scale by 2x, and a busy main thread slows even beside work that shares nothing with it. To tell
what the loader costs from what the machine costs, `fastdeit bench loader` times the loader's own
per-batch work (the plan, the labels, the compiled chunk decode into a batch buffer) in separate
*processes*, side by side with the loader, rounds interleaved:

- scaling ceiling: images/s of w such processes over 1, for each thread count w timed (each
  process takes every w-th batch);
- contention ceiling: a process's images/s beside the same busy main thread over its images/s
  beside an idle one, and the main thread's Python speed beside the process over its speed alone.

These processes share no GIL, no thread pool and no queue with the main thread, so they are the
best any loader could do on this machine. The loader's figure over the ceiling is what threads
and the GIL cost (1.0: nothing).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from fastdeit.bench.loader_contention import python_work
from fastdeit.data.plan import PlanConfig

_START_TIMEOUT_S = 300.0  # a cold numba cache compiles the chunk kernel in the first process


def _serve(conn: Connection, beton: str, cfg: dict, index: int, count: int) -> None:
    """A decode process: on (images,), decode batches (its share: every `count`-th from `index`)
    until at least `images`, reply (images, seconds); on None, exit. A failure is replied as
    ("error", text) and ends the process."""
    try:
        _decode_on_request(conn, beton, cfg, index, count)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(err).__name__}: {err}"))


def _decode_on_request(conn: Connection, beton: str, cfg: dict, index: int, count: int) -> None:
    from fastdeit.data.beton import BetonReader
    from fastdeit.data.cpu_decoder import CpuDecoder
    from fastdeit.data.plan_stream import PlanStream

    reader = BetonReader(beton)
    stream = PlanStream.for_reader(reader, PlanConfig(**cfg))
    labels = np.asarray(reader.labels, dtype=np.int64)
    keys = (k for n, k in enumerate(stream.keys_from(0, 0)) if n % count == index)
    n = stream.local_batch
    out = np.empty((n, stream.cfg.img_size, stream.cfg.img_size, 3), dtype=np.uint8)
    label_out = np.empty(n, dtype=np.int64)
    with CpuDecoder(reader, threads=1) as decoder:

        def one_batch() -> int:
            plan = stream.plan(*next(keys))
            np.take(labels, plan.indices, out=label_out)
            decoder.decode_on_this_thread(plan, out)  # a decode thread's work, in this process
            return len(plan)

        one_batch()  # warm-up: numba's cache, the page cache
        conn.send("ready")
        while (msg := conn.recv()) is not None:
            done, t0 = 0, time.perf_counter()
            while done < msg[0]:
                done += one_batch()
            conn.send((done, time.perf_counter() - t0))


class DecodeProcesses:
    """`count` processes running the CPU loader's per-batch work on `beton`; see the module doc."""

    def __init__(self, beton: Path, cfg: PlanConfig, count: int) -> None:
        ctx = mp.get_context("spawn")  # no fork of a process that runs threads
        self.beton = Path(beton)
        self._conns: list[Connection] = []
        self._procs = []
        for index in range(count):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(theirs, str(beton), asdict(cfg), index, count),
                               name=f"fastdeit-ceiling-{index}", daemon=True)
            proc.start()
            theirs.close()
            self._conns.append(mine)
            self._procs.append(proc)
        for conn, proc in zip(self._conns, self._procs):
            if not conn.poll(_START_TIMEOUT_S):
                self.close()
                raise RuntimeError(f"decode process {proc.name} did not start in {_START_TIMEOUT_S:.0f} s")
            self._reply(conn)

    def _reply(self, conn: Connection):
        """The process's answer; its failure (or death) raised as RuntimeError naming the file."""
        try:
            msg = conn.recv()
        except EOFError:
            msg = ("error", "the process ended without replying")
        if isinstance(msg, tuple) and msg[0] == "error":
            self.close()
            raise RuntimeError(f"machine-ceiling decode process on {self.beton} failed: {msg[1]}")
        return msg

    def rate(self, images: int, processes: int | None = None) -> float:
        """Images/s of the first `processes` (default: all) together, each decoding about
        images / processes, while the main thread waits (idle)."""
        conns = self._conns[: processes or len(self._conns)]
        t0 = time.perf_counter()
        for conn in conns:
            conn.send((max(images // len(conns), 1),))
        done = sum(self._reply(conn)[0] for conn in conns)
        return done / (time.perf_counter() - t0)

    def rate_beside_work(self, images: int, work: int, busy: float = 1.0) -> tuple[float, float]:
        """(the first process's images/s, the main thread's Python iterations/s while working)
        while the main thread runs `python_work(work)` again and again until the process has
        decoded `images`, idle (asleep) for a share 1 - `busy` of its time between them, as a
        trainer that waits for its next batch."""
        conn = self._conns[0]
        conn.send((images,))
        iterations, worked = 0, 0.0
        while not conn.poll():
            t0 = time.perf_counter()
            python_work(work)
            took = time.perf_counter() - t0
            iterations, worked = iterations + work, worked + took
            if busy < 1.0:
                conn.poll(took * (1.0 - busy) / busy)
        done, seconds = self._reply(conn)
        return done / seconds, iterations / worked

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except (OSError, ValueError):  # the process already ended
                pass
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []

    def __enter__(self) -> DecodeProcesses:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
