"""The teacher-logit cache file: header, chunk table, top-k fp16 values and int16 class indices.

Layout (little endian, every region 4096-aligned so it can be memory-mapped):

  magic  b"FDTLOGIT" | u32 format version | u32 header length | header JSON (utf-8)
  chunk table   n_chunks x (u32 crc32, u32 done)      one chunk = one global step of one epoch
  values        float16 [n_epochs, samples_per_epoch, k]   top-k logits, largest first
  indices       int16   [n_epochs, samples_per_epoch, k]   their class indices

Sample (epoch e, position p) is row (e - epoch_start) * samples_per_epoch + p; chunk c holds
rows [c * chunk_samples, (c + 1) * chunk_samples) (a step's positions are contiguous).

Writing (CacheWriter) goes to `FILE.partial` and renames to FILE once every chunk of this
file's shard is done; a chunk is marked done (with its crc32) only after its bytes are fsynced,
so a killed build resumes from the done chunks. `--shard i/n` builds chunks
[i*C/n, (i+1)*C/n) into a file of the full layout (sparse where unwritten); merge_caches
copies the parts' chunks into one file.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

MAGIC = b"FDTLOGIT"
FORMAT_VERSION = 1
ALIGN = 4096
_PREFIX = struct.Struct("<8sII")
MAX_CLASSES = 32767  # int16 class indices

# Header fields a run must agree on, with the name a mismatch error uses.
FIELD_NAMES = {
    "dataset": "dataset (fingerprint of the .beton file)",
    "seed": "seed",
    "recipe": "recipe (view plan + augmentation hash)",
    "plan_version": "plan version",
    "teacher": "teacher (model name)",
    "teacher_checksum": "teacher (weights checksum)",
    "k": "k (top-k logits per sample)",
    "epochs": "epoch range",
    "samples_per_epoch": "samples per epoch",
    "chunk_samples": "samples per step (data.global_batch)",
    "num_classes": "num_classes",
}


@dataclass(frozen=True)
class CacheHeader:
    """What the cache holds and what it was computed from (see FIELD_NAMES)."""

    dataset: str
    seed: int
    recipe: str
    plan_version: int
    teacher: str
    teacher_checksum: str
    k: int
    epochs: tuple[int, int]  # [start, end)
    samples_per_epoch: int
    chunk_samples: int  # samples per global step
    num_classes: int
    shard: tuple[int, int] = (0, 1)  # (i, n): this file builds the i-th of n chunk ranges
    recipe_detail: dict | None = None  # the view recipe itself, to explain a recipe mismatch
    precision: str = ""  # how the teacher ran (informative)

    def __post_init__(self) -> None:
        e0, e1 = self.epochs
        if not 0 <= e0 < e1:
            raise ValueError(f"teacher cache: epoch range {e0}:{e1} is empty or negative")
        if not 1 <= self.k <= self.num_classes:
            raise ValueError(f"teacher cache: k = {self.k} must be in 1..num_classes ({self.num_classes})")
        if self.num_classes > MAX_CLASSES:
            raise ValueError(f"teacher cache: {self.num_classes} classes do not fit int16 indices")
        if self.chunk_samples < 1 or self.samples_per_epoch % self.chunk_samples:
            raise ValueError(f"teacher cache: samples per epoch {self.samples_per_epoch} is not a whole "
                             f"number of steps of {self.chunk_samples}")
        i, n = self.shard
        if not 0 <= i < n:
            raise ValueError(f"teacher cache: shard {i}/{n} (expected 0 <= i < n)")

    @property
    def n_epochs(self) -> int:
        return self.epochs[1] - self.epochs[0]

    @property
    def steps_per_epoch(self) -> int:
        return self.samples_per_epoch // self.chunk_samples

    @property
    def n_chunks(self) -> int:
        return self.n_epochs * self.steps_per_epoch

    @property
    def n_rows(self) -> int:
        return self.n_epochs * self.samples_per_epoch

    def shard_chunks(self) -> range:
        """The chunks this file is responsible for."""
        i, n = self.shard
        return range(i * self.n_chunks // n, (i + 1) * self.n_chunks // n)

    def chunk_of(self, epoch: int, step: int) -> int:
        return (epoch - self.epochs[0]) * self.steps_per_epoch + step

    def epoch_step(self, chunk: int) -> tuple[int, int]:
        return self.epochs[0] + chunk // self.steps_per_epoch, chunk % self.steps_per_epoch

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["epochs"], d["shard"] = list(self.epochs), list(self.shard)
        return {"format": "fastdeit-teacher-cache", **d}

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str) -> "CacheHeader":
        names = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or d.get("format") != "fastdeit-teacher-cache":
            raise ValueError(f"teacher cache {source}: corrupt header (not a teacher-cache header)")
        d = {k: v for k, v in d.items() if k != "format"}
        missing = [n for n in ("dataset", "seed", "recipe", "plan_version", "teacher", "teacher_checksum", "k",
                               "epochs", "samples_per_epoch", "chunk_samples", "num_classes") if n not in d]
        if missing or set(d) - names:
            raise ValueError(f"teacher cache {source}: corrupt header (missing {missing}, "
                             f"unknown {sorted(set(d) - names)})")
        d["epochs"], d["shard"] = tuple(d["epochs"]), tuple(d.get("shard", (0, 1)))
        return cls(**d)

    def with_shard(self, shard: tuple[int, int]) -> "CacheHeader":
        return CacheHeader(**{**{f.name: getattr(self, f.name) for f in fields(self)}, "shard": tuple(shard)})


def mismatch(expected: CacheHeader, actual: CacheHeader, fields_to_check: Sequence[str] = tuple(FIELD_NAMES)) -> str | None:
    """The first differing field as a sentence, or None."""
    for name in fields_to_check:
        a, b = getattr(actual, name), getattr(expected, name)
        if a != b:
            return f"{FIELD_NAMES[name]} differs: the cache has {a!r}, expected {b!r}"
    return None


@dataclass(frozen=True)
class Layout:
    """Byte offsets of the regions of a file with a given header."""

    header_bytes: bytes
    table_offset: int
    values_offset: int
    indices_offset: int
    file_size: int

    @classmethod
    def of(cls, header: CacheHeader) -> "Layout":
        body = json.dumps(header.to_json(), sort_keys=True).encode()
        blob = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(body)) + body
        table = _align(len(blob))
        values = _align(table + header.n_chunks * 8)
        n = header.n_rows * header.k * 2
        indices = _align(values + n)
        return cls(blob, table, values, indices, indices + n)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def read_header(path: str | os.PathLike) -> tuple[CacheHeader, Layout]:
    """Parse and check a cache file's header and size; ValueError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"teacher cache {path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size:
            raise ValueError(f"teacher cache {path}: truncated ({size} bytes, no header)")
        magic, version, n = _PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise ValueError(f"teacher cache {path}: not a fastdeit teacher cache (bad magic {magic!r})")
        if version != FORMAT_VERSION:
            raise ValueError(f"teacher cache {path}: format version {version}, this fastdeit reads {FORMAT_VERSION}")
        body = f.read(n)
    if len(body) < n:
        raise ValueError(f"teacher cache {path}: truncated header")
    try:
        header = CacheHeader.from_json(json.loads(body), str(path))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as err:
        raise ValueError(f"teacher cache {path}: corrupt header ({err})") from None
    layout = Layout.of(header)
    if size != layout.file_size:
        raise ValueError(f"teacher cache {path}: truncated or padded: {size} bytes, the header implies "
                         f"{layout.file_size}")
    return header, layout


def read_table(path: str | os.PathLike, layout: Layout, header: CacheHeader) -> np.ndarray:
    """uint32 (n_chunks, 2): (crc32, done) per chunk."""
    with open(path, "rb") as f:
        f.seek(layout.table_offset)
        raw = f.read(header.n_chunks * 8)
    return np.frombuffer(raw, dtype="<u4").reshape(header.n_chunks, 2).copy()


def chunk_crc(values: np.ndarray, indices: np.ndarray) -> int:
    return zlib.crc32(indices.tobytes(), zlib.crc32(values.tobytes()))


class CacheWriter:
    """Write the chunks of one shard to FILE.partial; `finish()` renames to FILE.

    resume=True continues a FILE.partial with the same header; without it an existing
    FILE.partial is refused (it holds work a rerun would throw away).
    """

    def __init__(self, path: str | os.PathLike, header: CacheHeader, resume: bool = False,
                 commit_every_s: float = 2.0) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.header = header
        self.layout = Layout.of(header)
        self.commit_every_s = commit_every_s
        self._pending: list[tuple[int, int]] = []
        self._last_commit = time.monotonic()
        if self.tmp.exists() and not resume:
            raise ValueError(f"teacher cache {self.tmp} exists (a build that did not finish): pass --resume "
                             "to continue it, or delete it to start over")
        if self.tmp.exists():
            theirs, _ = read_header(self.tmp)
            why = mismatch(header, theirs)
            if not why and theirs.shard != header.shard:
                why = f"shard differs: the partial file builds {theirs.shard}, expected {header.shard}"
            if why:
                raise ValueError(f"--resume: {self.tmp} belongs to another build: {why}")
            self.done = self._verified_done(read_table(self.tmp, self.layout, header))
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.tmp, "wb") as f:
                f.write(self.layout.header_bytes)
                f.truncate(self.layout.file_size)  # sparse: unwritten chunks take no disk
            self.done = np.zeros(header.n_chunks, dtype=bool)
        self._fd = os.open(self.tmp, os.O_RDWR)

    def _verified_done(self, table: np.ndarray) -> np.ndarray:
        """Done chunks whose bytes still match their checksum (a crash mid-write is recomputed)."""
        done = table[:, 1] == 1
        row_bytes = self.header.chunk_samples * self.header.k * 2
        with open(self.tmp, "rb") as f:
            for c in np.flatnonzero(done):
                f.seek(self.layout.values_offset + int(c) * row_bytes)
                values = np.frombuffer(f.read(row_bytes), dtype="<f2")
                f.seek(self.layout.indices_offset + int(c) * row_bytes)
                indices = np.frombuffer(f.read(row_bytes), dtype="<i2")
                if chunk_crc(values, indices) != int(table[c, 0]):
                    done[c] = False
        return done

    def todo(self) -> list[int]:
        """Chunks of this shard still to compute, in order (written but uncommitted ones count as done)."""
        pending = {c for c, _ in self._pending}
        return [c for c in self.header.shard_chunks() if not self.done[c] and c not in pending]

    def write_chunk(self, chunk: int, values: np.ndarray, indices: np.ndarray) -> None:
        """values fp16 / indices int16, shape (chunk_samples, k): the chunk's rows in position order."""
        h = self.header
        shape = (h.chunk_samples, h.k)
        if values.shape != shape or indices.shape != shape:
            raise ValueError(f"chunk {chunk}: got {values.shape}/{indices.shape}, expected {shape}")
        values = np.ascontiguousarray(values, dtype="<f2")
        indices = np.ascontiguousarray(indices, dtype="<i2")
        row_bytes = h.chunk_samples * h.k * 2
        os.pwrite(self._fd, values.tobytes(), self.layout.values_offset + chunk * row_bytes)
        os.pwrite(self._fd, indices.tobytes(), self.layout.indices_offset + chunk * row_bytes)
        self._pending.append((chunk, chunk_crc(values, indices)))
        if time.monotonic() - self._last_commit >= self.commit_every_s:
            self.commit()

    def commit(self) -> None:
        """Make the written chunks durable, then mark them done (data before the mark)."""
        if not self._pending:
            return
        os.fsync(self._fd)
        for chunk, crc in self._pending:
            os.pwrite(self._fd, struct.pack("<II", crc, 1), self.layout.table_offset + chunk * 8)
            self.done[chunk] = True
        os.fsync(self._fd)
        self._pending.clear()
        self._last_commit = time.monotonic()

    def finish(self) -> Path:
        """Commit, check every chunk of the shard is done, rename FILE.partial to FILE."""
        self.commit()
        left = self.todo()
        if left:
            raise ValueError(f"teacher cache {self.tmp}: {len(left)} chunks not written yet")
        self.close()
        os.replace(self.tmp, self.path)
        return self.path

    def close(self) -> None:
        if self._fd >= 0:
            self.commit()
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "CacheWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def merge_caches(out: str | os.PathLike, parts: Sequence[str | os.PathLike]) -> Path:
    """Merge shard files (same header but for the shard) into one complete cache at `out`."""
    if not parts:
        raise ValueError("merge: no part files given")
    headers = [read_header(p) for p in parts]
    first, layout = headers[0]
    for p, (h, _) in zip(parts[1:], headers[1:]):
        why = mismatch(first, h)
        if why:
            raise ValueError(f"merge: {p} does not belong with {parts[0]}: {why}")
    merged = first.with_shard((0, 1))
    owner = np.full(merged.n_chunks, -1)
    tables = []
    for j, p in enumerate(parts):
        table = read_table(p, layout, first)
        tables.append(table)
        owner[(table[:, 1] == 1) & (owner < 0)] = j
    if (owner < 0).any():
        missing = np.flatnonzero(owner < 0)
        e, s = merged.epoch_step(int(missing[0]))
        raise ValueError(f"merge: {len(missing)} of {merged.n_chunks} steps are in none of the parts "
                         f"(first: epoch {e} step {s}); is a shard missing?")
    row_bytes = first.chunk_samples * first.k * 2
    maps = [np.memmap(p, dtype=np.uint8, mode="r") for p in parts]
    w = CacheWriter(out, merged, resume=False, commit_every_s=30.0)
    try:
        for c in range(merged.n_chunks):
            j = int(owner[c])
            v0 = layout.values_offset + c * row_bytes
            i0 = layout.indices_offset + c * row_bytes
            values = np.asarray(maps[j][v0:v0 + row_bytes]).view("<f2").reshape(first.chunk_samples, first.k)
            indices = np.asarray(maps[j][i0:i0 + row_bytes]).view("<i2").reshape(first.chunk_samples, first.k)
            if chunk_crc(values, indices) != int(tables[j][c, 0]):
                raise ValueError(f"merge: {parts[j]} is corrupt (epoch {merged.epoch_step(c)[0]} step "
                                 f"{merged.epoch_step(c)[1]} fails its checksum)")
            w.write_chunk(c, values, indices)
        return w.finish()
    except BaseException:
        w.close()
        w.tmp.unlink(missing_ok=True)  # a merge is cheap to redo; leave no stale partial behind
        raise
