"""Campaign metrics: the incremental aggregation of contact_stats / metrics_daily, KPIs, funnel, chart.

Definitions (the product's, also in docs/schema.md): a call is *connected* when a person picked up:
status `ended`, reason not `voicemail_reached`, `in_voicemail` not true. A call *attempt* is a call
with `counts_as_attempt` (rate/concurrency refusals are not). Days are campaign-local days of
`calls.queued_at`; date ranges are inclusive.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from schemas.enums import DisconnectReason
from tasks.errors import NotFoundError, ValidationError

UTC = timezone.utc
# Bounds wide enough for any call; used where a range is open.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_MIN_US, _MAX_US = -(2**63), 2**63 - 1
_DAY_US = 86_400_000_000
# The disconnect reasons (calls.disconnect_reason's check): a reason's position codes it in contact_stats.sql.
REASONS = [reason.value for reason in DisconnectReason]
# Which calls a run re-reads (docs/schema.md, "metrics_state", has the argument in full): those whose
# `updated_at` is at or after the campaign's watermark. A late commit is never missed, whatever its
# delay: provider records (`tasks.call_state`) stamp no earlier than the watermark they see in their
# own transaction, and the watermark never passes the start of a dial run still placing calls (its
# later writes stamp times from its start on). The lag covers the one stamp taken before its
# transaction opens, the claim's `now` (a lock wait, at most CAMPAIGNS_LOCK_TIMEOUT_SECONDS).
WATERMARK_LAG = timedelta(seconds=60)
# The run's scratch tables (temp schema: private to the connection, dropped at the end of a run).
_TEMP_TABLES = ("metrics_scope", "metrics_campaigns", "metrics_enrollment_changed", "metrics_changed",
                "metrics_scope_contacts", "metrics_scope_days", "metrics_scope_ranges", "metrics_tz_segments")


# The one definition of a *connected* call (a person picked up; docs/schema.md, "Metrics"): every query
# that counts connected calls uses it — tasks/sql/*.sql as the placeholder {{connected}}, the SQL written
# in Python (number health, best time, forecast, the dashboard's smart-dialing reads) as connected_sql(alias).
# tests/tasks/test_connected_definition.py fails on SQL that spells the rule out anywhere else.
_CONNECTED_TEMPLATE = (
    "{p}status = 'ended' and {p}disconnect_reason is distinct from 'voicemail_reached'"
    " and not coalesce({p}in_voicemail, false)"
)
CONNECTED_SQL = _CONNECTED_TEMPLATE.format(p="")


def connected_sql(alias: str | None = None) -> str:
    """CONNECTED_SQL over the `calls` columns, qualified with a table alias when given (`c.status`, ...)."""
    return _CONNECTED_TEMPLATE.format(p=f"{alias}." if alias else "")


# What a {{name}} in a tasks/sql/ file stands for: the connected rule, or another file's query.
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_FRAGMENTS = {
    "connected": lambda: CONNECTED_SQL,
    "range_calls": lambda: _without_comments(sql("range_calls")),
}


def _without_comments(query: str) -> str:
    """A query to insert into another: without its header comment lines."""
    return "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("--")).strip()


@lru_cache(maxsize=None)
def sql(name: str) -> str:
    """The text of a query in tasks/sql/ (a CTE chain ending in `select * from final`), with its
    placeholders filled in: {{connected}} (CONNECTED_SQL) and {{range_calls}} (tasks/sql/range_calls.sql)."""
    text = resources.files("tasks").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")

    def fill(match: re.Match) -> str:
        if match.group(1) not in _FRAGMENTS or match.group(1) == name:
            raise KeyError(f"tasks/sql/{name}.sql: unknown placeholder {match.group(0)}")
        return _FRAGMENTS[match.group(1)]()

    return _PLACEHOLDER.sub(fill, text)


# --- time zones -------------------------------------------------------------------------------

def local_day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a campaign-local day."""
    zone = ZoneInfo(time_zone)
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, end


def range_bounds(time_zone: str, date_from: date | None, date_to: date | None) -> tuple[datetime, datetime]:
    """The UTC instants [lo, hi) of an inclusive campaign-local date range (open ends unbounded)."""
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ValidationError("date_from", f"{date_from} is after date_to {date_to}")
    lo = local_day_bounds(date_from, time_zone)[0] if date_from else EARLIEST
    hi = local_day_bounds(date_to, time_zone)[1] if date_to else LATEST
    return lo, hi


def _offset_us(zone: ZoneInfo, at: datetime) -> int:
    return int(at.astimezone(zone).utcoffset() // timedelta(microseconds=1))


def offset_segments(time_zone: str, start: datetime, end: datetime) -> list[tuple[int, int, int]]:
    """(from_us, to_us, utc_offset_us) covering all time, exact between start and end.

    Offsets change only at DST/rule transitions: found by stepping hour by hour and narrowing to the
    minute, so that SQL can compute local days with integer arithmetic.
    """
    zone = ZoneInfo(time_zone)
    step = timedelta(hours=1)
    at = start.replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    stop = end + timedelta(days=1)
    segments, seg_start, offset = [], _MIN_US, _offset_us(zone, at)
    while at < stop:
        nxt = at + step
        nxt_offset = _offset_us(zone, nxt)
        if nxt_offset != offset:
            lo, hi = at, nxt  # offset(lo) == offset, offset(hi) != offset: find the first new minute
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid <= lo:
                    break
                if _offset_us(zone, mid) == offset:
                    lo = mid
                else:
                    hi = mid
            boundary = int((hi - EARLIEST) // timedelta(microseconds=1))
            segments.append((seg_start, boundary, offset))
            seg_start, offset = boundary, nxt_offset
        at = nxt
    segments.append((seg_start, _MAX_US, offset))
    return segments


def _register_segments(conn: duckdb.DuckDBPyConnection, zones: dict[int, str], start: datetime, end: datetime) -> None:
    by_zone = {tz: offset_segments(tz, start, end) for tz in set(zones.values())}
    rows = [(cid, lo, hi, off) for cid, tz in zones.items() for lo, hi, off in by_zone[tz]]
    frame = pl.DataFrame(rows, schema={"campaign_id": pl.Int64, "lo_us": pl.Int64, "hi_us": pl.Int64,
                                       "offset_us": pl.Int64}, orient="row")
    _frame_to_temp_table(conn, "metrics_tz_segments", frame)


def _frame_to_temp_table(conn: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    """Copy a small frame into a temp table (names are fixed by this module)."""
    conn.register("metrics_frame", frame)
    try:
        conn.execute(f"create or replace temp table {name} as select * from metrics_frame")
    finally:
        conn.unregister("metrics_frame")


# --- aggregation ------------------------------------------------------------------------------

def aggregate(
    conn: duckdb.DuckDBPyConnection, now: datetime, campaign_id: int | None = None, full: bool = False
) -> dict:
    """Bring contact_stats, metrics_daily and metrics_state up to date; call inside a transaction.

    Incremental by default: per campaign, only contacts and local days touched by calls changed
    since its watermark (`calls.updated_at`), plus enrollments added, removed or re-added, are
    deleted and re-inserted. Campaigns never aggregated, or whose time zone changed, are rebuilt
    whole; deleted campaigns lose their rows. `full=True` rebuilds every campaign in scope.
    """
    if campaign_id is None:
        campaigns = conn.execute("select campaign_id, time_zone from campaigns").fetchall()
    else:
        campaigns = conn.execute(
            "select campaign_id, time_zone from campaigns where campaign_id = ?", [campaign_id]
        ).fetchall()
    removed = _drop_deleted_campaigns(conn)
    if campaign_id is not None and not campaigns:
        if campaign_id in removed:
            return {"campaigns": 0, "rebuilt": 0, "contact_rows": 0, "day_rows": 0, "deleted_campaigns": removed}
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    zones = dict(campaigns)
    _frame_to_temp_table(conn, "metrics_scope", pl.DataFrame(
        campaigns, schema={"campaign_id": pl.Int64, "time_zone": pl.String}, orient="row"))
    conn.execute(
        """
        create or replace temp table metrics_campaigns as
        with state as (select campaign_id, time_zone as state_zone, calls_watermark from metrics_state),
        final as (
            select s.campaign_id, s.time_zone, st.calls_watermark,
                   ?::boolean or st.campaign_id is null or st.state_zone <> s.time_zone as rebuild
            from metrics_scope s left join state st using (campaign_id)
        )
        select * from final
        """,
        [full],
    )
    # Calls changed since each incrementally aggregated campaign's watermark.
    conn.execute(
        """
        create or replace temp table metrics_changed as
        select c.campaign_id, c.contact_id, c.queued_at, c.updated_at
        from calls c join metrics_campaigns m using (campaign_id)
        where not m.rebuild and c.updated_at >= coalesce(m.calls_watermark, '-infinity'::timestamptz)
        """
    )
    _collect_contact_scope(conn)
    # Offsets are needed over the calls that will be read: changed ones, and all of rebuilt campaigns.
    if conn.execute("select bool_or(rebuild) from metrics_campaigns").fetchone()[0]:
        span = conn.execute("select min(queued_at), max(queued_at) from calls").fetchone()
    else:
        span = conn.execute("select min(queued_at), max(queued_at) from metrics_changed").fetchone()
    span_start, span_end = (span[0] or now), (span[1] or now)
    _register_segments(conn, zones, min(span_start, now), max(span_end, now))
    _collect_day_scope(conn, zones)

    conn.execute(
        """
        delete from contact_stats where campaign_id in (select campaign_id from metrics_campaigns where rebuild)
        """
    )
    conn.execute(
        """
        delete from contact_stats using metrics_scope_contacts s
        where contact_stats.campaign_id = s.campaign_id and contact_stats.contact_id = s.contact_id
        """
    )
    conn.execute(
        "delete from metrics_daily where campaign_id in (select campaign_id from metrics_campaigns where rebuild)"
    )
    conn.execute(
        """
        delete from metrics_daily using metrics_scope_days d
        where metrics_daily.campaign_id = d.campaign_id and metrics_daily.day = d.day
        """
    )
    contact_rows = conn.execute(
        "insert into contact_stats by name (" + sql("contact_stats") + ")", {"reasons": REASONS}
    ).fetchone()[0]
    lo, hi = conn.execute("select min(lo), max(hi) from metrics_scope_ranges").fetchone()
    day_rows = 0
    if lo is not None:
        day_rows = conn.execute(
            "insert into metrics_daily by name (" + sql("metrics_daily") + ")", {"lo": lo, "hi": hi}
        ).fetchone()[0]
    _advance_watermarks(conn, now)
    rebuilt = conn.execute("select count(*) from metrics_campaigns where rebuild").fetchone()[0]
    for table in _TEMP_TABLES:
        conn.execute(f"drop table if exists temp.{table}")
    return {"campaigns": len(campaigns), "rebuilt": rebuilt, "contact_rows": contact_rows,
            "day_rows": day_rows, "deleted_campaigns": removed}


def _drop_deleted_campaigns(conn: duckdb.DuckDBPyConnection) -> list[int]:
    """Remove every metrics row of campaigns that no longer exist; returns their ids."""
    gone = [row[0] for row in conn.execute(
        """
        select campaign_id from metrics_state anti join campaigns using (campaign_id)
        union
        select distinct campaign_id from metrics_daily anti join campaigns using (campaign_id)
        """
    ).fetchall()]
    if gone:
        for table in ("contact_stats", "metrics_daily", "metrics_state"):
            conn.execute(f"delete from {table} where campaign_id in (select unnest(?::bigint[]))", [gone])
    return sorted(gone)


def _collect_contact_scope(conn: duckdb.DuckDBPyConnection) -> None:
    """metrics_scope_contacts: enrollments of incrementally aggregated campaigns to recompute."""
    # Enrollments added, removed or re-added (new added_at) since the rows were written: campaigns
    # whose enrollment checksum differs from their contact_stats rows' are compared key by key.
    conn.execute(
        """
        create or replace temp table metrics_enrollment_changed as
        with incremental as (select campaign_id from metrics_campaigns where not rebuild),
        enrolled as (
            select campaign_id, count(*) as n, sum(hash(contact_id, added_at)) as checksum
            from campaign_contacts semi join incremental using (campaign_id) group by campaign_id
        ),
        listed as (
            select campaign_id, count(*) as n, sum(hash(contact_id, created_at)) as checksum
            from contact_stats semi join incremental using (campaign_id) group by campaign_id
        ),
        final as (
            select coalesce(e.campaign_id, l.campaign_id) as campaign_id
            from enrolled e full outer join listed l using (campaign_id)
            where e.n is distinct from l.n or e.checksum is distinct from l.checksum
        )
        select * from final
        """
    )
    conn.execute(
        """
        create or replace temp table metrics_scope_contacts as
        with changed_contacts as (
            select distinct campaign_id, contact_id from metrics_changed
        ),
        enrollment_changes as (
            select coalesce(cc.campaign_id, cs.campaign_id) as campaign_id,
                   coalesce(cc.contact_id, cs.contact_id) as contact_id
            from (select campaign_id, contact_id, added_at from campaign_contacts
                  semi join metrics_enrollment_changed using (campaign_id)) cc
            full outer join (select campaign_id, contact_id, created_at from contact_stats
                             semi join metrics_enrollment_changed using (campaign_id)) cs
                on cc.campaign_id = cs.campaign_id and cc.contact_id = cs.contact_id
            where cc.added_at is distinct from cs.created_at
        ),
        final as (
            select * from changed_contacts
            union all
            select * from enrollment_changes
        )
        select * from final
        """
    )


def _collect_day_scope(conn: duckdb.DuckDBPyConnection, zones: dict[int, str]) -> None:
    """metrics_scope_days / metrics_scope_ranges: the local days (and their UTC span) to recompute."""
    conn.execute(
        """
        create or replace temp table metrics_scope_days as
        select distinct c.campaign_id,
               date '1970-01-01' + ((epoch_us(c.queued_at) + s.offset_us) // 86400000000)::integer as day
        from metrics_changed c
        join metrics_tz_segments s
            on c.campaign_id = s.campaign_id and epoch_us(c.queued_at) >= s.lo_us and epoch_us(c.queued_at) < s.hi_us
        """
    )
    ranges = [
        (cid, *local_day_bounds(first, zones[cid])[:1], local_day_bounds(last, zones[cid])[1], False)
        for cid, first, last in conn.execute(
            "select campaign_id, min(day), max(day) from metrics_scope_days group by campaign_id"
        ).fetchall()
    ]
    ranges += [
        (cid, EARLIEST, LATEST, True)
        for (cid,) in conn.execute("select campaign_id from metrics_campaigns where rebuild").fetchall()
    ]
    frame = pl.DataFrame(
        ranges,
        schema={"campaign_id": pl.Int64, "lo": pl.Datetime("us", "UTC"), "hi": pl.Datetime("us", "UTC"),
                "whole": pl.Boolean},
        orient="row",
    )
    _frame_to_temp_table(conn, "metrics_scope_ranges", frame)


def _advance_watermarks(conn: duckdb.DuckDBPyConnection, now: datetime) -> None:
    """metrics_state: per campaign in scope, its time zone and the newest change taken in, less the lag,
    but never past the start of one of its dial runs still running (they write their calls in steps)."""
    conn.execute(
        """
        create or replace temp table metrics_new_state as
        with rebuilt_max as (
            select c.campaign_id, max(c.updated_at) as newest
            from calls c semi join (select campaign_id from metrics_campaigns where rebuild) r using (campaign_id)
            group by c.campaign_id
        ),
        changed_max as (
            select campaign_id, max(updated_at) as newest from metrics_changed group by campaign_id
        ),
        -- a crashed run stays `running` until reconciled: runs re-read more meanwhile, never less
        running as (
            select campaign_id, min(started_at) as oldest_start
            from dial_runs semi join metrics_campaigns using (campaign_id)
            where state = 'running'
            group by campaign_id
        ),
        final as (
            select m.campaign_id, m.time_zone,
                   least(case when m.rebuild then r.newest - ?::interval
                              else greatest(m.calls_watermark, ch.newest - ?::interval) end,
                         ru.oldest_start) as calls_watermark,
                   ?::timestamptz as aggregated_at
            from metrics_campaigns m
            left join rebuilt_max r using (campaign_id)
            left join changed_max ch using (campaign_id)
            left join running ru using (campaign_id)
        )
        select * from final
        """,
        [WATERMARK_LAG, WATERMARK_LAG, now],
    )
    conn.execute("delete from metrics_state where campaign_id in (select campaign_id from metrics_campaigns)")
    conn.execute("insert into metrics_state by name (select * from metrics_new_state)")
    conn.execute("drop table if exists temp.metrics_new_state")


# --- reads for the Metrics tab ----------------------------------------------------------------

def _campaign_zone(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> str:
    row = conn.execute("select time_zone from campaigns where campaign_id = ?", [campaign_id]).fetchone()
    if row is None:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    return row[0]


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


# Above this span of contact ids (bits per bitmap) the KPIs are counted by hash (kpis_hashed.sql).
MAX_BITMAP_SPAN = 1 << 26


def totals(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None = None, date_to: date | None = None
) -> dict:
    """The Metrics tab's totals for an inclusive campaign-local date range (open ends: all time), from the calls.

    One row: credits_used, total_calls, contacts_called, connected_calls, avg_call_duration_seconds,
    connected_contacts, successful_contacts, total_contacts. The one source of the KPI cards and the
    funnel, for the dashboard and `campaigns metrics` alike; read from `calls`, so always current.
    """
    lo, hi = range_bounds(_campaign_zone(conn, campaign_id), date_from, date_to)
    params = {"campaign_id": campaign_id, "lo": lo, "hi": hi}
    first_id, last_id = conn.execute(sql("kpi_id_span"), params).fetchone()
    if first_id is None:
        first_id = last_id = 0
    if last_id - first_id >= MAX_BITMAP_SPAN:
        cursor = conn.execute(sql("kpis_hashed"), params)
    else:
        cursor = conn.execute(sql("kpis"), {**params, "first_id": first_id, "last_id": last_id})
    return dict(zip([d[0] for d in cursor.description], cursor.fetchone()))


def kpis(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None = None, date_to: date | None = None
) -> dict:
    """The five KPI cards for an inclusive campaign-local date range (open ends: all time)."""
    return kpi_cards_from(totals(conn, campaign_id, date_from, date_to))


def kpi_cards_from(row: dict) -> dict:
    """The KPI cards from a row of `totals`."""
    avg = row["avg_call_duration_seconds"]
    return {
        "credits_used": int(row["credits_used"]),
        "total_calls": int(row["total_calls"]),
        "contacts_called": int(row["contacts_called"]),
        "connection_rate": _pct(row["connected_contacts"], row["total_contacts"]),
        "avg_call_duration_seconds": round(float(avg), 2) if avg is not None else 0.0,
        "total_contacts": int(row["total_contacts"]),
        "connected_contacts": int(row["connected_contacts"]),
    }


def funnel(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None = None, date_to: date | None = None
) -> dict:
    """Total enrolled contacts → connected (% of total) → successful (% of total)."""
    return funnel_from(totals(conn, campaign_id, date_from, date_to))


def funnel_from(row: dict) -> dict:
    """The funnel from a row of `totals`."""
    total, connected, successful = row["total_contacts"], row["connected_contacts"], row["successful_contacts"]
    return {
        "total_contacts": int(total),
        "connected": int(connected),
        "connected_pct": _pct(connected, total),
        "successful": int(successful),
        "successful_pct": _pct(successful, total),
    }


def calls_per_day(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None = None, date_to: date | None = None
) -> pl.DataFrame:
    """The Calls Made chart series: (day, disconnect_reason, calls) from metrics_daily, by day and reason."""
    _campaign_zone(conn, campaign_id)
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ValidationError("date_from", f"{date_from} is after date_to {date_to}")
    return conn.execute(
        """
        select day, disconnect_reason, sum(calls)::bigint as calls
        from metrics_daily
        where campaign_id = $campaign_id and calls > 0
          and day >= coalesce($date_from, date '0001-01-01') and day <= coalesce($date_to, date '9999-12-31')
        group by day, disconnect_reason
        order by day, disconnect_reason nulls first
        """,
        {"campaign_id": campaign_id, "date_from": date_from, "date_to": date_to},
    ).pl()


def calls_not_counted(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> dict:
    """The range's calls that Call Logs lists and Total Calls leaves out, being no attempts: how many
    (`not_counted`) and of which kind (`limit`: refused at the rate or concurrency limit; `outage`: the
    provider was unavailable; `interrupted`: never handed to the provider), each a count. The Metrics tab
    and the demo's report both say why from it. The date range filters `queued_at`,
    as both tabs do, so Call Logs lists Total Calls + `not_counted` calls for the same dates."""
    lo, hi = range_bounds(_campaign_zone(conn, campaign_id), date_from, date_to)
    # only the calls that are no attempts are read (a filter on one boolean column): a tenth of a scan of all
    row = conn.execute(
        """
        with not_attempts as (
            select status, disconnect_reason
            from calls
            where campaign_id = $campaign_id and queued_at >= $lo and queued_at < $hi and not counts_as_attempt
        ),
        final as (
            select
                count(*) as not_counted,
                count(*) filter (where disconnect_reason is distinct from 'telephony_provider_unavailable'
                                 and (status = 'failed_rate_limit' or disconnect_reason = 'concurrency_limit_reached'))
                    as "limit",
                count(*) filter (where disconnect_reason = 'telephony_provider_unavailable') as outage
            from not_attempts
        )
        select * from final
        """,
        {"campaign_id": campaign_id, "lo": lo, "hi": hi},
    ).fetchone()
    not_counted, limit, outage = (int(value) for value in row)
    return {"not_counted": not_counted, "limit": limit, "outage": outage,
            "interrupted": not_counted - limit - outage}
