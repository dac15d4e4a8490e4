"""The one loader for every `.pt` a user names or a run directory holds.

`torch.load(weights_only=True)`: tensors, numbers, strings, lists, tuples and dicts only, so no file
can run code. A file that would need arbitrary unpickling is refused, naming the file and the
globals it asks for, before anything in it runs.
"""

from __future__ import annotations

import argparse
import pickle
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

# Training checkpoints of deit's and timm's own scripts keep their command line as an
# argparse.Namespace under "args" (deit main.py, timm train.py); timm allow-lists it the same way.
TRAINING_SCRIPT_GLOBALS = (argparse.Namespace,)


class UnsafeFileError(ValueError):
    """The file needs arbitrary unpickling: it was refused unread."""


def safe_torch_load(path: Path, what: str, allow: Sequence[type] = ()) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU; every failure is a ValueError naming `what` and `path`.

    `allow`: the few extra types this entry point must accept (see TRAINING_SCRIPT_GLOBALS).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what}: no such file {path}")
    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        message = str(err)
        if "GLOBAL" not in message:  # e.g. "Unsupported operand": not a torch.save file at all
            raise ValueError(f"{what}: {path} is not a readable checkpoint: corrupt or truncated, or not "
                             f"written by torch.save ({weights_only_detail(message)})") from None
        raise UnsafeFileError(refusal_message(path, what, message)) from None
    except Exception as err:  # noqa: BLE001 - a truncated zip, flipped bytes...: all mean unreadable
        first_sentence = str(err).splitlines()[0].split(". ")[0] if str(err) else ""
        raise ValueError(f"{what}: {path} is not a readable checkpoint: corrupt or truncated "
                         f"({type(err).__name__}: {first_sentence})") from None


def load_weights_file(path: Path, what: str) -> Any:
    """Weights a user names (a teacher, a fine-tune start): deit's and timm's state-dict files, their
    training checkpoints, or a fastdeit checkpoint, whose checksum is then verified."""
    from fastdeit.train.checkpoint import is_fastdeit_checkpoint, verify_checkpoint

    blob = safe_torch_load(path, what, allow=TRAINING_SCRIPT_GLOBALS)
    if is_fastdeit_checkpoint(blob):
        try:
            verify_checkpoint(blob, Path(path))
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from None
    return blob


def refusal_message(path: Path, what: str, torch_message: str) -> str:
    globals_named = unsafe_globals(path)
    if globals_named and all(name.startswith("numpy") for name in globals_named) and written_by_older_fastdeit(path):
        return (f"{what}: {path} was written by an older fastdeit (checkpoint format 1, which pickled "
                "numpy and Python RNG objects): this fastdeit loads only files that cannot run code, "
                "so it refuses to unpickle it, and a run cannot resume from it. If you trust the file, "
                "its weights can be extracted with: python -c \"import torch; b = torch.load('"
                f"{path}', weights_only=False); torch.save({{'model': b['model']}}, 'weights.pt')\" "
                "and used as model.init_checkpoint or distill.teacher_checkpoint")
    globals_named = globals_named or [weights_only_detail(torch_message)]
    return (f"{what}: {path} refused: loading it would need arbitrary unpickling "
            f"({', '.join(globals_named[:5])}), which can run code. fastdeit loads only tensors, numbers, "
            "strings, lists and dicts (torch.load weights_only=True); save the weights as a plain "
            "state dict, e.g. torch.save(model.state_dict(), 'weights.pt')")


def unsafe_globals(path: Path) -> list[str]:
    """The globals the file's pickle asks for that weights_only refuses (read, not run)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # noqa: BLE001 - a legacy (non-zip) file: torch's own message names one
        return []


def weights_only_detail(torch_message: str) -> str:
    """The one useful line of torch's weights_only error, e.g. 'Unsupported global: GLOBAL posix.system'."""
    for pattern in (r"Unsupported global: GLOBAL [\w.]+", r"unsupported GLOBAL [\w.]+", r"Unsupported operand \d+"):
        found = re.search(pattern, torch_message)
        if found:
            return found.group(0)
    return "weights_only load failed"


def written_by_older_fastdeit(path: Path) -> bool:
    """A zip whose pickle carries fastdeit's checkpoint marker: looked for as bytes, never unpickled.
    (Format 1 asked only for numpy's globals: the caller checks that too.)"""
    from fastdeit.train.checkpoint import FORMAT

    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            return any(FORMAT.encode() in archive.read(name) for name in pickles)
    except (zipfile.BadZipFile, OSError):
        return False
