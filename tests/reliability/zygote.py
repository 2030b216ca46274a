"""Crash-soak driver run as its own process: fork a dialer and an enricher, SIGKILL them, check.

Imports happen once here; every run forks fresh children so a hundred kills cost seconds, not a
hundred interpreter start-ups. This process itself never touches DuckDB or Polars (their thread
pools do not survive a fork); the checker is a forked child too.

Usage: python -m tests.reliability.zygote DB RUNS SEED START_ISO STEP_MINUTES
Prints one JSON line per run: {"run": i, "killed": [...], "check": "ok" | error text}.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
import traceback
from datetime import datetime, timedelta
from pathlib import Path

from flows.aggregate_metrics import run_aggregation
from flows.enrich_calls import run_enrichment
from tasks.clock import VirtualClock
from tasks.dialing import reconcile, run_tick
from tasks.metrics import aggregate
from tasks import store
from tasks.store import connect, transaction
from tasks.telephony import make_provider
from tests.invariants import check_invariants

WORK_STEPS = 3
STEP = timedelta(minutes=2)
METRIC_TABLES = ("contact_stats", "metrics_daily")


def dial(db: str, base: datetime) -> None:
    """A dialing process: ticks every two virtual minutes."""
    provider = make_provider(db=db)
    clock = VirtualClock(base)
    for step in range(WORK_STEPS):
        run_tick(db, provider, clock, pace_seconds=3)
        clock.advance_to(base + (step + 1) * STEP)


def enrich(db: str, base: datetime) -> None:
    """An enrichment process: polling passes, each followed by an incremental aggregation.

    Its virtual time stays at the run's start: the incremental aggregation's watermark is its
    `now`, and the dialer's rows of this run are stamped from `base` on. Two virtual clocks running
    apart would stamp rows below a watermark already passed, which one wall clock never does
    (incremental metrics rely on that; found by this test's first version).
    """
    provider = make_provider(db=db)
    for _ in range(WORK_STEPS):
        run_enrichment(db, provider, base)
        run_aggregation(db, now=base, snapshot=False)


def metrics_rows(conn) -> dict[str, list[tuple]]:
    """Every metrics row, ordered, except the bookkeeping columns that differ by design."""
    rows = {}
    for table in METRIC_TABLES:
        columns = [c for (c,) in conn.execute(
            "select column_name from information_schema.columns where table_name = ? order by ordinal_position",
            [table],
        ).fetchall() if c != "created_at"]
        rows[table] = conn.execute(f"select {', '.join(columns)} from {table} order by all").fetchall()
    return rows


def check(db: str, at: datetime) -> None:
    """What a restart does (reconcile, then an enrichment pass), then every invariant holds."""
    provider = make_provider(db=db)
    reconcile(db, provider, at)
    run_enrichment(db, provider, at)
    check_invariants(db, provider)
    with transaction(db) as conn:
        aggregate(conn, at)
        incremental = metrics_rows(conn)
        aggregate(conn, at, full=True)
        full = metrics_rows(conn)
        conn.execute("rollback")
        conn.execute("begin transaction")  # transaction() commits on exit: give it an empty one
    for table in METRIC_TABLES:
        assert incremental[table] == full[table], f"{table}: incremental aggregation differs from a full rebuild"
    with connect(db) as conn:
        in_flight = conn.execute("select count(*) from calls where status in ('queued', 'created')").fetchone()[0]
    assert in_flight == 0


def fork(target, *args) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            target(*args)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def wait(pid: int, timeout: float) -> int | None:
    """The child's exit status (negative = killed by that signal), None if it had to be killed late."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def main() -> None:
    db, runs, seed, start, step_minutes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    rng = random.Random(seed)
    base = datetime.fromisoformat(start)
    # The test migrated the store: children skip the per-process migration check (pure Python here).
    store._migrated.add(str(Path(db).resolve()))
    # Run 0 is not killed: it measures how long each worker's work takes on this machine now, so
    # later kills land uniformly across the work (a tick takes 0.2-0.8 s here, depending on load).
    kill_within = {"dial": 30.0, "enrich": 30.0}
    for run in range(runs):
        at = base + timedelta(minutes=run * step_minutes)
        workers = {"dial": fork(dial, db, at), "enrich": fork(enrich, db, at)}
        started = time.monotonic()
        if run == 0:
            outcome = {name: wait(pid, 60) for name, pid in workers.items()}
            took = time.monotonic() - started
            kill_within = {"dial": took, "enrich": took}
        else:
            kill_after = {name: rng.uniform(0.0, kill_within[name]) for name in workers}
            outcome = {}
            for name in sorted(workers, key=kill_after.get):
                time.sleep(max(0.0, started + kill_after[name] - time.monotonic()))
                try:
                    os.kill(workers[name], signal.SIGKILL)
                except ProcessLookupError:
                    pass
                outcome[name] = wait(workers[name], 60)
        killed_at = time.monotonic()
        checker = fork(check, db, at + WORK_STEPS * STEP)
        code = wait(checker, 120)
        line = {"run": run, "workers": outcome, "kill_s": round(killed_at - started, 2),
                "check_s": round(time.monotonic() - killed_at, 2), "check": "ok" if code == 0 else f"checker exit {code}"}
        print(json.dumps(line), flush=True)
        if code != 0:
            break


if __name__ == "__main__":
    main()
