"""Contact files as spreadsheets really write them: Excel's "sep=" line, phones with a label, UTF-16
without a byte-order mark, and records with more fields than the header."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from flows.import_contacts import run_import
from tasks import contacts_import as ci
from tasks.errors import UserError
from tasks.phones import normalise_phone, normalise_phones
from tasks.store import connect

SAMPLE = "Name,Phone,Email\nJosé Muñoz,(602) 555-0199,jose@example.com\nAnn,480-555-0123,\n"


def report_of(data: bytes, region: str | None = "US") -> tuple[pl.DataFrame, list[dict]]:
    """(valid rows, report lines) of CSV bytes, as the import computes them."""
    frame = ci.read_csv_bytes(data, Path("t.csv"))
    mapping = ci.resolve_mapping(frame.columns)
    valid, report, _warnings = ci.validate(ci.normalise(ci.apply_mapping(frame, mapping), region, workers=1), mapping)
    return valid, report.to_dicts()


def stored_phones(db) -> list[str]:
    with connect(db) as conn:
        return [r[0] for r in conn.execute("select phone_e164 from contacts order by phone_e164").fetchall()]


# ---------------------------------------------------------------- Excel's "sep=" line


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"])
def test_a_sep_line_names_the_delimiter_and_rows_keep_the_files_numbers(delimiter):
    # the "sep=;" line was read as the header: "no column maps to contact_phone (columns: sep=, column_2)"
    text = f"sep={delimiter}\r\nName{delimiter}Phone\r\nAnn{delimiter}6025550199\r\nBob{delimiter}123\r\n"
    frame = ci.read_csv_bytes(text.encode(), Path("t.csv"))
    assert frame.columns == ["Name", "Phone"]
    valid, report = report_of(text.encode())
    assert valid["row"].to_list() == [3]  # the header is line 2 of the file, Ann line 3
    assert report == [{"row": 4, "column": "Phone", "value": "123", "reason": "too short"}]


def test_a_sep_line_wins_over_the_delimiter_the_header_suggests():
    # the header holds more commas than semicolons, but Excel was told ";"
    frame = ci.read_csv_bytes(b"sep=;\n\"Name, full\";Phone, mobile\nAnn, Lee;6025550199\n", Path("t.csv"))
    assert frame.columns == ["Name, full", "Phone, mobile"]
    assert frame.rows() == [(None, None), ("Ann, Lee", "6025550199")]  # the sep line: a blank record


def test_after_a_sep_line_errors_name_the_files_own_rows(tmp_path):
    with pytest.raises(UserError, match=r"^q.csv: row 4: a field opens with a quote"):
        ci.read_csv_bytes(b'sep=;\nPhone;Name\n6025550199;Ann\n4805550123;"Bob\n', Path("q.csv"))
    big = b"sep=;\nPhone;Name\n6025550199;Ann\n4805550123;" + b"B" * (ci.MAX_CELL_CHARS + 1) + b"\n"
    with pytest.raises(UserError, match=r"^t.csv: row 4, column 2: a cell of 10,001 characters"):
        ci.read_csv_bytes(big, Path("t.csv"))
    with pytest.raises(UserError, match=r"^t.csv: the file is empty \(a sep=; line and no header row\)$"):
        ci.read_csv_bytes(b"sep=;\r\n", Path("t.csv"))


def test_a_sep_line_in_a_utf16_excel_export_and_a_dnc_file(tmp_path, campaign_db):
    from tasks.compliance import read_dnc_rows

    path = tmp_path / "excel.csv"
    path.write_bytes("sep=\t\r\nPhone\tName\r\n6025550199\tJosé\r\n\t\r\nnot a phone\tBob\r\n".encode("utf-16"))
    result = run_import(campaign_db["campaign_id"], path, db=campaign_db["db"])
    assert (result.rows, result.imported, result.invalid) == (2, 1, 1)
    assert result.rejected == [{"row": 5, "column": "Phone", "value": "not a phone", "reason": "not a phone number"}]
    numbers = tmp_path / "dnc.csv"
    numbers.write_text("sep=,\nPhone\n+16025550111\n", encoding="utf-8")
    assert read_dnc_rows(numbers) == [(3, "Phone", "+16025550111")]


def test_a_sep_like_header_cell_is_not_a_hint():
    # only a first line that is exactly "sep=X" (X one of , ; tab |) names the delimiter
    frame = ci.read_csv_bytes(b"sep=a,Phone\nx,6025550199\n", Path("t.csv"))
    assert frame.columns == ["sep=a", "Phone"]


# ---------------------------------------------------------------- phones with a label


@pytest.mark.parametrize("raw, e164", [
    ("602-555-0199 (home)", "+16025550199"),
    ("+1 602 555 0199 (cell)", "+16025550199"),
    ("(602) 555-0199 (Cell Phone)", "+16025550199"),
    ("+44 20 7946 0958 (office)", "+442079460958"),
    ("Mobile: 602 555 0199 (work)", "+16025550199"),
    ("6025550199(móvil)", "+16025550199"),
    ("1-800-FLOWERS (work)", "+18003569377"),  # a vanity number with a label: the label goes, the letters stay
])
def test_a_label_beside_a_number_is_not_read_as_keypad_digits(raw, e164):
    # the label's letters were read as keypad digits: "too long"
    assert normalise_phone(raw, "US")[0] == e164
    frame = normalise_phones(pl.Series([raw, "602-555-0199"]), "US", workers=1)
    assert frame.filter(pl.col("phone_raw") == raw).select("phone_e164", "phone_error").row(0) == (e164, None)


@pytest.mark.parametrize("raw, e164, reason", [
    ("1-800-FLOWERS", "+18003569377", None),  # vanity numbers keep their letters' digits, as before
    ("1 800 (FLOWERS)", "+18003569377", None),  # letters in parentheses that are the number itself
    ("Mobile: 602 555 0199", "+16025550199", None),  # a leading label: as before
    ("call me", None, "not a phone number"),
    ("call me (home)", None, "not a phone number"),
    ("(home)", None, "not a phone number"),
    ("mobile:", None, "not a phone number"),
    ("602 555 0199 home", None, "too long"),  # a bare trailing word may be vanity letters: left to phonenumbers
    ("602-555-0199 (ext 4)", "+16025550199", None),  # an extension, not a label
])
def test_vanity_numbers_and_garbage_are_read_as_before(raw, e164, reason):
    assert normalise_phone(raw, "US")[0::4] == (e164, reason)


def test_a_labelled_number_that_is_still_wrong_says_why_without_the_label():
    # "602-555-019" is a digit short: the label's letters made it "too long"
    assert normalise_phone("602-555-019 (home)", "US")[4] == "too short"


def test_labelled_phones_import_and_merge_with_the_same_number(campaign_db, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text('Phone,Name\n602-555-0199 (home),Ann\n"+1 480 555 0123 (cell)",Bob\n(602) 555-0199,Ann Lee\n')
    result = run_import(campaign_db["campaign_id"], path, db=campaign_db["db"])
    assert (result.imported, result.duplicates_merged, result.invalid) == (2, 1, 0)
    assert stored_phones(campaign_db["db"]) == ["+14805550123", "+16025550199"]


# ---------------------------------------------------------------- UTF-16 without a byte-order mark


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_detected(encoding):
    # the text was read as UTF-8 full of NUL characters
    frame = ci.read_csv_bytes(SAMPLE.encode(encoding), Path("t.csv"))
    assert frame.columns == ["Name", "Phone", "Email"]
    assert frame["Name"].to_list() == ["José Muñoz", "Ann"]
    assert ci.decode_bytes(SAMPLE.encode(encoding))[1] == encoding


def test_mostly_non_latin_utf16_without_a_mark_is_detected():
    text = "Имя,Телефон\nАнна Петрова,+16025550199\nБорис,+16025550198\n"
    frame = ci.read_csv_bytes(text.encode("utf-16-le"), Path("t.csv"))
    assert frame.rows() == [("Анна Петрова", "+16025550199"), ("Борис", "+16025550198")]


@pytest.mark.parametrize("text", [SAMPLE, "Name,Phone\nÅsa,6025550199\n", "a"])
def test_text_that_is_not_utf16_is_decoded_as_before(text):
    for encoding in ("utf-8", "cp1252"):
        assert ci.bare_utf16(text.encode(encoding)) is None


def test_broken_utf16_without_a_mark_is_one_clear_line():
    data = SAMPLE.encode("utf-16-le") + b"\x00\xd8"  # ends in half of a surrogate pair
    with pytest.raises(UserError) as error:
        ci.read_csv_bytes(data, Path("t.csv"))
    assert str(error.value) == (f"t.csv: reads as utf-16-le without a byte-order mark but byte {len(data) - 2} "
                                "is not valid utf-16-le; save the file as UTF-8")


# ---------------------------------------------------------------- more fields than the header


def test_a_record_with_extra_fields_is_rejected_naming_its_row_and_field_count():
    # an unquoted comma in a name shifted the row and the extra field was dropped without notice
    data = b"Name,Phone,Email\nLee, Ann,6025550199,ann@example.com\nBob,4805550123,bob@example.com\n"
    valid, report = report_of(data)
    assert valid["row"].to_list() == [3]
    assert report[0] == {
        "row": 2, "column": "field 4", "value": "ann@example.com",
        "reason": "row 2 has 4 fields but the header has 3: put quotes around a value that holds a comma",
    }
    assert {line["row"] for line in report} == {2}  # its shifted fields may be reported too, on the same row


def test_empty_trailing_fields_are_accepted():
    data = b"Name,Phone,Email\nAnn,6025550199,,,,\nBob,4805550123,bob@example.com,\t,\nCy,6025550198\n"
    valid, report = report_of(data)
    assert report == []
    assert valid["row"].to_list() == [2, 3, 4]
    assert ci.read_csv_bytes(data, Path("t.csv")).columns == ["Name", "Phone", "Email"]


def test_extra_fields_are_counted_in_any_delimiter_and_past_empty_ones():
    data = "Name;Phone\nAnn;6025550199;;x;\nBob;;;;;;\n;;;late\n".encode()
    _, report = report_of(data)
    extra = [line for line in report if line["column"].startswith("field")]
    assert extra == [
        {"row": 2, "column": "fields 3-4", "value": ";x",
         "reason": "row 2 has 4 fields but the header has 2: put quotes around a value that holds a semicolon"},
        # a record whose only content is past the header is reported, not skipped as blank
        {"row": 4, "column": "fields 3-4", "value": ";late",
         "reason": "row 4 has 4 fields but the header has 2: put quotes around a value that holds a semicolon"},
    ]


def test_a_very_wide_record_is_rejected_without_reading_every_field():
    data = b"Name,Phone\nAnn,6025550199" + b",x" * 500 + b"\nBob,4805550123\n"
    frame = ci.read_csv_bytes(data, Path("t.csv"))
    rejects = ci.extra_field_rejects(frame)
    assert rejects["row"].to_list() == [2]
    assert rejects["reason"][0].startswith(f"row 2 has at least {2 + ci.MAX_EXTRA_FIELDS} fields but the header has 2")


def test_a_blank_first_line_keeps_every_column():
    # Polars took the width from the blank first line: every column but the first was dropped
    frame = ci.read_csv_bytes(b"\nPhone,Name,Email\n6025550199,Ann,a@example.com\n", Path("t.csv"))
    assert frame.columns == ["Phone", "Name", "Email"]
    assert frame.rows() == [(None, None, None), ("6025550199", "Ann", "a@example.com")]


def test_an_import_with_extra_fields_writes_the_other_rows_and_reports_it(campaign_db, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("Phone,Name\n6025550199,Lee, Ann\n4805550123,Bob,,\n")
    report = tmp_path / "rejected.csv"
    result = run_import(campaign_db["campaign_id"], path, db=campaign_db["db"], report_path=report)
    assert (result.rows, result.imported, result.enrolled, result.invalid) == (2, 1, 1, 1)
    reason = "row 2 has 3 fields but the header has 2: put quotes around a value that holds a comma"
    assert result.rejected == [{"row": 2, "column": "field 3", "value": "Ann", "reason": reason}]
    assert pl.read_csv(report, infer_schema=False).rows() == [("2", "field 3", "Ann", reason, "rejected")]
    assert stored_phones(campaign_db["db"]) == ["+14805550123"]


@pytest.mark.prefect
def test_the_prefect_flow_reports_extra_fields_too(prefect_harness, capsys, campaign_db, tmp_path):
    from tests.flows.cli_run import run as cli

    path = tmp_path / "ragged.csv"
    path.write_text("Phone,Name\n6025550199,Lee, Ann\n4805550123,Bob\n")
    code, out, err = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path),
                         "--prefect", "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert (data["imported"], data["invalid"]) == (1, 1)
    assert [(r["row"], r["column"]) for r in data["rejected"]] == [(2, "field 3")]
