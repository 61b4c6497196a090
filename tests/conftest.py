from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

# Tests import helpers as ``support.*``.
sys.path.insert(0, str(Path(__file__).parent))

# Stable output for CLI tests.
os.environ.setdefault("NO_COLOR", "1")
os.environ.setdefault("COLUMNS", "100")
os.environ.pop("GITHUB_ACTIONS", None)


# Under CI=true nothing may skip silently: a skipped test (missing tool, missing oracle,
# importorskip) is turned into a failure that keeps the skip reason.
import pytest  # noqa: E402

from support.tools import in_ci  # noqa: E402


def _fail_skip(report: pytest.CollectReport | pytest.TestReport, *,
               allowed: bool = False) -> None:
    if allowed:  # needs what CI can never have (a real ESP-IDF checkout); says why
        return
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (a required tool or oracle is missing): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    _fail_skip(outcome.get_result(), allowed=item.get_closest_marker("esp_idf") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    outcome = yield
    _fail_skip(outcome.get_result())
