"""Peak memory per test, for keeping the suite small enough for an 8 GB laptop.

Loaded by conftest.py. With GANALYZE_MEMORY_REPORT=1 the peak resident memory of the pytest
process is reset before each test (Linux: /proc/self/clear_refs) and read after it, and the
session ends with the tests that peaked highest. GANALYZE_MEMORY_LIMIT_MB=N makes a test whose
peak exceeds N MB fail its teardown, naming the peak (subprocesses a test starts are their
own and bounded by their tests). CI sets GANALYZE_MEMORY_REPORT and prints the peaks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_STATUS = Path("/proc/self/status")
_PEAKS: list[tuple[float, str]] = []


def _hwm_mb() -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _enabled() -> bool:
    env = os.environ
    return bool(env.get("GANALYZE_MEMORY_REPORT") or env.get("GANALYZE_MEMORY_LIMIT_MB"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _enabled() or not _reset():
        yield
        return
    yield
    peak = _hwm_mb()
    if peak is not None:
        _PEAKS.append((peak, item.nodeid))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    limit = os.environ.get("GANALYZE_MEMORY_LIMIT_MB")
    peak = _hwm_mb()
    if limit and peak is not None and peak > float(limit):
        pytest.fail(f"{item.nodeid} peaked at {peak:,.0f} MB resident, over the suite's "
                    f"{float(limit):,.0f} MB budget")  # fmt: skip


def pytest_terminal_summary(terminalreporter):
    if not _PEAKS:
        return
    terminalreporter.section("peak resident memory per test (MB)")
    for peak, nodeid in sorted(_PEAKS, reverse=True)[:15]:
        terminalreporter.write_line(f"{peak:8,.0f}  {nodeid}")
