"""The contact import's preview and report, the same in the wizard and the Contact List tab (AppTest).

The preview checks its rows with the import's own steps, so a row it shows as fine is imported, a row it flags
is rejected for the reason it gives, and a field it says is left empty is; the report's figures add up from the rows
read to the campaign's contacts.
"""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from flows.import_contacts import run_import
from tests.dashboards.test_app_campaigns import start_wizard
from tests.dashboards.test_app_tabs import rerun, run_tab
from tests.factories import make_campaign_db

# Already in the CRM and in the fixture's campaign before the import under test.
EARLIER = b"Name,Phone\nDee,+16025550120\nEd,+16025550121\n"
FILE = (
    b"Name,Phone,Email\n"
    b"Ana,+16025550111,ana@example.com\n"  # row 2: a new contact
    b"Bo,206 555 0184,david@example\n"  # row 3: the phone is fine, the e-mail is not: imported without it
    b"\n"  # row 4: blank, skipped
    b"Cy,not a phone,\n"  # row 5: rejected
    b"Ana,+1 602 555 0111,\n"  # row 6: row 2's phone again: merged into it
    b"Dee,+16025550120,\n"  # row 7: in the CRM with the same details: unchanged
    b"Eddie,+16025550121,\n"  # row 8: in the CRM as "Ed": updated
)
PREVIEW = pd.DataFrame({
    "Row": [2, 3, 5, 6, 7],
    "Result": ["Will be imported, merged with row 6 (later values win)", "Will be imported, without its Email",
               "Rejected", "Merged into row 2 (same phone)", "Will be imported"],
    "Problem": ["", "Email: not a valid e-mail address: imported without it", "Phone: not a phone number", "", ""],
    "Phone number": ["+16025550111", "206 555 0184", "not a phone", "+1 602 555 0111", "+16025550120"],
    "Phone (international)": ["+16025550111", "+12065550184", None, "+16025550111", "+16025550120"],
    "Name": ["Ana", "Bo", "Cy", "Ana", "Dee"],
    "Email": ["ana@example.com", "david@example", None, None, None],
})
ROWS = {"Rows read": "7", "Blank rows skipped": "1", "Rejected rows": "1", "Valid rows": "5", "Duplicates merged": "1"}
CONTACTS = {"New contacts": "2", "Updated contacts": "1", "Unchanged contacts": "1"}


@pytest.fixture
def earlier_import(db_kept_open, tmp_path) -> int:
    """The reference campaign with Dee and Ed imported into it (so in the CRM too); its id."""
    campaign_id = make_campaign_db(db_kept_open)["campaign_id"]
    path = tmp_path / "earlier.csv"
    path.write_bytes(EARLIER)
    run_import(campaign_id, path)
    return campaign_id


def in_contact_list(campaign_id: int) -> tuple[AppTest, str]:
    """The Contact List tab of the campaign with FILE uploaded: (app, key of its Import button)."""
    at = run_tab("contact_list", campaign_id)
    at.file_uploader(key=f"contacts_{campaign_id}_upload_0").set_value(("people.csv", FILE, "text/csv"))
    return rerun(at), f"contacts_{campaign_id}_import"


def in_wizard(_campaign_id: int) -> tuple[AppTest, str]:
    """A new campaign's wizard with FILE uploaded: (app, key of its Import button)."""
    at, _ = start_wizard()
    at.file_uploader(key="wiz_upload_0").set_value(("people.csv", FILE, "text/csv"))
    return rerun(at), "wiz_import"


def preview(at: AppTest) -> pd.DataFrame:
    [table] = [d.value for d in at.dataframe if "Problem" in d.value.columns]
    return table.reset_index(drop=True)


def reports(at: AppTest) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The import report's tables: (rejected rows, fields left empty), in the order the page shows them."""
    [rejected, left_empty] = [d.value for d in at.dataframe if "Reason" in d.value.columns]
    return rejected, left_empty


@pytest.mark.parametrize("place", [in_contact_list, in_wizard], ids=["contact_list", "wizard"])
def test_preview_flags_the_rows_the_import_rejects_with_its_reasons(earlier_import, place):
    at, import_key = place(earlier_import)
    shown = preview(at)
    pd.testing.assert_frame_equal(shown, PREVIEW, check_dtype=False)
    assert any(m.value.startswith("**Preview**: the first 5 of 6 rows with content (1 blank row is skipped)")
               for m in at.markdown)
    at.button(key=import_key).click()
    rerun(at)
    # what the preview said, the import did: the same rows rejected, for the same reasons, and the same fields
    # left empty in rows imported, listed after the rejected ones
    report, left_empty = reports(at)
    flagged = shown[shown["Result"] == "Rejected"]
    assert flagged["Row"].tolist() == [r for r in report["Row"].tolist() if r in shown["Row"].tolist()]
    assert flagged["Problem"].tolist() == [f"{c}: {r}" for c, r in zip(report["Column"], report["Reason"])]
    emptied = shown[shown["Result"].str.contains(", without its ")]
    assert emptied["Row"].tolist() == left_empty["Row"].tolist() == [3]
    assert emptied["Problem"].tolist() == [f"{c}: {r}" for c, r in zip(left_empty["Column"], left_empty["Reason"])]
    assert left_empty["Value"].tolist() == ["david@example"]
    headings = [m.value for m in at.markdown if m.value in ("**Rejected rows**", "**Imported without these values**")]
    assert headings == ["**Rejected rows**", "**Imported without these values**"]


@pytest.mark.parametrize(("place", "enrolled", "already"), [
    (in_contact_list, 2, 2),  # Dee and Ed were in this campaign already: only Ana and Bo are enrolled
    (in_wizard, 4, 0),  # a new campaign: all four are enrolled, though only Ana and Bo are new to the CRM
], ids=["contact_list", "wizard"])
def test_report_figures_add_up_from_rows_read_to_contacts_enrolled(earlier_import, place, enrolled, already):
    at, import_key = place(earlier_import)
    # the report starts from the figure the page gave
    assert any(m.value.startswith("**7 rows** found in people") for m in at.markdown)
    at.button(key=import_key).click()
    rerun(at)
    figures = {m.label: m.value for m in at.metric}
    assert figures == ROWS | CONTACTS | {"Newly enrolled": str(enrolled), "Already enrolled": str(already)}
    assert [s.value for s in at.success][-1] == (
        f"Imported 4 contacts from 7 rows: {enrolled} newly enrolled in this campaign, {already} already in it.")
    assert [c.value for c in at.caption if c.value.startswith("7 rows read")] == [
        "7 rows read = 1 blank + 1 rejected + 5 valid (1 of them without a value that failed its check).  \n"
        "5 valid rows = 1 duplicate (an earlier row's phone, merged into it) + 4 contacts.  \n"
        "4 contacts = 2 new + 1 updated + 1 unchanged (in the CRM already, with the same details)"
        f" = {enrolled} newly enrolled in this campaign + {already} already in it."]


@pytest.mark.parametrize(("place", "uploader"), [(in_contact_list, "contacts_{}_upload"), (in_wizard, "wiz_upload")],
                         ids=["contact_list", "wizard"])
def test_a_committed_import_empties_the_uploader_and_keeps_its_report(earlier_import, place, uploader):
    # the audit's case: the file stayed loaded under the report, with its preview and a second Import button, so
    # the same file could be imported twice by accident
    at, import_key = place(earlier_import)
    at.button(key=import_key).click()
    rerun(at)
    assert [s.value for s in at.success][-1].startswith("Imported 4 contacts from 7 rows")
    assert "**Import of people\\.csv**" in [m.value for m in at.markdown]  # the uploaded file's name, not a staged copy's
    assert not [d for d in at.dataframe if "Problem" in d.value.columns]
    assert import_key not in [b.key for b in at.button]
    assert [w.key for w in at.get("file_uploader")] == [uploader.format(earlier_import) + "_1"]  # a new, empty one
    # a new file for another import: its preview under the report of the last one
    at.file_uploader(key=uploader.format(earlier_import) + "_1").set_value(
        ("more.csv", b"Name,Phone\nFay,+16025550177\n", "text/csv"))
    rerun(at)
    assert preview(at)["Result"].tolist() == ["Will be imported"]
    assert [s.value for s in at.success][-1].startswith("Imported 4 contacts from 7 rows")
    assert import_key in [b.key for b in at.button]


def test_preview_puts_the_outcome_before_the_files_columns():
    # a file with many columns: Result and Problem come right after the row number, so the extra columns
    # cannot push them off-screen and a row the import rejects never looks fine
    import polars as pl

    from dashboards.tabs.contact_list import preview_rows
    from tasks.contacts_import import map_columns

    extra = [f"Note {i}" for i in range(12)]
    frame = pl.DataFrame([["Bo", "206 555 0184", "david@example", *["x"] * len(extra)]],
                         schema=["Name", "Phone", "Email", *extra], orient="row")
    table, _rows = preview_rows(frame, map_columns(frame), "US")
    assert table.columns[:3] == ["Row", "Result", "Problem"]
    assert table.row(0)[:3] == (2, "Will be imported, without its Email",
                                "Email: not a valid e-mail address: imported without it")


def test_preview_of_a_repeated_phone_shows_what_is_imported(campaign_db):
    # the preview showed row 2's name as imported while the import kept row 3's (later non-empty values win)
    import polars as pl

    from dashboards.tabs.contact_list import preview_rows
    from tasks.contacts_import import map_columns
    from tasks.store import connect

    text = ("Name,Phone,Email\nCara One,+1 480 555 0111,cara@example.com\nCara Two,+14805550111,\n"
            "Dan,+14805550112,dan@example.com\n")
    frame = pl.DataFrame([row.split(",") for row in text.splitlines()[1:]], schema=["Name", "Phone", "Email"],
                         orient="row")
    table, _rows = preview_rows(frame, map_columns(frame), "US")
    assert table.select("Row", "Result", "Name", "Email").rows() == [
        (2, "Will be imported, merged with row 3 (later values win)", "Cara Two", "cara@example.com"),
        (3, "Merged into row 2 (same phone)", "Cara Two", None),
        (4, "Will be imported", "Dan", "dan@example.com"),
    ]
    path = campaign_db["db"].parent / "cara.csv"
    path.write_text(text, encoding="utf-8")
    run_import(campaign_db["campaign_id"], path, db=campaign_db["db"])
    with connect(campaign_db["db"]) as conn:
        assert conn.execute("select name, email from contacts where phone_e164 = '+14805550111'").fetchall() == [
            ("Cara Two", "cara@example.com")]  # what the preview's row 2 said


def test_report_of_an_import_that_rejects_every_row(earlier_import):
    at = run_tab("contact_list", earlier_import)
    at.file_uploader(key=f"contacts_{earlier_import}_upload_0").set_value(
        ("bad.csv", b"Name,Phone\nCy,not a phone\n", "text/csv"))
    rerun(at)
    at.button(key=f"contacts_{earlier_import}_import").click()
    rerun(at)
    assert [w.value for w in at.warning] == ["Nothing was imported: every row of the file was rejected."]
    assert {m.label: m.value for m in at.metric}["Rejected rows"] == "1"


def test_an_unknown_default_country_stops_the_preview_as_it_stops_the_import(db_kept_open):
    make_campaign_db(db_kept_open)
    at, _ = start_wizard()
    at.file_uploader(key="wiz_upload_0").set_value(("people.csv", FILE, "text/csv"))
    at.text_input(key="wiz_default_country").set_value("XX")
    rerun(at)
    assert [e.value for e in at.error] == ["Country: unknown country code 'XX' (use ISO 3166 alpha-2, e.g. US)"]
    assert not [d for d in at.dataframe if "Problem" in d.value.columns]


TITLED = b"Spring leads 2026\n\nName,Phone\nAna,+16025550111\n"


@pytest.mark.parametrize("key", ["contacts_{}_upload_0", "wiz_upload_0"], ids=["contact_list", "wizard"])
def test_a_title_above_the_header_names_the_row_to_start_from(earlier_import, key):
    # the import's own message (contacts_import.map_columns): "Maps to" cannot fix a title row, deleting it can
    if key == "wiz_upload_0":
        at, _ = start_wizard()
    else:
        at = run_tab("contact_list", earlier_import)
    at.file_uploader(key=key.format(earlier_import)).set_value(("titled.csv", TITLED, "text/csv"))
    at = rerun(at)
    assert any("row 3 looks like the header ('Phone'): delete the rows above it" in e.value for e in at.error), \
        [e.value for e in at.error]


def test_a_file_the_contact_list_cannot_read_is_named_as_uploaded(earlier_import):
    # the Contact List staged the upload as "<campaign>-<upload id>.csv": its errors and its report named that copy
    at = run_tab("contact_list", earlier_import)
    at.file_uploader(key=f"contacts_{earlier_import}_upload_0").set_value(("leads.csv", b"\x00\x01\x02", "text/csv"))
    rerun(at)
    [error] = [e.value for e in at.error]
    assert error.startswith("leads.csv: "), error


def test_tables_show_a_missing_value_as_an_empty_cell(earlier_import):
    # Streamlit draws a null as a grey "None" (a never-called contact's Last Call Date, a rejected row's international
    # phone), which managers read as a value
    at, _ = in_contact_list(earlier_import)
    shown = [d for d in at.dataframe if d.proto.editing_mode == d.proto.EditingMode.READ_ONLY]
    assert {"Problem", "Last Call Date"} <= {c for d in shown for c in d.value.columns}
    assert [(d.proto.HasField("placeholder"), d.proto.placeholder) for d in shown] == [(True, "")] * len(shown)
