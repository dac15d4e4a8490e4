"""Checkpoints: written atomically, refused with a reason when corrupt or from another recipe."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastdeit import __version__

FORMAT = "fastdeit-checkpoint"
FORMAT_VERSION = 1
# Run settings that may differ between a checkpoint and the run resuming it.
RESUMABLE_DIFFERENCES = ("run.", "data.train", "data.val", "data.workers", "data.eval_batch",
                         "data.pin_memory", "schedule.epochs", "model.compile", "distill.cache")


def recipe_hash(config_dict: dict[str, dict[str, Any]]) -> str:
    recipe = {f"{s}.{k}": v for s, table in config_dict.items() for k, v in table.items()
              if not any(f"{s}.{k}".startswith(p) for p in RESUMABLE_DIFFERENCES)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write to `path.tmp`, fsync, then rename: a crash never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "format_version": FORMAT_VERSION, "fastdeit_version": __version__, **payload}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(blob, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path}: no such file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - truncated zip, bad pickle...: all mean corrupt
        raise ValueError(f"checkpoint {path} is corrupt or truncated and cannot be read ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} is not a fastdeit checkpoint (no '{FORMAT}' marker)")
    if blob.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint {path} has format version {blob.get('format_version')}, "
                         f"this fastdeit reads version {FORMAT_VERSION}")
    return blob


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
