"""`make demo`'s data part: fresh store, import, two simulated weeks, report — the same numbers twice."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.prefect]


def _run_demo(tmp_path) -> str:
    env = {**os.environ, "DEMO_NO_DASHBOARD": "1", "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-m", "flows.demo"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _figures(report: str) -> dict[str, str]:
    names = ("contacts enrolled", "call attempts", "contacts called", "connection rate", "credits used")
    return {name: re.search(rf"{name}\s+(\S+)", report).group(1) for name in names}


def test_demo_builds_simulates_and_reports_the_same_numbers_each_run(tmp_path):
    first, second = _run_demo(tmp_path), _run_demo(tmp_path)
    figures = _figures(first)
    assert int(figures["contacts enrolled"]) > 250  # the sample CSV's valid, de-duplicated rows
    assert int(figures["call attempts"]) >= int(figures["contacts called"]) > 0
    assert figures == _figures(second)  # starts clean, same seed, same numbers
    assert "demo.duckdb" in first and "analytics" in first
