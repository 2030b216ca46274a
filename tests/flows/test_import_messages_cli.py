"""`campaigns import` refusing a file or a --report in one line that says which sheet was read, stays short
for a wide or binary file, and treats a header over blank lines as a header alone (see test_cli_input_errors)."""

from __future__ import annotations

import codecs
import shutil
from pathlib import Path

import pytest

from tests.flows.cli_run import run
from tests.flows.test_cli_input_errors import refused, write, write_xlsx

PREFECT = pytest.mark.parametrize("prefect", [[], ["--prefect"]], ids=["plain", "prefect"])


def write_book(path: Path, sheets: dict[str, list[list[str]]]) -> Path:
    """A workbook of these sheets, in this order (a sheet of no rows is left empty)."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path))
    for name, rows in sheets.items():
        sheet = workbook.add_worksheet(name)
        for number, row in enumerate(rows):
            sheet.write_row(number, 0, row)
    workbook.close()
    return path


LEADS = [["Phone", "Name"], ["+16025550101", "Ann"]]


def import_(capsys, campaign_db, *args: str) -> str:
    return refused(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), *args)


# ------------------------------------------------------------------ the sheet read


@PREFECT
@pytest.mark.parametrize("first, problem", [
    ([], "is empty"),
    ([["Total", "Count"], ["12", "3"]], "has no column that maps to contact_phone (columns: Total, Count)"),
    ([["Phone", "Name"]], "has a header row but no data rows"),
    ([["Phone", "Name"], [], [""]], "has a header row but no data rows"),
], ids=["empty", "summary", "header-only", "header-over-blanks"])
def test_an_xlsx_error_on_the_first_sheet_names_it_and_the_others(campaign_db, capsys, tmp_path, first, problem,
                                                                 prefect):
    # "book.xlsx: the sheet is empty" / "no column maps to contact_phone (columns: Total, Count); name it with
    # --map": nothing said the first sheet was read, nor that the contacts were on the next one
    book = write_book(tmp_path / "book.xlsx", {"Summary": first, "Leads": LEADS, "Notes": []})
    message = import_(capsys, campaign_db, str(book), *prefect)
    assert message.startswith(f'book.xlsx: sheet "Summary" (the first) {problem}; '
                              'the workbook also has sheets "Leads", "Notes": choose one with --sheet'), message


def test_one_other_sheet_is_named_as_one(campaign_db, capsys, tmp_path):
    book = write_book(tmp_path / "book.xlsx", {"Summary": [], "Leads": LEADS})
    assert import_(capsys, campaign_db, str(book)) == (
        'book.xlsx: sheet "Summary" (the first) is empty; the workbook also has sheet "Leads": choose one with --sheet')


def test_the_sheet_named_with_sheet_imports(campaign_db, capsys, tmp_path):
    book = write_book(tmp_path / "book.xlsx", {"Summary": [["Total"], ["1"]], "Leads": LEADS})
    code, out, err = run(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(book),
                         "--sheet", "Leads")
    assert (code, err) == (0, ""), err
    assert "rows 1, imported 1" in out


def test_a_workbook_of_one_sheet_keeps_its_messages(campaign_db, capsys, tmp_path):
    book = write_xlsx(tmp_path / "one.xlsx", [["Total", "Count"], ["12", "3"]])
    assert import_(capsys, campaign_db, str(book)).startswith(
        "one.xlsx: no column maps to contact_phone (columns: Total, Count); name it with --map")
    header = write_xlsx(tmp_path / "header.xlsx", [["Phone", "Name"]])
    assert import_(capsys, campaign_db, str(header)) == "header.xlsx: the file has a header row but no data rows"


# ------------------------------------------------------------------ a header over blank lines


@PREFECT
@pytest.mark.parametrize("text", ["Name,Phone\n", "Name,Phone\n\n\n", "Name,Phone\r\n\r\n", "Name,Phone\n,\n  ,  \n",
                                  "\n\nName;Phone\n\n"])
def test_a_header_over_blank_lines_is_a_header_alone(campaign_db, capsys, tmp_path, text, prefect):
    # "Name,Phone" and two blank lines imported "rows 0", exit 0; the header alone was refused
    contacts = tmp_path / "header.csv"
    contacts.write_bytes(text.encode())
    assert import_(capsys, campaign_db, str(contacts), *prefect) == (
        "header.csv: the file has a header row but no data rows")


# ------------------------------------------------------------------ short lines


@PREFECT
def test_a_binary_file_named_csv_is_not_text(campaign_db, capsys, tmp_path, prefect):
    # /bin/ls as x.csv: "no column maps to contact_phone (columns: \x7fELF…)", about 3 KB of one line
    contacts = tmp_path / "x.csv"
    shutil.copyfile("/bin/ls", contacts)
    message = import_(capsys, campaign_db, str(contacts), *prefect)
    assert message.startswith("x.csv: not a text (CSV) file") and len(message) < 120, message


def test_a_file_of_control_characters_is_not_text(campaign_db, capsys, tmp_path):
    contacts = tmp_path / "x.csv"
    contacts.write_bytes(bytes(range(1, 32)) * 8 + b"\n")
    assert import_(capsys, campaign_db, str(contacts)).startswith("x.csv: not a text (CSV) file")


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b""), ("utf-16-be", b""), ("utf-16-le", codecs.BOM_UTF16_LE),
                                           ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-8", codecs.BOM_UTF8)])
def test_utf16_files_still_import(campaign_db, capsys, tmp_path, encoding, bom):
    contacts = tmp_path / "u.csv"
    contacts.write_bytes(bom + "Phone,Name\n+16025550101,José\n".encode(encoding))
    code, out, err = run(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(contacts))
    assert (code, err) == (0, ""), err
    assert "rows 1, imported 1" in out


def test_a_wide_file_without_a_phone_lists_a_dozen_columns(campaign_db, capsys, tmp_path):
    # a 200-column CSV without a phone column: all 200 headers on the one line (about 10 KB)
    headers = [f"Field number {n} of the export" for n in range(1, 201)]
    contacts = write(tmp_path / "wide.csv", ",".join(headers) + "\n" + ",".join("x" * 200) + "\n")
    message = import_(capsys, campaign_db, str(contacts))
    listed = ", ".join(headers[:12])
    assert message == (f"wide.csv: no column maps to contact_phone (columns: {listed}, … and 188 more); "
                       "name it with --map 'COLUMN=contact_phone'")


def test_a_long_header_is_cut(campaign_db, capsys, tmp_path):
    contacts = write(tmp_path / "long.csv", "A" * 5000 + ",Name\nx,y\n")
    message = import_(capsys, campaign_db, str(contacts))
    assert message.startswith("long.csv: no column maps to contact_phone (columns: AAAA"), message
    assert len(message) < 200, message
    assert "…, Name)" in message


def test_a_map_of_a_missing_column_lists_a_dozen_columns(campaign_db, capsys, tmp_path):
    headers = [f"c{n}" for n in range(1, 31)]
    contacts = write(tmp_path / "wide.csv", ",".join(headers) + "\n" + ",".join("x" * 30) + "\n")
    message = import_(capsys, campaign_db, str(contacts), "--map", "Mobile=contact_phone")
    assert message == f"--map: column 'Mobile' is not in wide.csv (columns: {', '.join(headers[:12])}, … and 18 more)"


# ------------------------------------------------------------------ --report


@PREFECT
def test_a_report_in_a_missing_folder_is_refused(campaign_db, capsys, tmp_path, prefect):
    # `--report /nonexist/r.csv` created /nonexist (and every folder above it that was missing)
    contacts = write(tmp_path / "good.csv", "Phone,Name\n+16025550101,Ann\nnot a phone,Bob\n")
    report = tmp_path / "missing" / "deeper" / "r.csv"
    message = import_(capsys, campaign_db, str(contacts), "--report", str(report), *prefect)
    assert message == f"--report {report}: folder {report.parent} does not exist"
    assert not (tmp_path / "missing").exists()


@PREFECT
@pytest.mark.parametrize("name", ["campaign.yaml", "notes.txt", "report"])
def test_a_report_not_named_csv_is_refused(campaign_db, capsys, tmp_path, name, prefect):
    # `--report campaign.yaml` replaced the YAML with the report's CSV
    contacts = write(tmp_path / "good.csv", "Phone,Name\n+16025550101,Ann\nnot a phone,Bob\n")
    report = write(tmp_path / name, "name: keep me\n")
    message = import_(capsys, campaign_db, str(contacts), "--report", str(report), *prefect)
    assert message == f"--report {report}: must end in .csv"
    assert report.read_text() == "name: keep me\n"


def test_a_report_named_in_capitals_is_written(campaign_db, capsys, tmp_path):
    contacts = write(tmp_path / "good.csv", "Phone,Name\n+16025550101,Ann\nnot a phone,Bob\n")
    report = tmp_path / "REJECTED.CSV"
    code, _out, err = run(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(contacts),
                          "--report", str(report))
    assert (code, err) == (0, "")
    assert report.read_text().splitlines()[0] == "row,column,value,reason,outcome"


def test_a_bad_report_is_refused_before_the_file_is_read(campaign_db, capsys, tmp_path):
    # the plain import checked --report only once the whole file was read, normalised and validated
    contacts = write(tmp_path / "people.csv", "Foo,Bar\na,b\n")
    report = tmp_path / "gone" / "r.csv"
    assert import_(capsys, campaign_db, str(contacts), "--report", str(report)) == (
        f"--report {report}: folder {report.parent} does not exist")
