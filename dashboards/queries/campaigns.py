"""Read functions for the campaign list, the campaign header and the Settings tab's choices."""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from tasks.campaigns import (LIST_SORTS, StatusFacts, campaign_facts_sql, derive_status, status_notes,
                             with_derived_facts)
from tasks.errors import NotFoundError, ValidationError
from tasks.export_calls import contains_folded

Conn = duckdb.DuckDBPyConnection

# Whitelisted orderings of the list (the same as the CLI's); the values are trusted SQL.
SORTS = LIST_SORTS



LIST_SCHEMA = {
    "campaign_id": pl.Int64, "name": pl.String, "status": pl.String, "agent_name": pl.String,
    "contacts": pl.Int64, "created_at": pl.Datetime("us", "UTC"), "start_date": pl.Date,
    "time_zone": pl.String, "active": pl.Boolean,
}


def _search(search: str | None) -> str | None:
    """The name search as matched: spaces around it ignored (names have none), blank means everything."""
    return (search or "").strip() or None


def _rows(conn: Conn, *, campaign_id: int | None, search: str | None, sort: str, limit: int, offset: int) -> list[dict]:
    if sort not in SORTS:
        raise ValidationError("sort", f'"{sort}" is not one of {", ".join(SORTS)}')
    # the page is chosen first (search, order, limit, offset), then only its rows get their facts
    sql = campaign_facts_sql(page=f"{SORTS[sort]} limit $limit offset $offset") + " " + SORTS[sort]
    cursor = conn.execute(sql, {"campaign_id": campaign_id, "search": _search(search),
                                "limit": max(0, int(limit)), "offset": max(0, int(offset))})
    columns = [d[0] for d in cursor.description]
    return with_derived_facts(conn, [dict(zip(columns, row)) for row in cursor.fetchall()])


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
        f"select count(*) from campaigns where ($search is null or {contains_folded('name', 'search')})",
        {"search": _search(search)},
    ).fetchone()[0]


def campaign_header(conn: Conn, campaign_id: int, now: datetime) -> dict:
    """The campaign page header: campaign_id, name, status, agent_name, contacts, start_date, active; and, when the
    status says more, its notes (`tasks.campaigns.status_notes`: `failed_because`, `numbers_hold`)."""
    rows = _rows(conn, campaign_id=campaign_id, search=None, sort="created", limit=1, offset=0)
    if not rows:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    head = _with_status(rows[0], now)
    return head | status_notes(conn, campaign_id, head["status"], now)


def agent_choices(conn: Conn) -> dict[int, str]:
    """{agent_id: name} for the agent selectbox, by name."""
    return dict(conn.execute("select agent_id, name from agents order by lower(name), agent_id").fetchall())


def number_choices(conn: Conn) -> dict[int, str]:
    """{number_id: "nickname · +E164 · SIP trunk status"} for the outbound number pickers, by id."""
    rows = conn.execute(
        "select number_id, coalesce(nickname, 'No nickname'), e164, sip_trunk_status from phone_numbers order by number_id"
    ).fetchall()
    return {number_id: f"{nickname} · {e164} · {status}" for number_id, nickname, e164, status in rows}
