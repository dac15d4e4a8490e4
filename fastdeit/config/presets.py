"""Where presets live: the TOML files in the repository's `configs/` folder."""

from __future__ import annotations

import os
from pathlib import Path


def presets_dir() -> Path:
    """`$FASTDEIT_CONFIGS` if set, else `configs/` beside the package (editable install)."""
    override = os.environ.get("FASTDEIT_CONFIGS")
    path = Path(override) if override else Path(__file__).resolve().parents[2] / "configs"
    if not path.is_dir():
        raise ValueError(f"preset folder {path} not found; install fastdeit from its repository "
                         "with `pip install -e .` or point FASTDEIT_CONFIGS at a folder of presets")
    return path


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
