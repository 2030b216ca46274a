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
from tasks.dialing import NOBODY, load_plans, outcome_phrase, run_tick
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


# What the idle jump needs to know, over the unfinished enrollments of the campaigns simulated:
# `in_flight`; `held` = callable by their campaign state now (not finished, under the limits, no retry
# pending) yet not claimed — a callee window, holiday, rolling cap or number cap holds them, and those
# open on callee-local quarter hours, expire or reset at midnight; `waiting` = done for the campaign-local
# day (they come back at local midnight); `next_retry` = the earliest retry time set in the future.
# Contacts on a do-not-call list never come back by themselves: a run with only those left is complete.
IDLE_SQL = """
with scope as (
    -- the campaign-local day once per campaign (a time zone conversion per enrollment cost a second at 100k)
    select campaign_id, ($now at time zone time_zone)::date as local_day, attempts_per_day, max_attempts from campaigns
    where active and start_date is not null and ($ids is null or list_contains($ids, campaign_id))
),
open_enrollments as (
    select cc.*, s.local_day, s.attempts_per_day, s.max_attempts, c.phone_e164
    from campaign_contacts cc join scope s using (campaign_id) join contacts c using (contact_id)
    where cc.finished_at is null
),
dnc as (
    select prefix, is_prefix, campaign_id from do_not_call
),
prefix_lengths as (
    select distinct length(prefix) as n from dnc where is_prefix
),
suppressed as (
    -- exact numbers by hash; wildcards by one equality probe per distinct wildcard length (as the claim)
    select e.campaign_id, e.contact_id
    from open_enrollments e join dnc d on e.phone_e164 = d.prefix and not d.is_prefix
    where d.campaign_id is null or d.campaign_id = e.campaign_id
    union
    select e.campaign_id, e.contact_id
    from open_enrollments e cross join prefix_lengths l join dnc d on left(e.phone_e164, l.n) = d.prefix and d.is_prefix
    where d.campaign_id is null or d.campaign_id = e.campaign_id
),
classified as (
    select e.in_flight_call_id is not null as in_flight,
           e.attempts_day = e.local_day and e.attempts_on_day >= e.attempts_per_day
               as done_today,
           e.next_call_at > $now as retry_later,
           e.next_call_at,
           e.attempts < e.max_attempts as under_limit
    from open_enrollments e anti join suppressed using (campaign_id, contact_id)
),
final as (
    select count(*) filter (where in_flight) as in_flight,
           count(*) filter (where not in_flight and under_limit and not coalesce(done_today, false)
                            and not coalesce(retry_later, false)) as held,
           count(*) filter (where not in_flight and coalesce(done_today, false)) as waiting,
           -- a retry of someone done for the day waits for midnight anyway (`waiting`)
           min(next_call_at) filter (where not in_flight and retry_later and not coalesce(done_today, false)
                                     and under_limit) as next_retry
    from classified
)
select * from final
"""
IN_FLIGHT_SQL = """
select count(*) from campaign_contacts
where in_flight_call_id is not null and ($ids is null or list_contains($ids, campaign_id))
"""
# Why the claims at `$tick` held contacts back (rule kinds) and, for caps, the next moment one of the
# simulated contacts' attempts leaves a cap window (a superset of the moments a capped contact frees).
HELD_BY_SQL = """
select distinct split_part(rule, ':', 1) from claim_audit
where tick_at = $tick and ($ids is null or list_contains($ids, campaign_id))
"""
CAP_EXPIRY_SQL = """
with scope as (
    select distinct cc.contact_id from campaign_contacts cc join campaigns c using (campaign_id)
    where cc.finished_at is null and c.active and ($ids is null or list_contains($ids, cc.campaign_id))
),
expiries as (
    select attempted_at + interval 24 hours as expires_at from phone_attempts semi join scope using (contact_id)
    where attempted_at > $now - interval 24 hours
    union all
    select attempted_at + interval 30 days from phone_attempts semi join scope using (contact_id)
    where attempted_at > $now - interval 30 days
),
final as (select min(expires_at) as next_expiry from expiries where expires_at > $now)
select * from final
"""
CAP_RULES = {"cap_24h", "cap_30d", "do_not_call"}
QUARTER_HOUR = timedelta(minutes=15)


def idle_state(conn, campaign_ids: list[int] | None, now: datetime) -> tuple[int, int, int, datetime | None]:
    """(in flight, held by a rule now, done for the day, earliest future retry) of the simulated campaigns."""
    return conn.execute(IDLE_SQL, {"ids": campaign_ids, "now": now}).fetchone()


def next_quarter_hour(now: datetime) -> datetime:
    """The next :00/:15/:30/:45 after `now` (UTC quarter hours are every zone's: offsets are whole quarters)."""
    floor = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    return floor + QUARTER_HOUR


def idle_until(plans, now: datetime, held: int, waiting: int, next_retry: datetime | None,
               cap_expiry: datetime | None = None) -> datetime | None:
    """The earliest moment a simulation with nobody callable at `now` can dial again; None = never.

    Closed schedule → its next opening. Open → the earliest of: when a rule holds someone back, the
    next quarter hour (callee windows open on local quarter hours) or, when only rolling caps hold them,
    the opening at or after `cap_expiry`; the next local midnight's opening when someone is done for
    the day; and the opening at or after the earliest future retry.
    """
    def opening(after: datetime) -> datetime | None:
        found = [o for o in (p.schedule.next_open(after) for p in plans) if o is not None]
        return min(found) if found else None

    first = opening(now)
    if first is None:
        return None
    if first > now:
        return first
    moments = []
    if held:
        moments.append(next_quarter_hour(now) if cap_expiry is None else opening(cap_expiry))
    if waiting:
        midnights = []
        for plan in plans:
            local = plan.schedule.local(now)
            midnights.append((local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
                             .astimezone(timezone.utc))
        moments.append(opening(min(midnights)))
    if next_retry is not None:
        moments.append(opening(next_retry))
    moments = [m for m in moments if m is not None]
    return min(moments) if moments else None


def _note_hold(result: SimulationResult, tick, at: datetime) -> None:
    """Keep why the latest ticks placed nothing (`held_by`: a paused number, a daily cap...) and when it was last seen
    (`held_at`: a run may end days later, on a weekend, with the hold of its last calling tick), None once one places.

    A run that ends with contacts left can then say what held them; "nobody callable now" is no hold.
    """
    if tick.placed:
        result.extra["held_by"] = result.extra["held_at"] = None
        return
    # nobody callable is no hold by itself, but with whom the callee rules held back it is (a 30-day cap holding
    # everyone left past the end date: the run ended with "still to dial" and no why)
    reasons = [outcome_phrase(b.message, b.held) for b in tick.batches
               if b.run_id is None and b.message is not None and (b.message != NOBODY or b.held)]
    if reasons:
        result.extra["held_by"], result.extra["held_at"] = "; ".join(dict.fromkeys(reasons)), at


def simulate(
    db: str | Path | None,
    provider: TelephonyProvider,
    start: datetime,
    days: float,
    *,
    campaign_ids: list[int] | None = None,
    tick_seconds: float = 60.0,
    pace_seconds: float | None = None,
    aggregate_every: timedelta | None = None,
    on_progress: Callable[[datetime, SimulationResult], bool | None] | None = None,
    snapshot: bool = True,
) -> SimulationResult:
    """Drive ticks and enrichment minute by minute (skipping idle time) from `start` for `days`.

    Metrics are aggregated once at the end (nobody else can read the store while a simulation holds
    it); `aggregate_every` also aggregates along the way, e.g. to exercise the incremental path.

    `on_progress` sees the clock after every tick; returning True ends the run early (the forecast
    stops a campaign that places nothing any more). `snapshot=False` skips the final analyst snapshot
    (a forecast's copy must never replace the real one).
    """
    from flows.enrich_calls import run_enrichment

    try:
        from flows.aggregate_metrics import run_aggregation
    except ModuleNotFoundError:  # metrics not installed in this build
        run_aggregation = None

    clock = VirtualClock(start)
    end = start + timedelta(days=days)
    result = SimulationResult(start=start, end=end, extra={"held_by": None, "held_at": None})
    next_aggregation = start + aggregate_every if aggregate_every else None
    # one DuckDB thread: a tick is many small statements, each slower with parallel set-up (-25% CPU)
    with held_open(db, threads=1):
        while clock.now() < end:
            tick_start = clock.now()
            run_enrichment(db, provider, tick_start)
            result.enrichment_passes += 1
            tick = run_tick(db, provider, clock, campaign_ids=campaign_ids, pace_seconds=pace_seconds)
            result.ticks += 1
            result.placed += tick.placed
            _note_hold(result, tick, tick_start)
            after = tick_start + timedelta(seconds=tick_seconds)
            if tick.placed == 0:
                with connect(db) as conn:
                    # the cheap check first: the last batch's calls still ringing is the common case
                    in_flight = conn.execute(IN_FLIGHT_SQL, {"ids": campaign_ids}).fetchone()[0]
                    if not in_flight:
                        in_flight, held, waiting, next_retry = idle_state(conn, campaign_ids, after)
                        plans = [p for p in load_plans(conn, campaign_ids) if p.active and p.schedule.start_date is not None]
                if in_flight:
                    clock.advance_to(after)
                elif not (held or waiting or next_retry):
                    break  # finished, or only contacts nothing will ever release (do-not-call) are left
                else:
                    if tick.batches and all(b.run_id is None and b.message not in (None, NOBODY) for b in tick.batches):
                        # no outbound number may dial (daily number caps, health pauses): those reset at midnight
                        held, waiting = 0, waiting + held
                    cap_expiry = None
                    if held:
                        with connect(db) as conn:
                            kinds = {r[0] for r in conn.execute(HELD_BY_SQL, {"tick": tick_start, "ids": campaign_ids}).fetchall()}
                            if kinds and kinds <= CAP_RULES:
                                # only rolling caps hold them: nothing frees before an attempt leaves a window
                                cap_expiry = conn.execute(CAP_EXPIRY_SQL, {"now": after, "ids": campaign_ids}).fetchone()[0]
                                held = held if cap_expiry is not None else 0
                    # Nothing in flight and nobody callable now: jump to the next moment something can change.
                    wake = idle_until(plans, after, held, waiting, next_retry, cap_expiry)
                    if wake is None:
                        break  # the schedules never open again
                    clock.advance_to(min(max(wake, after), end))
            else:
                clock.advance_to(after)
            if run_aggregation and next_aggregation and clock.now() >= next_aggregation:
                # metrics daily; the analyst snapshot (a full copy) only once, at the end
                run_aggregation(db, now=clock.now(), snapshot=False)
                result.aggregations += 1
                next_aggregation = clock.now() + aggregate_every
            if on_progress and on_progress(clock.now(), result):
                break
        # Let the last calls finish and be analysed, then settle what is left.
        for _ in range(3):
            clock.sleep(15 * 60)
            run_enrichment(db, provider, clock.now())
        if run_aggregation:
            run_aggregation(db, now=clock.now(), snapshot=snapshot)
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
