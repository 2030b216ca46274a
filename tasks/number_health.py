"""Outbound number health: per number and day calls, connection rate, short calls, spam marks;
the daily cap; automatic removal from rotation when thresholds are crossed, and restoring by hand.

A number is judged on its attempts since the later of 24 hours ago and its last restore, so a
number put back by hand is not paused again at once for the calls that paused it. Thresholds come
from the settings (CAMPAIGNS_NUMBER_MAX_SPAM_MARKS and CAMPAIGNS_NUMBER_MAX_SPAM_SHARE together,
CAMPAIGNS_NUMBER_MIN_CONNECTION_RATE with at least CAMPAIGNS_NUMBER_HEALTH_MIN_CALLS calls).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl

from tasks.errors import NotFoundError
from tasks.metrics import connected_sql
from tasks.retry_policy import SHORT_HANGUP_SECONDS
from tasks.settings import get_settings

WINDOW = timedelta(hours=24)

HEALTH_SQL = f"""
with attempts as (
    select c.from_number, (c.queued_at at time zone 'UTC')::date as day,
           {connected_sql("c")} as is_connected,
           c.status = 'ended' and coalesce(c.duration_seconds, 0) < $short_seconds as is_short,
           c.disconnect_reason = 'marked_as_spam' as is_spam
    from calls c
    where c.counts_as_attempt and c.queued_at >= $since and c.queued_at < $until
      and c.status in ('ended', 'not_connected', 'error')
),
daily as (
    select from_number, day, count(*) as calls,
           count(*) filter (where is_connected) as connected,
           count(*) filter (where is_short) as short_calls,
           count(*) filter (where is_spam) as spam_marks
    from attempts group by all
),
final as (
    select n.number_id, n.e164, n.nickname, d.day, d.calls, d.connected,
           round(d.connected / d.calls, 4) as connection_rate,
           d.short_calls, round(d.short_calls / d.calls, 4) as short_share, d.spam_marks,
           n.rotation_paused_at is null as in_rotation, n.rotation_paused_reason
    from daily d join phone_numbers n on n.e164 = d.from_number
)
select * from final order by number_id, day
"""

# A number's attempts that count towards its judgement, per number: only the calls' columns, with the
# window's lower bound a constant so DuckDB reads the last day's row groups alone (the per-number restore
# time applied by the caller; joined here with the numbers and their restores it cost twice as much).
JUDGE_SQL = f"""
with attempts as (
    select c.from_number,
           {connected_sql("c")} as is_connected,
           c.disconnect_reason = 'marked_as_spam' as is_spam
    from calls c
    where c.queued_at >= $since and c.queued_at <= $now and c.counts_as_attempt
      and c.status in ('ended', 'not_connected', 'error') and list_contains($numbers, c.from_number)
),
final as (
    select from_number, count(*) as calls, count(*) filter (where is_connected) as connected,
           count(*) filter (where is_spam) as spam_marks
    from attempts group by from_number
)
select * from final
"""


def number_health(conn: duckdb.DuckDBPyConnection, now: datetime, days: int = 7) -> pl.DataFrame:
    """Per outbound number and UTC day of the last `days` days: calls, connected, rates, short calls, spam marks."""
    since = now - timedelta(days=days)
    return conn.execute(
        HEALTH_SQL, {"since": since, "until": now + timedelta(microseconds=1), "short_seconds": SHORT_HANGUP_SECONDS}
    ).pl()


def numbers_overview(conn: duckdb.DuckDBPyConnection, now: datetime) -> list[dict]:
    """Every outbound number with its rotation state and its last 24 hours (for the CLI and Settings > Advanced).

    The figures are those a number is judged on (since the later of 24 hours ago and its last restore), for a
    number out of rotation too: they are what paused it.
    """
    numbers = conn.execute(
        "select number_id, e164, nickname, sip_trunk_status, rotation_paused_at, rotation_paused_reason"
        " from phone_numbers order by number_id"
    ).fetchall()
    judged = recent_attempts(conn, now, [(r[0], r[1]) for r in numbers])
    rows = []
    for number_id, e164, nickname, status, paused_at, reason in numbers:
        calls, connected, spam = judged.get(number_id, (0, 0, 0))
        rows.append({
            "number_id": number_id, "e164": e164, "nickname": nickname, "sip_trunk_status": status,
            "in_rotation": paused_at is None, "paused_at": paused_at, "paused_reason": reason,
            "calls_24h": calls, "connected_24h": connected,
            "connection_rate_24h": round(connected / calls, 4) if calls else None, "spam_marks_24h": spam,
        })
    return rows


def breach(
    calls: int, connected: int, spam_marks: int, *, max_spam: int, max_spam_share: float, min_rate: float, min_calls: int,
) -> str | None:
    """Why a number's recent calls cross the thresholds, or None when they do not.

    Spam marks count when there are at least `max_spam` of them and they are at least
    `max_spam_share` of the calls: a busy number collects a few marks by chance.
    """
    if spam_marks >= max_spam and spam_marks >= max_spam_share * calls:
        return f"{spam_marks} spam marks in {calls} calls in 24 h (limit: {max_spam} and {max_spam_share:.0%} of calls)"
    if calls >= min_calls and connected / calls < min_rate:
        return f"connection rate {connected / calls:.1%} over {calls} calls in 24 h (minimum {min_rate:.0%})"
    return None


def pause_number(conn: duckdb.DuckDBPyConnection, number_id: int, now: datetime, reason: str) -> None:
    """Take a number out of rotation with the reason shown (logged in number_status_changes)."""
    _require(conn, number_id)
    conn.execute(
        "update phone_numbers set rotation_paused_at = ?, rotation_paused_reason = ? where number_id = ?",
        [now, reason, number_id],
    )
    conn.execute("insert into number_status_changes values (?, ?, 'paused', ?)", [number_id, now, reason])


def restore_number(conn: duckdb.DuckDBPyConnection, number_id: int, now: datetime) -> bool:
    """Put a number back in rotation; False when it was not paused."""
    paused = _require(conn, number_id)
    if not paused:
        return False
    conn.execute(
        "update phone_numbers set rotation_paused_at = null, rotation_paused_reason = null where number_id = ?",
        [number_id],
    )
    conn.execute("insert into number_status_changes values (?, ?, 'restored', 'restored by hand')", [number_id, now])
    return True


def _require(conn: duckdb.DuckDBPyConnection, number_id: int) -> bool:
    row = conn.execute("select rotation_paused_at is not null from phone_numbers where number_id = ?", [number_id]).fetchone()
    if row is None:
        raise NotFoundError(f"number {number_id} does not exist")
    return row[0]


def recent_attempts(
    conn: duckdb.DuckDBPyConnection, now: datetime, numbers: list[tuple[int, str]]
) -> dict[int, tuple[int, int, int]]:
    """(calls, connected, spam marks) of each given (number_id, e164) since the later of 24 h ago and its last
    restore; numbers without such calls are left out."""
    if not numbers:
        return {}
    since = now - WINDOW
    judged_from = {number_id: since for number_id, _ in numbers}
    for number_id, restored_at in conn.execute(
        "select number_id, changed_at from number_status_changes"
        " where action = 'restored' and changed_at > ? and list_contains(?, number_id)",
        [since, [number_id for number_id, _ in numbers]],
    ).fetchall():
        judged_from[number_id] = max(judged_from[number_id], restored_at)
    # one read per distinct start: all numbers at once unless one was restored within the window
    starts: dict[datetime, dict[str, int]] = {}
    for number_id, e164 in numbers:
        starts.setdefault(judged_from[number_id], {})[e164] = number_id
    counts = {}
    for start, ids in starts.items():
        for e164, calls, connected, spam in conn.execute(
            JUDGE_SQL, {"since": start, "now": now, "numbers": list(ids)}
        ).fetchall():
            counts[ids[e164]] = (calls, connected, spam)
    return counts


def check_number_health(conn: duckdb.DuckDBPyConnection, now: datetime, number_ids: list[int]) -> list[dict]:
    """Pause the given numbers whose recent calls cross the thresholds; returns [{number_id, e164, reason}]."""
    if not number_ids:
        return []
    in_rotation = conn.execute(
        "select number_id, e164 from phone_numbers where rotation_paused_at is null and list_contains(?, number_id)"
        " order by number_id",
        [list(number_ids)],
    ).fetchall()
    return _pause_breaching(conn, now, in_rotation)


def _pause_breaching(conn: duckdb.DuckDBPyConnection, now: datetime, numbers: list[tuple[int, str]]) -> list[dict]:
    """Pause those of the in-rotation (number_id, e164) numbers whose recent calls cross the thresholds."""
    settings = get_settings()
    paused = []
    judged = recent_attempts(conn, now, numbers)
    for number_id, e164 in sorted(numbers):
        if number_id not in judged:
            continue
        calls, connected, spam = judged[number_id]
        reason = breach(calls, connected, spam, max_spam=settings.number_max_spam_marks,
                        max_spam_share=settings.number_max_spam_share,
                        min_rate=settings.number_min_connection_rate, min_calls=settings.number_health_min_calls)
        if reason:
            pause_number(conn, number_id, now, reason)
            paused.append({"number_id": number_id, "e164": e164, "reason": reason})
    return paused


def placed_sql(alias: str = "") -> str:
    """SQL: whether a call row counts as placed from its number (the daily cap's count, the dashboard's too).

    A rate-limit refusal never left; rows of a batch that were never sent (`tasks.dialing.mark_not_placed`:
    paused, window closed, crash) are no calls: `error_dapta` and not an attempt.
    """
    c = f"{alias}." if alias else ""
    return (f"({c}status <> 'failed_rate_limit'"
            f" and not ({c}disconnect_reason is not distinct from 'error_dapta' and not {c}counts_as_attempt))")


def calls_since(conn: duckdb.DuckDBPyConnection, numbers: list[str], since: datetime) -> dict[str, int]:
    """Calls placed from each number since `since` (`placed_sql`)."""
    if not numbers:
        return {}
    return dict(conn.execute(
        "select from_number, count(*) from calls where queued_at >= ? and list_contains(?, from_number)"
        f" and {placed_sql()} group by from_number",
        [since, numbers],
    ).fetchall())


def healthy_numbers(
    conn: duckdb.DuckDBPyConnection, rows: list[tuple], now: datetime, day_start: datetime, cap: int | None
) -> tuple[list[tuple], str | None]:
    """The (number_id, e164, status) rows still usable: auto-check health, drop paused and capped numbers.

    `rows` are (number_id, e164, status, out of rotation, pause reason) as read from phone_numbers in this
    transaction. Returns the kept (number_id, e164, status) rows, and when none is left, why. A number whose
    SIP trunk is not active cannot dial: when only such numbers are left because the cap took the others,
    the cap is why.
    """
    if not rows:
        return [], None
    newly = {c["number_id"]: c["reason"] for c in _pause_breaching(conn, now, [(r[0], r[1]) for r in rows if not r[3]])}
    paused = {r[0]: r[4] if r[3] else newly[r[0]] for r in rows if r[3] or r[0] in newly}
    kept = [r[:3] for r in rows if r[0] not in paused]
    capped = False
    if cap is not None and kept:
        used = calls_since(conn, [r[1] for r in kept], day_start)
        capped = any(r[2] == "active" and used.get(r[1], 0) >= cap for r in kept)
        kept = [r for r in kept if used.get(r[1], 0) < cap]
        if not kept and not paused:
            return [], f"every outbound number reached its daily cap of {cap} calls"
    if not kept and paused:
        number_id, reason = next(iter(paused.items()))
        return [], f"outbound number {number_id} is out of rotation: {reason}"
    if capped and all(r[2] != "active" for r in kept):
        # what is left has no active trunk: saying so would hide the capped numbers that do
        return [], f"every outbound number in rotation with an active SIP trunk reached its daily cap of {cap} calls"
    return kept, None if kept else "no usable outbound number"


def remaining_capacity(
    conn: duckdb.DuckDBPyConnection, numbers: list[str], day_start: datetime, cap: int | None
) -> dict[str, int] | None:
    """Calls each number may still place today under the cap (None = no cap)."""
    if cap is None:
        return None
    used = calls_since(conn, numbers, day_start)
    return {n: max(cap - used.get(n, 0), 0) for n in numbers}
