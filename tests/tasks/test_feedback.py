"""Call feedback: thumbs up/down and a comment per call, upserted; it never changes dialing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.errors import NotFoundError, ValidationError
from tasks.feedback import MAX_COMMENT_CHARS, get_feedback, set_feedback
from tasks.store import connect, transaction
from tests.tasks.seeding import call_row, enrollment_row, seed_call

QUEUED = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)
T1, T2 = QUEUED + timedelta(hours=1), QUEUED + timedelta(hours=2)


@pytest.fixture
def call_id(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        return seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, provider_call_id="pc_1")


def feedback_after(db, call_id, steps) -> tuple:
    """Apply (rating, comment, clear_rating) steps in order; the stored (rating, comment)."""
    for at, (rating, comment, clear) in enumerate(steps):
        with transaction(db) as conn:
            set_feedback(conn, call_id, rating, comment, T1 + timedelta(minutes=at), clear_rating=clear)
    with connect(db) as conn:
        row = get_feedback(conn, call_id)
    return row["rating"], row["comment"]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([("up", None, False)], ("up", None)),
        ([(None, "Great opener", False)], (None, "Great opener")),  # a comment alone, no rating
        ([("up", None, False), ("down", None, False)], ("down", None)),  # changing one's mind
        ([("up", "ok", False), (None, "better", False)], ("up", "better")),  # a new comment keeps the rating
        ([("down", "too fast", False), ("up", None, False)], ("up", "too fast")),  # a new rating keeps the comment
        ([("up", "ok", False), (None, None, True)], (None, "ok")),  # clearing the rating only
        ([("up", "ok", False), (None, "", False)], ("up", None)),  # an empty comment removes it
        ([(None, "  padded  ", False)], (None, "padded")),
    ],
)
def test_feedback_is_upserted(campaign_db, call_id, steps, expected):
    assert feedback_after(campaign_db["db"], call_id, steps) == expected


def test_created_at_stays_and_updated_at_moves(campaign_db, call_id):
    with transaction(campaign_db["db"]) as conn:
        set_feedback(conn, call_id, "up", None, T1)
        row = set_feedback(conn, call_id, "down", None, T2)
    assert (row["created_at"], row["updated_at"]) == (T1, T2)


def test_feedback_never_changes_the_call_or_the_dialing_state(campaign_db, call_id):
    with connect(campaign_db["db"]) as conn:
        before = call_row(conn, call_id), enrollment_row(conn, call_id)
    with transaction(campaign_db["db"]) as conn:
        set_feedback(conn, call_id, "down", "wrong number", T1)
    with connect(campaign_db["db"]) as conn:
        assert (call_row(conn, call_id), enrollment_row(conn, call_id)) == before


@pytest.mark.parametrize(
    ("call", "rating", "comment", "clear", "error", "message"),
    [
        (999, "up", None, False, NotFoundError, "call 999 does not exist"),
        (None, "meh", None, False, ValidationError, "rating: must be 'up' or 'down'"),
        (None, "up", None, True, ValidationError, "rating: give a rating or clear it, not both"),
        (None, None, "x" * (MAX_COMMENT_CHARS + 1), False, ValidationError, "comment: is 2001 characters; at most 2000"),
        (None, None, None, False, ValidationError, "feedback: give a rating, a comment or clear the rating"),
    ],
)
def test_bad_feedback_is_refused_and_nothing_is_stored(campaign_db, call_id, call, rating, comment, clear, error, message):
    with pytest.raises(error, match=message):
        with transaction(campaign_db["db"]) as conn:
            set_feedback(conn, call or call_id, rating, comment, T1, clear_rating=clear)
    with connect(campaign_db["db"]) as conn:
        assert conn.execute("select count(*) from call_feedback").fetchone()[0] == 0


def test_a_comment_at_the_cap_is_accepted(campaign_db, call_id):
    with transaction(campaign_db["db"]) as conn:
        assert len(set_feedback(conn, call_id, None, "x" * MAX_COMMENT_CHARS, T1)["comment"]) == MAX_COMMENT_CHARS
