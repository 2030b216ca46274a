"""The schema doc's metric examples give the figures the code gives (tasks.metrics), not just rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasks.metrics import kpis
from tasks.store import connect, transaction
from tests.dashboards.tabs_fixture import make_tabs_db

SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"


def example(title_start: str) -> str:
    """The SQL block that follows the line starting with `title_start` in docs/schema.md."""
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(title_start)}[^\n]*\n(?:[^\n]*\n)*?```sql\n(.*?)```", text, re.M | re.S)
    assert match, f"no example '{title_start}' in docs/schema.md"
    return match.group(1)


@pytest.fixture
def campaign(db):
    """The tabs campaign, plus: A (who connected) removed, C's call in a voicemail box the reason does not name."""
    built = make_tabs_db(db)
    with transaction(db) as conn:
        conn.execute("delete from campaign_contacts where contact_id = ?", [built["A"]])
        conn.execute(
            "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status,"
            " disconnect_reason, in_voicemail, duration_seconds, credits, provider, queued_at, updated_at)"
            " values (?, ?, 'vm', 1, '+16025550002', 'ended', 'user_hangup', true, 25, 75, 'simulator', ?, ?)",
            [built["campaign_id"], built["C"], datetime(2026, 4, 28, 17, 0, tzinfo=UTC),
             datetime(2026, 4, 28, 17, 0, tzinfo=UTC)],
        )
    return built


def test_connection_rate_example_is_the_metrics_tab_figure(campaign):
    with connect(campaign["db"]) as conn:
        rows = conn.execute(example("Connection rate and credits per campaign")).fetchall()
        cards = kpis(conn, campaign["campaign_id"])
    # of B, C, D enrolled only B connected (c4): A's connected c1 no longer counts, C's voicemail never did
    assert cards["connection_rate"] == 33.33
    assert rows == [("Spring outreach", cards["connection_rate"], cards["credits_used"])]


def test_answer_rate_by_local_hour_counts_attempts_and_the_connected_definition(campaign):
    with connect(campaign["db"]) as conn:
        rows = conn.execute(example("Answer rate")).fetchall()
    # Phoenix hours: c1 09 (A, connected), c2 09 (A, voicemail), c3 10 (no answer), c4 23 (connected),
    # C's call 10 (in a voicemail box: not connected); c5 (11, a concurrency refusal) is no attempt
    assert rows == [(9, 2, 50.0), (10, 2, 0.0), (23, 1, 100.0)]
