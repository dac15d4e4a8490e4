"""Build a validated `TrainConfig` from presets, TOML files and `--set key=value` overrides.

Every key is checked against the dataclasses in `schema.py`: an unknown key, a value of the
wrong type or an impossible value raises `ValueError` naming the key (e.g. `optim.lr`).
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any

from fastdeit.config import presets
from fastdeit.config.schema import TrainConfig
from fastdeit.config.validate import validate_config


# auto | on | off keys that were booleans once: true/false still mean on/off
FORMERLY_BOOL = ("model.compile",)


def parse_scalar(text: str) -> Any:
    """Parse the right-hand side of `--set key=value` as a TOML value; bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against a dataclass field annotation; ints widen to floats, lists to tuples."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        item_types = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)) or len(value) != len(item_types):
            raise ValueError(f"{key}: expected a list of {len(item_types)} numbers, got {value!r}")
        return tuple(coerce(f"{key}[{i}]", v, t) for i, (v, t) in enumerate(zip(value, item_types)))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{key}: expected a string, got {value!r}")
    raise AssertionError(f"unsupported annotation {annotation!r} for {key}")


def apply_table(config: TrainConfig, table: dict[str, Any], source: str) -> None:
    """Apply a nested `{section: {field: value}}` table onto `config` in place."""
    sections = {f.name for f in dataclasses.fields(config)}
    for section, values in table.items():
        if section in ("extends", "description"):
            continue
        if section not in sections:
            raise ValueError(f"{source}: unknown section '{section}' (known: {', '.join(sorted(sections))})")
        if not isinstance(values, dict):
            raise ValueError(f"{source}: '{section}' must be a table of keys")
        for name, value in values.items():
            set_key(config, f"{section}.{name}", value, source)


def set_key(config: TrainConfig, dotted: str, value: Any, source: str = "--set") -> None:
    section_name, _, field_name = dotted.partition(".")
    sub = getattr(config, section_name, None) if section_name else None
    if sub is None or not dataclasses.is_dataclass(sub) or not field_name:
        raise ValueError(f"{source}: unknown key '{dotted}'")
    hints = typing.get_type_hints(type(sub))
    if field_name not in hints:
        known = ", ".join(f"{section_name}.{f.name}" for f in dataclasses.fields(sub))
        raise ValueError(f"{source}: unknown key '{dotted}' (known in [{section_name}]: {known})")
    if dotted in FORMERLY_BOOL and isinstance(value, bool):
        value = "on" if value else "off"  # configs and checkpoints written before auto existed
    try:
        setattr(sub, field_name, coerce(dotted, value, hints[field_name]))
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None


def load_preset_table(name: str, seen: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """The chain of tables a preset resolves to, base first (`extends = "other"`)."""
    if name in seen:
        raise ValueError(f"preset '{name}': circular 'extends' chain {' -> '.join(seen + (name,))}")
    table = read_toml(presets.preset_path(name))
    chain: list[tuple[str, dict[str, Any]]] = []
    parent = table.get("extends")
    if parent is not None:
        chain.extend(load_preset_table(str(parent), seen + (name,)))
    chain.append((f"preset '{name}'", table))
    return chain


def build_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
) -> TrainConfig:
    """Defaults <- preset (with its `extends` chain) <- config file <- `--set` overrides."""
    config = TrainConfig()
    if preset:
        for source, table in load_preset_table(preset):
            apply_table(config, table, source)
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ValueError(f"--config: no such file {path}")
        table = read_toml(path)
        if "extends" in table and not preset:
            for source, base in load_preset_table(str(table["extends"])):
                apply_table(config, base, source)
        apply_table(config, table, str(path))
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}")
        set_key(config, key.strip(), parse_scalar(text.strip()), "--set")
    validate_config(config)
    return config


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Nested plain dict (tuples as lists), for JSON and TOML output."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return list(value)
        return value

    return {
        f.name: {k: plain(v) for k, v in dataclasses.asdict(getattr(config, f.name)).items()}
        for f in dataclasses.fields(config)
    }


def config_from_dict(table: dict[str, Any], source: str) -> TrainConfig:
    """Inverse of `config_to_dict` (a run's config.toml, a checkpoint's stored config)."""
    config = TrainConfig()
    apply_table(config, table, source)
    validate_config(config)
    return config
