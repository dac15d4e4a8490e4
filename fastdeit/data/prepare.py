"""`fastdeit prepare`: turn an ImageFolder tree or a `path,label` list into one `.beton` file.

Work is cut into chunks of consecutive samples; a pool of processes reads, orients, converts,
downscales and re-encodes them, and the main process appends the results in order. After each
chunk the data is fsynced and the chunk is journaled, so `--resume` after a kill redoes at most
the chunks that were in flight:

    OUT.beton.partial   the file being written (renamed to OUT.beton when complete)
    OUT.beton.records   one fixed-size record per written sample (see writer.RECORD_DTYPE)
    OUT.beton.journal   JSON lines: the settings, then one line per committed chunk

A resumed prepare writes byte for byte the file an uninterrupted one would have written.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from fastdeit.data.beton import layout as L
from fastdeit.data.beton.writer import RECORD_DTYPE, BetonWriter, choose_mode, proportion_draw
from fastdeit.data.image_io import ImageError, encode_jpeg, load_rgb
from fastdeit.data.labels import label_error

# torchvision.datasets.folder.IMG_EXTENSIONS
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
JOURNAL_VERSION = 1
DEFAULT_CHUNK_SIZE = 256


@dataclass
class PrepareReport:
    """What a prepare did. `skipped` lists (path, reason) of unreadable inputs."""

    out: Path
    num_inputs: int
    num_written: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # (folder, reason) of directories not walked: symlinks to a folder already read (loops)
    skipped_dirs: list[tuple[str, str]] = field(default_factory=list)
    num_classes: int = 0
    resumed_samples: int = 0
    seconds: float = 0.0
    file_bytes: int = 0

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    @property
    def images_per_s(self) -> float:
        done = self.num_written + self.num_skipped - self.resumed_samples
        return done / self.seconds if self.seconds > 0 else 0.0


# -- sources ------------------------------------------------------------------------------------


def find_classes(root: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
    """Class names and indices as torchvision's ImageFolder: sorted sub-folder names."""
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if not classes:
        raise ValueError(f"{root}: no class folders found (expected ROOT/CLASS/IMAGE files)")
    return classes, {c: i for i, c in enumerate(classes)}


def image_folder_items(
    root: str | os.PathLike, skipped_dirs: list[tuple[str, str]] | None = None
) -> list[tuple[str, int]]:
    """(path, label) of every image in an ImageFolder tree, in torchvision's order.

    Directory symlinks are followed (as torchvision does) but no directory is walked twice: a link
    back to the root, to another class or to a folder seen before (a loop) would otherwise repeat
    images, under the wrong class. Each directory left out is appended to `skipped_dirs` as
    (path, reason)."""
    classes, class_to_idx = find_classes(root)
    visited = {os.path.realpath(root)} | {os.path.realpath(os.path.join(root, c)) for c in classes}
    items = []
    for cls in classes:
        walked = []
        for dirpath, dirnames, fnames in os.walk(os.path.join(root, cls), followlinks=True):
            dirnames[:] = _unvisited_dirs(dirpath, sorted(dirnames), visited, skipped_dirs)
            walked.append((dirpath, fnames))
        for dirpath, fnames in sorted(walked):
            for fname in sorted(fnames):
                if fname.lower().endswith(IMG_EXTENSIONS):
                    items.append((os.path.join(dirpath, fname), class_to_idx[cls]))
    return items


def _unvisited_dirs(dirpath: str, dirnames: list[str], visited: set[str],
                    skipped_dirs: list[tuple[str, str]] | None) -> list[str]:
    """The sub-folders of dirpath whose real path has not been walked; marks them visited."""
    keep = []
    for name in dirnames:
        path = os.path.join(dirpath, name)
        real = os.path.realpath(path)
        if real in visited:
            if skipped_dirs is not None:
                skipped_dirs.append((path, f"links to {real}, a folder already read (not read twice)"))
            continue
        visited.add(real)
        keep.append(name)
    return keep


def list_file_items(list_path: str | os.PathLike) -> list[tuple[str, int]]:
    """(path, label) from a text file of `path,label` lines; relative paths are relative to the
    list file's folder; blank lines and lines starting with # are ignored."""
    list_path = Path(list_path)
    base = list_path.parent
    items = []
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{list_path}: not a folder and not a text file of 'path,label' lines") from None
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "," not in line:
            raise ValueError(f"{list_path}:{lineno}: expected 'path,label', got {line!r}")
        p, lab = line.rsplit(",", 1)
        try:
            label = int(lab.strip())
        except ValueError:
            raise ValueError(f"{list_path}:{lineno}: label {lab.strip()!r} is not an integer") from None
        problem = label_error(label)
        if problem is not None:
            raise ValueError(f"{list_path}:{lineno}: {problem}")
        p = p.strip()
        items.append((p if os.path.isabs(p) else str(base / p), label))
    if not items:
        raise ValueError(f"{list_path}: no 'path,label' lines")
    return items


def source_items(
    src: str | os.PathLike, skipped_dirs: list[tuple[str, str]] | None = None
) -> list[tuple[str, int]]:
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if src.is_dir():
        return image_folder_items(src, skipped_dirs)
    return list_file_items(src)


# -- workers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodeSettings:
    max_res: int
    quality: int
    mode: str
    smart_threshold: int | None
    compress_probability: float
    seed: int


def encode_file(path: str, index: int, s: EncodeSettings) -> tuple[bytes | np.ndarray, int, int, int]:
    """Read one file and encode it for the dataset: (data, mode, width, height)."""
    rgb = load_rgb(path, s.max_res)
    h, w = rgb.shape[:2]
    draw = proportion_draw(s.seed, index) if s.mode == "proportion" else 0.0
    mode = choose_mode(
        s.mode, rgb.nbytes, smart_threshold=s.smart_threshold, draw=draw, compress_probability=s.compress_probability
    )
    if mode == L.MODE_JPG:
        return encode_jpeg(rgb, s.quality), mode, w, h
    return rgb.tobytes(), mode, w, h


def _encode_chunk(args: tuple) -> list[tuple]:
    """Worker task: [(index, path, label)] -> [(index, path, label, data|None, mode, w, h, error)]."""
    chunk, settings = args
    out = []
    for index, path, label in chunk:
        try:
            data, mode, w, h = encode_file(path, index, settings)
            out.append((index, path, label, data, mode, w, h, None))
        except ImageError as err:
            out.append((index, path, label, None, 0, 0, 0, str(err)))
    return out


# -- journal ------------------------------------------------------------------------------------


def _paths(out: Path) -> tuple[Path, Path, Path]:
    return Path(str(out) + ".partial"), Path(str(out) + ".records"), Path(str(out) + ".journal")


def _fsync_append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read_journal(journal: Path) -> tuple[dict, list[dict]]:
    lines = journal.read_bytes().split(b"\n")
    try:
        settings = json.loads(lines[0])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{journal}: unreadable journal header; delete it and the .partial file to start over") from None
    commits = []
    for line in lines[1:]:
        try:
            commits.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            break  # a torn last line: the kill came while it was written
    return settings, commits


# -- the output ---------------------------------------------------------------------------------


def check_output(out: Path, *, overwrite: bool, resume: bool) -> None:
    """Before any image is read: OUT may be replaced only when asked, and never if a directory."""
    if out.is_dir():
        raise ValueError(f"{out} is a directory; give the path of the .beton file to write, e.g. {out / 'train.beton'}")
    unfinished = resume and _paths(out)[2].exists()  # --resume continues an interrupted prepare of OUT
    if out.exists() and not overwrite and not unfinished:
        raise ValueError(f"{out} already exists; pass --overwrite to replace it, or choose another OUT")


def check_not_an_input(out: Path, src: str | os.PathLike, items: list[tuple[str, int]]) -> None:
    """Even with --overwrite, OUT must not be one of the files it is made from."""
    target = out.resolve()
    inputs = [Path(src)] + [Path(p) for p, _ in items]
    for path in inputs:
        if path.resolve() == target:
            raise ValueError(f"{out} is one of prepare's own inputs ({path}); choose another OUT")


def disk_full_message(out: Path) -> str:
    return (f"no space left on the device writing {out} (its .partial, .records and .journal files are kept): "
            "free some space, then run the same command with --resume to continue")


# -- the job ------------------------------------------------------------------------------------


def prepare_dataset(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    max_res: int = 512,
    quality: int = 90,
    mode: str = "jpg",
    workers: int = 1,
    limit: int = 0,
    on_error: str = "skip",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    smart_threshold: int | None = None,
    compress_probability: float = 0.5,
    seed: int = 0,
    chunk_size: int | None = None,
    page_size: int = L.DEFAULT_PAGE_SIZE,
    on_chunk_committed: Callable[[int], None] | None = None,
) -> PrepareReport:
    """Write `out` (.beton) from `src` (ImageFolder root, or a `path,label` list file).

    on_error: 'skip' reports unreadable images and leaves them out, 'fail' stops with a
    ValueError naming the file (the journal stays, so a later --resume continues).
    chunk_size: samples per unit of work and of the resume journal (default: 256, fewer for
    small jobs; a resume must use the same). on_chunk_committed(n_chunks): called after each
    chunk is safely on disk (monitoring, tests). overwrite: replace an existing `out` (never one of
    the inputs, never a directory).
    """
    t0 = time.perf_counter()
    out = Path(out)
    check_output(out, overwrite=overwrite, resume=resume)
    if mode not in L.IMAGE_MODES:
        raise ValueError(f"unknown --mode {mode!r}; expected one of {', '.join(L.IMAGE_MODES)}")
    if on_error not in ("skip", "fail"):
        raise ValueError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    if max_res < 0:
        raise ValueError(f"max_res must be >= 0 (0 keeps the original size), got {max_res}")
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    workers = max(1, int(workers))

    skipped_dirs: list[tuple[str, str]] = []
    items = source_items(src, skipped_dirs)
    check_not_an_input(out, src, items)
    if limit:
        items = items[:limit]
    if not items:
        raise ValueError(f"{src}: no images found")
    if chunk_size is None:  # small jobs: enough chunks to keep every worker busy
        chunk_size = min(DEFAULT_CHUNK_SIZE, max(8, -(-len(items) // 64)))
    settings = EncodeSettings(max_res, quality, mode, smart_threshold, compress_probability, seed)
    digest = hashlib.sha256("\n".join(f"{p},{lab}" for p, lab in items).encode()).hexdigest()
    job = {
        "journal_version": JOURNAL_VERSION,
        "src": str(Path(src).resolve()),
        "inputs_sha256": digest,
        "num_inputs": len(items),
        "max_res": max_res,
        "quality": quality,
        "mode": mode,
        "smart_threshold": smart_threshold,
        "compress_probability": compress_probability,
        "seed": seed,
        "chunk_size": chunk_size,
        "page_size": page_size,
    }

    tmp, records_path, journal = _paths(out)
    resume_records = None
    skipped: list[tuple[str, str]] = []
    start_chunk = 0
    if journal.exists() and not resume:
        raise ValueError(
            f"{out}: an unfinished prepare of this file exists ({journal.name}); "
            "pass --resume to continue it, or delete the .journal, .records and .partial files to start over"
        )
    if resume and journal.exists():
        old, commits = _read_journal(journal)
        diff = [k for k in job if old.get(k) != job[k]]
        if diff:
            raise ValueError(
                f"{journal}: cannot resume: the interrupted prepare used different "
                + ", ".join(f"{k} ({old.get(k)!r} now {job[k]!r})" for k in diff)
            )
        n_records = commits[-1]["records"] if commits else 0
        start_chunk = commits[-1]["chunk"] + 1 if commits else 0
        for c in commits:
            skipped.extend((p, r) for p, r in c["skipped"])
        raw = records_path.read_bytes() if records_path.exists() else b""
        if len(raw) < n_records * RECORD_DTYPE.itemsize:
            raise ValueError(f"{records_path}: has fewer records than the journal says; cannot resume")
        resume_records = np.frombuffer(raw[: n_records * RECORD_DTYPE.itemsize], RECORD_DTYPE).copy()
        with open(records_path, "r+b") as f:
            f.truncate(n_records * RECORD_DTYPE.itemsize)
    else:
        for p in (tmp, records_path, journal):
            p.unlink(missing_ok=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        _fsync_append(journal, (json.dumps(job) + "\n").encode())
        records_path.touch()
    resumed_samples = start_chunk * chunk_size if resume_records is not None else 0
    resumed_samples = min(resumed_samples, len(items))

    writer = BetonWriter(
        out,
        image_mode=mode,
        max_resolution=max_res,
        jpeg_quality=quality,
        page_size=page_size,
        capacity=len(items),
        resume_records=resume_records,
    )
    chunks = [
        [(i, p, lab) for i, (p, lab) in enumerate(items[k : k + chunk_size], start=k)]
        for k in range(0, len(items), chunk_size)
    ]
    bar = _progress(len(items), resumed_samples, progress)
    try:
        for k, results in enumerate(_run_chunks(chunks[start_chunk:], settings, workers), start=start_chunk):
            chunk_skipped = []
            for index, path, label, data, m, w, h, err in results:
                if err is None and len(data) > page_size:
                    err = f"encoded image of {len(data)} bytes does not fit a {page_size}-byte page; lower --max-res"
                if err is not None:
                    if on_error == "fail":
                        raise ValueError(f"{path}: {err}")
                    chunk_skipped.append((path, err))
                    continue
                writer.add_encoded(data, mode=m, width=w, height=h, label=label)
            new = writer.commit()
            _fsync_append(records_path, new.tobytes())
            line = {"chunk": k, "records": len(writer), "skipped": chunk_skipped}
            _fsync_append(journal, (json.dumps(line) + "\n").encode())
            skipped.extend(chunk_skipped)
            if bar is not None:
                bar.update(len(results))
                if skipped:
                    bar.set_postfix(skipped=len(skipped), refresh=False)
            if on_chunk_committed is not None:
                on_chunk_committed(k + 1)
    except BaseException:
        writer.detach()  # keep the partial file and journal for --resume
        if bar is not None:
            bar.close()
        raise
    if bar is not None:
        bar.close()
    if len(writer) == 0:
        writer.abort()
        for p in (records_path, journal):
            p.unlink(missing_ok=True)
        first = f"; first: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise ValueError(f"{src}: none of the {len(items)} images could be read{first}")
    records = writer.records()
    writer.close()
    for p in (records_path, journal):
        p.unlink(missing_ok=True)
    return PrepareReport(
        out=out,
        num_inputs=len(items),
        num_written=len(records),
        skipped=skipped,
        skipped_dirs=skipped_dirs,
        num_classes=int(records["label"].max()) + 1,
        resumed_samples=resumed_samples,
        seconds=time.perf_counter() - t0,
        file_bytes=out.stat().st_size,
    )


def _run_chunks(chunks: list[list[tuple]], settings: EncodeSettings, workers: int) -> Iterator[list[tuple]]:
    if workers == 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield _encode_chunk((chunk, settings))
        return
    # spawn: safe with threads (tqdm, torch) in the parent; workers import only numpy/PIL/simplejpeg.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(workers, len(chunks))) as pool:
        yield from pool.imap(_encode_chunk, [(c, settings) for c in chunks])


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="img", desc="prepare", file=sys.stderr, dynamic_ncols=True,
                smoothing=0.05)
