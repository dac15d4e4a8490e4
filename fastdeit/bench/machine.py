"""The machine a benchmark ran on, recorded with its figures so that they name their machine."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

# result key -> installed distribution; None where not installed. DALI's distribution is named
# after its CUDA build (nvidia-dali-cuda120, ...), so it is looked up by prefix.
_DISTRIBUTIONS = {
    "timm": "timm",
    "numpy": "numpy",
    "pillow": "pillow",
    "simplejpeg": "simplejpeg",
    "ffcv": "ffcv",
    "opencv-python": "opencv-python",
}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _dali_version() -> str | None:
    for d in metadata.distributions():
        name = (d.metadata["Name"] or "").lower()
        if name.startswith("nvidia-dali"):
            return d.version
    return None


def describe_machine(**extra_versions) -> dict:
    """CPU model, logical and usable CPUs, load average, Python, platform and library versions
    (None where not installed), then `extra_versions` (e.g. gpu=...) added or overriding.

    Where torch is already imported its version is its own `__version__`, which names the CUDA
    build (2.x.y+cu130); torch is not imported for this.
    """
    torch = sys.modules.get("torch")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "load_avg_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__ if torch is not None else _version("torch"),
    }
    info.update({key: _version(dist) for key, dist in _DISTRIBUTIONS.items()})
    info["dali"] = _dali_version()
    info.update(extra_versions)
    return info
