"""Seed in-flight calls directly (as the dialer leaves them) for enrichment and webhook tests."""

from __future__ import annotations

from datetime import datetime

import duckdb


def seed_call(
    conn: duckdb.DuckDBPyConnection,
    campaign_id: int,
    phone: str,
    queued_at: datetime,
    *,
    status: str = "registered",
    provider: str = "simulator",
    provider_call_id: str | None = None,
    attempt_key: str | None = None,
    attempts: int = 1,
) -> int:
    """A contact enrolled in the campaign with one call in flight (counted as its attempt); its call id."""
    contact_id = conn.execute(
        "insert into contacts (phone_e164, name) values (?, 'Test Person') returning contact_id", [phone]
    ).fetchone()[0]
    local_day = conn.execute(
        "select (?::timestamptz at time zone time_zone)::date from campaigns where campaign_id = ?",
        [queued_at, campaign_id],
    ).fetchone()[0]
    conn.execute(
        "insert into campaign_contacts (campaign_id, contact_id, added_at, attempts, call_seq, attempts_day,"
        " attempts_on_day, last_call_at) values (?, ?, ?, ?, ?, ?, 1, ?)",
        [campaign_id, contact_id, queued_at, attempts, attempts, local_day, queued_at],
    )
    key = attempt_key or f"{campaign_id}.{contact_id}.{attempts}"
    call_id = conn.execute(
        "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, from_number,"
        " status, provider, provider_call_id, queued_at, registered_at, dynamic_variables, updated_at)"
        " values (?, ?, ?, ?, ?, '+16025550100', ?, ?, ?, ?, ?, '{\"contact_name\": \"Test Person\"}', ?)"
        " returning call_id",
        [campaign_id, contact_id, key, attempts, phone, status, provider, provider_call_id, queued_at,
         queued_at if status not in ("queued", "created") else None, queued_at],
    ).fetchone()[0]
    conn.execute(
        "update campaign_contacts set in_flight_call_id = ? where campaign_id = ? and contact_id = ?",
        [call_id, campaign_id, contact_id],
    )
    return call_id


def call_row(conn: duckdb.DuckDBPyConnection, call_id: int) -> dict:
    """The call's row as a dict."""
    cursor = conn.execute("select * from calls where call_id = ?", [call_id])
    return dict(zip([d[0] for d in cursor.description], cursor.fetchone()))


def enrollment_row(conn: duckdb.DuckDBPyConnection, call_id: int) -> dict:
    """The enrollment row of the call's contact as a dict."""
    cursor = conn.execute(
        "select cc.* from campaign_contacts cc join calls c using (campaign_id, contact_id) where c.call_id = ?",
        [call_id],
    )
    return dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
