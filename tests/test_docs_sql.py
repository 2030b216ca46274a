"""Every SQL block in the docs runs against a demo-like database (imported, dialed, aggregated)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from flows.aggregate_metrics import run_aggregation
from flows.import_contacts import run_import
from flows.simulate import simulate
from tasks.store import connect
from tasks.telephony import make_provider
from tests.factories import make_campaign_db

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "docs" / "schema.md", ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def sql_blocks() -> list[tuple[str, int, str]]:
    blocks = []
    for doc in dict.fromkeys(DOCS):
        if doc.exists():
            text = doc.read_text(encoding="utf-8")
            for match in re.finditer(r"```sql\n(.*?)```", text, re.S):
                blocks.append((doc.name, text[: match.start()].count("\n") + 1, match.group(1)))
    return blocks


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("docs") / "campaigns.duckdb"
    ids = make_campaign_db(db)
    run_import(ids["campaign_id"], ROOT / "data" / "sample_contacts.csv", db=db)
    simulate(db, make_provider(db=db), datetime(2026, 4, 27, 7, 0, tzinfo=timezone.utc), 3)
    run_aggregation(db, full=True)
    return db


def test_the_docs_have_sql_examples():
    assert len(sql_blocks()) >= 5


@pytest.mark.parametrize(("doc", "line", "sql"), sql_blocks(), ids=lambda v: str(v)[:30] if isinstance(v, str) else str(v))
def test_every_sql_block_runs_and_returns_rows(demo_db, doc, line, sql):
    with connect(demo_db) as conn:
        rows = conn.execute(sql).fetchall()
    assert rows, f"{doc}:{line} returned nothing on the demo data"
