"""Optional extras in tests: skipped where not installed, unless FASTDEIT_REQUIRE_EXTRAS=1
(scripts/test.sh, CI), where a failed import fails the run instead of hiding a broken install."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

REQUIRE_ENV = "FASTDEIT_REQUIRE_EXTRAS"


def extras_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def import_extra(module: str, extra: str) -> ModuleType:
    """`pytest.importorskip(module)` that fails instead of skipping when extras are required."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if extras_required():
            pytest.fail(f"{module} cannot be imported ({err}); {REQUIRE_ENV}=1 requires the extra "
                        f"fastdeit[{extra}] (scripts/test.sh installs it)", pytrace=False)
        pytest.skip(f"{module} not installed (pip install 'fastdeit[{extra}]')", allow_module_level=True)


def has_extra(module: str, extra: str) -> bool:
    """Whether `module` imports; False only where extras are not required (else the test fails)."""
    try:
        importlib.import_module(module)
        return True
    except ImportError as err:
        if extras_required():
            pytest.fail(f"{module} cannot be imported ({err}); {REQUIRE_ENV}=1 requires the extra "
                        f"fastdeit[{extra}]", pytrace=False)
        return False
