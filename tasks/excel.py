"""Excel output: formula neutralising and a streaming multi-sheet xlsx writer."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

# Spreadsheets run text that starts with these as a formula (CSV/formula injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# One sheet holds 1,048,576 rows; one is the header.
MAX_DATA_ROWS_PER_SHEET = 1_048_575


def neutralise_formulas(df: pl.DataFrame) -> pl.DataFrame:
    """Prefix a quote to every text cell that a spreadsheet would run as a formula."""
    pattern = "^[" + "".join("\\t" if p == "\t" else "\\r" if p == "\r" else "\\" + p for p in FORMULA_PREFIXES) + "]"
    return df.with_columns(
        pl.when(pl.col(name).str.contains(pattern)).then(pl.lit("'") + pl.col(name)).otherwise(pl.col(name)).alias(name)
        for name, dtype in df.schema.items()
        if dtype == pl.String
    )


def _excel_ready(df: pl.DataFrame) -> pl.DataFrame:
    """Types xlsx can hold: naive datetimes, text for nested values."""
    columns = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            columns.append(pl.col(name).dt.replace_time_zone(None))
        elif isinstance(dtype, (pl.List, pl.Struct, pl.Array, pl.Object)):
            columns.append(pl.col(name).map_elements(str, return_dtype=pl.String))
    return df.with_columns(columns) if columns else df


def write_xlsx(
    data: pl.DataFrame | Iterable[pl.DataFrame],
    path: str | Path,
    sheet_name: str = "Sheet",
    max_rows_per_sheet: int = MAX_DATA_ROWS_PER_SHEET,
) -> int:
    """Write frames (all with the same columns) to one xlsx, continuing on new sheets when full.

    Text is neutralised against formula injection. Returns the number of data rows written.
    """
    import xlsxwriter

    frames = [data] if isinstance(data, pl.DataFrame) else data
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                               "strings_to_urls": False, "strings_to_numbers": False})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    header_format = workbook.add_format({"bold": True})
    sheet, row, sheets, total, columns = None, 0, 0, 0, None
    try:
        for frame in frames:
            frame = _excel_ready(neutralise_formulas(frame))
            columns = columns or frame.columns
            datetime_cols = {i for i, dt in enumerate(frame.dtypes) if isinstance(dt, (pl.Datetime, pl.Date))}
            for values in frame.iter_rows():
                if sheet is None or row > max_rows_per_sheet:
                    sheets += 1
                    sheet = workbook.add_worksheet(sheet_name if sheets == 1 else f"{sheet_name} {sheets}")
                    sheet.write_row(0, 0, columns, header_format)
                    row = 1
                for col, value in enumerate(values):
                    if value is None:
                        continue
                    if col in datetime_cols:
                        sheet.write_datetime(row, col, value, date_format)
                    else:
                        sheet.write(row, col, value)
                row += 1
                total += 1
        if sheet is None:  # no rows: still a valid file with a header when we know the columns
            sheet = workbook.add_worksheet(sheet_name)
            if columns:
                sheet.write_row(0, 0, columns, header_format)
    finally:
        workbook.close()
    return total
