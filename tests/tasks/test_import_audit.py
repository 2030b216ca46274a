"""Files a data team brings to the contact import: international prefixes, Excel's scientific notation and
time cells, other scripts' digits, workbooks under the wrong name, a title above the header, extensions,
thousands separators, Excel error values, CSV files with a few Windows-1252 lines."""

from __future__ import annotations

import zipfile
from datetime import datetime, time
from pathlib import Path

import polars as pl
import pytest

from flows.import_contacts import check_import, run_import
from tasks import contacts_import as ci
from tasks.errors import UserError
from tasks.errors import ValidationError
from tasks.phones import EXTENSION_REASON, SCIENTIFIC_REASON, THOUSANDS_REASON, normalise_phone, normalise_phones
from tasks.store import connect, transaction
from tests.factories import make_campaign_db


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        # Colombia dials abroad with 005/007/009: read there, "0057" was carrier 005 and +7, a number in Russia
        ("0057 301 234 5678", "CO", "+573012345678"),
        ("005 44 20 7946 0958", "CO", "+442079460958"),  # Colombia's own carrier prefix still works
        # North America dials abroad with 011: "00…" was too long there
        ("00 1 415 555 0129", "US", "+14155550129"),
        ("011 44 20 7946 0958", "US", "+442079460958"),
        ("0044 20 7946 0958", None, "+442079460958"),  # no country at all: was "invalid country code"
        ("0033 6 12 34 56 78", "FR", "+33612345678"),  # 00 is France's own prefix: as before
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_a_00_prefix_is_read_as_the_international_prefix(raw, region, e164):
    assert normalise_phone(raw, region)[0] == e164


@pytest.mark.parametrize(("raw", "region"), [
    # Japan dials abroad with 010; 0033 and 0041 there choose a carrier for a number in Japan: never +33 or +41
    ("0033-03-1234-5678", "JP"),
    ("0041-03-1234-5678", "JP"),
    ("0044 20 7946 0958", "US"),  # North America dials abroad with 011: a guess, refused as before (now saying why)
])
def test_a_foreign_reading_of_00_is_refused_where_00_does_not_dial_abroad(raw, region):
    e164, *_, reason = normalise_phone(raw, region)
    assert e164 is None
    assert reason.startswith(f"starts with 00, which is not how {region} dials abroad")


def test_an_unreadable_00_number_keeps_the_reason_of_its_reading():
    assert normalise_phone("0044 123", None)[4] == "too short"  # was "invalid country code"
    assert normalise_phone("00 99 1234567", "US")[4] == "too long"  # no such country: the US reading's reason


def test_a_colombian_file_written_with_0057_enrolls_colombian_numbers(db, tmp_path):
    ids = make_campaign_db(db, country="CO", time_zone="America/Bogota")
    path = tmp_path / "bogota.csv"
    path.write_text("Teléfono,Nombre\n0057 301 234 5678,Ana\n+57 301 234 5679,Beto\n", encoding="utf-8")
    result = run_import(ids["campaign_id"], path, db=db)
    assert (result.imported, result.invalid) == (2, 0)
    with connect(db) as conn:
        assert conn.execute("select phone_e164, region from contacts order by contact_id").fetchall() == [
            ("+573012345678", "CO"), ("+573012345679", "CO")]


@pytest.mark.parametrize(
    ("raw", "e164", "reason"),
    [
        ("1.4155550123E+10", "+14155550123", None),  # every digit is shown: read as the number (was "too long")
        ("1,4155550123E10", "+14155550123", None),  # a decimal comma (a European Excel)
        ("4.15555E+09", None, SCIENTIFIC_REASON),  # 4155550123 shown rounded: the digits are gone
        ("4.1555501235E+09", None, SCIENTIFIC_REASON),  # not a whole number
    ],
)
def test_excel_scientific_notation_is_read_when_whole_and_refused_when_digits_are_lost(raw, e164, reason):
    assert normalise_phone(raw, "US")[0::4] == (e164, reason)


def test_digits_of_other_scripts_never_reach_the_stored_number():
    # the North American fast path matched any script's digits: "+1415٥٥٥٠١٢٣" was stored as E.164
    out = normalise_phones(pl.Series(["415٥٥٥٠١٢٣", "٤١٥٥٥٥٠١٢٤"]), "US", workers=1).sort("phone_raw")
    assert out["phone_e164"].to_list() == ["+14155550123", "+14155550124"]


def test_xlsx_time_cells_keep_the_time_alone(tmp_path):
    # a time-only cell ("14:30") came back as "1899-12-31 14:30:00" and went to the agent as that property
    import xlsxwriter

    path = tmp_path / "times.xlsx"
    with xlsxwriter.Workbook(str(path)) as book:
        sheet = book.add_worksheet()
        hours = book.add_format({"num_format": "hh:mm"})
        sheet.write_row(0, 0, ["Phone", "Best time", "Signup"])
        sheet.write_string(1, 0, "6025550199")
        sheet.write_datetime(1, 1, time(14, 30), hours)
        sheet.write_datetime(1, 2, datetime(2024, 1, 15), book.add_format({"num_format": "yyyy-mm-dd"}))
        sheet.write_string(2, 0, "6025550198")
        sheet.write_datetime(2, 1, time(0, 0), hours)  # midnight: not the date "1899-12-31"
    assert ci.read_contacts_file(path).rows() == [("6025550199", "14:30:00", "2024-01-15"), ("6025550198", "00:00:00", None)]


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        # a workbook named .csv: Polars' "CSV malformed: expected 13 rows, actual 24 rows, in chunk ..."
        ("book.csv", lambda p: _zip(p, {"xl/workbook.xml": "<workbook/>"}),
         "book.csv: is a zip file (an .xlsx workbook?), not CSV text; name a workbook .xlsx, or save it as CSV"),
        # an old .xls named .csv: "the file has a header row but no data rows"
        ("old.csv", lambda p: p.write_bytes(ci.OLE_MAGIC + b"\0" * 600),
         "old.csv: is an Office file (an old .xls workbook?), not CSV text; save it as .csv or .xlsx"),
        # 0 bytes named .xlsx: "cannot read as XLSX (not a zip container)", where a .csv says it is empty
        ("empty.xlsx", lambda p: p.write_bytes(b""), "empty.xlsx: the file is empty"),
        # "cannot read as XLSX (calamine error: Xlsx error: File not found '_rels/.rels')"
        ("sheet.xlsx", lambda p: _zip(p, {"Index/Document.iwa": "x", "Metadata/Properties.plist": "x"}),
         "sheet.xlsx: is an Apple Numbers document: export it from Numbers as .xlsx or .csv"),
        ("calc.xlsx", lambda p: _zip(p, {"mimetype": "application/vnd.oasis.opendocument.spreadsheet", "content.xml": "x"}),
         "calc.xlsx: is an OpenDocument file (an .ods spreadsheet?): save it as .xlsx or .csv"),
        ("text.xlsx", lambda p: p.write_text("Phone\n+16025550199\n"),
         "text.xlsx: cannot read as XLSX (not a zip container, which an .xlsx is; a CSV file? name it .csv)"),
    ],
)
def test_a_file_under_another_files_name_says_what_it_is(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(UserError) as error:
        ci.read_contacts_file(path)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "content",
    [
        "Contacts export 2024\n\nPhone,Name\n+16025550199,Ann\n",
        "Contacts export 2024\n\nName,Phone\nAnn,+16025550199\n",  # the phone past the title's one column
        "Report,,\nGenerated 2024-01-02,,\nName,Teléfono,Email\nAnn,+16025550199,a@b.co\n",
    ],
)
def test_a_title_above_the_header_names_the_row_that_looks_like_the_header(campaign_db, tmp_path, content):
    # the advice was "name it with --map 'COLUMN=contact_phone'", which cannot help: the header is the title
    path = tmp_path / "export.csv"
    path.write_text(content, encoding="utf-8")
    for attempt in (run_import, check_import):
        with pytest.raises(UserError, match=r"^export\.csv: no column maps to contact_phone in the header \(the first "
                                            r"non-blank row: .*\); row 3 looks like the header \('(Phone|Teléfono)'\): "
                                            r"delete the rows above it$"):
            attempt(campaign_db["campaign_id"], path, db=campaign_db["db"])


def test_a_data_cell_reading_phone_is_not_taken_for_the_header(campaign_db, tmp_path):
    # the phone column has a name no synonym knows and one person's note says "Phone": the error told the user to
    # delete the rows above row 3, i.e. the real header, instead of naming the phone column with --map
    path = tmp_path / "people.csv"
    path.write_text("Name,Reach At,Email\nAnn,+16025550199,a@b.co\nBob,Phone,b@b.co\n")
    with pytest.raises(UserError, match=r"^people\.csv: no column maps to contact_phone \(columns: Name, Reach At, Email\); "
                                        r"name it with --map"):
        run_import(campaign_db["campaign_id"], path, db=campaign_db["db"])


@pytest.mark.parametrize("header", ["Cell No.", "Mobile No", "Tel. No.", "Telephone Number"])
def test_common_phone_headers_are_recognised(header):
    assert ci.suggest_mapping([header, "Name"])[header] == "contact_phone"


def test_a_file_without_any_phone_header_keeps_the_map_advice(campaign_db, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("Foo,Bar\na,b\n")
    with pytest.raises(UserError, match=r"no column maps to contact_phone \(columns: Foo, Bar\); name it with --map"):
        run_import(campaign_db["campaign_id"], path, db=campaign_db["db"])


def report_of(frame: pl.DataFrame, region: str | None = "US") -> tuple[pl.DataFrame, list[dict]]:
    """(valid rows, report lines) of a file as read, as the import computes them."""
    mapping = ci.resolve_mapping(frame.columns)
    valid, report, _warnings = ci.validate(ci.normalise(ci.apply_mapping(frame, mapping), region, workers=1), mapping)
    return valid, report.to_dicts()


def csv_frame(text: str) -> pl.DataFrame:
    return ci.read_csv_bytes(text.encode("utf-8"), Path("t.csv"))


@pytest.mark.parametrize("raw", ["+1 602 555 0100 ext. 12", "602-555-0100 x12", "(602) 555-0100 ext 12",
                                 "602-555-0100 (ext 4)", "602-555-0100 #12"])
def test_a_phone_with_an_extension_is_refused_not_called_on_its_main_line(raw):
    # the extension was dropped and the main line, maybe a switchboard or someone else, would have been called
    valid, report = report_of(csv_frame(f'Phone,Name\n"{raw}",Ann\n+16025550101,Bo\n'))
    assert report == [{"row": 2, "column": "Phone", "value": raw, "reason": EXTENSION_REASON}]
    assert valid["phone_e164"].to_list() == ["+16025550101"]


def test_a_do_not_call_entry_with_an_extension_still_blocks_its_main_line():
    # refusing is for numbers to call; a number not to call blocks the line its extension is on
    assert normalise_phone("602-555-0100 x12", "US")[0::4] == ("+16025550100", None)


def test_an_edited_phone_with_an_extension_is_refused(campaign_db, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("Phone,Name\n+16025550101,Ann\n")
    run_import(campaign_db["campaign_id"], path, db=campaign_db["db"])
    with transaction(campaign_db["db"]) as conn:
        contact_id = conn.execute("select contact_id from contacts").fetchone()[0]
        with pytest.raises(ValidationError, match="has an extension"):
            ci.edit_contact(conn, contact_id, {"phone": "602-555-0100 x12"}, datetime(2026, 4, 28))


@pytest.mark.parametrize("raw", ["16,025,550,100", "6,025,550,100", "+16,025,550,100", "6,025,550,100.00"])
def test_a_phone_with_thousands_separators_says_to_format_the_column_as_text(raw):
    # a spreadsheet's number format: refused as "not a phone number" (a leading 0 or + may be gone: not read)
    assert normalise_phone(raw, "US")[0::4] == (None, THOUSANDS_REASON)
    assert report_of(csv_frame(f'Phone\n"{raw}"\n'))[1][0]["reason"] == THOUSANDS_REASON


@pytest.mark.parametrize(("raw", "e164"), [
    ("602.555.0100", "+16025550100"),  # dots are a phone's own punctuation: read as before
    ("1,602,555,0100", None),  # not grouped by thousands: the generic reason
])
def test_grouped_digits_that_are_not_thousands_are_read_as_before(raw, e164):
    e164_found, *_, reason = normalise_phone(raw, "US")
    assert e164_found == e164
    assert reason != THOUSANDS_REASON


def _workbook_with_errors(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Phone", "Name", "Plan"])
    sheet.append(["#N/A", "Ann", "Pro"])  # a failed VLOOKUP: openpyxl writes an error cell (data_type "e")
    sheet.append(["+16025550101", "#REF!", "#DIV/0!"])
    sheet.append(["#VALUE!", None, None])
    assert sheet["A2"].data_type == "e"
    book.save(path)
    return path


def test_an_xlsx_error_cell_reads_as_the_error_excel_shows(tmp_path):
    # it read as an empty cell: a row whose phone lookup failed was reported as "phone is empty", or not at all
    frame = ci.read_contacts_file(_workbook_with_errors(tmp_path / "errors.xlsx"))
    assert frame.rows() == [("#N/A", "Ann", "Pro"), ("+16025550101", "#REF!", "#DIV/0!"), ("#VALUE!", None, None)]


@pytest.mark.parametrize("name", ["errors.xlsx", "errors.csv"])
def test_an_excel_error_refuses_its_phone_and_is_no_value_elsewhere(campaign_db, tmp_path, name):
    # a CSV export writes an error cell as its text: the same rule for both
    path = tmp_path / name
    if name.endswith(".xlsx"):
        _workbook_with_errors(path)
    else:
        path.write_text("Phone,Name,Plan\n#N/A,Ann,Pro\n+16025550101,#REF!,#DIV/0!\n#VALUE!,,\n", encoding="utf-8")
    result = run_import(campaign_db["campaign_id"], path, db=campaign_db["db"])
    assert [(r["row"], r["value"], r["reason"]) for r in result.rejected] == [
        (2, "#N/A", "the cell holds the Excel error #N/A, not a number: correct it in the spreadsheet"),
        (4, "#VALUE!", "the cell holds the Excel error #VALUE!, not a number: correct it in the spreadsheet"),
    ]
    with connect(campaign_db["db"]) as conn:
        # not the text "#REF!" as the contact's name, nor "#DIV/0!" as a property
        assert conn.execute("select phone_e164, name, properties::varchar from contacts").fetchall() == [
            ("+16025550101", None, "{}")]


MIXED = "Name,Phone\nJosé Muñoz,+16025550199\n".encode() + "Zoë Müller,+16025550198\n".encode("cp1252")


def test_a_utf8_file_with_a_few_windows_lines_keeps_its_utf8_accents():
    # decoded whole as cp1252, the UTF-8 "José Muñoz" became "JosÃ© MuÃ±oz"
    frame = ci.read_csv_bytes(MIXED, Path("t.csv"))
    assert frame["Name"].to_list() == ["José Muñoz", "Zoë Müller"]
    assert ci.decode_bytes(MIXED)[1] == "utf-8 with cp1252 lines"


@pytest.mark.parametrize(("data", "encoding"), [
    ("Name,Phone\nJosé,+16025550199\n“Bo” €,+16025550198\n".encode("cp1252"), "cp1252"),
    ("Name,Phone\nJosé,+16025550199\n".encode("cp1252") + b"Bo\x81,+16025550198\n", "latin-1"),
    ("Name,Phone\nJosé,+16025550199\n".encode() + b"Bo\x81,+16025550198\n", "utf-8 with latin-1 lines"),
])
def test_a_windows_file_is_still_read_as_one(data, encoding):
    text, found = ci.decode_bytes(data)
    assert found == encoding
    assert text.decode("utf-8").splitlines()[1] == "José,+16025550199"
