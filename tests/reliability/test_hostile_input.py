"""Hostile text through every path a user or the provider can set it: names, search boxes,
contact properties (keys and values), summaries, custom analysis keys, webhook payloads, feedback.
Each value is stored exactly or refused with a ValidationError; nothing errors, leaks or drops."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from dashboards.queries import calls as call_queries
from dashboards.queries import campaigns as campaign_queries
from dashboards.queries import contacts as contact_queries
from flows.import_contacts import run_import
from tasks.campaigns import list_campaigns, update_campaign
from tasks.errors import UserError
from tasks.export_calls import export_calls
from tasks.feedback import set_feedback
from tasks.store import connect, transaction
from tasks.telephony.retell import sign_retell_payload
from tasks.webhooks import apply_event, parse_event
from tests.tasks.seeding import seed_call

HOSTILE = [
    "'; drop table calls; --",
    'Robert"); DROP TABLE contacts;--',
    '"',
    "a'b\"c`d",
    "\x00nul",
    "x" * 10_000,
    "名前 🚀 ñ \u202eRTL",
    "%_\\%",
    "=HYPERLINK(\"http://evil\")",
    "$.name[*]",
    "<script>alert(1)</script>",
]
IDS = ["semicolon", "paren", "quote", "mixed_quotes", "nul", "10k", "unicode", "like_wildcards", "formula",
       "jsonpath", "html"]
NOW = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)
KEY = "hostile-webhook-key"


def table_counts(db) -> dict:
    with connect(db) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_catalog = current_database()"
            " and table_type = 'BASE TABLE'").fetchall()]
        return {t: conn.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}


@pytest.mark.parametrize("text", HOSTILE, ids=IDS)
def test_campaign_names_and_search_boxes(campaign_db, text):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    try:
        with transaction(db) as conn:
            update_campaign(conn, campaign_id, {"name": text, "objective": text}, NOW)
        stored = text
    except UserError:
        stored = None  # refused with a clear message: also fine, but then nothing changed
    with connect(db) as conn:
        name = conn.execute("select name from campaigns where campaign_id = ?", [campaign_id]).fetchone()[0]
        assert name == (stored if stored is not None else "Spring outreach")
        # the search boxes: bound as parameters, so the text only ever matches itself
        listed = [c["name"] for c in list_campaigns(conn, NOW, search=text)]
        page = campaign_queries.campaign_page(conn, NOW, search=text)
        assert campaign_queries.count_campaigns(conn, search=text) == page.height
        contact_queries.contact_page(conn, campaign_id, search=text)
        call_queries.call_page(conn, campaign_id, call_queries.CallFilters(search=text))
    assert listed in ([], [name])
    assert table_counts(db)["calls"] == 0 and table_counts(db)["campaigns"] == 1


def test_contact_properties_with_hostile_keys_and_values_round_trip(campaign_db, tmp_path):
    import csv

    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    headers = ["Phone", "Name"] + [f"k{i} {h[:40]}" for i, h in enumerate(HOSTILE) if "\x00" not in h]
    values = [v for v in HOSTILE if "\x00" not in v]
    path = tmp_path / "hostile.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for i, value in enumerate(values):
            writer.writerow([f"+1602555{i:04d}", value] + [value] * (len(headers) - 2))
    result = run_import(campaign_id, path, db=db)
    # a row is imported exactly, or imported with a field too long for it left empty (a 10,000-char name and
    # properties), or rejected; each problem is reported with its row, column and reason
    assert result.imported + result.invalid == len(values)
    assert all(r["row"] and r["column"] and r["reason"] for r in result.rejected + result.warnings)
    rejected_rows = {r["row"] for r in result.rejected}
    emptied_rows = {r["row"] for r in result.warnings}
    assert emptied_rows == {values.index("x" * 10_000) + 2}
    kept = [v for i, v in enumerate(values) if i + 2 not in rejected_rows | emptied_rows]
    with connect(db) as conn:
        rows = conn.execute("select name, properties from contacts order by phone_e164").fetchall()
        for value in kept:
            page = contact_queries.contact_page(conn, campaign_id, search=value)
            assert page.height >= 1  # each hostile name finds (at least) its own contact
    assert (None, "{}") in rows  # the 10,000-character row: its phone, nothing else
    exact = [row for row in rows if row != (None, "{}")]
    assert [r[0] for r in exact] == kept  # stored exactly as typed
    for (_, properties), value in zip(exact, kept):
        assert set(json.loads(properties).values()) == {value}


def deliver(db, payload: dict, at: datetime):
    body = json.dumps(payload).encode()
    event = parse_event(body, sign_retell_payload(body, KEY, at), KEY, at)
    with transaction(db) as conn:
        return apply_event(conn, event, at)


def test_provider_text_summaries_and_custom_analysis_keys_then_the_export(campaign_db, tmp_path):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    custom = {h[:200]: h for h in HOSTILE if "\x00" not in h}
    # regression: a NUL in a custom analysis key (an export column name) broke the calls export
    custom["nul\x00key"] = "nul\x00value"
    with transaction(db) as conn:
        seed_call(conn, campaign_id, "+16025551234", NOW, provider="retell", provider_call_id="call_h1",
                  attempt_key="1.1.1")
    start_ms = int(NOW.timestamp() * 1000) + 4000
    payload = {"event": "call_analyzed", "call": {
        "call_id": "call_h1", "call_status": "ended", "disconnection_reason": "user_hangup",
        "start_timestamp": start_ms, "end_timestamp": start_ms + 60_000, "duration_ms": 60_000,
        "transcript": "\n".join(HOSTILE), "metadata": {"attempt_key": "1.1.1"},
        "call_analysis": {"call_summary": "'; drop table calls; --" + "x" * 10_000, "call_successful": True,
                          "user_sentiment": "Positive", "custom_analysis_data": custom}}}
    result = deliver(db, payload, NOW + timedelta(minutes=3))
    assert result.status == 200
    with connect(db) as conn:
        summary, stored_custom = conn.execute(
            "select summary, custom_analysis from calls where provider_call_id = 'call_h1'").fetchone()
    assert summary == "'; drop table calls; --" + "x" * 10_000
    assert json.loads(stored_custom) == custom
    # custom analysis keys become export columns: quoted identifiers and JSON paths, never SQL
    with connect(db) as conn:
        rows = export_calls(conn, campaign_id, tmp_path / "calls.xlsx")
    assert rows == 1
    with zipfile.ZipFile(tmp_path / "calls.xlsx") as book:
        sheet = "".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/"))
    assert "drop table calls" in sheet and "<f>" not in sheet  # text cells, no formulas
    assert table_counts(db)["calls"] == 1


@pytest.mark.parametrize("text", HOSTILE, ids=IDS)
def test_webhook_ids_and_feedback_comments(campaign_db, text):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    with transaction(db) as conn:
        call_id = seed_call(conn, campaign_id, "+16025551234", NOW, provider="retell", provider_call_id="call_f1",
                            attempt_key="1.1.1")
    # a hostile call id / attempt key matches no call: acknowledged, nothing stored or leaked
    result = deliver(db, {"event": "call_started", "call": {"call_id": text, "call_status": "ongoing",
                                                            "metadata": {"attempt_key": text}}}, NOW)
    assert (result.status, result.call_id) == (202, None)
    try:
        with transaction(db) as conn:
            stored = set_feedback(conn, call_id, "up", text[:2000], NOW)["comment"]
        assert stored == text[:2000].strip()
    except UserError:
        pass
    assert table_counts(db)["calls"] == 1
