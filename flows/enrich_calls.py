"""The enrich_calls flow: poll the provider for every unfinished call and store what it says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.enrichment import apply_plan, collect_updates, pending_calls
from tasks.settings import get_settings
from tasks.store import connect, transaction
from tasks.telephony.base import TelephonyProvider


def run_enrichment(db: str | Path | None, provider: TelephonyProvider, now: datetime) -> dict:
    """One enrichment pass (shared by the flow, the CLI and the simulation loop); returns counts."""
    settings = get_settings()
    stuck_minutes = settings.stuck_call_minutes
    with connect(db) as conn:
        pending = pending_calls(conn, now, stuck_minutes, settings.max_call_minutes)
    # The connection is closed here: the provider may be a slow HTTP API.
    plan = collect_updates(provider, pending, now, stuck_minutes, settings.max_call_minutes) if pending.height else None
    changed = 0
    if plan is not None and plan.updates.height:
        with transaction(db) as conn:
            changed = apply_plan(conn, plan, now)
    return {
        "pending": pending.height,
        "asked": plan.asked if plan else 0,
        "changed": changed,
        "stuck_errors": plan.stuck_errors if plan else 0,
        "analysis_missing": plan.analysis_missing if plan else 0,
        "unknown": plan.unknown if plan else 0,
        "provider_errors": plan.provider_errors if plan else 0,
    }


def _make_provider(db: str | Path | None) -> TelephonyProvider:
    from tasks.telephony import make_provider

    return make_provider(db=db)


# The provider holds open handles: never hash it into a cache key; a pass is idempotent, so retry.
@task(name="enrich-pending-calls", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def enrich_pending_calls(db: str | None, provider: TelephonyProvider, now: datetime) -> dict:
    """One enrichment pass as a Prefect task."""
    return run_enrichment(db, provider, now)


@flow(name="enrich-calls")
def enrich_calls(now: datetime | None = None, db: str | None = None, aggregate: bool = True) -> dict:
    """Every minute: poll the provider for unfinished calls and write outcomes, analysis, credits.

    The run's state message counts what the pass did; provider errors are logged, and a pass whose every read
    failed (an outage, a refused API key) ends Failed so that Prefect's failure alerts fire."""
    from prefect.states import Completed, Failed

    result = enrich_pending_calls(db, _make_provider(db), now or datetime.now(UTC))
    if aggregate and result["changed"]:
        # Managers expect the metrics to follow the call log within the minute: refresh them now
        # (incremental) rather than waiting for the 5-minute schedule.
        from flows.aggregate_metrics import aggregate_metrics

        result["metrics"] = aggregate_metrics(db=db)
    message = pass_message(result)
    if result["provider_errors"]:
        get_run_logger().warning(message)
    if result["asked"] and result["provider_errors"] >= result["asked"]:
        return Failed(message=message, data=result)
    return Completed(message=message, data=result)


def pass_message(result: dict) -> str:
    """An enrichment pass as one line: "pending 12, asked 12, changed 9, provider errors 0"."""
    return (f"pending {result['pending']}, asked {result['asked']}, changed {result['changed']}, provider errors "
            f"{result['provider_errors']}" + (f", closed as stuck {result['stuck_errors']}" if result["stuck_errors"] else ""))
