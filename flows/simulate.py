"""A simulated run: dialing ticks, enrichment and metrics on a virtual clock with the simulator.

The loop calls the same functions the scheduled flows wrap (`run_tick`, `run_enrichment`,
`run_aggregation`), so a simulated month exercises exactly the production code in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tasks.clock import VirtualClock
from tasks.dialing import load_plans, run_tick
from tasks.store import connect, held_open
from tasks.telephony.base import TelephonyProvider


@dataclass
class SimulationResult:
    """What a simulation did."""

    start: datetime
    end: datetime
    ticks: int = 0
    placed: int = 0
    enrichment_passes: int = 0
    aggregations: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "ticks": self.ticks, "placed": self.placed,
                "enrichment_passes": self.enrichment_passes, **self.extra}


def _in_flight(db, campaign_ids) -> int:
    with connect(db) as conn:
        return conn.execute(
            "select count(*) from campaign_contacts where in_flight_call_id is not null"
            " and ($ids is null or list_contains($ids, campaign_id))",
            {"ids": campaign_ids},
        ).fetchone()[0]


def _unfinished(db, campaign_ids) -> int:
    with connect(db) as conn:
        return conn.execute(
            "select count(*) from campaign_contacts where finished_at is null"
            " and ($ids is null or list_contains($ids, campaign_id))",
            {"ids": campaign_ids},
        ).fetchone()[0]


def _next_opening(db, campaign_ids, after: datetime) -> datetime | None:
    with connect(db) as conn:
        plans = [p for p in load_plans(conn, campaign_ids) if p.active and p.schedule.start_date is not None]
    openings = [o for o in (p.schedule.next_open(after) for p in plans) if o is not None]
    return min(openings) if openings else None


def _next_local_midnight(db, campaign_ids, now: datetime) -> datetime:
    with connect(db) as conn:
        plans = load_plans(conn, campaign_ids)
    candidates = []
    for plan in plans:
        local = plan.schedule.local(now)
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        candidates.append(midnight.astimezone(timezone.utc))
    return min(candidates) if candidates else now + timedelta(days=1)


def simulate(
    db: str | Path | None,
    provider: TelephonyProvider,
    start: datetime,
    days: float,
    *,
    campaign_ids: list[int] | None = None,
    tick_seconds: float = 60.0,
    pace_seconds: float | None = None,
    aggregate_every: timedelta | None = timedelta(days=1),
    on_progress: Callable[[datetime, SimulationResult], None] | None = None,
) -> SimulationResult:
    """Drive ticks and enrichment minute by minute (skipping idle time) from `start` for `days`."""
    from flows.enrich_calls import run_enrichment

    try:
        from flows.aggregate_metrics import run_aggregation
    except ModuleNotFoundError:  # metrics not installed in this build
        run_aggregation = None

    clock = VirtualClock(start)
    end = start + timedelta(days=days)
    result = SimulationResult(start=start, end=end)
    next_aggregation = start + aggregate_every if aggregate_every else None
    with held_open(db):
        while clock.now() < end:
            tick_start = clock.now()
            run_enrichment(db, provider, tick_start)
            result.enrichment_passes += 1
            tick = run_tick(db, provider, clock, campaign_ids=campaign_ids, pace_seconds=pace_seconds)
            result.ticks += 1
            result.placed += tick.placed
            if tick.placed == 0 and _in_flight(db, campaign_ids) == 0:
                # Nothing in flight and nobody callable now: jump to the next moment something can change.
                if _unfinished(db, campaign_ids) == 0:
                    break
                opening = _next_opening(db, campaign_ids, tick_start + timedelta(seconds=tick_seconds))
                if opening is None:
                    break
                if opening <= tick_start + timedelta(seconds=tick_seconds):
                    opening = _next_opening(db, campaign_ids, _next_local_midnight(db, campaign_ids, tick_start))
                    if opening is None:
                        break
                clock.advance_to(min(opening, end))
            else:
                clock.advance_to(tick_start + timedelta(seconds=tick_seconds))
            if run_aggregation and next_aggregation and clock.now() >= next_aggregation:
                # metrics daily; the analyst snapshot (a full copy) only once, at the end
                run_aggregation(db, now=clock.now(), snapshot=False)
                result.aggregations += 1
                next_aggregation = clock.now() + aggregate_every
            if on_progress:
                on_progress(clock.now(), result)
        # Let the last calls finish and be analysed, then settle what is left.
        for _ in range(3):
            clock.sleep(15 * 60)
            run_enrichment(db, provider, clock.now())
        if run_aggregation:
            run_aggregation(db, now=clock.now())
            result.aggregations += 1
    result.end = clock.now()
    return result


def _build_flow():
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    @task(name="simulate-days", cache_policy=NO_CACHE, persist_result=False)
    def simulate_days(db, start, days, campaign_ids, seed) -> dict:
        from tasks.settings import get_settings
        from tasks.telephony import make_provider

        settings = get_settings().model_copy(update={"provider": "simulator", "simulator_seed": seed})
        provider = make_provider(settings, db=db)
        return simulate(db, provider, start, days, campaign_ids=campaign_ids).as_dict()

    @flow(name="simulate-campaigns", persist_result=False)
    def simulate_campaigns(
        start: datetime, days: float = 14, campaign_ids: list[int] | None = None, db: str | None = None, seed: int = 42
    ) -> dict:
        """Days of dialing, enrichment and metrics on a virtual clock with the simulated provider."""
        return simulate_days(db, start, days, campaign_ids, seed)

    return simulate_campaigns


def __getattr__(name: str):
    # Built on first use so importing this module does not import Prefect.
    if name == "simulate_campaigns":
        globals()[name] = _build_flow()
        return globals()[name]
    raise AttributeError(name)
