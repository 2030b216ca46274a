"""Metrics tab reads: the default date range, KPI cards, the Calls Made series and the contact funnel."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from tasks import metrics
from tasks.call_state import FINAL_STATUSES
from tasks.metrics import calls_not_counted  # noqa: F401  (the Metrics tab's read)
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
# The Calls Made line of attempts without a disconnect reason: calls still in flight (or, rarely, a finished call
# the provider gave no reason for). Refusals have none either but are no attempts, so they are never drawn.
NO_REASON = "in flight / no reason"


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


def kpis_and_funnel(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> tuple[dict, dict]:
    """The KPI cards and the funnel from one read of the calls: `tasks.metrics.totals`, the figures of
    `campaigns metrics`, always current (not as of the last aggregation); the funnel's hints also ask whether
    an attempt of the range has ended (`any_attempt_ended`)."""
    row = metrics.totals(conn, campaign_id, date_from, date_to)
    ended = any_attempt_ended(conn, campaign_id, date_from, date_to)
    return metrics.kpi_cards_from(row), _with_hints(metrics.funnel_from(row), ended)


def kpi_cards(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> dict:
    """The five KPI values (credits, calls, contacts called, connection rate %, avg connected seconds)."""
    return metrics.kpis(conn, campaign_id, date_from, date_to)


def contact_funnel(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> dict:
    """The funnel (total → connected → successful, % of total) and the hints its gaps call for."""
    row = metrics.totals(conn, campaign_id, date_from, date_to)
    return _with_hints(metrics.funnel_from(row), any_attempt_ended(conn, campaign_id, date_from, date_to))


# Why a call listed in Call Logs is no attempt (docs/schema.md, "Metrics"): kind → what the Metrics tab says.
NOT_ATTEMPT_KINDS = {
    "limit": "refused at the rate or concurrency limit",
    "outage": "not placed while the telephony provider was unavailable",
    "interrupted": "never handed to the provider (the batch stopped, or the number was put on a do-not-call list "
                   "after the claim)",
}


def not_counted_note(total_calls: int, counts: dict) -> str | None:
    """The Metrics tab's caption saying why Total Calls is below the Call Logs' count (None when they agree)."""
    left_out = counts["not_counted"]
    if not left_out:
        return None
    listed = total_calls + left_out
    kinds = ", ".join(f"{counts[kind]:,} {text}" for kind, text in NOT_ATTEMPT_KINDS.items() if counts[kind])
    them = "it as an attempt" if left_out == 1 else "them as attempts"
    return (f"Call Logs lists {listed:,} {'call' if listed == 1 else 'calls'} in this date range; {left_out:,} "
            f"{'of them ' if listed > 1 else ''}never rang, so Total Calls does not count {them}: {kinds}.")


ATTEMPT_ENDED_SQL = """
with ended as (
    -- one attempt of the range that has ended is enough (a call still ringing has no outcome yet)
    select 1
    from calls
    where campaign_id = $campaign_id and queued_at >= $lo and queued_at < $hi
      and counts_as_attempt and list_contains($final_statuses, status)
    limit 1
),
final as (
    select count(*) > 0 as any_ended from ended
)
select * from final
"""


def any_attempt_ended(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> bool:
    """Whether a call attempt of the inclusive campaign-local date range has ended (not only calls in flight)."""
    row = conn.execute("select time_zone from campaigns where campaign_id = ?", [campaign_id]).fetchone()
    if row is None:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    lo, hi = metrics.range_bounds(row[0], date_from, date_to)
    return conn.execute(ATTEMPT_ENDED_SQL, {"campaign_id": campaign_id, "lo": lo, "hi": hi,
                                            "final_statuses": list(FINAL_STATUSES)}).fetchone()[0]


def aggregated_at(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> datetime | None:
    """When the metrics aggregation last ran over the campaign (what the Calls Made chart is as of); None: never."""
    row = conn.execute("select aggregated_at from metrics_state where campaign_id = ?", [campaign_id]).fetchone()
    return row[0] if row else None


def _with_hints(funnel: dict, attempt_ended: bool) -> dict:
    total, connected, successful = funnel["total_contacts"], funnel["connected"], funnel["successful"]
    hints = []
    # The first hint blames how the calls were made: a range in which no call has ended (nobody called before
    # the first call or on a weekend; right after a Run, every call still in flight) has nothing to blame yet,
    # however large its gap.
    if total and attempt_ended and connected < LARGE_GAP_SHARE * total:
        hints.append(HINT_CONNECTED)
    if connected and successful < LARGE_GAP_SHARE * connected:
        hints.append(HINT_SUCCESSFUL)
    return {**funnel, "hints": hints}


def calls_made(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, date_from: date | None, date_to: date | None
) -> pl.DataFrame:
    """Calls per campaign-local day and disconnect reason (day, reason, calls), reasons never null.

    Empty when the range has no calls at all; else `every_day` of its span of calls.
    """
    series = metrics.calls_per_day(conn, campaign_id, date_from, date_to).with_columns(
        pl.col("disconnect_reason").fill_null(NO_REASON)).rename({"disconnect_reason": "reason"})
    return every_day(series)


def every_day(series: pl.DataFrame) -> pl.DataFrame:
    """The (day, reason, calls) rows with every day from the first day with calls to the last, 0 calls for
    each reason on a day without any (weekends, a paused week), so the chart's line drops to 0 instead of
    joining Friday to Monday. The axis spans the calls, not the whole range: the default range runs from
    the start date to today, and a campaign that ended months ago would be a squashed spike at its start."""
    if series.is_empty():
        return series
    grid = pl.DataFrame({"day": pl.date_range(series["day"].min(), series["day"].max(), "1d", eager=True)}).join(
        series.select("reason").unique(), how="cross")
    return (grid.join(series, on=["day", "reason"], how="left")
            .with_columns(pl.col("calls").fill_null(0))
            .sort("day", "reason"))


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
