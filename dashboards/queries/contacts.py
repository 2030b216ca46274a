"""Contact List reads: one searched, sorted page of a campaign's enrolled contacts with their call stats."""

from __future__ import annotations

import duckdb
import polars as pl

from dashboards.queries import check_page

from dashboards.queries.calls import search_terms
from dashboards.queries.search import text_search
from tasks.metrics import WATERMARK_LAG, _campaign_zone

PAGE_SIZE = 50
# Sort keys the table offers → (SQL expression, table it needs: "contacts", "stats" or None).
# Identifiers only ever come from this whitelist, never from user text.
SORT_COLUMNS = {
    "created": ("e.added_at", None),
    "phone": ("ct.phone_e164", "contacts"),
    "name": ("ct.name", "contacts"),
    "attempts": ("coalesce(s.attempts, 0)", "stats"),
    "connected": ("coalesce(s.connected, 0)", "stats"),
    "successful": ("coalesce(s.successful, 0)", "stats"),
    "credits": ("coalesce(s.credits, 0)", "stats"),
    "duration": ("coalesce(s.total_duration_seconds, 0)", "stats"),
    "last_call": ("s.last_call_at", "stats"),
}


def _scope(campaign_id: int, search: str | None) -> tuple[str, dict]:
    """The search's conditions over `contacts ct` (always true without a search) and the parameters."""
    conditions = ["true"]
    params: dict = {"campaign_id": campaign_id}
    digits, name = search_terms(search)
    if digits:
        conditions.append("contains(ct.phone_e164, $digits)")
        params["digits"] = digits
    if name:
        # A name search also finds company and e-mail: the CRM fields a manager remembers. Case and accents
        # aside, as the Call Logs search ("lopez" finds "López").
        conditions.append(text_search(["ct.name", "ct.company", "ct.email"], name, params))
    return " and ".join(conditions), params


def stats_behind(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> bool:
    """Whether the campaign's `contact_stats` miss a change to one of its calls: a call changed after the newest change
    its last aggregation saw (its `calls_watermark` + `WATERMARK_LAG`), or calls and no aggregation yet."""
    row = conn.execute("select calls_watermark from metrics_state where campaign_id = ?", [campaign_id]).fetchone()
    if row is None:
        return conn.execute("select exists (select 1 from calls where campaign_id = ?)", [campaign_id]).fetchone()[0]
    return conn.execute("select exists (select 1 from calls where campaign_id = ? and updated_at > ?)",
                        [campaign_id, row[0] + WATERMARK_LAG]).fetchone()[0]


def count_contacts(conn: duckdb.DuckDBPyConnection, campaign_id: int, search: str | None = None) -> int:
    """How many enrolled contacts match the search."""
    _campaign_zone(conn, campaign_id)
    where, params = _scope(campaign_id, search)
    join = "join contacts ct using (contact_id)" if "ct." in where else ""
    return conn.execute(
        f"select count(*) from campaign_contacts e {join} where e.campaign_id = $campaign_id and {where}", params
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
    check_page(sort, SORT_COLUMNS, page, page_size)
    time_zone = _campaign_zone(conn, campaign_id)
    where, params = _scope(campaign_id, search)
    params.update({"time_zone": time_zone, "limit": page_size, "offset": (page - 1) * page_size})
    direction = "desc" if descending else "asc"
    sort_expr, needs = SORT_COLUMNS[sort]
    # The page's keys are chosen on narrow rows first (only the tables the search and sort need, each
    # cut to the campaign before joining on contact_id), then only those rows are decorated.
    contacts_join = "join contacts ct using (contact_id)" if needs == "contacts" or "ct." in where else ""
    stats_join = (
        "left join (select contact_id, attempts, connected, successful, credits, total_duration_seconds,"
        " last_call_at from contact_stats where campaign_id = $campaign_id) s using (contact_id)"
        if needs == "stats" else ""
    )
    order = f"{sort_expr} {direction} nulls last, e.contact_id {direction}"
    # contact_stats is kept by aggregate_metrics; an enrollment it has not seen yet shows zeros.
    query = f"""
        with page_keys as (
            select e.contact_id, {sort_expr} as sort_key
            from (select contact_id, added_at from campaign_contacts where campaign_id = $campaign_id) e
            {contacts_join} {stats_join}
            where {where}
            order by {order}
            limit $limit offset $offset
        ),
        final as (
            select
                k.contact_id,
                ct.phone_e164 as "Phone Number",
                ct.name as "Name",
                coalesce(s.attempts, 0) as "Attempts",
                coalesce(s.connected, 0) as "Connected",
                coalesce(s.successful, 0) as "Successful",
                coalesce(s.credits, 0) as "Credits",
                coalesce(s.total_duration_seconds, 0) as "Duration",
                s.last_disconnect_reason as "Last Disconnection",
                timezone($time_zone, s.last_call_at) as "Last Call Date",
                timezone($time_zone, e.added_at) as "Created At",
                k.sort_key
            from page_keys k
            join campaign_contacts e on e.campaign_id = $campaign_id and e.contact_id = k.contact_id
            join contacts ct on ct.contact_id = k.contact_id
            left join contact_stats s on s.campaign_id = $campaign_id and s.contact_id = k.contact_id
        )
        select * exclude (sort_key) from final order by sort_key {direction} nulls last, contact_id {direction}
    """
    return conn.execute(query, params).pl()
