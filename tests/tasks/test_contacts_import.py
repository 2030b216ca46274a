"""Contact import steps: reading, mapping, normalising, validating, merging, upserting, enrolling;
and the contact list operations (remove, edit, export)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tasks import contacts_import as ci
from tasks.errors import NotFoundError, UserError, ValidationError
from tasks.store import connect, transaction

NOW = datetime(2026, 4, 27, 15, 0, tzinfo=UTC)
LATER = datetime(2026, 4, 28, 15, 0, tzinfo=UTC)
SAMPLE = "Name,Phone,Email\nJosé Muñoz,(602) 555-0199,jose@example.com\nAnn,480-555-0123,\n"


def checked(text: str, region: str | None = "US", overrides: dict | None = None):
    """(valid rows, rejects, warnings) for a CSV text, as the import's `validate` step computes them."""
    frame = ci.read_csv_bytes(text.encode("utf-8"), Path("t.csv"))
    mapping = ci.resolve_mapping(frame.columns, overrides)
    return ci.validate(ci.normalise(ci.apply_mapping(frame, mapping), region, workers=1), mapping)


def prepare(text: str, region: str | None = "US", overrides: dict | None = None):
    """(merged frame, report, duplicates merged) for a CSV text, as the import computes them."""
    valid, report, _warnings = checked(text, region, overrides)
    merged, duplicates = ci.merge_duplicates(valid)
    return merged, report, duplicates


def write(conn, text: str, campaign_id: int, now: datetime = NOW) -> tuple[int, int, int]:
    merged, _, _ = prepare(text)
    inserted, updated = ci.upsert_contacts(conn, merged, now)
    return inserted, updated, ci.enroll_contacts(conn, campaign_id, merged, now)


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"])
def test_encodings_are_detected(encoding):
    frame = ci.read_csv_bytes(SAMPLE.encode(encoding), Path("t.csv"))
    assert frame.columns == ["Name", "Phone", "Email"]
    assert frame["Name"].to_list() == ["José Muñoz", "Ann"]


def test_cp1252_only_characters_are_decoded():
    # "€" and curly quotes exist in Windows-1252 but not in Latin-1.
    frame = ci.read_csv_bytes("Name,Phone\n“Bob” €,6025550199\n".encode("cp1252"), Path("t.csv"))
    assert frame["Name"].to_list() == ["“Bob” €"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters_are_detected(delimiter):
    text = SAMPLE.replace(",", delimiter)
    frame = ci.read_csv_bytes(text.encode(), Path("t.csv"))
    assert frame.columns == ["Name", "Phone", "Email"]
    assert frame["Phone"].to_list() == ["(602) 555-0199", "480-555-0123"]


def test_a_comma_inside_quotes_does_not_decide_the_delimiter():
    assert ci.detect_delimiter(b'"Name, full";Phone;Email\n') == ";"


def test_quoted_newlines_keep_record_row_numbers():
    # Row numbers count records: the record after a two-line field is still row 3.
    text = 'Name,Phone\n"Ann\nLee",6025550199\nBob,123\n'
    _, report, _ = prepare(text)
    assert report.to_dicts() == [{"row": 3, "column": "Phone", "value": "123", "reason": "too short"}]


def test_an_unclosed_quote_is_refused_naming_the_row_where_it_opens():
    # the message was Polars' "could not parse `"4805550123,Bob" with no row
    text = b'Phone,Name\n6025550199,"Ann ""A"" Lee"\n\n4805550123,"Bob\n6025550198,Cy\n'
    with pytest.raises(UserError) as error:
        ci.read_csv_bytes(text, Path("q.csv"))
    assert str(error.value) == 'q.csv: row 4: a field opens with a quote (") that is never closed'


def test_classic_mac_line_ends_are_records():
    # Excel's "CSV (Macintosh)" ends lines with CR alone: the file read as one header line, "no data rows"
    frame = ci.read_csv_bytes(b"Phone,Name\r6025550199,Ann\r4805550123,Bob\r", Path("mac.csv"))
    assert frame.rows() == [("6025550199", "Ann"), ("4805550123", "Bob")]


def test_every_column_is_text_so_leading_zeros_and_long_digits_survive():
    frame = ci.read_csv_bytes(b"Phone,Zip\n16025550199,00501\n", Path("t.csv"))
    assert frame.row(0) == ("16025550199", "00501")


def test_headers_blank_or_repeated_get_names():
    frame = ci.read_csv_bytes(b"Phone,Name,Name,\n6025550199,a,b,c\n", Path("t.csv"))
    assert frame.columns == ["Phone", "Name", "Name (2)", "column_4"]


def _xlsx(path: Path, rows: list[list], sheet: str = "Contacts", extra_sheet: str | None = None) -> Path:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet(sheet)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                ws.write(r, c, value)
    if extra_sheet:
        book.add_worksheet(extra_sheet).write_row(0, 0, ["Phone", "Name"])
        book.worksheets()[-1].write_row(1, 0, ["+14805550123", "Other"])
    book.close()
    return path


def test_xlsx_numeric_phone_cells_keep_every_digit(tmp_path):
    path = _xlsx(tmp_path / "c.xlsx", [["Phone", "Name"], [6025550199, "Ann"], [16025550198.0, "Bob"], ["602-555-0197", None]])
    frame = ci.read_contacts_file(path)
    assert frame["Phone"].to_list() == ["6025550199", "16025550198", "602-555-0197"]


def test_xlsx_date_cells_keep_their_date_and_only_a_real_time_of_day(tmp_path):
    # a date cell came back as "2024-01-15 00:00:00" and went to the agent as that custom property
    import datetime as dt

    import xlsxwriter

    path = tmp_path / "dates.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["Phone", "Signup", "Callback"])
    sheet.write_string(1, 0, "6025550199")
    sheet.write_datetime(1, 1, dt.datetime(2024, 1, 15), book.add_format({"num_format": "yyyy-mm-dd"}))
    sheet.write_datetime(1, 2, dt.datetime(2024, 1, 15, 9, 30), book.add_format({"num_format": "yyyy-mm-dd hh:mm"}))
    book.close()
    assert ci.read_contacts_file(path).row(0) == ("6025550199", "2024-01-15", "2024-01-15 09:30:00")


def test_xlsx_sheet_is_chosen_by_name(tmp_path):
    path = _xlsx(tmp_path / "c.xlsx", [["Phone"], ["6025550199"]], extra_sheet="Second")
    assert ci.read_contacts_file(path)["Phone"].to_list() == ["6025550199"]
    assert ci.read_contacts_file(path, sheet="Second")["Name"].to_list() == ["Other"]
    with pytest.raises(UserError, match="no sheet named 'Nope' \\(sheets: Contacts, Second\\)"):
        ci.read_contacts_file(path, sheet="Nope")


NO_SAVED_VALUE = ("a formula with no saved value{} (the file was never opened and saved in a spreadsheet app); "
                  "open and save it in Excel or LibreOffice, or export it as CSV")


def _formula_xlsx(path: Path, rows: int = 3) -> Path:
    """What a script writes with openpyxl: a Phone column of formulas ="+1"&B2 and no saved values (<v />)."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    sheet.append(["Phone", "Local", "Name"])
    for row in range(2, rows + 2):
        sheet.append([f'="+1"&B{row}', f"60255501{row:02}", f"Contact {row}"])
    book.save(path)
    return path


def _xlsx_of_sheet_xml(path: Path, rows: list[str], prefix: str = "", spaced: bool = False,
                       sheet_name: str = "Sheet1") -> Path:
    """A workbook whose first sheet (Sheet1) holds these rows of cells as written (x:c, x:f... with a prefix); spaced:
    a line break and indent between tags, as some writers pretty-print the XML."""
    import io
    import zipfile

    import xlsxwriter

    namespace = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    x = f"{prefix}:" if prefix else ""
    xml = (f'<{x}worksheet xmlns{":" + prefix if prefix else ""}="{namespace}"><{x}sheetData>'
           + "".join(f'<{x}row r="{r}">{cells.replace("<", "<" + x).replace("<" + x + "/", "</" + x)}</{x}row>'
                     for r, cells in enumerate(rows, start=1))
           + f"</{x}sheetData></{x}worksheet>")
    if spaced:
        xml = xml.replace("><", ">\n  <")
    made = io.BytesIO()
    book = xlsxwriter.Workbook(made, {"in_memory": True})
    book.add_worksheet(sheet_name).write(0, 0, "replaced")
    book.close()
    with zipfile.ZipFile(made) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            sheet = item.filename == "xl/worksheets/sheet1.xml"
            content = '<?xml version="1.0" encoding="UTF-8"?>\n' + xml if sheet else source.read(item)
            out.writestr(item.filename, content)
    return path


def _text(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def test_an_xlsx_formula_without_a_saved_value_is_refused_naming_its_cell(tmp_path):
    # fastexcel reads saved values only: the phones read as empty and every row was rejected as "missing phone"
    path = _formula_xlsx(tmp_path / "contacts.xlsx")
    message = "contacts.xlsx, sheet Sheet1, row 2, column Phone: " + NO_SAVED_VALUE.format(", and 2 more cells like it")
    with pytest.raises(UserError) as raised:
        ci.read_contacts_file(path)
    assert str(raised.value) == message
    from tasks.compliance import read_dnc_rows  # the do-not-call import reads a workbook the same way

    with pytest.raises(UserError) as raised:
        read_dnc_rows(path)
    assert str(raised.value) == message


@pytest.mark.parametrize("prefix, spaced", [("", False), ("x", False), ("", True)], ids=["plain", "prefixed", "spaced"])
def test_every_way_of_writing_a_formula_without_a_value_is_found(tmp_path, prefix, spaced):
    rows = [
        _text("A1", "Phone") + _text("B1", "Local") + _text("C1", "Staff of " + "f" * 80),  # many an "f" before a formula
        # no <v> at all (POI, ExcelJS, the Open XML SDK), then a shared formula's other cell
        '<c r="A2"><f t="shared" ref="A2:A3" si="0">"+1"&amp;B2</f></c>' + _text("B2", "6025550102"),
        '<c r="A3"><f t="shared" si="0"/></c>' + _text("B3", "6025550103"),
        # an empty <v> of a number formula (XlsxWriter's value="")
        '<c r="A4"><f>"+1"&amp;B4</f><v></v></c>' + _text("B4", "6025550104"),
        # Excel's own empty text result (=IF(B5="","",B5)): its value is empty text, read as such
        '<c r="A5" t="str"><f>""</f><v/></c>' + _text("B5", "6025550105"),
        # a saved value is read as it is
        '<c r="A6" t="str"><f>"+1"&amp;B6</f><v>+16025550106</v></c>' + _text("B6", "6025550106"),
    ]
    path = _xlsx_of_sheet_xml(tmp_path / "book.xlsx", rows, prefix, spaced)
    assert ci.formula_cells_without_value(path, "Sheet1") == (3, (2, 1))
    with pytest.raises(UserError, match=r"^book\.xlsx, sheet Sheet1, row 2, column Phone: a formula with no saved "
                                        r"value, and 2 more cells like it \("):
        ci.read_contacts_file(path)
    rows[1:4] = [_text(f"A{r}", f"+160255501{r:02}") + _text(f"B{r}", f"60255501{r:02}") for r in (2, 3, 4)]
    path = _xlsx_of_sheet_xml(tmp_path / "saved.xlsx", rows, prefix, spaced)
    assert ci.read_contacts_file(path)["Phone"].to_list() == ["+16025550102", "+16025550103", "+16025550104", "",
                                                               "+16025550106"]


def test_an_xlsx_formula_with_a_saved_value_imports_the_value(tmp_path):
    import xlsxwriter

    path = tmp_path / "saved.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["Phone", "Local", "Calls"])
    sheet.write_formula(1, 0, '="+1"&B2', None, "+16025550199")
    sheet.write_string(1, 1, "6025550199")
    sheet.write_formula(1, 2, "=1+1", None, 2)
    book.close()
    assert ci.read_contacts_file(path).row(0) == ("+16025550199", "6025550199", "2")


def test_a_formula_cell_is_named_by_its_letter_above_the_header_and_by_its_header_below_it(tmp_path):
    import openpyxl

    # the header in row 3 from column C: the read starts at the sheet's first column holding a value
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["C3"], sheet["D3"], sheet["E3"] = "Local", "Name", "Phone"
    sheet["C4"], sheet["D4"], sheet["E4"] = "6025550104", "Ann", '="+1"&C4'
    book.save(tmp_path / "late.xlsx")
    with pytest.raises(UserError, match=r"^late\.xlsx, sheet Sheet, row 4, column Phone: a formula with no saved "
                                        r"value \("):
        ci.read_contacts_file(tmp_path / "late.xlsx")
    # rows of formulas alone read as no rows at all: "a header row but no data rows" was the error
    sheet["B1"] = "=TODAY()"
    sheet["C4"], sheet["D4"] = '="6025550104"', '="Ann"'
    book.save(tmp_path / "title.xlsx")
    with pytest.raises(UserError, match=r"^title\.xlsx, sheet Sheet, row 1, column B: a formula with no saved value, "
                                        r"and 3 more cells like it \("):
        ci.read_contacts_file(tmp_path / "title.xlsx")


def test_formula_cells_are_counted_across_the_pieces_the_sheet_is_read_in(tmp_path, monkeypatch):
    path = _formula_xlsx(tmp_path / "many.xlsx", rows=300)
    monkeypatch.setattr(ci, "XLSX_SCAN_CHUNK", 97)  # rows cut at every place
    assert ci.formula_cells_without_value(path, "Sheet1") == (300, (2, 1))
    with pytest.raises(UserError, match=r"row 2, column Phone: a formula with no saved value, and 299 more cells "
                                        r"like it"):
        ci.read_contacts_file(path)


def test_the_import_command_refuses_a_formula_without_a_saved_value_and_writes_nothing(campaign_db, capsys, tmp_path):
    from tests.flows.test_cli_input_errors import refused

    path = _formula_xlsx(tmp_path / "contacts.xlsx")
    message = refused(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path))
    assert message == "contacts.xlsx, sheet Sheet1, row 2, column Phone: " + NO_SAVED_VALUE.format(
        ", and 2 more cells like it")


@pytest.mark.parametrize("name", ["old.xls", "calc.ods", "contacts.json", "noext"])
def test_other_formats_are_refused(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"x")
    with pytest.raises(UserError, match=r"unsupported file type .*use \.csv or \.xlsx"):
        ci.read_contacts_file(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b"\n\n  \n", "the file is empty"),
        ("header.csv", b"Name,Phone\n", "has a header row but no data rows"),
        ("broken.xlsx", b"PK\x03\x04 not really a zip", "cannot read as XLSX"),
    ],
)
def test_unusable_files_are_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        ci.read_contacts_file(path)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        ci.read_contacts_file(tmp_path / "nope.csv")


# ---------------------------------------------------------------- mapping


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("Phone Number", "contact_phone"), ("phone", "contact_phone"), ("Teléfono", "contact_phone"),
        ("Mobile", "contact_phone"), ("Cell", "contact_phone"), ("Celular", "contact_phone"),
        ("Full Name", "contact_name"), ("Name", "contact_name"), ("Nombre", "contact_name"),
        ("E-mail", "email"), ("Correo electrónico", "email"), ("Company", "company_name"),
        ("Empresa", "company_name"), ("Plan", "custom:plan"), ("Último pedido", "custom:ultimo_pedido"),
    ],
)
def test_suggest_mapping_from_header_synonyms(header, target):
    assert ci.suggest_mapping([header]) == {header: target}


def test_suggestion_keeps_the_first_phone_and_joins_name_parts():
    assert ci.suggest_mapping(["First Name", "Last Name", "Mobile", "Phone"]) == {
        "First Name": "contact_name", "Last Name": "contact_name", "Mobile": "contact_phone", "Phone": "custom:phone",
    }


def test_a_whole_name_column_wins_over_name_parts_which_become_properties():
    # CRM exports often carry "Full Name" beside "First Name"/"Last Name": all three were joined ("Ann Lee Ann Lee")
    merged, _, _ = prepare("First Name,Last Name,Full Name,Phone,Customer\nAnn,Lee,Ann Lee,6025550199,Acme\n")
    assert merged.select("contact_name", "custom:first_name", "custom:last_name", "custom:customer").row(0) == (
        "Ann Lee", "Ann", "Lee", "Acme",
    )
    assert ci.suggest_mapping(["Nombre", "Apellidos", "Teléfono"]) == {
        "Nombre": "contact_name", "Apellidos": "contact_name", "Teléfono": "contact_phone",
    }


def test_a_name_column_given_with_map_replaces_the_suggested_ones():
    # --map Who=contact_name used to be joined to the suggested name columns ("Ann Lee Annie")
    mapping = ci.resolve_mapping(["First Name", "Last Name", "Who", "Phone"], {"Who": "contact_name"})
    assert mapping == {"First Name": "custom:first_name", "Last Name": "custom:last_name", "Who": "contact_name",
                       "Phone": "contact_phone"}
    both = ci.resolve_mapping(["A", "B", "Name", "Phone"], {"A": "contact_name", "B": "contact_name"})
    assert both == {"A": "contact_name", "B": "contact_name", "Name": "custom:name", "Phone": "contact_phone"}


def test_name_parts_are_joined_in_file_order():
    frame = pl.DataFrame({"First Name": ["Ann", None], "Last Name": ["Lee", "Solo"], "Phone": ["6025550199", "6025550198"]})
    mapped = ci.apply_mapping(frame, ci.resolve_mapping(frame.columns))
    assert mapped["contact_name"].to_list() == ["Ann Lee", "Solo"]


def test_overrides_replace_the_suggestion_and_the_old_column_becomes_custom():
    mapping = ci.resolve_mapping(["Phone", "Mobile", "Notes"], {"mobile": "contact_phone", "Notes": "ignore"})
    assert mapping == {"Phone": "custom:phone", "Mobile": "contact_phone", "Notes": "ignore"}


@pytest.mark.parametrize(
    ("headers", "overrides", "message"),
    [
        (["Name", "Plan"], None, "no column maps to contact_phone \\(columns: Name, Plan\\)"),
        (["Phone"], {"Nope": "email"}, "column 'Nope' is not in the file"),
        (["Phone", "A", "B"], {"A": "email", "B": "email"}, "email is mapped from several columns: A, B"),
        (["Phone"], {"Phone": "telephone"}, "unknown target 'telephone'"),
        (["Phone"], {"Phone": "ignore"}, "no column maps to contact_phone"),
    ],
)
def test_bad_mappings_are_refused(headers, overrides, message):
    with pytest.raises(UserError, match=message):
        ci.resolve_mapping(headers, overrides)


def test_colliding_custom_names_get_suffixes():
    assert ci.resolve_mapping(["Phone", "City", "city "]) == {"Phone": "contact_phone", "City": "custom:city", "city ": "custom:city_2"}


@pytest.mark.parametrize(("options", "expected"), [(["Tel=contact_phone"], {"Tel": "contact_phone"}), (["a=b=email"], {"a=b": "email"})])
def test_parse_map_options(options, expected):
    assert ci.parse_map_options(options) == expected


def test_parse_map_options_refuses_a_missing_equals():
    with pytest.raises(ValidationError, match="'Tel' is not SOURCE=TARGET"):
        ci.parse_map_options(["Tel"])


# ---------------------------------------------------------------- validate and merge


def test_report_lists_each_problem_with_the_file_row_and_column():
    text = (
        "Phone,Email,Name\n"
        "6025550199,ann@example.com,Ann\n"       # row 2 fine
        "123,,Bob\n"                             # row 3 too short
        ",,Nobody\n"                             # row 4 phone empty
        "(111) 555-0100,,Bad area\n"             # row 5 invalid for US
        "6025550198,not-an-email,Eve\n"          # row 6 bad e-mail: imported without it
        f"6025550197,,{'x' * 201}\n"             # row 7 name too long: imported without it
        ",,\n"                                   # row 8 blank: skipped, not reported
    )
    valid, rejects, warnings = checked(text)
    assert rejects.to_dicts() == [
        {"row": 3, "column": "Phone", "value": "123", "reason": "too short"},
        {"row": 4, "column": "Phone", "value": None, "reason": "phone is empty"},
        {"row": 5, "column": "Phone", "value": "(111) 555-0100", "reason": "not a valid number for region US"},
    ]
    assert warnings.to_dicts() == [
        {"row": 6, "column": "Email", "value": "not-an-email", "reason": "not a valid e-mail address: imported without it"},
        {"row": 7, "column": "Name", "value": "x" * 201, "reason": "longer than 200 characters: imported without it"},
    ]
    assert valid.select("row", "phone_e164", "contact_name", "email").rows() == [
        (2, "+16025550199", "Ann", "ann@example.com"),
        (6, "+16025550198", "Eve", None),
        (7, "+16025550197", None, None),
    ]


def test_a_good_phone_with_a_bad_email_is_kept_without_the_email():
    # a calling campaign needs the phone only: the e-mail is left empty (null), the row imported, the user told
    valid, rejects, warnings = checked("Name,Phone,Email\nJohn,(602) 555-0199,john@@example\n")
    assert rejects.is_empty()
    assert warnings.to_dicts() == [
        {"row": 2, "column": "Email", "value": "john@@example", "reason": "not a valid e-mail address: imported without it"}]
    assert valid.select("row", "phone_e164", "contact_name", "email").rows() == [(2, "+16025550199", "John", None)]


def test_a_mapped_time_zone_or_us_state_that_places_nobody_is_said_and_not_imported():
    # they were kept without a word, and the callee's legal hours were then taken from the phone
    valid, rejects, warnings = checked(
        "Phone,Name,Time Zone,State\n"
        "+16025550301,A,Mars/Olympus,\n"        # row 2: no such zone
        "+16025550302,B,,Texas\n"               # row 3: a state's name
        "+16025550303,C,,ZZ\n"                  # row 4: no such state
        "+16025550304,D,america/new_york,fl\n"  # row 5: a zone in lower case is that zone; a state's code
        "+573001234567,E,,Antioquia\n"          # row 6: another country's region is not checked
    )
    assert rejects.is_empty()
    assert warnings.to_dicts() == [
        {"row": 2, "column": "Time Zone", "value": "Mars/Olympus", "reason": f"{ci.BAD_ZONE}: imported without it"},
        {"row": 4, "column": "State", "value": "ZZ", "reason": f"{ci.BAD_US_STATE}: imported without it"},
    ]
    assert valid.select("row", "custom:time_zone", "custom:state").rows() == [
        (2, None, None), (3, None, "Texas"), (4, None, None), (5, "America/New_York", "fl"), (6, None, "Antioquia")]


def test_a_bad_phone_with_a_bad_email_is_rejected_with_both_problems_and_no_warning():
    valid, rejects, warnings = checked("Name,Phone,Email\nJohn,123,john@@example\n")
    assert valid.is_empty() and warnings.is_empty()
    assert rejects.to_dicts() == [
        {"row": 2, "column": "Phone", "value": "123", "reason": "too short"},
        {"row": 2, "column": "Email", "value": "john@@example", "reason": "not a valid e-mail address"},
    ]


def test_a_row_wider_than_its_header_is_rejected_even_when_its_only_other_problem_is_optional():
    # its values may sit in the wrong columns: the e-mail's problem is listed with the rejection, not as a warning
    valid, rejects, warnings = checked("Phone,Email\n6025550199,nope,extra\n")
    assert valid.is_empty() and warnings.is_empty()
    assert [(r["row"], r["column"]) for r in rejects.to_dicts()] == [(2, "field 3"), (2, "Email")]


@pytest.mark.parametrize(("header", "value", "field", "reason"), [
    ("Company", "c" * 201, "company_name", "longer than 200 characters"),
    ("Notes", "n" * 1001, "custom:notes", "longer than 1000 characters"),  # a custom property
    ("Email", f"{'e' * 250}@example.com", "email", "longer than 254 characters"),
])
def test_each_optional_field_that_fails_its_check_is_left_empty(header, value, field, reason):
    valid, rejects, warnings = checked(f"Phone,{header}\n6025550199,{value}\n")
    assert rejects.is_empty()
    assert warnings.to_dicts() == [{"row": 2, "column": header, "value": value, "reason": f"{reason}: imported without it"}]
    assert valid[field].to_list() == [None]


def test_the_report_csv_lists_both_kinds_in_file_order_with_their_outcome():
    _, rejects, warnings = checked("Phone,Email\n6025550199,bad@\n123,\n6025550198,ok@example.com\n")
    assert ci.report_lines(rejects, warnings).to_dicts() == [
        {"row": 2, "column": "Email", "value": "bad@", "reason": "not a valid e-mail address: imported without it",
         "outcome": "imported"},
        {"row": 3, "column": "Phone", "value": "123", "reason": "too short", "outcome": "rejected"},
    ]


def test_national_numbers_without_a_country_are_rejected():
    _, report, _ = prepare("Phone\n6025550199\n+16025550198\n", region=None)
    assert report.to_dicts() == [
        {"row": 2, "column": "Phone", "value": "6025550199", "reason": "missing country code and no default country"}
    ]


def test_duplicates_in_a_file_merge_with_later_non_empty_values_winning():
    text = (
        "Phone,Name,Company,Plan,City\n"
        "602-555-0199,Ann,Acme,Gold,\n"
        "480-555-0123,Bob,,,\n"
        "+1 (602) 555 0199,Ann Lee,,,Mesa\n"   # same number: name and city win, company and plan stay
    )
    merged, _, duplicates = prepare(text)
    assert duplicates == 1
    assert merged.select("phone_e164", "row", "contact_name", "company_name", "custom:plan", "custom:city").rows() == [
        ("+16025550199", 2, "Ann Lee", "Acme", "Gold", "Mesa"),
        ("+14805550123", 3, "Bob", None, None, None),
    ]


# ---------------------------------------------------------------- writing


def _contacts(db) -> list[tuple]:
    with connect(db) as conn:
        return conn.execute(
            "select phone_e164, name, company, email, properties::varchar, number_type, region, time_zones,"
            " created_at, updated_at from contacts order by contact_id"
        ).fetchall()


def test_upsert_inserts_with_dialing_facts_and_enrolls(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        counts = write(conn, "Phone,Name,Plan\n(602) 555-0199,Ann,Gold\n+52 55 1234 5678,Eva,\n", campaign_db["campaign_id"])
    assert counts == (2, 0, 2)
    assert _contacts(campaign_db["db"]) == [
        ("+16025550199", "Ann", None, None, '{"plan":"Gold"}', "FIXED_LINE_OR_MOBILE", "US", ["America/Phoenix"], NOW, NOW),
        ("+525512345678", "Eva", None, None, "{}", "FIXED_LINE_OR_MOBILE", "MX", ["America/Mexico_City"], NOW, NOW),
    ]


def test_existing_contact_is_updated_with_non_empty_values_and_merged_properties(campaign_db):
    cid = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        write(conn, "Phone,Name,Company,Plan,City\n6025550199,Ann,Acme,Gold,Phoenix\n", cid)
    with transaction(campaign_db["db"]) as conn:
        counts = write(conn, "Phone,Name,Company,Plan,Tier\n+16025550199,Ann Lee,,Silver,A\n", cid, LATER)
    # Updated, not re-enrolled; company kept (empty), plan overwritten, city kept, tier added.
    assert counts == (0, 1, 0)
    [row] = _contacts(campaign_db["db"])
    assert row[1:4] == ("Ann Lee", "Acme", None)
    assert json.loads(row[4]) == {"plan": "Silver", "city": "Phoenix", "tier": "A"}
    assert (row[8], row[9]) == (NOW, LATER)


def test_a_reimport_with_a_bad_email_keeps_the_stored_one(campaign_db):
    # the bad value is left empty, not stored: the upsert keeps the CRM's e-mail (and property) over an empty one
    cid = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        write(conn, "Phone,Name,Email,Notes\n6025550199,Ann,ann@example.com,vip\n", cid)
    with transaction(campaign_db["db"]) as conn:
        counts = write(conn, f"Phone,Name,Email,Notes\n6025550199,Ann Lee,ann@@example,{'n' * 1001}\n", cid, LATER)
    assert counts == (0, 1, 0)  # updated for the new name only
    [row] = _contacts(campaign_db["db"])
    assert row[1:4] == ("Ann Lee", None, "ann@example.com")
    assert json.loads(row[4]) == {"notes": "vip"}


def test_reimporting_the_same_file_changes_nothing(campaign_db):
    cid, text = campaign_db["campaign_id"], "Phone,Name,Plan\n6025550199,Ann,Gold\n4805550123,Bob,\n"
    with transaction(campaign_db["db"]) as conn:
        write(conn, text, cid)
    before = _contacts(campaign_db["db"])
    with transaction(campaign_db["db"]) as conn:
        counts = write(conn, text, cid, LATER)
    assert counts == (0, 0, 0)
    assert _contacts(campaign_db["db"]) == before  # updated_at included


def test_enrollment_follows_file_order(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        write(conn, "Phone\n4805550123\n6025550199\n", campaign_db["campaign_id"])
        order = conn.execute(
            "select c.phone_e164 from campaign_contacts e join contacts c using (contact_id) order by e.enroll_seq"
        ).fetchall()
    assert order == [("+14805550123",), ("+16025550199",)]


def test_campaign_country_and_missing_campaign(campaign_db):
    with connect(campaign_db["db"]) as conn:
        assert ci.campaign_country(conn, campaign_db["campaign_id"]) == "US"
        with pytest.raises(NotFoundError, match="campaign 999 does not exist"):
            ci.campaign_country(conn, 999)


# ---------------------------------------------------------------- contact list operations


@pytest.fixture
def enrolled(campaign_db) -> dict:
    with transaction(campaign_db["db"]) as conn:
        write(conn, "Phone,Name,Company,Plan\n6025550199,Ann,=HYPERLINK(\"x\"),Gold\n4805550123,Bob,Beta,\n", campaign_db["campaign_id"])
        ids = dict(conn.execute("select phone_e164, contact_id from contacts").fetchall())
    return {**campaign_db, "ids": ids}


def test_remove_deletes_the_enrollment_only(enrolled):
    ann = enrolled["ids"]["+16025550199"]
    with transaction(enrolled["db"]) as conn:
        ci.remove_contact_from_campaign(conn, enrolled["campaign_id"], ann)
        assert conn.execute("select count(*) from campaign_contacts").fetchone()[0] == 1
        assert conn.execute("select count(*) from contacts").fetchone()[0] == 2
        with pytest.raises(NotFoundError, match=f"contact {ann} is not enrolled in campaign"):
            ci.remove_contact_from_campaign(conn, enrolled["campaign_id"], ann)


def test_edit_contact_renormalises_the_phone_and_sets_properties(enrolled):
    ann = enrolled["ids"]["+16025550199"]
    with transaction(enrolled["db"]) as conn:
        contact = ci.edit_contact(conn, ann, {"phone": "(928) 555-0100", "name": " Ann Lee ", "custom:plan": "", "City": "Flagstaff"}, LATER)
    assert (contact["phone_e164"], contact["name"], contact["region"], contact["time_zones"]) == (
        "+19285550100", "Ann Lee", "US", ["America/Phoenix"],
    )
    assert contact["properties"] == {"city": "Flagstaff"}  # plan cleared by the empty value
    assert contact["updated_at"] == LATER


def test_edit_contact_resolves_the_calling_zone_of_the_new_number_at_once(enrolled):
    # a Phoenix contact resolved by a claim, then given a London number: its zone, country and state follow
    # the number in the same transaction (they stayed America/Phoenix, US, AZ until the next claim reached it)
    from tasks.compliance import resolve_zones

    ann = enrolled["ids"]["+16025550199"]
    with transaction(enrolled["db"]) as conn:
        resolve_zones(conn)
        ci.edit_contact(conn, ann, {"phone": "020 7946 0959"}, LATER, default_country="GB")
        row = conn.execute(
            "select k.time_zones, k.country, c.subdivision, c.zone_resolved_at = c.updated_at"
            " from contacts c join zone_keys k using (zone_key) where c.contact_id = ?", [ann]).fetchone()
    assert row == (["Europe/London"], "GB", None, True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"phone": "+14805550123"}, "phone: \\+14805550123 already belongs to contact"),
        ({"phone": "123"}, "phone: '123': too short"),
        ({"phone": ""}, "phone: a contact needs a phone"),
        ({"email": "nope"}, "email: not a valid e-mail address"),
    ],
)
def test_edit_contact_refuses_bad_values(enrolled, changes, message):
    with transaction(enrolled["db"]) as conn:
        with pytest.raises(ValidationError, match=message):
            ci.edit_contact(conn, enrolled["ids"]["+16025550199"], changes, LATER)


def test_edit_contact_names_every_bad_value_at_once_and_changes_nothing(enrolled):
    ann = enrolled["ids"]["+16025550199"]
    with transaction(enrolled["db"]) as conn:
        before = conn.execute("select * from contacts where contact_id = ?", [ann]).fetchone()
        with pytest.raises(UserError) as refused:
            ci.edit_contact(conn, ann, {"name": "Ann B", "email": "nope", "phone": "12345"}, LATER)
        assert conn.execute("select * from contacts where contact_id = ?", [ann]).fetchone() == before
    assert str(refused.value) == "email: not a valid e-mail address; phone: '12345': too short"


def test_edit_missing_contact(enrolled):
    with transaction(enrolled["db"]) as conn:
        with pytest.raises(NotFoundError):
            ci.edit_contact(conn, 999, {"name": "x"}, LATER)


def test_export_has_every_field_and_property_and_neutralises_formulas(enrolled, tmp_path):
    out = tmp_path / "contacts.xlsx"
    with connect(enrolled["db"]) as conn:
        ci.export_contacts(conn, enrolled["campaign_id"], out)
    sheet = pl.read_excel(out)
    assert sheet.columns == ["Contact ID", "Phone Number", "Name", "Company", "Email", "plan", "Attempts", "Connected",
                             "Successful", "Credits", "Duration (s)", "Last Disconnection", "Last Call Date",
                             "Created At"]
    assert sheet.select("Name", "Company", "plan").rows() == [("Ann", "'=HYPERLINK(\"x\")", "Gold"), ("Bob", "Beta", None)]


def test_properties_json_keeps_only_non_empty_values_and_escapes_text():
    frame = pl.DataFrame({"custom:plan": ["Pro", None, 'say "null"'], "custom:city": [None, None, "null"]})
    assert ci.properties_json(frame).to_list() == ['{"plan":"Pro"}', "{}", '{"plan":"say \\"null\\"","city":"null"}']


def test_a_file_repeating_a_subset_of_properties_changes_nothing(campaign_db):
    # Merging reorders JSON keys; the change test compares values key by key, so no spurious update.
    cid = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        write(conn, "Phone,Plan,City,Tier\n6025550199,Gold,Mesa,A\n", cid)
    before = _contacts(campaign_db["db"])
    with transaction(campaign_db["db"]) as conn:
        assert write(conn, "Phone,Plan\n6025550199,Gold\n", cid, LATER) == (0, 0, 0)
    assert _contacts(campaign_db["db"]) == before


def test_a_file_with_its_own_row_column_keeps_it_as_a_property():
    merged, report, _ = prepare("Row,Phone\n7,6025550199\n8,123\n")
    assert merged.select("row", "custom:row").rows() == [(2, "7")]
    assert report["row"].to_list() == [3]


def test_a_contact_enrolled_again_gets_back_its_calls_limits_and_key_numbering(enrolled, monkeypatch, tmp_path):
    # Removing a contact that was called and importing it again used to start it over: its attempt keys restarted
    # at 1 (the next claim hit the unique key of its first call and failed the campaign's tick), and its attempts,
    # its day's attempts and its call in flight were forgotten (it could be called again at once).
    from flows.enrich_calls import run_enrichment
    from tasks.clock import VirtualClock
    from tasks.dialing import run_tick
    from tasks.telephony.simulator import SimulatedProvider
    from tests.factories import open_the_us_rule_all_day

    monkeypatch.setenv("CAMPAIGNS_DIAL_PACE_SECONDS", "0")
    db, campaign_id, ann = enrolled["db"], enrolled["campaign_id"], enrolled["ids"]["+16025550199"]
    open_the_us_rule_all_day(db)
    with transaction(db) as conn:
        conn.execute("update campaigns set active = true, start_date = date '2026-04-01', max_attempts = 5,"
                     " calling_days = ['mon','tue','wed','thu','fri','sat','sun'] where campaign_id = ?", [campaign_id])
    provider = SimulatedProvider(tmp_path / "sim.sqlite", seed=1)
    monday = datetime(2026, 4, 27, 17, 0, tzinfo=UTC)
    assert run_tick(db, provider, VirtualClock(monday)).placed == 2
    with transaction(db) as conn:
        first = conn.execute("select call_id from calls where contact_id = ?", [ann]).fetchone()[0]
        ci.remove_contact_from_campaign(conn, campaign_id, ann)
        write(conn, "Phone,Name\n6025550199,Ann\n", campaign_id, monday + timedelta(minutes=1))
        assert conn.execute(
            "select call_seq, attempts, attempts_day, attempts_on_day, last_call_at, in_flight_call_id, finished_at"
            " from campaign_contacts where contact_id = ?", [ann]).fetchone() == (1, 1, date(2026, 4, 27), 1, monday,
                                                                              first, None)
    # its first call still ringing, and its one attempt of the day made: nobody is called the same day
    assert run_tick(db, provider, VirtualClock(monday + timedelta(minutes=2))).placed == 0
    run_enrichment(db, provider, monday + timedelta(hours=2))
    with connect(db) as conn:
        finished = conn.execute("select finished_at from campaign_contacts where contact_id = ?", [ann]).fetchone()[0]
    run_tick(db, provider, VirtualClock(monday + timedelta(days=2)))  # past any retry time the policy set
    with connect(db) as conn:
        keys = [r[0] for r in conn.execute("select attempt_key from calls where contact_id = ? order by call_id", [ann]).fetchall()]
    # a later day, a new key after the first (unless the first call finished her: then no call)
    assert keys == [f"{campaign_id}.{ann}.1"] + ([] if finished else [f"{campaign_id}.{ann}.2"])
