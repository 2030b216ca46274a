"""Managers' QA feedback per call: a thumbs up/down and a comment; it never touches dialing."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import duckdb

from tasks.errors import NotFoundError, ValidationError

MAX_COMMENT_CHARS = 2000
Rating = Literal["up", "down"]

UPSERT_SQL = """
insert into call_feedback (call_id, rating, comment, created_at, updated_at)
values ($call_id, $rating, $comment, $now, $now)
on conflict (call_id) do update set
    rating = case when $clear_rating then null else coalesce(excluded.rating, call_feedback.rating) end,
    comment = coalesce(excluded.comment, call_feedback.comment),
    updated_at = excluded.updated_at
"""


def set_feedback(
    conn: duckdb.DuckDBPyConnection,
    call_id: int,
    rating: Rating | None,
    comment: str | None,
    now: datetime,
    *,
    clear_rating: bool = False,
) -> dict:
    """Record feedback on a call: a rating, a comment, or both; None keeps what is stored.

    ``clear_rating`` removes a stored rating; an empty comment removes the stored comment.
    Returns the stored feedback row.
    """
    if rating is not None and rating not in ("up", "down"):
        raise ValidationError("rating", f"must be 'up' or 'down', not {rating!r}")
    if clear_rating and rating is not None:
        raise ValidationError("rating", "give a rating or clear it, not both")
    if comment is not None:
        comment = comment.strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValidationError("comment", f"is {len(comment)} characters; at most {MAX_COMMENT_CHARS}")
    if rating is None and comment is None and not clear_rating:
        raise ValidationError("feedback", "give a rating, a comment or clear the rating")
    if conn.execute("select 1 from calls where call_id = ?", [call_id]).fetchone() is None:
        raise NotFoundError(f"call {call_id} does not exist")
    conn.execute(UPSERT_SQL, {
        "call_id": call_id, "rating": rating, "comment": comment, "now": now, "clear_rating": clear_rating,
    })
    if comment == "":
        # An empty comment means "remove it" (coalesce above would keep the old one).
        conn.execute("update call_feedback set comment = null where call_id = ?", [call_id])
    return get_feedback(conn, call_id)


def get_feedback(conn: duckdb.DuckDBPyConnection, call_id: int) -> dict | None:
    """The feedback stored for a call, or None."""
    cursor = conn.execute(
        "select call_id, rating, comment, created_at, updated_at from call_feedback where call_id = ?", [call_id]
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row))
