"""Three dialing worker processes on the shared PostgreSQL store under one global call limit.

The workers run the production tick (reconcile, claim, place, apply) for one campaign on a shared
fast clock (flows/cluster_sim.py), with the simulated provider, each call holding a global slot
(flows.cluster.CallSlots) from placing until it ends; a fourth process enriches. Checked: no contact
dialed twice, never more calls in flight than the limit (the simulated provider itself would allow
twice as many, so only the global limit holds it), every call recorded, the invariants.

The slots come from a local SQLite ledger with the same acquire/release (800 contacts in CI, the
issue's 20,000 with CLUSTER_FULL=1), and from the real Prefect global concurrency limit on a smaller
campaign with CLUSTER_FULL=1 only: a Prefect slot costs two HTTP requests (~0.2 s each here), so
Prefect-limited runs place about 4 calls a second. tests/flows/test_cluster_prefect.py checks the
Prefect limit across concurrent placers in CI.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tasks.settings import reset_settings
from flows.cluster_sim import enroll_numbered_contacts
from tasks.store import connect
from tests.factories import make_campaign_db
from tests.invariants import check_invariants

FULL = os.environ.get("CLUSTER_FULL") == "1"
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
ORIGIN = datetime(2026, 4, 28, 15, 0, tzinfo=timezone.utc)  # Tuesday 08:00 in Phoenix: the legal window opens


def max_in_flight(simulator_file) -> tuple[int, int]:
    """(most calls ringing or talking at once, placements) from the simulated provider's own records."""
    with sqlite3.connect(simulator_file) as sim:
        rows = sim.execute("select placed_ts, end_ts from sim_calls").fetchall()
    # at equal times an end comes before a start: a call ending at t is not in progress at t
    events = sorted([(end, -1) for _, end in rows] + [(start, 1) for start, _ in rows])
    current = most = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most, len(rows)


@pytest.fixture
def shared_store(pg_server, monkeypatch, tmp_path):
    url = pg_server.create_database(f"three_{uuid.uuid4().hex[:10]}")
    env = {"CAMPAIGNS_STORE": "postgres", "CAMPAIGNS_STORE_URL": url,
           "CAMPAIGNS_DB": str(tmp_path / "campaigns.duckdb"),  # the simulator's file sits beside it
           "CAMPAIGNS_PROVIDER_CONCURRENCY_LIMIT": "1000",  # the provider would take far more
           "CAMPAIGNS_DIAL_PACE_SECONDS": "3",
           # one caller number: a few early spam marks would pause it for a day (smart dialing's
           # number health), which is not what this test is about
           "CAMPAIGNS_NUMBER_MAX_SPAM_MARKS": "1000000", "CAMPAIGNS_NUMBER_MIN_CONNECTION_RATE": "0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    yield tmp_path / "campaigns.duckdb", env
    reset_settings()


@pytest.mark.parametrize(
    ("limiter", "contacts", "call_limit", "speed"),
    [
        # speed = virtual seconds per real second, slow enough that the workers' real pace (tens of
        # calls a second here) fills the limit (calls last ~50 virtual seconds) and the limit binds
        pytest.param("sqlite", 20_000 if FULL else 800, 40 if FULL else 20, 20.0 if FULL else 40.0, id="ledger"),
        pytest.param("prefect", 300, 10, 15.0, id="prefect-gcl",
                     marks=pytest.mark.skipif(not FULL, reason="slow (Prefect slots over HTTP): CLUSTER_FULL=1")),
    ],
)
def test_three_workers_share_a_campaign_without_double_dials_or_passing_the_limit(
    shared_store, tmp_path, request, limiter, contacts, call_limit, speed
):
    from flows.cluster import ensure_call_limit
    from flows.enrich_calls import run_enrichment
    from tasks.telephony import make_provider, simulator_path

    db, env = shared_store
    ids = make_campaign_db(db, batch_size=40, max_attempts=1, attempts_per_day=1, number_daily_cap=None,
                           calling_days=list(ALL_DAY), weekly_schedule=ALL_DAY)
    enroll_numbered_contacts(db, ids["campaign_id"], contacts)
    child_env = {**os.environ, **env}
    if limiter == "prefect":
        from prefect.settings import PREFECT_API_URL

        request.getfixturevalue("prefect_harness")
        slots = f"prefect:{ensure_call_limit(call_limit, f'calls-{uuid.uuid4().hex[:8]}')}"
        child_env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    else:
        slots = f"sqlite:{tmp_path / 'slots.sqlite'}:{call_limit}"
    real_origin = time.time() + 3  # the workers start on the same virtual minute
    common = ["--origin", ORIGIN.isoformat(), "--real-origin", str(real_origin), "--speed", str(speed),
              "--seconds", str(3000 if FULL else 300)]
    stop_file = tmp_path / "stop-enricher"
    workers = [
        subprocess.Popen([sys.executable, "-m", "flows.cluster_sim", "worker", "--campaigns", str(ids["campaign_id"]),
                          "--limiter", slots, "--shards", "3", *common], env=child_env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    enricher = subprocess.Popen([sys.executable, "-m", "flows.cluster_sim", "enricher", "--stop-file", str(stop_file),
                                 *common], env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    figures = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=3600 if FULL else 420)
            assert worker.returncode == 0, err[-3000:]
            figures.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        stop_file.touch()
        for child in [*workers, enricher]:
            if child.poll() is None:
                try:
                    child.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    child.kill()
    print(json.dumps(figures))
    assert enricher.returncode == 0, enricher.stderr.read()[-3000:]

    # everyone dialled, and the three shared the work
    assert all(f["placed"] > 0 for f in figures), figures
    assert sum(f["errors"] for f in figures) == 0, figures
    provider = make_provider(db=db)
    assert provider.duplicate_attempt_keys() == {}  # no attempt was placed twice
    most, placements = max_in_flight(simulator_path(db=db))
    print(f"{placements} placements, at most {most} in flight (limit {call_limit})")
    assert most <= call_limit, f"{most} calls in flight at once, limit {call_limit}"
    assert most >= call_limit // 2  # the limit was what held the pace back, not an idle run
    assert placements == sum(f["placed"] for f in figures) == sum(f["slots"]["acquired"] for f in figures)
    assert all(f["slots"]["left"] == 0 for f in figures)
    with sqlite3.connect(simulator_path(db=db)) as sim:
        assert sim.execute("select count(distinct to_number) from sim_calls").fetchone()[0] == contacts
        # a second call to the same person only ever follows the end of the first (a platform-side
        # failure is not an attempt, so such a contact is dialled again)
        overlapping = sim.execute(
            "select count(*) from sim_calls a join sim_calls b on a.to_number = b.to_number and a.seq < b.seq"
            " where b.placed_ts < a.end_ts"
        ).fetchone()[0]
    assert overlapping == 0

    # let the last calls end and be analysed; then every placement is a recorded, finished call
    run_enrichment(db, provider, ORIGIN + timedelta(days=1))
    with connect(db) as conn:
        recorded = conn.execute(
            "select count(*), count(*) filter (where status in ('ended', 'not_connected', 'error')),"
            " count(distinct contact_id) from calls where provider_call_id is not null"
        ).fetchone()
    assert recorded == (placements, placements, contacts)
    check_invariants(db, provider)  # among them: nobody over max_attempts (1), counters re-derived from calls
