"""Smart-dialing reads for the dashboard: the best-time heatmap, outbound number health per day, each
contact's next allowed call time and suppression, and the data version the forecast is cached by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

import duckdb
import polars as pl

from schemas.enums import WEEKDAYS
from tasks.best_time import MIN_CELL_CALLS, heatmap, smart_options
from tasks.compliance import load_rules, resolve_zone, rule_for, zone_blocked
from tasks.errors import NotFoundError
from tasks.metrics import connected_sql
from tasks.number_health import numbers_overview, placed_sql
from tasks.retry_policy import SHORT_HANGUP_SECONDS
from tasks.schedule import Schedule, zone

DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# How far ahead the next allowed time is looked for (a campaign's end date usually comes first).
LOOKAHEAD_DAYS = 60
FINISHED_NOTES = {"successful": "Finished: successful", "not_retryable": "Finished: not retryable",
                  "max_attempts": "Finished: max attempts reached"}


def _campaign(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> tuple[str, str | None]:
    row = conn.execute("select time_zone, country from campaigns where campaign_id = ?", [campaign_id]).fetchone()
    if row is None:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    return row[0], row[1]


def campaign_zone(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> str:
    """The campaign's time zone (dates on the smart-dialing panels are shown in it)."""
    return _campaign(conn, campaign_id)[0]


# ------------------------------------------------------------------ best time to call


def best_time_cells(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> pl.DataFrame:
    """The 7 × 24 heatmap cells (callee-local weekday × hour) with labels, counts, rate and a few-calls flag."""
    _campaign(conn, campaign_id)
    return heatmap(conn, campaign_id).with_columns(
        pl.col("weekday").map_elements(DAY_LABELS.__getitem__, return_dtype=pl.String).alias("day"),
        pl.format("{}:00", pl.col("hour").cast(pl.String).str.zfill(2)).alias("hour_label"),
        (pl.col("calls") < MIN_CELL_CALLS).alias("few_calls"),
        (pl.col("connection_rate") * 100).round(1).alias("rate_pct"),
    )


def best_cells(cells: pl.DataFrame, count: int = 3) -> pl.DataFrame:
    """The `count` weekday × hour cells with the highest rate among those with enough calls (ties: more calls first)."""
    return (cells.filter(~pl.col("few_calls"))
            .sort(["connection_rate", "calls", "weekday", "hour"], descending=[True, True, False, False])
            .head(count))


def best_time_updated_at(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> datetime | None:
    """When the aggregation last rebuilt the campaign's best-time table (None: never, or no calls)."""
    return conn.execute("select max(updated_at) from best_time_stats where campaign_id = ?", [campaign_id]).fetchone()[0]


# ------------------------------------------------------------------ number health

NUMBER_DAYS_SQL = f"""
with numbers as (
    select n.number_id, n.e164, n.nickname
    from phone_numbers n
    join campaigns c on list_contains(c.outbound_number_ids, n.number_id)
    where c.campaign_id = $campaign_id
),
placed as (
    -- every campaign's calls from the number count: the carrier judges the number, not the campaign
    select c.from_number, timezone($time_zone, c.queued_at)::date as day,
           {placed_sql('c')} as is_placed,  -- as the daily cap counts them
           c.counts_as_attempt and c.status in ('ended', 'not_connected', 'error') as is_judged,
           {connected_sql("c")} as is_connected,
           c.status = 'ended' and coalesce(c.duration_seconds, 0) < $short_seconds as is_short,
           c.disconnect_reason = 'marked_as_spam' as is_spam
    from calls c
    where c.from_number in (select e164 from numbers) and c.queued_at >= $since and c.queued_at <= $now
),
daily as (
    select from_number, day,
           count(*) filter (where is_placed) as calls,
           count(*) filter (where is_judged) as finished,
           count(*) filter (where is_judged and is_connected) as connected,
           count(*) filter (where is_judged and is_short) as short_calls,
           count(*) filter (where is_judged and is_spam) as spam_marks
    from placed
    group by all
),
final as (
    select n.number_id, n.e164, n.nickname, d.day, d.calls, d.finished, d.connected,
           case when d.finished > 0 then round(d.connected / d.finished, 4) end as connection_rate,
           d.short_calls,
           case when d.finished > 0 then round(d.short_calls / d.finished, 4) end as short_share,
           d.spam_marks,
           $cap::integer as daily_cap,
           case when $cap is not null then round(d.calls / $cap, 4) end as cap_use
    from daily d join numbers n on n.e164 = d.from_number
)
select * from final order by number_id, day desc
"""


def number_health_days(conn: duckdb.DuckDBPyConnection, campaign_id: int, now: datetime, days: int = 7) -> pl.DataFrame:
    """Per outbound number of the campaign and campaign-local day (the last `days`, newest first): calls placed,
    connection rate and share of short calls over finished attempts, spam marks, share of the daily cap used."""
    time_zone, _country = _campaign(conn, campaign_id)
    local_today = now.astimezone(zone(time_zone)).date()
    since = datetime.combine(local_today - timedelta(days=days - 1), time(), zone(time_zone))
    return conn.execute(NUMBER_DAYS_SQL, {
        "campaign_id": campaign_id, "time_zone": time_zone, "since": since, "now": now,
        "short_seconds": SHORT_HANGUP_SECONDS, "cap": smart_options(conn, campaign_id).number_daily_cap,
    }).pl()


def number_daily_cap(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> int | None:
    """Calls each outbound number may place per campaign-local day for this campaign (None = no cap)."""
    _campaign(conn, campaign_id)
    return smart_options(conn, campaign_id).number_daily_cap


def campaign_numbers(conn: duckdb.DuckDBPyConnection, campaign_id: int, now: datetime) -> list[dict]:
    """The campaign's outbound numbers (in its order) with rotation state, pause reason and last 24 hours."""
    _campaign(conn, campaign_id)
    ids = conn.execute("select outbound_number_ids from campaigns where campaign_id = ?", [campaign_id]).fetchone()[0]
    by_id = {row["number_id"]: row for row in numbers_overview(conn, now)}
    return [by_id[number_id] for number_id in ids or [] if number_id in by_id]


def paused_numbers(conn: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """{number_id: reason} of every outbound number out of rotation."""
    return dict(conn.execute(
        "select number_id, rotation_paused_reason from phone_numbers where rotation_paused_at is not null"
    ).fetchall())


# ------------------------------------------------------------------ next allowed call time

NEXT_ALLOWED_SQL = """
with enrolled as (
    select cc.contact_id, cc.attempts, cc.attempts_day, cc.attempts_on_day, cc.next_call_at, cc.finished_at,
           cc.finished_reason, cc.in_flight_call_id is not null as in_flight,
           c.phone_e164, c.region, c.time_zones as phone_zones, c.zone_key, c.zone_source,
           c.zone_resolved_at is not distinct from c.updated_at as zone_current
    from campaign_contacts cc join contacts c using (contact_id)
    where cc.campaign_id = $campaign_id and list_contains($contact_ids, cc.contact_id)
),
dnc as (
    select dnc_id, prefix, is_prefix, campaign_id, reason, added_at
    from do_not_call where campaign_id is null or campaign_id = $campaign_id
),
hits as (
    -- exact numbers by hash; wildcards by one equality probe per distinct wildcard length
    select e.contact_id, d.* from enrolled e join dnc d on not d.is_prefix and d.prefix = e.phone_e164
    union all
    select p.contact_id, d.*
    from (select e.contact_id, left(e.phone_e164, l.n) as probe
          from enrolled e, (select distinct length(prefix) as n from dnc where is_prefix) l) p
    join dnc d on d.prefix = p.probe and d.is_prefix
),
listed as (
    -- the entry added first names the list and the reason
    select contact_id,
           first(case when campaign_id is null then 'global' else 'campaign' end order by added_at, dnc_id) as dnc_list,
           first(reason order by added_at, dnc_id) as dnc_reason
    from hits
    group by contact_id
),
final as (
    select e.*, l.contact_id is not null as do_not_call, l.dnc_list, l.dnc_reason,
           z.time_zones as key_zones, z.country as key_country, z.subdivision as key_subdivision
    from enrolled e
    left join listed l using (contact_id)
    left join zone_keys z on z.zone_key = e.zone_key
)
select * from final order by contact_id
"""
NEXT_ALLOWED_SCHEMA = {"contact_id": pl.Int64, "next_allowed_at": pl.Datetime("us", "UTC"),
                       "next_allowed_note": pl.String, "suppression": pl.String}


def _rule_opening(rule, zones: list[str], country, subdivision, after: datetime) -> datetime | None:
    """The first instant at or after `after` when the legal rule lets someone in all `zones` be called."""
    if zone_blocked(rule, zones, country, subdivision, after) is None:
        return after
    starts = []
    for name in zones:
        local = after.astimezone(zone(name))
        for offset in range(15):
            day = local.date() + timedelta(days=offset)
            starts += [datetime.combine(day, start, zone(name)) for start, _end in rule.windows[WEEKDAYS[day.weekday()]]]
    # an opening of several zones' intersection is the start of one of their windows
    for candidate in sorted(s for s in starts if s > after):
        if zone_blocked(rule, zones, country, subdivision, candidate) is None:
            return candidate
    return None


def next_opening(schedule: Schedule, rule, zones: list[str], country, subdivision, after: datetime) -> datetime | None:
    """The first instant at or after `after` inside both the campaign's schedule and the callee's legal window."""
    moment = after
    for _ in range(4 * LOOKAHEAD_DAYS):
        moment = schedule.next_open(moment, horizon_days=LOOKAHEAD_DAYS)
        if moment is None or moment > after + timedelta(days=LOOKAHEAD_DAYS):
            return None
        legal = _rule_opening(rule, zones, country, subdivision, moment)
        if legal is None:
            return None
        if legal == moment or schedule.is_open(legal):
            return legal
        moment = legal
    return None


def next_allowed_times(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, contact_ids: list[int], now: datetime
) -> pl.DataFrame:
    """Per listed contact: the next time it may be called (UTC; None = not again), why then, and its suppression.

    The time is the latest of now, the retry policy's next_call_at and the next campaign-local day when
    today's attempts are used up, moved to the next moment inside both the campaign's hours and the
    callee's legal window (a zone not resolved yet is judged as the claim would: from the phone
    number). Rolling per-number caps (e.g. Florida's 3 in 24 h) are not foreseen.
    """
    if not contact_ids:
        return pl.DataFrame(schema=NEXT_ALLOWED_SCHEMA)
    row = conn.execute(
        "select time_zone, calling_days, weekly_schedule::varchar, start_date, end_date, max_attempts,"
        " attempts_per_day, country from campaigns where campaign_id = ?", [campaign_id]).fetchone()
    if row is None:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    plan = _Plan(Schedule.from_row(*row[:5]), max_attempts=row[5], attempts_per_day=row[6])
    campaign_country = row[7]
    rules = load_rules(conn)
    cursor = conn.execute(NEXT_ALLOWED_SQL, {"campaign_id": campaign_id, "contact_ids": list(contact_ids)})
    names = [d[0] for d in cursor.description]
    rows = []
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        at, note = _next_for(row, plan, rules, campaign_country, now)
        rows.append((row["contact_id"], at, note, _suppression(row)))
    return pl.DataFrame(rows, schema=NEXT_ALLOWED_SCHEMA, orient="row")


@dataclass(frozen=True)
class _Plan:
    schedule: Schedule
    max_attempts: int
    attempts_per_day: int


def _suppression(row: dict) -> str | None:
    if row["do_not_call"]:
        reason = f": {row['dnc_reason']}" if row["dnc_reason"] else ""
        return f"Do not call ({row['dnc_list']} list{reason})"
    if row["zone_source"] == "unknown":
        return "Unknown time zone (called in the campaign's)"
    return None


def _next_for(row: dict, plan: _Plan, rules, campaign_country: str | None, now: datetime) -> tuple[datetime | None, str]:
    if row["finished_at"] is not None:
        return None, FINISHED_NOTES.get(row["finished_reason"], "Finished")
    if row["do_not_call"]:
        return None, "Do not call"
    if row["attempts"] >= plan.max_attempts:
        return None, "Max attempts reached"
    if row["in_flight"]:
        return None, "In a call now"
    at, note = now, "Now"
    if row["next_call_at"] is not None and row["next_call_at"] > now:
        at, note = row["next_call_at"], "Retry policy"
    schedule = plan.schedule
    if row["attempts_day"] == schedule.local_day(at) and row["attempts_on_day"] >= plan.attempts_per_day:
        local = schedule.local(at)
        at = datetime.combine(local.date() + timedelta(days=1), time(), local.tzinfo).astimezone(now.tzinfo)
        note = "Attempts per day used"
    if row["zone_key"] is not None and row["zone_current"]:
        zones, country, subdivision = row["key_zones"], row["key_country"], row["key_subdivision"]
    else:  # not resolved yet: the phone number's zones, as the claim will resolve them
        zones, country, subdivision, _source = resolve_zone(row["region"], row["phone_zones"])
    country = country or campaign_country
    zones = list(zones or [schedule.time_zone])
    opening = next_opening(schedule, rule_for(rules, country, subdivision), zones, country, subdivision, at)
    if opening is None:
        return None, "No calling time left in the schedule"
    if opening > at:
        held = "campaign hours" if not schedule.is_open(at) else "callee's legal hours"
        note = held.capitalize() if note == "Now" else f"{note}, then {held}"
    return opening, note


# ------------------------------------------------------------------ forecast cache key


def forecast_version(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> tuple:
    """What a forecast of the campaign depends on, cheaply: settings edits, enrollments and their state, calls."""
    return conn.execute(
        """
        select (select updated_at from campaigns where campaign_id = $campaign_id),
               (select (count(*), count(finished_at), sum(attempts))::varchar
                from campaign_contacts where campaign_id = $campaign_id),
               (select (count(*), max(updated_at))::varchar from calls where campaign_id = $campaign_id),
               (select max(updated_at)::varchar from best_time_stats where campaign_id = $campaign_id),
               (select list(number_id || ':' || coalesce(rotation_paused_at::varchar, ''))::varchar from phone_numbers)
        """,
        {"campaign_id": campaign_id},
    ).fetchone()
