"""Excel output neutralises formula-like text and continues on new sheets when one is full."""

from __future__ import annotations

from datetime import datetime, timezone

import openpyxl
import polars as pl
import pytest

from tasks.excel import neutralise_formulas, write_xlsx


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
