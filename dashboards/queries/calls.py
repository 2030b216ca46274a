"""Call Logs reads: one filtered, sorted page of a campaign's calls, a call's detail, a contact's history."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

from dashboards.queries import check_page
from dashboards.queries.search import text_search
from tasks.errors import NotFoundError
from tasks.metrics import _campaign_zone, range_bounds

PAGE_SIZE = 50
# Sort keys the table offers → SQL expression (identifiers only ever come from this mapping).
SORT_COLUMNS = {
    "date": "c.queued_at",
    "phone": "c.phone_e164",
    "disconnect_reason": "c.disconnect_reason",
    "status": "c.status",
    "call_successful": "c.call_successful",
    "duration": "c.duration_seconds",
    "credits": "c.credits",
    "tools": "c.tools_count",
}
# A row the provider never received: its batch stopped before placing it (the campaign paused, the calling window
# closed, a crash; tasks.dialing.mark_not_placed). The store keeps it as `error` / `error_dapta`, not an attempt; the
# tables show it as "Not Placed", not as an error of a call (an audit read a paused batch's rows as 13 failed calls).
NOT_PLACED = "not_placed"
# A call's duration as the tables show it: whole seconds, half to even (`components.format_duration`).
SHOWN_SECONDS = "round_even(coalesce(c.duration_seconds, 0), 0)"
SHOWN_REASON = (f"case when c.status = 'error' and c.provider_call_id is null and not c.counts_as_attempt"
                f" then '{NOT_PLACED}' else c.disconnect_reason end")
# When a call was placed: its registration with the provider, else its start, else (never placed) its
# claim. Only shown: sorting and date filters use queued_at, which the zone maps serve, and a batch's
# calls are placed in their queue order.
PLACED_AT = "coalesce(c.registered_at, c.started_at, c.queued_at)"
# A search made only of these characters is a phone number; anything else searches contact names.
_PHONE_LIKE = re.compile(r"[\d\s+\-().]+")
MAX_SEARCH_CHARS = 200


@dataclass(frozen=True)
class CallFilters:
    """What the Call Logs tab narrows the calls to (every field optional; dates campaign-local, inclusive)."""

    search: str | None = None
    disconnect_reasons: tuple[str, ...] = field(default_factory=tuple)
    call_successful: bool | None = None
    min_duration_seconds: float | None = None
    max_duration_seconds: float | None = None
    date_from: date | None = None
    date_to: date | None = None
    contact_id: int | None = None


def search_terms(search: str | None) -> tuple[str | None, str | None]:
    """(phone digits, name text) a search box value means; at most one is set.

    The name text is kept as typed: the SQL folds case and accents on both sides (`queries.search`), so
    one definition (DuckDB's) decides what matches, in the tabs and in the Call Logs export alike.
    """
    text = (search or "").strip()[:MAX_SEARCH_CHARS]
    if not text:
        return None, None
    if _PHONE_LIKE.fullmatch(text):
        digits = re.sub(r"\D", "", text)
        return (digits or None), None
    return None, text


# The connection variable holding the contacts a name search finds (see _name_condition).
SEARCH_VARIABLE = "dashboard_call_search_contacts"
# Up to this many matching contacts the calls are semi-joined to their id list; more use a bitmap.
SMALL_MATCH = 2000
# Contact-id spans wider than this (bits) are never made a bitmap: a plain semi-join instead.
MAX_BITMAP_SPAN = 1 << 27


def _name_condition(conn: duckdb.DuckDBPyConnection, name: str, params: dict) -> str:
    """The condition over `calls c` keeping the calls of the contacts whose name holds the text (case and
    accents aside, as the export's `name_contains` filter matches).

    The contacts are searched once into a connection variable: a few matches as an id list (a small
    hash semi-join), many as a bitmap over contact ids, so the calls are filtered by one bit lookup
    in the scan and DuckDB keeps skipping row groups for the newest-first page, which a semi-join
    with a large build side defeats (a name matching every contact at a million calls: 2x faster).
    """
    # min/max come from the table's statistics: free
    first_id, last_id = conn.execute("select min(contact_id), max(contact_id) from contacts").fetchone()
    if first_id is None:
        return "false"
    if last_id - first_id >= MAX_BITMAP_SPAN:
        return f"c.contact_id in (select contact_id from contacts where {text_search(['name'], name, params)})"
    search_params = {"first_id": first_id, "last_id": last_id}
    matching = text_search(["name"], name, search_params)
    conn.execute(
        f"""
        set variable {SEARCH_VARIABLE} = (
            select {{
                'matches': count(*),
                'ids': case when count(*) <= {SMALL_MATCH} then list(contact_id) end,
                'bits': case when count(*) > {SMALL_MATCH} then bitstring_agg(contact_id, $first_id, $last_id) end
            }}
            from contacts
            where {matching}
        )
        """,
        search_params,
    )
    matches = conn.execute(f"select getvariable('{SEARCH_VARIABLE}').matches").fetchone()[0]
    if not matches:
        return "false"
    if matches <= SMALL_MATCH:
        return f"c.contact_id in (select unnest(getvariable('{SEARCH_VARIABLE}').ids))"
    params.update({"first_id": first_id, "last_id": last_id})
    return (
        "c.contact_id between $first_id and $last_id"
        f" and get_bit(getvariable('{SEARCH_VARIABLE}').bits, (c.contact_id - $first_id)::integer) = 1"
    )


def _scope(conn: duckdb.DuckDBPyConnection, campaign_id: int, filters: CallFilters) -> tuple[str, dict, str]:
    """The WHERE clause over `calls c`, its parameters and the campaign zone."""
    time_zone = _campaign_zone(conn, campaign_id)
    lo, hi = range_bounds(time_zone, filters.date_from, filters.date_to)
    conditions = ["c.campaign_id = $campaign_id", "c.queued_at >= $lo", "c.queued_at < $hi"]
    params: dict = {"campaign_id": campaign_id, "lo": lo, "hi": hi}
    digits, name = search_terms(filters.search)
    if digits:
        # The dialed number itself (a contact's number may have been edited since): a filter in the
        # scan, which keeps the newest-first page skipping row groups.
        conditions.append("contains(c.phone_e164, $digits)")
        params["digits"] = digits
    if name:
        conditions.append(_name_condition(conn, name, params))
    if filters.disconnect_reasons:
        conditions.append("c.disconnect_reason in (select unnest($reasons::varchar[]))")
        params["reasons"] = list(filters.disconnect_reasons)
    if filters.call_successful is not None:
        conditions.append("coalesce(c.call_successful, false) = $successful")
        params["successful"] = filters.call_successful
    # on the whole seconds the table shows (half to even, as `format_duration`): a call of 39.6 s reads "40 sec"
    # and was left out of "from 40 sec"
    if filters.min_duration_seconds is not None:
        conditions.append(f"{SHOWN_SECONDS} >= $min_duration")
        params["min_duration"] = filters.min_duration_seconds
    if filters.max_duration_seconds is not None:
        conditions.append(f"{SHOWN_SECONDS} <= $max_duration")
        params["max_duration"] = filters.max_duration_seconds
    if filters.contact_id is not None:
        conditions.append("c.contact_id = $contact_id")
        params["contact_id"] = filters.contact_id
    return " and ".join(conditions), params, time_zone


def count_calls(conn: duckdb.DuckDBPyConnection, campaign_id: int, filters: CallFilters = CallFilters()) -> int:
    """How many calls match the filters (for the page selector)."""
    where, params, _ = _scope(conn, campaign_id, filters)
    return conn.execute(f"select count(*) from calls c where {where}", params).fetchone()[0]


def call_page(
    conn: duckdb.DuckDBPyConnection,
    campaign_id: int,
    filters: CallFilters = CallFilters(),
    page: int = 1,
    page_size: int = PAGE_SIZE,
    sort: str = "date",
    descending: bool = True,
) -> pl.DataFrame:
    """One page of the Call Logs table (1-based page), sorted in DuckDB; dates in the campaign's zone."""
    check_page(sort, SORT_COLUMNS, page, page_size)
    where, params, time_zone = _scope(conn, campaign_id, filters)
    direction = "desc" if descending else "asc"
    params.update({"time_zone": time_zone, "limit": page_size, "offset": (page - 1) * page_size})
    # Only the page's calls are joined to contacts and feedback: at a million calls a join before
    # paging costs more than the rest of the page.
    query = f"""
        with matching as (
            select c.call_id
            from calls c
            where {where}
            order by {SORT_COLUMNS[sort]} {direction} nulls last, c.call_id {direction}
            limit $limit offset $offset
        ),
        final as (
            select
                c.call_id,
                c.contact_id,
                c.phone_e164 as "Phone Number",
                ct.name as "Contact",
                {SHOWN_REASON} as "Disconnect Reason",
                c.status as "Status",
                c.call_successful as "Call Successful",
                c.duration_seconds as "Duration",
                c.credits as "Credits",
                concat_ws(' · ', case f.rating when 'up' then 'Good' when 'down' then 'Bad' end, f.comment)
                    as "Feedback",
                -- a call that never connected used no tools (0, not an empty cell); an ended one waits for its analysis
                coalesce(c.tools_count, case when c.status in ('not_connected', 'error', 'failed_rate_limit') then 0 end)
                    as "Tools",
                timezone($time_zone, {PLACED_AT}) as "Date"
            from matching m
            join calls c using (call_id)
            left join contacts ct on ct.contact_id = c.contact_id
            left join call_feedback f on f.call_id = c.call_id
            order by {SORT_COLUMNS[sort]} {direction} nulls last, c.call_id {direction}
        )
        select * from final
    """
    return conn.execute(query, params).pl()


def _json(value: str | None) -> dict:
    if not value:
        return {}
    try:
        decoded = json.loads(value)
    except ValueError:
        return {"value": value}
    return decoded if isinstance(decoded, dict) else {"value": decoded}


def call_detail(conn: duckdb.DuckDBPyConnection, campaign_id: int, call_id: int) -> dict:
    """Everything the call detail panel shows: the call, its analysis, JSON data decoded and its feedback."""
    time_zone = _campaign_zone(conn, campaign_id)
    cursor = conn.execute(
        f"""
        with final as (
            select c.* replace ({SHOWN_REASON} as disconnect_reason), ct.name as contact_name,
                   f.rating as feedback_rating, f.comment as feedback_comment,
                   timezone($time_zone, {PLACED_AT}) as local_date
            from calls c
            left join contacts ct using (contact_id)
            left join call_feedback f using (call_id)
            where c.call_id = $call_id and c.campaign_id = $campaign_id
        )
        select * from final
        """,
        {"call_id": call_id, "campaign_id": campaign_id, "time_zone": time_zone},
    )
    row = cursor.fetchone()
    if row is None:
        raise NotFoundError(f"call {call_id} is not a call of campaign {campaign_id}")
    detail = dict(zip([d[0] for d in cursor.description], row))
    detail["dynamic_variables"] = _json(detail["dynamic_variables"])
    detail["custom_analysis"] = _json(detail["custom_analysis"])
    return detail


def contact_history(conn: duckdb.DuckDBPyConnection, campaign_id: int, contact_id: int) -> pl.DataFrame:
    """Every call of one contact in this campaign, oldest first, dates in the campaign's zone; `counts_as_attempt`
    (not shown) tells the calls that are no attempts."""
    time_zone = _campaign_zone(conn, campaign_id)
    return conn.execute(
        f"""
        with final as (
            select c.call_id, c.attempt_number as "Attempt", timezone($time_zone, {PLACED_AT}) as "Date",
                   c.status as "Status", {SHOWN_REASON} as "Disconnect Reason",
                   c.call_successful as "Call Successful", c.duration_seconds as "Duration",
                   c.credits as "Credits", c.counts_as_attempt
            from calls c
            where c.campaign_id = $campaign_id and c.contact_id = $contact_id
            order by c.queued_at, c.call_id
        )
        select * from final
        """,
        {"campaign_id": campaign_id, "contact_id": contact_id, "time_zone": time_zone},
    ).pl()


def export_arguments(filters: CallFilters) -> tuple[date | None, date | None, dict]:
    """(date_from, date_to, filters) for `tasks.export_calls.export_calls` matching the tab's filters.

    The search box becomes the export's phone-digits or contact-name filter, as it filters the tab.
    """
    digits, name = search_terms(filters.search)
    export_filters = {
        "disconnect_reason": list(filters.disconnect_reasons) or None,
        "call_successful": filters.call_successful,
        "min_duration_seconds": filters.min_duration_seconds,
        "max_duration_seconds": filters.max_duration_seconds,
        "contact_id": filters.contact_id,
        "phone_contains": digits,
        "name_contains": name,
    }
    return filters.date_from, filters.date_to, {k: v for k, v in export_filters.items() if v is not None}
