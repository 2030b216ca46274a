"""Metrics tab reads: the default date range, KPI cards, the Calls Made series and the contact funnel."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from tasks import metrics
from tasks.errors import NotFoundError

# A gap is "large" (the product shows its hint) when fewer than this share of the previous stage
# makes it to the next one.
LARGE_GAP_SHARE = 0.5
HINT_CONNECTED = (
    "A large gap between Total Contacts and Connected may suggest calling at suboptimal times "
    "or dialing invalid numbers."
)
HINT_SUCCESSFUL = (
    "A large gap between Connected and Successful may indicate issues with your agent's prompt "
    "or conversation flow."
)
NO_REASON = "in flight / refused"


def default_range(conn: duckdb.DuckDBPyConnection, campaign_id: int, now: datetime) -> tuple[date, date]:
    """From the campaign's start date (else its creation day) to today, in the campaign's time zone."""
    row = conn.execute(
        "select start_date, created_at, time_zone from campaigns where campaign_id = ?", [campaign_id]
    ).fetchone()
    if row is None:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    start_date, created_at, time_zone = row
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    start = start_date or created_at.astimezone(zone).date()
    return min(start, today), today


# The KPI cards and funnel over every aggregated day, from the maintained tables (no scan of calls).
WHOLE_CAMPAIGN_SQL = """
with daily as (
    select
        coalesce(sum(credits), 0)::bigint as credits_used,
        coalesce(sum(calls), 0)::bigint as total_calls,
        sum(connected_duration_seconds) / nullif(sum(connected), 0) as avg_call_duration_seconds
    from metrics_daily
    where campaign_id = $campaign_id
),
per_contact as (
    select
        count(*) filter (where attempts > 0) as contacts_called,
        count(*) filter (where connected > 0) as connected_contacts,
        count(*) filter (where successful > 0) as successful_contacts
    from contact_stats
    where campaign_id = $campaign_id
),
enrolled as (
    select count(*) as total_contacts from campaign_contacts where campaign_id = $campaign_id
),
final as (
    select * from daily cross join per_contact cross join enrolled
)
select * from final
"""


# The KPI cards and funnel for a narrower range [$lo, $hi), in one scan of the campaign's calls in range.
# Per-contact facts ("called", "connected", "successful", "enrolled") are bitmaps over contact ids
# (bitstring_agg between $first_id and $last_id) combined with AND and counted with bit_count: a
# million-call store needs no hash aggregate or semi-join, which cost several times the scan.
RANGE_SQL = """
with range_calls as (
    select
        contact_id, counts_as_attempt, credits, duration_seconds,
        coalesce(call_successful, false) as is_successful,
        status = 'ended'
            and disconnect_reason is distinct from 'voicemail_reached'
            and not coalesce(in_voicemail, false) as is_connected
    from calls
    where campaign_id = $campaign_id and queued_at >= $lo and queued_at < $hi
),
call_totals as (
    select
        coalesce(sum(credits), 0)::bigint as credits_used,
        count(*) filter (where counts_as_attempt) as total_calls,
        bitstring_agg(contact_id, $first_id, $last_id) filter (where counts_as_attempt) as called_set,
        count(*) filter (where is_connected) as connected_calls,
        avg(duration_seconds) filter (where is_connected) as avg_call_duration_seconds,
        bitstring_agg(contact_id, $first_id, $last_id) filter (where is_connected) as connected_set,
        bitstring_agg(contact_id, $first_id, $last_id) filter (where is_successful) as successful_set
    from range_calls
),
enrolled as (
    select count(*) as total_contacts, bitstring_agg(contact_id, $first_id, $last_id) as enrolled_set
    from campaign_contacts
    where campaign_id = $campaign_id
),
final as (
    select
        credits_used,
        total_calls,
        coalesce(bit_count(called_set), 0) as contacts_called,
        connected_calls,
        avg_call_duration_seconds,
        -- calls of contacts since removed count as called, not in the enrolled funnel
        coalesce(bit_count(connected_set & enrolled_set), 0) as connected_contacts,
        coalesce(bit_count(successful_set & enrolled_set), 0) as successful_contacts,
        total_contacts
    from call_totals cross join enrolled
)
select * from final
"""

# Contact ids the range's bitmaps must span: the campaign's enrolled contacts and its calls in range.
RANGE_BOUNDS_SQL = """
with ids as (
    select min(contact_id) as first_id, max(contact_id) as last_id
    from campaign_contacts where campaign_id = $campaign_id
    union all
    select min(contact_id), max(contact_id)
    from calls where campaign_id = $campaign_id and queued_at >= $lo and queued_at < $hi
),
final as (
    select min(first_id) as first_id, max(last_id) as last_id from ids
)
select * from final
"""
# Above this span of contact ids (bits per bitmap) the range falls back to the hash-based query.
MAX_BITMAP_SPAN = 1 << 26


def range_totals(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> dict:
    """The KPI/funnel totals row (as `tasks.metrics` computes it) for a campaign-local date range, from the calls."""
    lo, hi = metrics.range_bounds(metrics._campaign_zone(conn, campaign_id), date_from, date_to)
    params = {"campaign_id": campaign_id, "lo": lo, "hi": hi}
    first_id, last_id = conn.execute(RANGE_BOUNDS_SQL, params).fetchone()
    if first_id is None:
        first_id = last_id = 0
    if last_id - first_id >= MAX_BITMAP_SPAN:
        return metrics._kpi_row(conn, campaign_id, date_from, date_to)
    cursor = conn.execute(RANGE_SQL, {**params, "first_id": first_id, "last_id": last_id})
    return dict(zip([d[0] for d in cursor.description], cursor.fetchone()))


def covers_whole_campaign(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> bool:
    """Whether the range holds every day the aggregation has seen for an aggregated campaign."""
    first, last, aggregated = conn.execute(
        """
        select min(day), max(day), (select count(*) from metrics_state where campaign_id = $campaign_id)
        from metrics_daily where campaign_id = $campaign_id
        """,
        {"campaign_id": campaign_id},
    ).fetchone()
    if not aggregated:
        return False
    if first is None:
        return True
    return (date_from is None or date_from <= first) and (date_to is None or date_to >= last)


def _whole_campaign(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> dict:
    cursor = conn.execute(WHOLE_CAMPAIGN_SQL, {"campaign_id": campaign_id})
    return dict(zip([d[0] for d in cursor.description], cursor.fetchone()))


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def kpi_cards(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> dict:
    """The five KPI values (credits, calls, contacts called, connection rate %, avg connected seconds).

    A range holding the whole campaign (the default, start date to today) reads contact_stats and
    metrics_daily, as fresh as the last aggregation, like the chart and the Contact List; a narrower
    range counts contacts from the calls themselves (`range_totals`, the figures of `tasks.metrics.kpis`).
    Calls of contacts since removed count in "Contacts Called" only on the second path.
    """
    if not covers_whole_campaign(conn, campaign_id, date_from, date_to):
        return metrics.kpi_cards_from(range_totals(conn, campaign_id, date_from, date_to))
    metrics.range_bounds("UTC", date_from, date_to)  # a reversed range is refused on both paths
    return metrics.kpi_cards_from(_whole_campaign(conn, campaign_id))


def calls_made(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> pl.DataFrame:
    """Calls per campaign-local day and disconnect reason (day, reason, calls), reasons never null."""
    series = metrics.calls_per_day(conn, campaign_id, date_from, date_to)
    return series.with_columns(pl.col("disconnect_reason").fill_null(NO_REASON)).rename(
        {"disconnect_reason": "reason"}
    )


def contact_funnel(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> dict:
    """The funnel (total → connected → successful, % of total) and the hints its gaps call for.

    Read like the KPI cards: from contact_stats when the range holds the whole campaign.
    """
    if covers_whole_campaign(conn, campaign_id, date_from, date_to):
        metrics.range_bounds("UTC", date_from, date_to)
        row = _whole_campaign(conn, campaign_id)
    else:
        row = range_totals(conn, campaign_id, date_from, date_to)
    total, connected, successful = row["total_contacts"], row["connected_contacts"], row["successful_contacts"]
    funnel = {"total_contacts": int(total), "connected": int(connected), "connected_pct": _pct(connected, total),
              "successful": int(successful), "successful_pct": _pct(successful, total)}
    hints = []
    if total and connected < LARGE_GAP_SHARE * total:
        hints.append(HINT_CONNECTED)
    if connected and successful < LARGE_GAP_SHARE * connected:
        hints.append(HINT_SUCCESSFUL)
    return {**funnel, "hints": hints}


def funnel_frame(funnel: dict) -> pl.DataFrame:
    """The funnel as chart rows: stage, contacts, % of total, label, in order."""
    rows = [
        ("Total Contacts", funnel["total_contacts"], 100.0 if funnel["total_contacts"] else 0.0),
        ("Connected", funnel["connected"], funnel["connected_pct"]),
        ("Successful", funnel["successful"], funnel["successful_pct"]),
    ]
    return pl.DataFrame(
        [(i, stage, n, pct, f"{n:,} ({pct:g}%)") for i, (stage, n, pct) in enumerate(rows)],
        schema={"order": pl.Int64, "stage": pl.String, "contacts": pl.Int64, "pct": pl.Float64, "label": pl.String},
        orient="row",
    )
