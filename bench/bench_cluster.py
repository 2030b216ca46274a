"""Benchmark: one dialing worker on the DuckDB file against three workers on the shared PostgreSQL store.

Side by side in one run, on the same campaigns (BENCH_CLUSTER_CAMPAIGNS, 3, independent: own caller
number, 20,000 contacts dealt over them, batches of 100, everyone callable), each tick one campaign's
batch, as a `dial-campaign` run is: ticks per minute (summed over the workers) and calls placed per
minute, the claim's latency inside
the real tick (median / p95, from the workers), and the dashboard's query latency meanwhile (Call
Logs count + first page, Contact List count + first page, the KPI cards, the campaign list; each
draw on a fresh connection, as the dashboard opens one per draw), the workers' share of time spent
waiting for the shared store's writer lock, and the CPU cores the workers used (the machine's limit
when it nears its core count). The DuckDB file with one worker is
the baseline; the ratio line divides the shared store's figures by it.

Workers are `flows.cluster_sim` processes running the cluster's tick (`tasks.dialing.run_tick`,
each batch under its campaign's lock) back to back (no pause between ticks, pace 0, the simulated
provider with no concurrency limit), so the store and the CPU are what limit them. The one file worker takes the campaigns in turn; the
shared-store workers are dealt the campaigns (worker i: campaigns i, i + 3, ...), as the fan-out never
runs one campaign on two workers at once, so their batches overlap (each locks only its campaign).
Two workers taking turns on one campaign would fall into step (a convoy on its key), which production avoids. Smaller runs: BENCH_CLUSTER_CONTACTS=4000 BENCH_CLUSTER_SECONDS=30 .venv/bin/python -m
bench.bench_cluster. Needs PostgreSQL (the Debian package) and the [cluster] extra.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

CONTACTS = int(os.environ.get("BENCH_CLUSTER_CONTACTS", "20000"))
SECONDS = float(os.environ.get("BENCH_CLUSTER_SECONDS", "90"))
CAMPAIGNS = int(os.environ.get("BENCH_CLUSTER_CAMPAIGNS", "3"))  # at least the 3 workers: each gets one
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
ORIGIN = datetime(2026, 4, 28, 16, 0, tzinfo=timezone.utc)  # Tuesday 09:00 in Phoenix
SPEED = 10.0  # virtual seconds per real second: a whole run stays inside the callees' legal window


def _set_env(values: dict[str, str | None]) -> None:
    from tasks.settings import reset_settings

    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_settings()


def _prepare(db: Path) -> list[int]:
    from flows.cluster_sim import add_campaigns_like, enroll_numbered_contacts
    from tasks.compliance import resolve_zones
    from tasks.store import transaction
    from tests.factories import make_campaign_db

    first = make_campaign_db(db, batch_size=100, max_attempts=1, attempts_per_day=1, number_daily_cap=None,
                             calling_days=list(ALL_DAY), weekly_schedule=ALL_DAY)["campaign_id"]
    campaign_ids = [first, *add_campaigns_like(db, first, CAMPAIGNS - 1)]
    enroll_numbered_contacts(db, campaign_ids, CONTACTS)
    with transaction(db) as conn:
        # as an import leaves them: the run times dialing, not a one-off zone lookup per number
        resolve_zones(conn)
    return campaign_ids


def _dashboard_draws(db: Path, campaign_id: int) -> dict[str, float]:
    """Each dashboard draw's time in ms, a fresh store connection per draw."""
    from dashboards.queries import calls as call_queries
    from dashboards.queries import campaigns as campaign_queries
    from dashboards.queries import contacts as contact_queries
    from dashboards.queries import metrics as metric_queries
    from tasks.store import connect

    draws = {
        "call logs": lambda c: (call_queries.count_calls(c, campaign_id), call_queries.call_page(c, campaign_id)),
        "contact list": lambda c: (contact_queries.count_contacts(c, campaign_id),
                                   contact_queries.contact_page(c, campaign_id)),
        "KPI cards": lambda c: metric_queries.kpi_cards(c, campaign_id, None, None),
        "campaign list": lambda c: campaign_queries.campaign_page(c, ORIGIN),
    }
    timings = {}
    for name, draw in draws.items():
        started = time.perf_counter()
        with connect(db) as conn:
            draw(conn)
        timings[name] = (time.perf_counter() - started) * 1000
    return timings


def _run(label: str, db: Path, campaign_ids: list[int], workers: int, env: dict[str, str]) -> dict:
    real_origin = time.time() + 2
    argv = [sys.executable, "-m", "flows.cluster_sim", "worker",
            "--origin", ORIGIN.isoformat(), "--real-origin", str(real_origin), "--speed", str(SPEED),
            "--seconds", str(SECONDS), "--pace", "0", "--tick-seconds", "0"]
    dealt = [campaign_ids[i::workers] for i in range(workers)]
    children = [subprocess.Popen([*argv, "--campaigns", ",".join(map(str, mine))], env={**os.environ, **env},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for mine in dealt]
    draws: dict[str, list[float]] = {}
    while any(child.poll() is None for child in children):
        for name, ms in _dashboard_draws(db, campaign_ids[0]).items():
            draws.setdefault(name, []).append(ms)
        time.sleep(0.5)
    figures = []
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"{label} worker failed: {err[-2000:]}")
        figures.append(json.loads(out.strip().splitlines()[-1]))
    claims = [f["claim_ms"] for f in figures if f["claim_ms"]["n"]]
    all_draws = [ms for values in draws.values() for ms in values]
    return {
        "label": label, "workers": workers,
        "ticks_per_minute": sum(f["ticks_per_minute"] for f in figures),
        "placed_per_minute": sum(f["placed"] / f["seconds"] * 60 for f in figures),
        "placed": sum(f["placed"] for f in figures),
        "errors": sum(f["errors"] for f in figures),
        "lock_wait": statistics.mean(f["lock_wait_share"] for f in figures),
        "cpu_cores": sum(f["cpu_cores"] for f in figures),
        "claim_median": statistics.median(c["median"] for c in claims) if claims else float("nan"),
        "claim_p95": max(c["p95"] for c in claims) if claims else float("nan"),
        "dash_median": statistics.median(all_draws) if all_draws else float("nan"),
        "dash_p95": sorted(all_draws)[int(len(all_draws) * 0.95)] if all_draws else float("nan"),
        "draws": {name: statistics.median(values) for name, values in draws.items()},
        "load": os.getloadavg()[0],  # 1-minute load average at the end of the run
    }


def main() -> None:
    from tasks.pgserver import PgServer

    load = os.getloadavg()[0]
    print(f"{CONTACTS:,} contacts in {CAMPAIGNS} campaigns, {SECONDS:g} s per store, batches of 100, pace 0,"
          f" load average {load:.1f}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    os.chmod(folder, 0o755)  # the postgres user reaches its data folder
    saved = {k: os.environ.get(k) for k in ("CAMPAIGNS_STORE", "CAMPAIGNS_STORE_URL", "CAMPAIGNS_DB",
                                            "CAMPAIGNS_PROVIDER_CONCURRENCY_LIMIT", "CAMPAIGNS_DIAL_PACE_SECONDS")}
    results = []
    try:
        common = {"CAMPAIGNS_PROVIDER_CONCURRENCY_LIMIT": "1000000", "CAMPAIGNS_DIAL_PACE_SECONDS": "0"}
        file_db = folder / "file" / "campaigns.duckdb"
        file_env = {**common, "CAMPAIGNS_STORE": None, "CAMPAIGNS_STORE_URL": None, "CAMPAIGNS_DB": str(file_db)}
        _set_env(file_env)
        campaign_ids = _prepare(file_db)
        results.append(_run("DuckDB file", file_db, campaign_ids, 1,
                            {k: v for k, v in file_env.items() if v is not None}))
        with PgServer(folder / "pg") as pg:
            shared_db = folder / "shared" / "campaigns.duckdb"  # only the simulator's file sits beside it
            shared_env = {**common, "CAMPAIGNS_STORE": "postgres", "CAMPAIGNS_STORE_URL": pg.url,
                          "CAMPAIGNS_DB": str(shared_db)}
            _set_env(shared_env)
            campaign_ids = _prepare(shared_db)
            results.append(_run("PostgreSQL (shared)", shared_db, campaign_ids, 3, shared_env))
    finally:
        _set_env(saved)
        shutil.rmtree(folder, ignore_errors=True)

    print(f"{'store':<22}{'workers':>8}{'ticks/min':>11}{'calls/min':>11}{'claim ms med/p95':>19}"
          f"{'dashboard ms med/p95':>23}{'errors':>8}{'lock wait':>10}{'worker CPU':>14}{'load':>6}")
    for r in results:
        print(f"{r['label']:<22}{r['workers']:>8}{r['ticks_per_minute']:>11.1f}{r['placed_per_minute']:>11.0f}"
              f"{r['claim_median']:>10.0f}/{r['claim_p95']:<8.0f}{r['dash_median']:>13.0f}/{r['dash_p95']:<9.0f}"
              f"{r['errors']:>8}{r['lock_wait']:>9.0%} {r['cpu_cores']:>7.2f} cores{r['load']:>6.1f}")
    base, shared = results
    print(f"ratio shared/file: ticks/min {shared['ticks_per_minute'] / base['ticks_per_minute']:.2f}x, "
          f"calls/min {shared['placed_per_minute'] / base['placed_per_minute']:.2f}x, "
          f"claim median {shared['claim_median'] / base['claim_median']:.2f}x, "
          f"dashboard median {shared['dash_median'] / base['dash_median']:.2f}x")
    for r in results:
        print(f"  {r['label']} dashboard draws (median ms): "
              + ", ".join(f"{name} {ms:.0f}" for name, ms in r["draws"].items()))


if __name__ == "__main__":
    main()
