"""Locating external tools for integration tests.

Locally a missing tool skips the test with the reason; under ``CI=true`` it fails, so CI
can never go green by silently skipping the real-tool tests.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Skip locally, fail in CI."""
    if in_ci():
        pytest.fail(f"required tool missing under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """Absolute path of an executable (the test venv's bin first), or skip/fail."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        missing(f"'{name}' not found on PATH")
    assert found is not None
    return found
