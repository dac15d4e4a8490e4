"""Checkpoints: safe types only, a SHA-256 of their contents inside, written atomically; refused
with a reason when corrupt, unsafe, from an older format or from another recipe."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastdeit import __version__
from fastdeit.atomic_write import atomic_write
from fastdeit.train.safe_load import safe_torch_load

FORMAT = "fastdeit-checkpoint"
# 2: RNG states as tensors (loadable with weights_only=True) and a SHA-256 of the contents.
# 1: numpy/Python RNG states pickled as objects, no checksum.
FORMAT_VERSION = 2
DIGEST_KEY = "sha256"
# Run settings that may differ between a checkpoint and the run resuming it.
RESUMABLE_DIFFERENCES = ("run.", "data.train", "data.val", "data.workers", "data.eval_batch",
                         "data.pin_memory", "schedule.epochs", "model.compile", "distill.cache")


class CorruptCheckpointError(ValueError):
    """The file reads, but its contents differ from those its checksum was taken of."""


def recipe_hash(config_dict: dict[str, dict[str, Any]]) -> str:
    recipe = {f"{s}.{k}": v for s, table in config_dict.items() for k, v in table.items()
              if not any(f"{s}.{k}".startswith(p) for p in RESUMABLE_DIFFERENCES)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


# ---- RNG states as tensors, numbers and strings (weights_only-safe), restored exactly ----------


def rng_state() -> dict[str, Any]:
    """This process's Python, numpy, torch (and CUDA) generator states, in safe types only."""
    version, internal, gauss_next = random.getstate()
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of rng_state(): every generator continues exactly where it was saved."""
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(int(x) for x in py["internal"].tolist()), py["gauss_next"]))
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- the checksum of a checkpoint's contents ---------------------------------------------------


def content_digest(blob: Any) -> str:
    """SHA-256 over every value (tensor bytes, dtypes, shapes, numbers, strings), keys in sorted order.

    Taken of what torch.save writes and recomputed from what torch.load returns, so a byte changed
    anywhere in a tensor or a value fails the check; a change in the zip structure fails the load.
    Raises TypeError for any type other than tensors, numbers, strings, lists, tuples and dicts:
    nothing else may enter a checkpoint (it could not be loaded with weights_only=True).
    """
    digest = hashlib.sha256()
    _feed(digest, blob, "checkpoint")
    return digest.hexdigest()


def _feed(digest: Any, value: Any, where: str) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{t.dtype}{tuple(value.shape)};".encode())
        if t.numel():
            digest.update(t.view(torch.uint8).numpy())
    elif value is None or isinstance(value, (bool, int, float)):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, (str, bytes)):
        raw = value.encode() if isinstance(value, str) else value
        digest.update(f"{type(value).__name__}:{len(raw)}:".encode())
        digest.update(raw)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__}:{len(value)}[".encode())
        for i, item in enumerate(value):
            _feed(digest, item, f"{where}[{i}]")
    elif isinstance(value, dict):
        digest.update(f"dict:{len(value)}{{".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
            _feed(digest, key, where)
            _feed(digest, value[key], f"{where}[{key!r}]")
    else:
        raise TypeError(f"{where} is a {type(value).__name__}: a checkpoint holds only tensors, numbers, "
                        "strings, lists and dicts")


# ---- save / load ------------------------------------------------------------------------------


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Contents and their SHA-256 in one file, written to `path.tmp`, fsynced, renamed, directory
    fsynced: a crash never leaves a half-written checkpoint, nor one without its checksum."""
    blob = {"format": FORMAT, "format_version": FORMAT_VERSION, "fastdeit_version": __version__, **payload}
    blob[DIGEST_KEY] = content_digest(blob)
    atomic_write(Path(path), lambda f: torch.save(blob, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A fastdeit checkpoint, loaded with weights_only=True and its checksum verified."""
    path = Path(path)
    blob = safe_torch_load(path, "checkpoint")
    if not is_fastdeit_checkpoint(blob):
        raise ValueError(f"checkpoint {path} is not a fastdeit checkpoint (no '{FORMAT}' marker)")
    return verify_checkpoint(blob, path)


def is_fastdeit_checkpoint(blob: Any) -> bool:
    return isinstance(blob, dict) and blob.get("format") == FORMAT


def verify_checkpoint(blob: dict[str, Any], path: Path) -> dict[str, Any]:
    """Refuse another format version or contents that differ from their stored SHA-256; returns `blob`
    without the digest."""
    version = blob.get("format_version")
    if version != FORMAT_VERSION:
        age = "an older" if isinstance(version, int) and version < FORMAT_VERSION else "another"
        raise ValueError(f"checkpoint {path} was written by {age} fastdeit ({blob.get('fastdeit_version')}, "
                         f"format version {version}); this fastdeit reads format version {FORMAT_VERSION}")
    stored = blob.pop(DIGEST_KEY, None)
    if stored != content_digest(blob):
        raise CorruptCheckpointError(f"checkpoint {path} is corrupt: its contents do not match the SHA-256 "
                                     "stored with them (changed on disk or in transfer)")
    return blob


def verified_alternatives(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Other checkpoints beside `path` (best.pt, step checkpoints) that load and verify, newest step first."""
    found = []
    for other in sorted(Path(path).parent.glob("*.pt")):
        if other.name == Path(path).name:
            continue
        try:
            blob = load_checkpoint(other)
        except ValueError:
            continue
        found.append((other, {"step": blob.get("step"), "epoch": blob.get("epoch")}))
    return sorted(found, key=lambda item: -int(item[1]["step"] or 0))


def load_for_resume(path: Path) -> dict[str, Any]:
    """load_checkpoint for --resume: when `path` is refused, say which file in the run directory can be used."""
    path = Path(path)
    try:
        return load_checkpoint(path)
    except ValueError as err:
        refusal = str(err)
    alternatives = verified_alternatives(path)
    if not alternatives:
        raise ValueError(f"{refusal}; no other checkpoint in {path.parent} verifies, so the run must restart "
                         "(without --resume, into another --out)") from None
    listed = ", ".join(f"{p.name} (step {info['step']}, epoch {info['epoch']})" for p, info in alternatives)
    best = alternatives[0][0]
    raise ValueError(f"{refusal}; these checkpoints in {path.parent} verify: {listed}. To resume from one, copy "
                     f"it over {path.name} (cp {best} {path}) and run --resume again") from None


def check_compatible(blob: dict[str, Any], config_dict: dict[str, dict[str, Any]], path: Path) -> None:
    """Refuse to resume a run whose recipe differs from the checkpoint's, naming the keys."""
    theirs = blob.get("config", {})
    if recipe_hash(theirs) == recipe_hash(config_dict):
        return
    differing = []
    for section, table in config_dict.items():
        for key, value in table.items():
            dotted = f"{section}.{key}"
            if any(dotted.startswith(p) for p in RESUMABLE_DIFFERENCES):
                continue
            other = theirs.get(section, {}).get(key)
            if other != value:
                differing.append(f"{dotted} (checkpoint {other!r}, this run {value!r})")
    raise ValueError(f"checkpoint {path} was written by another recipe (preset "
                     f"{blob.get('preset')!r}); differing: {'; '.join(differing[:6])}")
