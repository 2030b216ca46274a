"""The forecast: a campaign's expected completion date, calls, connected and successful contacts and credits.

It copies the campaign — settings, agent, outbound numbers, enrolled contacts with their dialing
state, best-time table — into a temporary DuckDB file and runs the seeded simulator on the virtual
clock with flows.simulate.simulate (the production tick, enrichment and aggregation code) until
every contact is finished, nothing can be placed any more, or the horizon ends. The real store is
only read. What was already called is added to the totals.

The outcome odds: once the campaign has MIN_OBSERVED_CALLS attempts with an outcome, the simulator
reproduces its observed mix (answered, voicemail, no answer, busy, declined and failed shares, the
success share of connected calls, and the share of voicemails that were personalised greetings the
agent talked into, which bill per minute instead of the flat voicemail rate), keeping the simulator's
hour × weekday shape; before that, the simulator's defaults. Shares measured on few calls lean
toward their prior by PRIOR_CALLS pseudo-calls: an hour band toward the campaign-wide answer rate,
the campaign-wide shares toward the defaults.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Literal

import polars as pl

from tasks.compliance import suppressed_contacts
from tasks.errors import NotFoundError
from tasks.metrics import CONNECTED_SQL
from tasks.settings import get_settings
from tasks.store import connect, init_db, local_file, transaction
from tasks.telephony.simulator import (
    BUSY_SHARE,
    DEFAULT_RATES,
    FAILURE_SHARE,
    NO_ANSWER_SHARE,
    SUCCESS_SHARE,
    VOICEMAIL_SHARE,
    OutcomeRates,
    SimulatedProvider,
    answer_probability,
    callee_zone,
)

TICK_SECONDS = 60.0
# No call placed for this long: the contacts left are held back (do-not-call, legal windows) for good.
IDLE_STOP = timedelta(days=8)  # longer than any gap between calling days
# ... or this long, when no contact waits for a retry time either (weekends fit inside it).
QUIET_STOP = timedelta(days=3)
# Attempts with an outcome before the campaign's own rates replace the simulator's defaults: at 200
# calls an answer share near 30% is known to about ±3 points (one standard error), the default's
# hour × weekday shape is kept, so a smaller sample would mostly add noise.
MIN_OBSERVED_CALLS = 200
# Weight of a share's prior, in calls: an hour band with 20 calls is half its own rate, half the
# campaign's; a share of 200 calls moves a tenth of the way to its default (the success share, of
# connected calls only, further while they are few).
PRIOR_CALLS = 20
OUTCOMES = ("connected", "voicemail", "no_answer", "busy", "declined", "failed", "invalid")
# OUTCOMES_SQL's class for a voicemail greeting the agent talked into; counted in 'voicemail' in the mix
GREETING = "greeting"
RatesChoice = Literal["auto", "observed", "default"]

# A call still in flight has no outcome yet: the forecast's copy places it again (see copy_campaign).
IN_FLIGHT_SQL = """
select in_flight_call_id from campaign_contacts where campaign_id = $campaign_id and in_flight_call_id is not null
"""
TOTALS_SQL = f"""
with attempts as (
    select contact_id, credits, call_successful, {CONNECTED_SQL} as is_connected
    from calls where campaign_id = $campaign_id and counts_as_attempt and call_id not in ({IN_FLIGHT_SQL})
),
final as (
    select count(*) as calls,
           count(*) filter (where is_connected) as connected_calls,
           count(distinct contact_id) filter (where is_connected) as connected_contacts,
           count(distinct contact_id) filter (where call_successful) as successful_contacts,
           coalesce(sum(credits), 0) as credits
    from attempts
)
select * from final
"""
# The attempts with an outcome, counted per outcome class, number prefix (+1 NPA X: the simulator's
# callee-zone key) and UTC quarter hour (every zone's offset is whole quarters, so the callee-local
# hour and weekday are the same for the whole group): a few thousand rows for a million calls.
OUTCOMES_SQL = f"""
with attempts as (
    select phone_e164, coalesce(registered_at, queued_at) as placed_at, status, disconnect_reason,
           coalesce(in_voicemail, false) as in_voicemail, coalesce(call_successful, false) as call_successful,
           -- a non-finite duration is none, as tasks.credits.call_credits reads it
           coalesce(isfinite(duration_seconds) and duration_seconds > 0, false) as talked
    from calls
    where campaign_id = $campaign_id and counts_as_attempt and disconnect_reason is not null
),
classified as (
    select phone_e164, placed_at, call_successful,
           case
               when disconnect_reason = 'invalid_destination' then 'invalid'
               when {CONNECTED_SQL} then 'connected'
               -- the simulator's voicemail share: not connected, by the reason or the analysis flag; a box the
               -- provider did not recognise but the agent talked into bills per minute (tasks.credits.call_credits)
               when disconnect_reason = 'voicemail_reached' then 'voicemail'
               when in_voicemail and talked then '{GREETING}'
               when in_voicemail then 'voicemail'
               when disconnect_reason = 'dial_no_answer' then 'no_answer'
               when disconnect_reason = 'dial_busy' then 'busy'
               when disconnect_reason = 'user_declined' then 'declined'
               else 'failed'
           end as outcome
    from attempts
),
final as (
    select any_value(phone_e164) as phone_e164, time_bucket(interval '15 minutes', placed_at) as quarter_hour,
           outcome, count(*) as calls, count(*) filter (where call_successful) as successful
    from classified
    group by substr(phone_e164, 1, 6), quarter_hour, outcome
)
select * from final
"""


@dataclass(frozen=True)
class ObservedRates:
    """A campaign's outcome mix so far and the simulator odds that reproduce it."""

    calls: int  # attempts with an outcome
    mix: dict[str, float]  # share of those calls per outcome (OUTCOMES); empty without calls
    success_share: float | None  # successful ÷ connected calls
    rates: OutcomeRates


def _shrunk(hits: float, calls: float, prior: float) -> float:
    """A share measured on `calls` leaning toward `prior` by PRIOR_CALLS pseudo-calls (the prior itself without calls)."""
    return prior if calls == 0 else (hits + PRIOR_CALLS * prior) / (calls + PRIOR_CALLS)


def _outcome_rows(conn, campaign_id: int) -> list[tuple]:
    """(a callee number, UTC quarter hour, outcome class, calls, successful calls) per group of OUTCOMES_SQL."""
    return conn.execute(OUTCOMES_SQL, {"campaign_id": campaign_id}).fetchall()


@dataclass(frozen=True)
class _Mix:
    """The attempts with an outcome counted per outcome class (OUTCOMES; greetings talked into are voicemails)."""

    count: dict[str, int]
    successes: int  # successful connected calls
    greetings: int  # voicemails whose greeting the agent talked into

    @property
    def calls(self) -> int:
        return sum(self.count.values())

    @property
    def shares(self) -> dict[str, float]:
        return {outcome: round(n / self.calls, 4) for outcome, n in self.count.items()} if self.calls else {}

    @property
    def success_share(self) -> float | None:
        return round(self.successes / self.count["connected"], 4) if self.count["connected"] else None


def _mix(rows: list[tuple]) -> _Mix:
    """The rows of OUTCOMES_SQL summed up."""
    count = dict.fromkeys(OUTCOMES, 0)
    successes = greetings = 0
    for _phone, _quarter_hour, outcome, calls, successful in rows:
        greetings += calls if outcome == GREETING else 0
        count["voicemail" if outcome == GREETING else outcome] += calls
        successes += successful if outcome == "connected" else 0
    return _Mix(count, successes, greetings)


def outcome_mix(conn, campaign_id: int) -> tuple[int, dict[str, float], float | None]:
    """The attempts with an outcome, their share per outcome class, and the success share of connected calls."""
    mix = _mix(_outcome_rows(conn, campaign_id))
    return mix.calls, mix.shares, mix.success_share


def observed_rates(conn, campaign_id: int) -> ObservedRates:
    """The simulator odds that reproduce a campaign's calls so far (the defaults exactly when it has none)."""
    rows = _outcome_rows(conn, campaign_id)
    mix = _mix(rows)
    count = mix.count
    # per callee-local hour: calls that reached the pick-up draw, how many picked up, how many the defaults expect
    drawn, answered, expected = [0] * 24, [0] * 24, [0.0] * 24
    for phone, quarter_hour, outcome, calls, _successful in rows:
        if outcome in ("invalid", "failed"):
            continue
        # the simulator's own callee zone and curve, so the scale is relative to what it would draw
        local = quarter_hour.astimezone(callee_zone(phone))
        drawn[local.hour] += calls
        answered[local.hour] += calls if outcome in ("connected", "voicemail", GREETING) else 0
        expected[local.hour] += calls * answer_probability(local)
    # campaign-wide scale: pick-ups ÷ what the default curve expects for the same calls, leaning toward 1
    # (the default) by PRIOR_CALLS calls at the campaign's mean default pick-up chance
    mean_chance = sum(expected) / sum(drawn) if sum(drawn) else 0.0
    overall = ((sum(answered) + PRIOR_CALLS * mean_chance) / (sum(expected) + PRIOR_CALLS * mean_chance)
               if sum(drawn) else 1.0)
    # each hour band leans toward the campaign-wide scale the same way: few calls = the default shape × the campaign's level
    by_hour = tuple(
        (answered[h] + PRIOR_CALLS * overall * expected[h] / drawn[h]) / (expected[h] + PRIOR_CALLS * expected[h] / drawn[h])
        if drawn[h] else overall
        for h in range(24)
    )
    unanswered = count["no_answer"] + count["busy"] + count["declined"]
    rates = OutcomeRates(
        answer_scale_by_hour=by_hour,
        voicemail_share=_shrunk(count["voicemail"], count["connected"] + count["voicemail"], VOICEMAIL_SHARE),
        # standard voicemails bill flat, greetings talked into per minute: the forecast's credits follow the split
        greeting_share=_shrunk(mix.greetings, count["voicemail"], DEFAULT_RATES.greeting_share),
        no_answer_share=_shrunk(count["no_answer"], unanswered, NO_ANSWER_SHARE),
        busy_share=_shrunk(count["busy"], unanswered, BUSY_SHARE),
        failure_scale=_shrunk(count["failed"], mix.calls - count["invalid"], FAILURE_SHARE) / FAILURE_SHARE,
        success_scale=_shrunk(mix.successes, count["connected"], SUCCESS_SHARE) / SUCCESS_SHARE,
    )
    return ObservedRates(calls=mix.calls, mix=mix.shares, success_share=mix.success_share, rates=rates)


def choose_rates(observed: ObservedRates, rates: RatesChoice = "auto") -> tuple[OutcomeRates, str]:
    """The odds the forecast simulates with, and how to say which: "observed: 1,234 calls" or "default"."""
    if rates not in ("auto", "observed", "default"):
        raise ValueError(f"rates must be auto, observed or default, not {rates!r}")
    if rates == "observed" or (rates == "auto" and observed.calls >= MIN_OBSERVED_CALLS):
        return observed.rates, f"observed: {observed.calls:,} calls"
    if rates == "auto" and observed.calls:
        return DEFAULT_RATES, f"default ({observed.calls:,} calls so far, {MIN_OBSERVED_CALLS:,} needed)"
    return DEFAULT_RATES, "default"


@dataclass
class Forecast:
    """What a campaign is expected to do (totals include what it already did)."""

    campaign_id: int
    start: datetime
    completion: datetime | None  # when the last call is expected to end; None = still calling at the horizon
    contacts: int
    remaining_contacts: int  # not finished when the forecast starts
    held_back_contacts: int  # never finished: held back for good (do-not-call, legal windows) or past the horizon
    calls: int
    connected_calls: int
    connected_contacts: int
    successful_contacts: int
    credits: int
    observed_connection_rate: float | None  # connected ÷ attempts so far (None before any call has ended)
    forecast_connection_rate: float | None
    seed: int
    horizon_days: float
    rates_used: str = "default"  # "observed: 1,234 calls" or "default" (with why, when calls were too few)
    observed_calls: int = 0  # attempts with an outcome so far
    observed_mix: dict | None = None  # share of those per outcome (connected, voicemail, no_answer, busy, declined, failed, invalid)
    observed_success_share: float | None = None  # successful ÷ connected calls so far
    forecast_mix: dict | None = None  # the same shares among the simulated calls
    simulated_until: datetime | None = None  # the virtual time the simulation stopped (all finished, stuck, or the horizon)
    held_by: str | None = None  # why dialing was held when it stopped with contacts left (a paused number, a cap)
    # of `held_back_contacts`, those on a do-not-call list: nothing releases them, so a run with only those left is
    # done (its `held_by` is None: nothing holds dialing back), as `campaigns simulate` and Completed count them
    do_not_call_contacts: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


# Tables copied for the campaign, in insert order; each query reads the real store.
_COPY = (
    ("agents", "select a.* from agents a join campaigns c using (agent_id) where c.campaign_id = $campaign_id"),
    ("phone_numbers", "select n.* from phone_numbers n join campaigns c on list_contains(c.outbound_number_ids, n.number_id)"
                      " where c.campaign_id = $campaign_id"),
    ("campaigns", "select * from campaigns where campaign_id = $campaign_id"),
    ("contacts", "select ct.* from contacts ct semi join campaign_contacts cc on cc.contact_id = ct.contact_id"
                 " and cc.campaign_id = $campaign_id"),
    # a call still in flight is not placed yet in the copy, which places it again with an outcome: its contact
    # gets back the attempt (of the day too) and its previous last call time
    ("campaign_contacts", f"""
        with in_flight as (
            select cc.contact_id, (f.queued_at at time zone k.time_zone)::date as call_day,
                   (select max(p.queued_at) from calls p where p.campaign_id = cc.campaign_id
                    and p.contact_id = cc.contact_id and p.call_id <> f.call_id) as previous_call_at
            from campaign_contacts cc join campaigns k using (campaign_id) join calls f on f.call_id = cc.in_flight_call_id
            where cc.campaign_id = $campaign_id
        )
        select cc.* replace (
            case when i.contact_id is null then cc.attempts else greatest(cc.attempts - 1, 0) end as attempts,
            case when cc.attempts_day = i.call_day then greatest(cc.attempts_on_day - 1, 0)
                 else cc.attempts_on_day end as attempts_on_day,
            case when i.contact_id is null then cc.last_call_at else i.previous_call_at end as last_call_at,
            null::bigint as in_flight_call_id)
        from campaign_contacts cc left join in_flight i using (contact_id)
        where cc.campaign_id = $campaign_id"""),
    # the rolling caps' recent attempts of those contacts (every campaign's): a number at its cap stays held
    ("phone_attempts", "select pa.* from phone_attempts pa semi join campaign_contacts cc on cc.contact_id = pa.contact_id"
                       f" and cc.campaign_id = $campaign_id where pa.call_id not in ({IN_FLIGHT_SQL})"),
    # the last two days' calls from the campaign's outbound numbers (every campaign's): a number's daily cap
    # (campaign-local day, up to 25 h), its health (24 h) and the least-used rotation count them. Only the
    # columns those read; calls in flight elsewhere wait as `queued` (counted, never polled); this campaign's
    # are placed again. forecast() deletes these rows before counting the simulated calls.
    ("calls", f"""
        select call_id, campaign_id, contact_id, null::bigint as run_id, attempt_key, attempt_number,
               counts_as_attempt, phone_e164, from_number,
               case when status in ('queued', 'created', 'registered', 'in_progress') then 'queued'
                    else status end as status,
               disconnect_reason, in_voicemail, duration_seconds, provider, queued_at, registered_at, ended_at,
               case when status = 'ended' then coalesce(analyzed_at, ended_at, queued_at) else analyzed_at end
                   as analyzed_at,
               updated_at
        from calls
        where queued_at >= $now::timestamptz - interval 2 days and queued_at <= $now
          and from_number in (select n.e164 from phone_numbers n join campaigns k
                              on list_contains(k.outbound_number_ids, n.number_id) where k.campaign_id = $campaign_id)
          and call_id not in ({IN_FLIGHT_SQL})"""),
    # when each of those numbers was last put back in rotation: its health is judged from then on
    ("number_status_changes", "select s.* from number_status_changes s join campaigns k"
                              " on list_contains(k.outbound_number_ids, s.number_id) where k.campaign_id = $campaign_id"),
    ("best_time_stats", "select * from best_time_stats where campaign_id = $campaign_id"),
    # the compliance rules the claim applies (tasks/compliance.py), whole
    ("zone_keys", "select * from zone_keys"),
    ("calling_rules", "select * from calling_rules"),
    ("do_not_call", "select * from do_not_call where campaign_id is null or campaign_id = $campaign_id"),
)


# (table, key column, its sequence): copied rows keep their keys, so the copy's sequences must start past them
# (the simulation adds do-not-call entries from call analysis, for one)
_SEQUENCES = (
    ("agents", "agent_id", "agent_id_seq"),
    ("phone_numbers", "number_id", "number_id_seq"),
    ("campaigns", "campaign_id", "campaign_id_seq"),
    ("contacts", "contact_id", "contact_id_seq"),
    ("campaign_contacts", "enroll_seq", "enroll_seq"),
    ("do_not_call", "dnc_id", "dnc_id_seq"),
    # a refund deletes its attempt by call id: the copy's calls must not reuse a copied attempt's or call's id
    ("phone_attempts", "call_id", "call_id_seq"),
    ("calls", "call_id", "call_id_seq"),
)


def copy_campaign(source: str | Path | None, target: Path, campaign_id: int, now: datetime) -> None:
    """Copy one campaign and what dialing it needs into a new store at `target`, ready to simulate from `now`.

    In the copy the campaign is active (from today when it has no start date yet); a call still in flight
    in the real store is not placed yet (its contact has the attempt back), so the simulation places it
    again and draws its outcome. The last two days' calls from the campaign's numbers are copied too, for
    their daily caps and health.
    """
    with connect(source) as conn:
        if not conn.execute("select 1 from campaigns where campaign_id = ?", [campaign_id]).fetchone():
            raise NotFoundError(f"campaign {campaign_id} does not exist")
        present = {row[0] for row in conn.execute("select table_name from information_schema.tables").fetchall()}
        params = {"campaign_id": campaign_id, "now": now}
        frames = [(table, conn.execute(query, {k: v for k, v in params.items() if f"${k}" in query}).pl())
                  for table, query in _COPY if table in present]
    init_db(target)
    with transaction(target) as conn:
        for table, frame in frames:
            conn.register("copied", frame)
            try:
                # table names come from _COPY, never from input; rows a migration seeded are replaced
                conn.execute(f"delete from {table}")
                conn.execute(f"insert into {table} by name select * from copied")
            finally:
                conn.unregister("copied")
        conn.execute(
            """
            update campaigns set active = true,
                start_date = coalesce(start_date, ($now::timestamptz at time zone time_zone)::date)
            where campaign_id = $campaign_id
            """,
            {"now": now, "campaign_id": campaign_id},
        )
        highest: dict[str, int] = {}
        for table, column, sequence in _SEQUENCES:
            if table in present:
                # names from _SEQUENCES only
                used = conn.execute(f"select coalesce(max({column}), 0) from {table}").fetchone()[0]
                highest[sequence] = max(highest.get(sequence, 0), used)
        for sequence, used in highest.items():
            # DuckDB has no ALTER SEQUENCE ... RESTART, so draw the used values
            conn.execute(f"select max(nextval('{sequence}')) from range(?)", [used])


def simulate_campaign(
    db: str | Path | None, provider, start: datetime, days: float, campaign_id: int, pace: float,
):
    """Dial one campaign on the virtual clock to completion with flows.simulate (production tick, enrichment and
    aggregation code, no analyst snapshot); its SimulationResult (`end`, and `held_by`: why dialing was held at
    the end, if it was).

    It also stops when nothing was placed for QUIET_STOP with no retry pending, or for IDLE_STOP at
    all: the contacts left are held back for good (do-not-call, legal windows, paused numbers).
    """
    from flows.simulate import simulate

    last_placed = {"calls": 0, "at": start}

    def placing_nothing_for_good(now: datetime, result) -> bool:
        if result.placed != last_placed["calls"]:
            last_placed.update(calls=result.placed, at=now)
            return False
        idle = now - last_placed["at"]
        return idle > IDLE_STOP or (idle > QUIET_STOP and not _waiting_for_retry(db, campaign_id, now))

    return simulate(db, provider, start, days, campaign_ids=[campaign_id], tick_seconds=TICK_SECONDS,
                    pace_seconds=pace, on_progress=placing_nothing_for_good, snapshot=False)


def _waiting_for_retry(db: str | Path | None, campaign_id: int, now: datetime) -> bool:
    with connect(db) as conn:
        return conn.execute(
            "select count(*) > 0 from campaign_contacts where campaign_id = ? and finished_at is null and next_call_at > ?",
            [campaign_id, now]).fetchone()[0]


def _totals(db: str | Path | None, campaign_id: int) -> dict:
    with connect(db) as conn:
        cursor = conn.execute(TOTALS_SQL, {"campaign_id": campaign_id})
        return dict(zip([d[0] for d in cursor.description], cursor.fetchone()))


def _connected_contacts(db: str | Path | None, campaign_id: int) -> set[int]:
    with connect(db) as conn:
        return {row[0] for row in conn.execute(
            f"select distinct contact_id from calls where campaign_id = $campaign_id and counts_as_attempt"
            f" and {CONNECTED_SQL} and call_id not in ({IN_FLIGHT_SQL})", {"campaign_id": campaign_id}).fetchall()}


def _last_call(db: str | Path | None, campaign_id: int) -> datetime | None:
    """When the campaign's last call ended (or was queued), leaving out calls still in flight."""
    with connect(db) as conn:
        return conn.execute(
            f"select max(coalesce(ended_at, queued_at)) from calls where campaign_id = $campaign_id"
            f" and call_id not in ({IN_FLIGHT_SQL})", {"campaign_id": campaign_id}).fetchone()[0]


def _rate(totals: dict) -> float | None:
    return round(totals["connected_calls"] / totals["calls"], 4) if totals["calls"] else None


def forecast(
    db: str | Path | None,
    campaign_id: int,
    now: datetime,
    *,
    seed: int | None = None,
    horizon_days: float = 120.0,
    pace_seconds: float | None = None,
    work_dir: str | Path | None = None,
    rates: RatesChoice = "auto",
) -> Forecast:
    """Forecast a campaign from `now` (or its start, if later) by simulating a copy of it; the real store is only read.

    `rates`: "auto" uses the campaign's observed outcome mix once it has MIN_OBSERVED_CALLS attempts
    with an outcome, else the simulator's defaults; "observed" and "default" force one of them.
    """
    settings = get_settings()
    seed = settings.simulator_seed if seed is None else seed
    pace = settings.dial_pace_seconds if pace_seconds is None else pace_seconds
    so_far = _totals(db, campaign_id)
    connected_before = _connected_contacts(db, campaign_id)
    last_call_before = _last_call(db, campaign_id)
    with connect(db) as conn:
        observed = observed_rates(conn, campaign_id)
    outcome_rates, rates_used = choose_rates(observed, rates)
    with tempfile.TemporaryDirectory(prefix="forecast-", dir=work_dir) as folder, \
            local_file(copy := Path(folder) / "forecast.duckdb"):  # a DuckDB file even beside a shared store
        copy_campaign(db, copy, campaign_id, now)
        with connect(copy) as conn:
            time_zone, start_date = conn.execute(
                "select time_zone, start_date from campaigns where campaign_id = ?", [campaign_id]).fetchone()
            contacts, remaining = conn.execute(
                "select count(*), count(*) filter (where finished_at is null) from campaign_contacts").fetchone()
            copied_calls_up_to = conn.execute("select coalesce(max(call_id), 0) from calls").fetchone()[0]
        from tasks.schedule import zone

        start = max(now, datetime.combine(start_date, time(), zone(time_zone)).astimezone(now.tzinfo))
        provider = SimulatedProvider(Path(folder) / "simulator.sqlite", seed=seed,
                                     concurrency_limit=settings.provider_concurrency_limit, rates=outcome_rates)
        try:
            run = simulate_campaign(copy, provider, start, horizon_days, campaign_id, pace)
            simulated_until, held_by = run.end, run.extra.get("held_by")
        finally:
            provider.close()
        with transaction(copy) as conn:
            # the copied calls served the numbers' caps and health; what was already done is in so_far
            conn.execute("delete from calls where call_id <= ?", [copied_calls_up_to])
        simulated = _totals(copy, campaign_id)
        connected_after = _connected_contacts(copy, campaign_id)
        with connect(copy) as conn:
            unfinished, in_flight_or_eligible = conn.execute(
                "select count(*) filter (where finished_at is null), count(*) filter (where in_flight_call_id is not null)"
                " from campaign_contacts").fetchone()
            last_call = conn.execute("select max(coalesce(ended_at, queued_at)) from calls").fetchone()[0]
            horizon_end = start + timedelta(days=horizon_days)
            # still calling at the horizon: the run got there with contacts left, dialling (or just started, e.g. a
            # weekend) within IDLE_STOP of its end; a run stopped early has only contacts held back for good left
            still_calling = (unfinished > 0 and simulated_until >= horizon_end
                             and (last_call or start) > horizon_end - IDLE_STOP)
            simulated_mix = outcome_mix(conn, campaign_id)[1]
            listed = suppressed_contacts(conn, campaign_id).filter(pl.col("do_not_call")).height if unfinished else 0
    total = {key: so_far[key] + simulated[key] for key in simulated}
    # a contact connected before and again in the copy counts once
    total["connected_contacts"] = len(connected_before | connected_after)
    return Forecast(
        campaign_id=campaign_id, start=start,
        # nothing left to call (a finished campaign): it completed with its last call so far
        completion=None if still_calling or in_flight_or_eligible else (last_call or last_call_before or start),
        contacts=contacts, remaining_contacts=remaining, held_back_contacts=unfinished,
        calls=total["calls"], connected_calls=total["connected_calls"],
        connected_contacts=total["connected_contacts"], successful_contacts=total["successful_contacts"],
        credits=int(total["credits"]), observed_connection_rate=_rate(so_far),
        forecast_connection_rate=_rate(simulated), seed=seed, horizon_days=horizon_days,
        rates_used=rates_used, observed_calls=observed.calls, observed_mix=observed.mix or None,
        observed_success_share=observed.success_share, forecast_mix=simulated_mix or None,
        # only contacts on a do-not-call list left: the run is done, not held ("none while dialing is held" was said
        # of a campaign its simulation had finished)
        simulated_until=simulated_until, held_by=held_by if unfinished > listed else None,
        do_not_call_contacts=listed,
    )


def forecast_frame(result: Forecast) -> pl.DataFrame:
    """The forecast as a two-column table (measure, value) for the dashboard."""
    values = result.as_dict()
    return pl.DataFrame({"measure": list(values), "value": [str(v) for v in values.values()]})
