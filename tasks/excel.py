"""Excel output: formula neutralising, a streaming multi-sheet xlsx writer for frames, and a fast path
that has DuckDB's excel extension write a query straight into a workbook (about ten times faster)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import polars as pl

# Spreadsheets run text that starts with these as a formula (CSV/formula injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A phone number (+1 602 555 0100) would only ever compute a number: left as typed.
PHONE_LIKE = r"^\+[0-9 ().\-]+$"
# One sheet holds 1,048,576 rows; one is the header.
MAX_DATA_ROWS_PER_SHEET = 1_048_575


def neutralise_formulas(df: pl.DataFrame) -> pl.DataFrame:
    """Prefix a quote to every text cell that a spreadsheet would run as a formula."""
    pattern = "^[" + "".join("\\t" if p == "\t" else "\\r" if p == "\r" else "\\" + p for p in FORMULA_PREFIXES) + "]"
    return df.with_columns(
        pl.when(pl.col(name).str.contains(pattern) & ~pl.col(name).str.contains(PHONE_LIKE))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
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


# --- the fast path: DuckDB's excel extension writes a query straight into a workbook ------------

def load_excel_extension(conn: duckdb.DuckDBPyConnection) -> None:
    """LOAD DuckDB's excel extension, installing it from the duckdb-extension-excel wheel if needed."""
    try:
        conn.execute("load excel")
        return
    except duckdb.Error:
        pass
    from importlib import resources

    import duckdb as _duckdb

    binary = resources.files("duckdb_extension_excel").joinpath(
        "extensions", f"v{_duckdb.__version__}", "excel.duckdb_extension")
    conn.execute(f"install {_literal(str(binary))}")
    conn.execute("load excel")


def xlsx_text_macro(conn: duckdb.DuckDBPyConnection) -> None:
    """Define `xlsx_text(s)` on the connection: drops characters XML cannot hold, neutralises formulas."""
    # Control characters make the sheet XML invalid (Excel refuses the file); tab/CR/LF are kept.
    # One expression, no subquery: a macro with a subquery became a join per use (1 GB per million).
    conn.execute(
        r"""
        create or replace temp macro xlsx_text(s) as case
            when regexp_full_match(s, '\+[0-9 ().\-]+') then s
            else regexp_replace(
                regexp_replace(s, '[\x01-\x08\x0B\x0C\x0E-\x1F]', '', 'g'), '^([=+\-@\t\r])', '''\1')
            end
        """
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def copy_query_to_xlsx(
    conn: duckdb.DuckDBPyConnection,
    query: str,
    params: dict | list | None,
    path: str | Path,
    order_by: str | None = None,
    sheet_name: str = "Sheet",
    max_rows_per_sheet: int = MAX_DATA_ROWS_PER_SHEET,
) -> int:
    """Stream a query's rows into an xlsx with DuckDB's excel extension; full sheets continue on new ones.

    The query and `order_by` are SQL built by the caller from whitelisted identifiers; values come as
    bound `params`. Without `order_by` rows keep the query's storage order (DuckDB preserves insertion
    order) and nothing is sorted: a sort of a million wide rows costs gigabytes of memory. The file
    appears complete or not at all (written beside, then renamed). Returns rows.
    """
    load_excel_extension(conn)
    path = Path(path)
    total = conn.execute(f"select count(*) from ({query})", params).fetchone()[0]
    # One thread: the workbook is written by one writer anyway, and parallel scans ran ahead of it,
    # buffering out-of-order chunks (2.4 GB for a million calls). `threads` is process-wide: restored.
    threads = conn.execute("select current_setting('threads')").fetchone()[0]
    conn.execute("set threads = 1")
    try:
        return _copy_sheets(conn, query, params, path, order_by, sheet_name, max_rows_per_sheet, total)
    finally:
        conn.execute(f"set threads = {int(threads)}")


def _copy_sheets(conn, query, params, path: Path, order_by, sheet_name, max_rows_per_sheet, total) -> int:
    """Each sheet's rows by one COPY into a part file; one part is renamed, several are merged."""
    import os
    import tempfile

    sheets = max(1, -(-total // max_rows_per_sheet))
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as work:
        parts = []
        for index in range(sheets):
            name = sheet_name if index == 0 else f"{sheet_name} {index + 1}"
            part = Path(work) / f"part{index}.xlsx"
            window = "" if sheets == 1 else f" limit {max_rows_per_sheet} offset {index * max_rows_per_sheet}"
            ordering = f" order by {order_by}" if order_by else ""
            conn.execute(
                f"copy (select * from ({query}){ordering}{window}) to {_literal(str(part))}"
                f" (format xlsx, header true, sheet {_literal(name)})",
                params,
            )
            parts.append((name, part))
        if sheets == 1:
            os.replace(parts[0][1], path)
        else:
            merged = Path(work) / "merged.xlsx"
            merge_sheets(parts, merged)
            os.replace(merged, path)
    return total


def merge_sheets(parts: list[tuple[str, Path]], out: Path) -> None:
    """One workbook from single-sheet workbooks written by the excel extension (same styles, inline strings)."""
    import zipfile
    from xml.sax.saxutils import quoteattr

    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rels = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
    replaced = {"xl/workbook.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml", "xl/worksheets/sheet1.xml"}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target:
        with zipfile.ZipFile(parts[0][1]) as first:
            for item in first.infolist():
                if item.filename not in replaced:
                    target.writestr(item.filename, first.read(item.filename))
            content_types = first.read("[Content_Types].xml").decode()
        for number, (_name, part) in enumerate(parts, start=1):
            with zipfile.ZipFile(part) as source, source.open("xl/worksheets/sheet1.xml") as sheet, \
                    target.open(f"xl/worksheets/sheet{number}.xml", "w", force_zip64=True) as copy:
                while chunk := sheet.read(1 << 20):
                    copy.write(chunk)
        sheets_xml = "".join(
            f'<sheet name={quoteattr(name)} sheetId="{n}" r:id="rId{n + 2}"/>' for n, (name, _) in enumerate(parts, 1))
        target.writestr("xl/workbook.xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<workbook xmlns="{main}" xmlns:r="{rels}"><sheets>{sheets_xml}</sheets></workbook>'))
        rel_xml = "".join(
            f'<Relationship Id="rId{n + 2}" Type="{rels}/worksheet" Target="worksheets/sheet{n}.xml"/>'
            for n in range(1, len(parts) + 1))
        target.writestr("xl/_rels/workbook.xml.rels", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rels}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rId2" Type="{rels}/sharedStrings" Target="sharedStrings.xml"/>'
            f"{rel_xml}</Relationships>"))
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="{sheet_type}"/>'
            for n in range(1, len(parts) + 1))
        single = f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{sheet_type}"/>'
        target.writestr("[Content_Types].xml", content_types.replace(single, overrides))
