"""SIGKILL the dialing and the enrichment processes at random points, run after run: nothing breaks.

Each run forks a dialer (ticks) and an enricher (polling + incremental metrics) on the same store
and simulator, kills both after independent random delays spread over their work (measured by
an unkilled first run), then a restarted process
reconciles and checks every invariant (tests/invariants.py) and that incremental metrics equal a
full rebuild. 12 runs in CI (about 20 s on an idle machine); RELIABILITY_FULL=1 (`make soak`) runs 150.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone

from tasks.store import connect
from tests.factories import add_contacts, make_campaign_db
from tests.reliability import full_run

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
START = datetime(2026, 4, 27, 15, 0, tzinfo=timezone.utc)  # Monday 08:00 in Phoenix


def test_random_kills_of_dialer_and_enricher_never_break_an_invariant(db, tmp_path):
    runs = 150 if full_run() else 12
    ids = make_campaign_db(db, batch_size=10, max_attempts=4, attempts_per_day=2,
                           calling_days=list(ALL_DAY), weekly_schedule=ALL_DAY)
    add_contacts(db, ids["campaign_id"], 60)
    env = {**os.environ, "CAMPAIGNS_DB": str(db), "CAMPAIGNS_RECONCILE_GRACE_SECONDS": "0",
           "CAMPAIGNS_DIAL_PACE_SECONDS": "3"}
    child = subprocess.run(
        [sys.executable, "-m", "tests.reliability.zygote", str(db), str(runs), "20261204", START.isoformat(), "30"],
        capture_output=True, text=True, timeout=max(600, 20 * runs), env=env,  # a loaded machine: ~4 s a run
    )
    lines = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
    assert child.returncode == 0, child.stderr[-3000:]
    assert len(lines) == runs, child.stderr[-3000:]
    failed = [line for line in lines if line["check"] != "ok"]
    assert failed == [], child.stderr[-3000:]
    # a worker that died of an error (exit 1) rather than our SIGKILL is a failure too
    errors = [line for line in lines if any(code not in (0, -9) for code in line["workers"].values())]
    assert errors == [], child.stderr[-3000:]
    killed = sum(1 for line in lines for code in line["workers"].values() if code == -9)
    assert killed >= runs // 2  # many workers died mid-work, not after finishing (timing varies with load)
    with connect(db) as conn:
        placed = conn.execute("select count(*) from calls where provider_call_id is not null").fetchone()[0]
    assert placed > 0  # the kills still let the campaign make progress
