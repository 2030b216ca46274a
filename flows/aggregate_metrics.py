"""The aggregate_metrics flow: refresh contact_stats / metrics_daily, then the analysts' snapshot."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tasks.best_time import refresh_best_time_stats
from tasks.metrics import aggregate
from tasks.snapshot import refresh_snapshot, snapshot_path
from tasks.store import connect, transaction


def run_aggregation(
    db: str | Path | None = None,
    campaign_id: int | None = None,
    full: bool = False,
    now: datetime | None = None,
    snapshot: bool = True,
) -> dict:
    """One aggregation run (shared by the flow, the CLI and the simulator); returns counts and timings."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    with transaction(db) as conn:
        result = aggregate(conn, now, campaign_id=campaign_id, full=full)
        result["best_time_cells"] = refresh_best_time_stats(conn, now, campaign_id)
    result["aggregate_seconds"] = round(time.perf_counter() - started, 3)
    if snapshot:
        started = time.perf_counter()
        # A fresh connection outside the transaction: COPY FROM DATABASE reads a committed state.
        with connect(db) as conn:
            result["snapshot"] = str(refresh_snapshot(conn, snapshot_path(db)))
        result["snapshot_seconds"] = round(time.perf_counter() - started, 3)
    return result


@task(name="aggregate-metrics", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def aggregate_metrics_task(db: str | None, campaign_id: int | None, full: bool) -> dict:
    """One aggregation run as a Prefect task (idempotent, so retried)."""
    return run_aggregation(db, campaign_id, full)


@flow(name="aggregate-metrics")
def aggregate_metrics(campaign_id: int | None = None, db: str | None = None, full: bool = False) -> dict:
    """Every 5 minutes and after enrichment: bring the metrics tables and the analyst snapshot up to date."""
    return aggregate_metrics_task(db, campaign_id, full)
