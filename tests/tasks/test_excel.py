"""Excel output neutralises formula-like text and continues on new sheets when one is full."""

from __future__ import annotations

import zipfile
from datetime import datetime, timezone

import duckdb
import openpyxl
import polars as pl
import pytest

from tasks.excel import copy_query_to_xlsx, neutralise_formulas, write_xlsx, xlsx_text_macro
from tasks.store import connect


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+33 1 23 45 67 89", "+33 1 23 45 67 89"),  # a phone number only computes a number: kept as typed
        ("+16025550100", "+16025550100"),
        ("+SUM(A1:A9)", "'+SUM(A1:A9)"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("plain", "plain"),  # ordinary text is untouched
        ("a=b", "a=b"),  # only a leading sign is dangerous
        (None, None),
    ],
)
def test_neutralise_formulas(text, expected):
    df = pl.DataFrame({"t": [text], "n": [1]}, schema={"t": pl.String, "n": pl.Int64})
    assert neutralise_formulas(df)["t"][0] == expected


def test_write_xlsx_splits_sheets_and_keeps_types(tmp_path):
    df = pl.DataFrame(
        {
            "name": ["=HYPERLINK(\"x\")", "Bob", "Cy", "Di", "Ed"],
            "n": [1, 2, 3, 4, 5],
            "at": [datetime(2026, 1, 1, 9, 30, tzinfo=timezone.utc)] * 5,
        }
    )
    path = tmp_path / "out.xlsx"
    assert write_xlsx(df, path, sheet_name="Calls", max_rows_per_sheet=2) == 5
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["Calls", "Calls 2", "Calls 3"]
    first = list(book["Calls"].iter_rows(values_only=True))
    assert first[0] == ("name", "n", "at")
    assert first[1][0] == "'=HYPERLINK(\"x\")"  # stored as text, not a formula
    assert first[1][2] == datetime(2026, 1, 1, 9, 30)
    assert [r[1] for r in book["Calls 3"].iter_rows(min_row=2, values_only=True)] == [5]


def test_write_xlsx_keeps_the_last_good_file_when_writing_fails(tmp_path):
    # a failure mid-way (here a frame that cannot be written) leaves the previous file whole, and no
    # half-written workbook or work file beside it
    path = tmp_path / "contacts.xlsx"
    write_xlsx(pl.DataFrame({"n": [1, 2]}), path)
    before = path.read_bytes()

    def frames():
        yield pl.DataFrame({"n": [3]})
        raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError, match="went away"):
        write_xlsx(frames(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["contacts.xlsx"]


# --- copy_query_to_xlsx: DuckDB writes the sheet XML -------------------------------------------

TYPED_QUERY = """
    select 1::bigint as n, 2.5::double as ratio, 'nan'::double as not_a_number, true as yes, null::boolean as unknown,
           timestamp '2026-05-01 20:00:00' as at, date '2026-05-01' as day,
           'a & <b> _x0041_' || chr(13) || 'x' || chr(1) as text, '' as empty, null::varchar as missing,
           [1, 2] as list, 'é中😀' as unicode, repeat('y', 40000) as long_text
"""


def test_copy_query_to_xlsx_keeps_cell_types(db, tmp_path):
    out = tmp_path / "typed.xlsx"
    with connect(db) as conn:
        assert copy_query_to_xlsx(conn, TYPED_QUERY, None, out, sheet_name="Typed") == 1
    rows = list(openpyxl.load_workbook(out)["Typed"].iter_rows(values_only=True))
    assert rows[0][:3] == ("n", "ratio", "not_a_number")
    row = dict(zip(rows[0], rows[1]))
    assert (row["n"], row["ratio"], row["not_a_number"]) == (1, 2.5, None)  # NaN has no cell value
    assert (row["yes"], row["unknown"]) == (True, None)
    assert (row["at"], row["day"]) == (datetime(2026, 5, 1, 20, 0), datetime(2026, 5, 1))  # real dates
    # markup is escaped, a control character XML cannot hold is dropped, CR kept; openpyxl does not undo
    # Excel's _xHHHH_ escaping (Excel and calamine do: see the next test)
    assert row["text"] == "a & <b> _x005F_x0041_\rx"
    assert (row["empty"], row["missing"], row["list"], row["unicode"]) == ("", None, "[1, 2]", "é中😀")
    assert len(row["long_text"]) == 32_767  # Excel's cell limit


def test_copy_query_to_xlsx_reads_back_with_calamine(db, tmp_path):
    out = tmp_path / "typed.xlsx"
    with connect(db) as conn:
        copy_query_to_xlsx(conn, TYPED_QUERY, None, out)
    row = pl.read_excel(out, sheet_name="Sheet").row(0, named=True)
    assert (row["n"], row["ratio"], row["yes"]) == (1, 2.5, True)
    assert row["at"] == datetime(2026, 5, 1, 20, 0)
    assert row["text"] == "a & <b> _x0041_\rx"  # the literal text, not the character A


def test_copy_query_to_xlsx_splits_sheets_binds_values_and_leaves_no_work_file(db, tmp_path):
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "ids.xlsx"
    with connect(db) as conn:
        query = "select i as id, 'row ' || i as label from range(?) t(i)"
        assert copy_query_to_xlsx(conn, query, [5], out, order_by="id desc", sheet_name="Ids",
                                  max_rows_per_sheet=2) == 5
        book = openpyxl.load_workbook(out, read_only=True)
        assert book.sheetnames == ["Ids", "Ids 2", "Ids 3"]
        assert [[r[0] for r in book[s].iter_rows(values_only=True)] for s in book.sheetnames] == [
            ["id", 4, 3], ["id", 2, 1], ["id", 0]]
        # no rows: one sheet with the header
        assert copy_query_to_xlsx(conn, query, [0], out, sheet_name="Ids") == 0
        assert list(openpyxl.load_workbook(out)["Ids"].iter_rows(values_only=True)) == [("id", "label")]
        # a failing query leaves the previous file and no work file
        with pytest.raises(duckdb.Error):
            copy_query_to_xlsx(conn, "select 1 / 0 as x, error('boom') as y", None, out)
    assert [p.name for p in out.parent.iterdir()] == ["ids.xlsx"]
    assert openpyxl.load_workbook(out).sheetnames == ["Ids"]


def test_copy_query_to_xlsx_hostile_header_and_sheet_name(db, tmp_path):
    out = tmp_path / "hostile.xlsx"
    header = 'x"</t><f>1+1</f>\x00'
    with connect(db) as conn:
        copy_query_to_xlsx(conn, 'select 1 as "' + header.replace('"', '""').replace("\x00", "\ufffd") + '"', None,
                           out, sheet_name="<Calls>")
    with zipfile.ZipFile(out) as book:
        assert "<f>" not in book.read("xl/worksheets/sheet1.xml").decode()  # text, never a formula
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["<Calls>"]
    assert next(book["<Calls>"].iter_rows(values_only=True)) == ('x"</t><f>1+1</f>\ufffd',)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+33 1 23 45 67 89", "+33 1 23 45 67 89"),  # a phone number is kept as typed
        ("-5", "'-5"),
        ("\x01=x", "'=x"),  # the control character goes first, then the formula is seen
        ("ok\x01 1", "ok 1"),
        ("plain text", "plain text"),  # ordinary text passes untouched
        (None, None),
    ],
)
def test_xlsx_text_macro(db, text, expected):
    with connect(db) as conn:
        xlsx_text_macro(conn)
        assert conn.execute("select xlsx_text(?::varchar)", [text]).fetchone()[0] == expected


@pytest.mark.parametrize(
    "text",
    ["a<b", "x & y", "1 > 0", "R&D <team>", "_x0041_ and _x", "line\r\nnext", "tab\there", "plain", "ümlaut 中文",
     "&" + "z" * 40_000],
)
def test_copy_query_to_xlsx_text_round_trips(db, tmp_path, text):
    # what a reader shows is the text itself (escaping only where XML or Excel would change it)
    out = tmp_path / "text.xlsx"
    with connect(db) as conn:
        copy_query_to_xlsx(conn, "select ?::varchar as t", [text], out)
    frame = pl.read_excel(out, schema_overrides={"t": pl.String})
    assert frame["t"][0] == text[:32_767]


@pytest.mark.parametrize(("batch_rows", "per_sheet"), [(2, 3), (3, 3), (5, 2), (1, 1)])
def test_sheets_split_across_arrow_batches(db, tmp_path, monkeypatch, batch_rows, per_sheet):
    # sheet boundaries inside a batch, on a batch edge, and one row per sheet all keep every row once, in order
    monkeypatch.setattr("tasks.excel._BATCH_ROWS", batch_rows)
    out = tmp_path / "split.xlsx"
    with connect(db) as conn:
        assert copy_query_to_xlsx(conn, "select i from range(7) t(i)", None, out, order_by="i",
                                  max_rows_per_sheet=per_sheet) == 7
    book = openpyxl.load_workbook(out, read_only=True)
    values = [[r[0] for r in book[name].iter_rows(min_row=2, values_only=True)] for name in book.sheetnames]
    assert [v for sheet in values for v in sheet] == list(range(7))
    assert [len(sheet) for sheet in values] == [min(per_sheet, 7 - i) for i in range(0, 7, per_sheet)]


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("😀" * 20_000, "😀" * 16_383),  # 40,000 units in 20,000 characters: Excel counts each emoji twice
        ("a" * 32_765 + "😀" + "b", "a" * 32_765 + "😀"),  # the emoji fills units 32,766 and 32,767
        ("a" * 32_766 + "😀" + "b", "a" * 32_766),  # an emoji over the limit by one unit goes whole
        ("&<" + "中" * 40_000, "&<" + "中" * 32_765),  # three UTF-8 bytes, one unit: escaping counts nothing
        ("😀" * 8_000, "😀" * 8_000),  # 32,000 bytes, 16,000 units: whole
    ],
)
def test_long_text_is_cut_at_excels_limit_counted_in_utf16_units(db, tmp_path, text, kept):
    # Excel counts a cell's 32,767 characters in UTF-16 units and reports a longer cell as a problem with
    # the file's content; cutting at 32,767 code points left a cell of 20,000 emoji at 40,000 units
    out = tmp_path / "long.xlsx"
    with connect(db) as conn:
        copy_query_to_xlsx(conn, "select ?::varchar as t", [text], out)
    value = openpyxl.load_workbook(out)["Sheet"]["A2"].value
    assert _utf16_units(value) <= 32_767
    assert value == kept
