"""Where presets live: TOML files in `fastdeit/configs/` of an installed package (setup.py ships the
repository's `configs/` folder there as package data), or `configs/` of a source checkout."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def preset_dirs() -> list[Path]:
    """Candidate preset folders, first match wins: $FASTDEIT_CONFIGS, the installed package data,
    the source checkout's configs/ (editable installs, PYTHONPATH on a clone)."""
    override = os.environ.get("FASTDEIT_CONFIGS")
    if override:
        return [Path(override)]
    return [PACKAGE_ROOT / "configs", PACKAGE_ROOT.parent / "configs"]


def presets_dir() -> Path:
    candidates = preset_dirs()
    for path in candidates:
        if path.is_dir() and any(path.glob("*.toml")):
            return path
    raise ValueError(f"no preset folder found (looked in {', '.join(map(str, candidates))}); reinstall "
                     "fastdeit (`pip install .` ships the presets) or point FASTDEIT_CONFIGS at a folder of presets")


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.toml") if not p.stem.startswith("_"))


def preset_path(name: str) -> Path:
    path = presets_dir() / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"unknown preset '{name}' (known: {', '.join(preset_names())})")
    return path


def preset_description(name: str) -> str:
    import tomllib

    with open(preset_path(name), "rb") as f:
        return str(tomllib.load(f).get("description", ""))
