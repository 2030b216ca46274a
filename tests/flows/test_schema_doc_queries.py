"""The example queries of docs/schema.md answer what their text says (tests/test_docs_sql.py runs them all)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from tasks.store import connect, transaction
from tests.tasks.seeding import seed_call

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def doc_query(heading: str) -> str:
    """The first SQL block after the paragraph starting with `heading`."""
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    return re.search(re.escape(heading) + r".*?```sql\n(.*?)```", text, re.S).group(1)


def test_answer_rate_by_local_hour_counts_a_call_in_the_hour_it_was_placed(campaign_db):
    """It grouped by queued_at, the batch's claim time: every attempt of a batch landed in its first hour."""
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    claimed = datetime(2026, 4, 28, 16, 55, tzinfo=UTC)  # 09:55 in Phoenix (UTC-7)
    with transaction(db) as conn:
        first = seed_call(conn, campaign_id, "+16025550001", claimed, status="ended")
        later = seed_call(conn, campaign_id, "+16025550002", claimed, status="ended")
        # the batch placed its calls at its pace: the second rang at 10:02 local time
        conn.execute("update calls set registered_at = queued_at where call_id = ?", [first])
        conn.execute("update calls set registered_at = ? where call_id = ?", [datetime(2026, 4, 28, 17, 2, tzinfo=UTC), later])
    with connect(db) as conn:
        rows = conn.execute(doc_query("Answer rate (connected ÷ attempts) by the campaign's local hour")).fetchall()
    assert [(hour, calls) for hour, calls, _pct in rows] == [(9, 1), (10, 1)]
