"""Read functions for the campaign list, the campaign header and the Settings tab's choices."""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from tasks.campaigns import StatusFacts, derive_status
from tasks.errors import NotFoundError, ValidationError

Conn = duckdb.DuckDBPyConnection

# Whitelisted orderings of the list; the key is what the page offers, the value is trusted SQL.
SORTS = {
    "created": "order by created_at desc, campaign_id desc",
    "name": "order by lower(name), campaign_id",
}

# The page is chosen first (search, order, limit, offset), then only its rows get their facts.
_PAGE_SQL = """
with scope as (
    select campaign_id, name, agent_id, start_date, end_date, time_zone, active, created_at
    from campaigns
    where ($campaign_id is null or campaign_id = $campaign_id)
      and ($search is null or contains(lower(name), lower($search)))
    {order}
    limit $limit offset $offset
),
ranked_runs as (
    select campaign_id, kind, state,
           row_number() over (partition by campaign_id order by started_at desc, run_id desc) as recency
    from dial_runs
    where campaign_id in (select campaign_id from scope)
),
run_facts as (
    select campaign_id,
           bool_or(kind = 'manual' and state = 'running') as manual_running,
           bool_or(kind = 'scheduled' and state = 'running') as scheduled_running,
           max(state) filter (where recency = 1) as latest_run_state
    from ranked_runs
    group by campaign_id
),
enrollment as (
    select campaign_id,
           count(*) as contacts,
           count(*) filter (where finished_at is null) as unfinished
    from campaign_contacts
    where campaign_id in (select campaign_id from scope)
    group by campaign_id
),
final as (
    select s.campaign_id, s.name, s.start_date, s.end_date, s.time_zone, s.active, s.created_at,
           a.name as agent_name,
           coalesce(e.contacts, 0) as contacts,
           coalesce(e.unfinished, 0) as unfinished,
           coalesce(r.manual_running, false) as manual_running,
           coalesce(r.scheduled_running, false) as scheduled_running,
           r.latest_run_state
    from scope s
    left join agents a using (agent_id)
    left join enrollment e using (campaign_id)
    left join run_facts r using (campaign_id)
)
select * from final
"""

LIST_SCHEMA = {
    "campaign_id": pl.Int64, "name": pl.String, "status": pl.String, "agent_name": pl.String,
    "contacts": pl.Int64, "created_at": pl.Datetime("us", "UTC"), "start_date": pl.Date,
    "time_zone": pl.String, "active": pl.Boolean,
}


def _rows(conn: Conn, *, campaign_id: int | None, search: str | None, sort: str, limit: int, offset: int) -> list[dict]:
    if sort not in SORTS:
        raise ValidationError("sort", f'"{sort}" is not one of {", ".join(SORTS)}')
    sql = _PAGE_SQL.format(order=SORTS[sort]) + " " + SORTS[sort]
    cursor = conn.execute(sql, {"campaign_id": campaign_id, "search": search or None,
                                "limit": max(0, int(limit)), "offset": max(0, int(offset))})
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def _with_status(row: dict, now: datetime) -> dict:
    facts = StatusFacts(**{f: row[f] for f in StatusFacts.__dataclass_fields__})
    return {key: row[key] for key in LIST_SCHEMA if key != "status"} | {"status": derive_status(facts, now).value}


def campaign_page(
    conn: Conn, now: datetime, search: str | None = None, sort: str = "created", limit: int = 20, offset: int = 0
) -> pl.DataFrame:
    """One page of the campaign list (status derived at ``now``), searched by name and sorted server-side."""
    rows = [_with_status(r, now) for r in _rows(conn, campaign_id=None, search=search, sort=sort, limit=limit, offset=offset)]
    return pl.DataFrame(rows, schema=LIST_SCHEMA).select(list(LIST_SCHEMA))


def count_campaigns(conn: Conn, search: str | None = None) -> int:
    """How many campaigns match the list's search (for paging)."""
    return conn.execute(
        "select count(*) from campaigns where ($search is null or contains(lower(name), lower($search)))",
        {"search": search or None},
    ).fetchone()[0]


def campaign_header(conn: Conn, campaign_id: int, now: datetime) -> dict:
    """The campaign page header: campaign_id, name, status, agent_name, contacts, start_date, active."""
    rows = _rows(conn, campaign_id=campaign_id, search=None, sort="created", limit=1, offset=0)
    if not rows:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    return _with_status(rows[0], now)


def agent_choices(conn: Conn) -> dict[int, str]:
    """{agent_id: name} for the agent selectbox, by name."""
    return dict(conn.execute("select agent_id, name from agents order by lower(name), agent_id").fetchall())


def number_choices(conn: Conn) -> dict[int, str]:
    """{number_id: "nickname · +E164 · SIP trunk status"} for the outbound number pickers, by id."""
    rows = conn.execute(
        "select number_id, coalesce(nickname, 'No nickname'), e164, sip_trunk_status from phone_numbers order by number_id"
    ).fetchall()
    return {number_id: f"{nickname} · {e164} · {status}" for number_id, nickname, e164, status in rows}
