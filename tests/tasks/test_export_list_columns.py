"""The two Excel exports carry what their tabs show: the call's placed time and contact name, the
Contact List's own figures (on the hand-computed campaign of tests/dashboards/tabs_fixture.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import openpyxl
import polars as pl
import pytest

from tasks.contacts_import import export_contacts
from tasks.export_calls import export_calls
from tasks.store import connect, transaction
from tests.dashboards.tabs_fixture import make_tabs_db
from tests.factories import make_campaign_db

FIELDS = ["Contact ID", "Phone Number", "Name", "Company", "Email"]
STATS = ["Attempts", "Connected", "Successful", "Credits", "Duration (s)", "Last Disconnection", "Last Call Date",
         "Created At"]


@pytest.fixture
def tabs(db) -> dict:
    return make_tabs_db(db)


def test_calls_export_date_is_when_the_call_was_placed_and_names_the_contact(tabs, tmp_path):
    with transaction() as conn:  # c1 claimed 16:00 UTC, registered with the provider at 16:07
        conn.execute("update calls set registered_at = queued_at + interval 7 minutes where call_id = ?", [tabs["c1"]])
        conn.execute("update contacts set name = '=HYPERLINK(\"x\")' where contact_id = ?", [tabs["B"]])
    out = tmp_path / "calls.xlsx"
    with connect() as conn:
        export_calls(conn, tabs["campaign_id"], out)
    sheet = pl.read_excel(out).sort("Call ID")
    c1 = sheet.filter(pl.col("Call ID") == tabs["c1"]).row(0, named=True)
    c2 = sheet.filter(pl.col("Call ID") == tabs["c2"]).row(0, named=True)
    assert c1["Date"] == datetime(2026, 4, 27, 9, 7)  # Phoenix time of the registration
    assert c2["Date"] == datetime(2026, 4, 28, 9, 0)  # never registered nor started: its claim
    assert c1["Contact"] == "Person 0"
    # the file says which clock its times are on: the campaign's zone beside every time (cells stay date-times)
    cell = openpyxl.load_workbook(out)["Calls"]["K2"]
    assert (cell.is_date, cell.number_format) == (True, 'yyyy-mm-dd hh:mm:ss "(America/Phoenix)"')
    # a name that reads as a formula stays text
    assert sheet.filter(pl.col("Call ID") == tabs["c3"])["Contact"].to_list() == ["'=HYPERLINK(\"x\")"]


def test_contacts_export_has_the_contact_lists_columns(tabs, tmp_path):
    out = tmp_path / "contacts.xlsx"
    with connect() as conn:
        export_contacts(conn, tabs["campaign_id"], out)
    sheet = pl.read_excel(out)
    assert sheet.columns == [*FIELDS, "plan", *STATS]  # the tab's headers around the custom property
    rows = {r["Name"]: r for r in sheet.to_dicts()}
    # Person 0: c1 connected and successful, c2 voicemail; 110 credits, 140 s; last call c2 at 16:00 UTC,
    # 09:00 in the campaign's Phoenix (as the tab and the Call Logs export show times)
    assert [rows["Person 0"][c] for c in STATS[:-1]] == [2, 1, 1, 110, 140, "voicemail_reached",
                                                         datetime(2026, 4, 28, 9, 0)]
    # Person 2 was never called; Person 3's only call was not an attempt
    assert [rows["Person 2"][c] for c in STATS[:-1]] == [0, 0, 0, 0, 0, None, None]
    assert [rows["Person 3"][c] for c in STATS[:3]] == [0, 0, 0]
    with connect() as conn:
        added = conn.execute("select timezone('America/Phoenix', added_at) from campaign_contacts"
                             " where contact_id = ?", [tabs["A"]]).fetchone()[0]
    assert abs(rows["Person 0"]["Created At"] - added) <= timedelta(milliseconds=1)  # Excel keeps milliseconds
    book = openpyxl.load_workbook(out)["Contacts"]
    created = next(c for c in book[2] if book.cell(1, c.column).value == "Created At")
    assert (created.is_date, created.number_format) == (True, 'yyyy-mm-dd hh:mm:ss "(America/Phoenix)"')


def test_a_custom_property_named_like_a_stats_column_keeps_its_values(tabs, tmp_path):
    with transaction() as conn:
        conn.execute("""update contacts set properties = '{"Credits": "=gold", "credits": "7"}' where contact_id = ?""",
                     [tabs["A"]])
    out = tmp_path / "contacts.xlsx"
    with connect() as conn:
        export_contacts(conn, tabs["campaign_id"], out)
    person_0 = pl.read_excel(out).filter(pl.col("Name") == "Person 0").row(0, named=True)
    # the figure, the property named like its header, and one that differs only in case (its own column)
    assert (person_0["Credits"], person_0["custom_Credits"], person_0["credits"]) == (110, "'=gold", "7")


def test_properties_named_like_the_exports_columns_never_share_a_header(tabs, tmp_path):
    # "Name" and "Created At" are the export's own headers; "custom_Name" is what "Name" would become
    with transaction() as conn:
        conn.execute("""update contacts set properties = '{"Name": "n", "custom_Name": "c", "Created At": "a"}'
                        where contact_id = ?""", [tabs["A"]])
    out = tmp_path / "contacts.xlsx"
    with connect() as conn:
        export_contacts(conn, tabs["campaign_id"], out)
    sheet = pl.read_excel(out)
    # properties in the order of their names (Created At, Name, custom_Name), each under a free header
    assert sheet.columns[:8] == [*FIELDS, "custom_Created At", "custom_custom_Name", "custom_Name"]
    person_0 = sheet.filter(pl.col("Name") == "Person 0").row(0, named=True)
    assert (person_0["custom_custom_Name"], person_0["custom_Name"], person_0["custom_Created At"]) == ("n", "c", "a")
    assert isinstance(person_0["Created At"], datetime)  # the export's own column keeps its values


def test_the_contact_list_exports_again_after_its_own_file_is_imported(tabs, tmp_path):
    # Download as Excel, then Import CSV/XLSX of that file: its columns come back as custom properties
    # (created_at among them), and the next download failed on a duplicate column
    from flows.import_contacts import run_import

    first, second = tmp_path / "first.xlsx", tmp_path / "second.xlsx"
    with connect() as conn:
        export_contacts(conn, tabs["campaign_id"], first)
    run_import(tabs["campaign_id"], first)
    with connect() as conn:
        export_contacts(conn, tabs["campaign_id"], second)
    sheet = pl.read_excel(second)
    assert sheet.columns[:len(FIELDS)] == FIELDS and sheet.columns[-len(STATS):] == STATS
    assert len(sheet.columns) == len(set(sheet.columns))
    person_0 = sheet.filter(pl.col("Name") == "Person 0").row(0, named=True)
    # the figure, and the file's copy of it (headers become snake_case properties on import)
    assert person_0["Attempts"] == 2 and person_0["attempts"] == "2"
    assert "phone_number" not in sheet.columns and "name" not in sheet.columns  # mapped back to the fields


def test_a_campaign_without_contacts_exports_the_headers_only(db, tmp_path):
    campaign_id = make_campaign_db(db)["campaign_id"]
    out = tmp_path / "contacts.xlsx"
    with connect() as conn:
        export_contacts(conn, campaign_id, out)
    rows = list(openpyxl.load_workbook(out)["Contacts"].iter_rows(values_only=True))
    assert rows == [(*FIELDS, *STATS)]
