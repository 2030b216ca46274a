"""Contact List reads: one searched, sorted page of a campaign's enrolled contacts with their call stats."""

from __future__ import annotations

import duckdb
import polars as pl

from dashboards.queries.calls import search_terms
from tasks.errors import ValidationError
from tasks.metrics import _campaign_zone

PAGE_SIZE = 50
# Sort keys the table offers → SQL expression over `final` (whitelist; never from user text).
SORT_COLUMNS = {
    "created": '"Created At"',
    "phone": '"Phone Number"',
    "name": '"Name"',
    "attempts": '"Attempts"',
    "connected": '"Connected"',
    "successful": '"Successful"',
    "credits": '"Credits"',
    "duration": '"Duration"',
    "last_call": '"Last Call Date"',
}


def _scope(campaign_id: int, search: str | None) -> tuple[str, dict]:
    conditions = ["e.campaign_id = $campaign_id"]
    params: dict = {"campaign_id": campaign_id}
    digits, name = search_terms(search)
    if digits:
        conditions.append("contains(ct.phone_e164, $digits)")
        params["digits"] = digits
    if name:
        # A name search also finds company and e-mail: the CRM fields a manager remembers.
        conditions.append(
            "(contains(lower(ct.name), $name) or contains(lower(ct.company), $name) or contains(lower(ct.email), $name))"
        )
        params["name"] = name
    return " and ".join(conditions), params


def count_contacts(conn: duckdb.DuckDBPyConnection, campaign_id: int, search: str | None = None) -> int:
    """How many enrolled contacts match the search."""
    _campaign_zone(conn, campaign_id)
    where, params = _scope(campaign_id, search)
    return conn.execute(
        f"select count(*) from campaign_contacts e join contacts ct using (contact_id) where {where}", params
    ).fetchone()[0]


def contact_page(
    conn: duckdb.DuckDBPyConnection,
    campaign_id: int,
    search: str | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    sort: str = "created",
    descending: bool = True,
) -> pl.DataFrame:
    """One page of the Contact List (1-based), contacts never called included with zeros; local dates."""
    if sort not in SORT_COLUMNS:
        raise ValidationError("sort", f"unknown sort {sort!r}; use one of {', '.join(SORT_COLUMNS)}")
    if page < 1 or not 1 <= page_size <= 1000:
        raise ValidationError("page", f"page {page} of size {page_size} is out of range")
    time_zone = _campaign_zone(conn, campaign_id)
    where, params = _scope(campaign_id, search)
    params.update({"time_zone": time_zone, "limit": page_size, "offset": (page - 1) * page_size})
    direction = "desc" if descending else "asc"
    # contact_stats is kept by aggregate_metrics; an enrollment it has not seen yet shows zeros.
    query = f"""
        with enrolled as (
            select e.contact_id, e.added_at, ct.phone_e164, ct.name, ct.company, ct.email
            from campaign_contacts e join contacts ct using (contact_id)
            where {where}
        ),
        final as (
            select
                n.contact_id,
                n.phone_e164 as "Phone Number",
                n.name as "Name",
                coalesce(s.attempts, 0) as "Attempts",
                coalesce(s.connected, 0) as "Connected",
                coalesce(s.successful, 0) as "Successful",
                coalesce(s.credits, 0) as "Credits",
                coalesce(s.total_duration_seconds, 0) as "Duration",
                s.last_disconnect_reason as "Last Disconnection",
                timezone($time_zone, s.last_call_at) as "Last Call Date",
                timezone($time_zone, n.added_at) as "Created At"
            from enrolled n
            left join contact_stats s on s.campaign_id = $campaign_id and s.contact_id = n.contact_id
        )
        select * from final
        order by {SORT_COLUMNS[sort]} {direction} nulls last, contact_id {direction}
        limit $limit offset $offset
    """
    return conn.execute(query, params).pl()
