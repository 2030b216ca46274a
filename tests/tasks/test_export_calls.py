"""The calls export: Call Logs columns, JSON keys as columns, local times, neutralised text, more sheets."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import openpyxl
import pytest

from tasks.errors import NotFoundError, ValidationError
from tasks.export_calls import export_calls
from tasks.store import connect, transaction

UTC = timezone.utc
HOSTILE_KEY = 'x"); drop table calls; --'


@pytest.fixture
def calls_db(campaign_db):
    cid = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        contact = conn.execute("insert into contacts (phone_e164) values ('+16025550123') returning contact_id").fetchone()[0]
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [cid, contact])
        for n in range(5):
            conn.execute(
                """
                insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status,
                    disconnect_reason, call_successful, user_sentiment, in_voicemail, summary, duration_seconds,
                    credits, tools_count, dynamic_variables, custom_analysis, provider, queued_at, updated_at)
                values (?, ?, ?, ?, '+16025550123', 'ended', 'user_hangup', ?, 'Positive', false, ?, 61.5, 666, 2,
                    ?, ?, 'simulator', ?, ?)
                """,
                [cid, contact, f"k{n}", n + 1, n == 0, "=HYPERLINK(\"evil\")" if n == 0 else f"ok {n}\x01",
                 json.dumps({"contact_name": "=cmd|' /C calc'!A0", "company": "Acme"} if n == 0 else {"contact_name": "Bo"}),
                 json.dumps({HOSTILE_KEY: 1, "booked": True}) if n == 1 else None,
                 datetime(2026, 5, 1 + n, 3, 0, tzinfo=UTC), datetime(2026, 5, 1 + n, 3, 5, tzinfo=UTC)],
            )
        conn.execute("insert into call_feedback (call_id, rating, comment) values (1, 'down', '@mention me')")
    return campaign_db


def _rows(path, sheet="Calls"):
    book = openpyxl.load_workbook(path, read_only=True)
    return book.sheetnames, list(book[sheet].iter_rows(values_only=True))


def test_columns_values_local_times_and_neutralising(calls_db, tmp_path):
    out = tmp_path / "calls.xlsx"
    with connect(calls_db["db"]) as conn:
        assert export_calls(conn, calls_db["campaign_id"], out) == 5
    sheets, rows = _rows(out)
    header, first, second = rows[0], dict(zip(rows[0], rows[1])), dict(zip(rows[0], rows[2]))
    assert sheets == ["Calls"]
    assert header[:11] == ("Call ID", "Phone Number", "Disconnect Reason", "Status", "Call Successful",
                           "Duration (s)", "Credits", "Feedback", "Feedback Comment", "Tools", "Date")
    # one column per key seen, sorted, hostile names kept as plain header text
    assert header[-5:] == ("Recording URL", "var_company", "var_contact_name", "analysis_booked",
                           f"analysis_{HOSTILE_KEY}")
    assert first["Phone Number"] == "+16025550123"  # E.164, never neutralised
    assert first["Date"] == datetime(2026, 4, 30, 20, 0)  # 03:00 UTC is 20:00 the day before in Phoenix
    assert first["Call Summary"] == "'=HYPERLINK(\"evil\")"
    assert first["var_contact_name"] == "'=cmd|' /C calc'!A0"
    assert (first["Feedback"], first["Feedback Comment"]) == ("down", "'@mention me")
    assert (first["Call Successful"], first["Credits"], first["Tools"], first["Duration (s)"]) == (True, 666, 2, 61.5)
    assert second["Call Summary"] == "ok 1"  # a control character XML cannot hold is dropped
    # the agent's analysis keeps its JSON types (a boolean and a number here); an absent key is an empty cell
    assert (second[f"analysis_{HOSTILE_KEY}"], second["analysis_booked"], second["var_company"]) == (1, True, None)
    with connect(calls_db["db"]) as conn:  # the hostile key did nothing to the database
        assert conn.execute("select count(*) from calls").fetchone()[0] == 5


def test_date_range_and_filters(calls_db, tmp_path):
    out = tmp_path / "calls.xlsx"
    with connect(calls_db["db"]) as conn:
        # local dates: calls are on Apr 30 .. May 4 in Phoenix
        assert export_calls(conn, calls_db["campaign_id"], out, date(2026, 5, 1), date(2026, 5, 2)) == 2
        assert [r[0] for r in _rows(out)[1][1:]] == [2, 3]
        assert export_calls(conn, calls_db["campaign_id"], out, filters={"call_successful": True}) == 1
        assert export_calls(conn, calls_db["campaign_id"], out, filters={"status": "not_connected"}) == 0
        assert _rows(out)[1][0][0] == "Call ID"  # an empty export still has its header
        with pytest.raises(ValidationError, match="unknown filter"):
            export_calls(conn, calls_db["campaign_id"], out, filters={"drop": 1})
        with pytest.raises(NotFoundError):
            export_calls(conn, 404, out)


@pytest.mark.parametrize(("stored", "typed", "expected"), [
    # case and accents aside, both ways: the Call Logs search's match (tasks.export_calls.contains_folded)
    ("Lucía López", "lucia lopez", 5),
    ("LUCIA LOPEZ", "Lucía", 5),
    ("Zoe\u0308", "zoë", 5),  # a decomposed ë stored, a composed one typed
    ("Lucía López", "lucas", 0),
])
def test_name_filter_ignores_case_and_accents(calls_db, tmp_path, stored, typed, expected):
    with transaction(calls_db["db"]) as conn:
        conn.execute("update contacts set name = ?", [stored])
    with connect(calls_db["db"]) as conn:
        out = tmp_path / "calls.xlsx"
        assert export_calls(conn, calls_db["campaign_id"], out, filters={"name_contains": typed}) == expected


def test_full_sheets_continue_on_new_ones(calls_db, tmp_path):
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "calls.xlsx"
    with connect(calls_db["db"]) as conn:
        assert export_calls(conn, calls_db["campaign_id"], out, max_rows_per_sheet=2) == 5
    book = openpyxl.load_workbook(out, read_only=True)
    assert book.sheetnames == ["Calls", "Calls 2", "Calls 3"]
    ids = [[r[0] for r in book[name].iter_rows(values_only=True)] for name in book.sheetnames]
    assert ids == [["Call ID", 1, 2], ["Call ID", 3, 4], ["Call ID", 5]]
    assert [p.name for p in out.parent.iterdir()] == ["calls.xlsx"]  # no work files left behind


def test_rows_come_in_call_order_whatever_has_feedback(calls_db, tmp_path):
    # DuckDB's LEFT join emits a vector's matched rows first: call 4's feedback must not move it up
    with transaction(calls_db["db"]) as conn:
        conn.execute("insert into call_feedback (call_id, rating) values (4, 'up')")
    out = tmp_path / "calls.xlsx"
    with connect(calls_db["db"]) as conn:
        export_calls(conn, calls_db["campaign_id"], out)
    rows = _rows(out)[1]
    assert [(r[0], r[7]) for r in rows[1:]] == [(1, "down"), (2, None), (3, None), (4, "up"), (5, None)]


def test_tools_of_a_call_that_never_connected_is_zero_as_in_the_tab(calls_db, tmp_path):
    with transaction(calls_db["db"]) as conn:  # the provider gave no tool count for these calls
        conn.execute("update calls set tools_count = null")
        conn.execute("update calls set status = 'not_connected', disconnect_reason = 'dial_busy' where call_id = 1")
        conn.execute("update calls set status = 'error', disconnect_reason = 'error_unknown' where call_id = 2")
        conn.execute("update calls set status = 'registered', disconnect_reason = null where call_id = 3")
    out = tmp_path / "calls.xlsx"
    with connect(calls_db["db"]) as conn:
        export_calls(conn, calls_db["campaign_id"], out)
    rows = _rows(out)[1]
    tools = {r[0]: r[rows[0].index("Tools")] for r in rows[1:]}
    # never connected: no tools used; in flight or ended awaiting its analysis: not known yet
    assert tools == {1: 0, 2: 0, 3: None, 4: None, 5: None}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([True, False, None], [True, False, None]),  # COUNTIF(…, TRUE) counts them: not the text "true"
        ([7, -2, None], [7, -2, None]),  # SUM adds them up: not the text "7"
        ([7, 0.5, None], [7, 0.5, None]),
        ([10**15 - 1, 1, None], [10**15 - 1, 1, None]),
        ([10**15, 1, None], ["1000000000000000", "1", None]),  # past 15 digits Excel rounds: text keeps them
        ([7, "seven", None], ["7", "seven", None]),  # a key of mixed types is text
        ([True, 1, None], ["true", "1", None]),
        (["=1+1", "yes", None], ["'=1+1", "yes", None]),  # text is neutralised as ever
        ([{"a": 1}, [1, 2], None], ['{"a":1}', "[1,2]", None]),
    ],
)
def test_analysis_values_are_booleans_or_numbers_when_the_whole_key_is(calls_db, tmp_path, values, expected):
    with transaction(calls_db["db"]) as conn:
        conn.execute("update calls set custom_analysis = null")
        for call_id, value in zip((1, 2, 3), values):
            # the third call's key holds a JSON null: an empty cell, whatever the key's type
            conn.execute("update calls set custom_analysis = ? where call_id = ?", [json.dumps({"score": value}), call_id])
    out = tmp_path / "calls.xlsx"
    with connect(calls_db["db"]) as conn:
        export_calls(conn, calls_db["campaign_id"], out)
    book = openpyxl.load_workbook(out)
    header = [cell.value for cell in book["Calls"][1]]
    column = header.index("analysis_score") + 1
    cells = [book["Calls"].cell(row, column) for row in (2, 3, 4, 5, 6)]
    assert [cell.value for cell in cells] == [*expected, None, None]  # calls 4 and 5 have no analysis
    assert all(cell.data_type == {bool: "b", int: "n", float: "n", str: "s"}[type(value)]
               for cell, value in zip(cells, expected) if value is not None)
