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


def test_the_demo_story_dates_everything_by_its_simulated_clock(tmp_path):
    # the campaign and its contacts are set up before the first simulated call (they used to carry the real
    # date of the run, months after the calls: "Created At" after "Last Call Date" in the Contact List)
    import duckdb

    from flows.demo import DEMO_DB

    _run_demo(tmp_path)
    with duckdb.connect(str(DEMO_DB), read_only=True) as conn:
        first_call, campaign_created, latest_added, contact_created, called_before_added = conn.execute(
            """
            select (select min(queued_at) from calls), (select max(created_at) from campaigns),
                   (select max(added_at) from campaign_contacts), (select max(created_at) from contacts),
                   (select count(*) from calls c join campaign_contacts e using (campaign_id, contact_id)
                    where c.queued_at < e.added_at)
            """).fetchone()
    assert campaign_created < latest_added < first_call
    assert contact_created < first_call and called_before_added == 0
