"""Excel output: formula neutralising, a streaming multi-sheet xlsx writer for frames, and a fast path
that streams a query into a workbook (DuckDB writes the sheet XML; no Python object per cell)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

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
    time_zone: str | None = None,
) -> int:
    """Write frames (all with the same columns) to one xlsx, continuing on new sheets when full; date-times
    show `time_zone` beside them when given (`datetime_format`).

    Text is neutralised against formula injection. Returns the number of data rows written. The file
    appears complete or not at all (written beside, then renamed): a failed export never leaves a
    truncated workbook where the last good one was.
    """
    import os
    import uuid

    path = Path(path)
    work = path.parent / f".{path.name}.{uuid.uuid4().hex}.part"
    try:
        total = _write_frames(data, work, sheet_name, max_rows_per_sheet, time_zone)
        os.replace(work, path)
    finally:
        work.unlink(missing_ok=True)
    return total


def _write_frames(data, path: Path, sheet_name: str, max_rows_per_sheet: int, time_zone: str | None = None) -> int:
    import xlsxwriter

    frames = [data] if isinstance(data, pl.DataFrame) else data
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                               "strings_to_urls": False, "strings_to_numbers": False})
    date_format = workbook.add_format({"num_format": datetime_format(time_zone)})
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


# --- the fast path: DuckDB writes the sheet XML, Python only deflates it into the zip ------------

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
# Characters XML 1.0 cannot hold (the file would not open): dropped. Tab, LF and CR are kept.
_INVALID_XML = "[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x{FFFE}\\x{FFFF}]"
# Excel keeps at most this many characters in a cell (longer text makes it repair the file), counted in
# UTF-16 units: a character beyond U+FFFF (an emoji) counts two.
MAX_CELL_CHARS = 32_767
_ASTRAL = "[\\x{10000}-\\x{10FFFF}]"
# Cell styles (index into styles.xml cellXfs): 1 date-time, 2 date, 3 bold header.
_STYLE_DATETIME, _STYLE_DATE, _STYLE_HEADER = 1, 2, 3
_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "UHUGEINT"}
_TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE"}
# Days between Excel's day 0 (1899-12-30, the 1900 date system) and 1970-01-01.
_EXCEL_EPOCH_DAYS = 25_569
# Rows fetched per Arrow batch: about 20 MB of sheet XML for the calls export.
_BATCH_ROWS = 20_000

DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


def datetime_format(time_zone: str | None = None) -> str:
    """Excel's format for date-times; with `time_zone`, the zone is shown beside every time (the cell stays a
    date-time): an exported file read away from the dashboard still says which clock its times are on."""
    return DATETIME_FORMAT if time_zone is None else f'{DATETIME_FORMAT} "({time_zone})"'


_STYLES_XML = (
    f'{_XML_DECL}<styleSheet xmlns="{_MAIN_NS}">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode={datetime_format}/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '</fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)


def xlsx_text_macro(conn: duckdb.DuckDBPyConnection) -> None:
    """Define `xlsx_text(s)` on the connection: drops control characters, neutralises formulas."""
    # One expression, no subquery: a macro with a subquery became a join per use (1 GB per million).
    # The first test lets ordinary text through after one scan (most cells need nothing).
    conn.execute(
        r"""
        create or replace temp macro xlsx_text(s) as case
            when not regexp_matches(s, '^[=+\-@\t\r]|[\x01-\x08\x0B\x0C\x0E-\x1F]') then s
            when regexp_full_match(s, '\+[0-9 ().\-]+') then s
            else regexp_replace(
                regexp_replace(s, '[\x01-\x08\x0B\x0C\x0E-\x1F]', '', 'g'), '^([=+\-@\t\r])', '''\1')
            end
        """
    )


def _quoted(name: str) -> str:
    # A NUL ends DuckDB's quoted identifier early: shown as U+FFFD (the header is cleaned the same way).
    return '"' + name.replace("\x00", "\ufffd").replace('"', '""') + '"'


def _cut_sql(expr: str) -> str:
    """SQL for the longest start of the text that Excel holds in a cell (32,767 UTF-16 units)."""
    # No character has more UTF-16 units than UTF-8 bytes: text of at most 32,767 bytes is whole. Longer
    # text has a marker (U+FFFF: XML cannot hold it, so it is dropped anyway) put after each character
    # that counts two, so `left` counts units; a character whose second unit was cut off goes too.
    marked = (f"regexp_replace(replace(left({expr}, {MAX_CELL_CHARS}), chr(65535), ''), '({_ASTRAL})', "
              "'\\1' || chr(65535), 'g')")
    cut = f"replace(regexp_replace(left({marked}, {MAX_CELL_CHARS}), '{_ASTRAL}$', ''), chr(65535), '')"
    return f"case when strlen({expr}) <= {MAX_CELL_CHARS} then {expr} else {cut} end"


def _text_cell_sql(expr: str) -> str:
    """SQL for an inline-string cell: XML-escaped, invalid characters dropped, at most 32,767 characters."""
    cut = _cut_sql(expr)
    cleaned = f"regexp_replace({cut}, '{_INVALID_XML}', '', 'g')"
    escaped = f"replace(replace(replace(replace({cleaned}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), chr(13), '&#13;')"
    # Excel reads `_x0041_` in a string as an escaped character: such an underscore is escaped in turn.
    rewritten = f"regexp_replace({escaped}, '_(x[0-9A-Fa-f]{{4}}_)', '_x005F_\\1', 'g')"
    # Most text needs none of it: one scan decides, so the rewriting runs only on the few cells that do.
    special = "[&<>\\x00-\\x08\\x0B-\\x0D\\x0E-\\x1F\\x{FFFE}\\x{FFFF}]|_x"
    text = (f"case when regexp_matches({expr}, '{special}') then {rewritten} "
            f"when strlen({expr}) > {MAX_CELL_CHARS} then {cut} else {expr} end")
    return f"""coalesce('<c t="inlineStr"><is><t xml:space="preserve">' || {text} || '</t></is></c>', '<c/>')"""


def _cell_sql(name: str, type_name: str) -> str:
    """SQL giving one `<c>` element for a result column, typed from its DuckDB type (NULL: an empty cell)."""
    col = _quoted(name)
    upper = type_name.upper()
    if upper == "BOOLEAN":
        return (f"""case when {col} then '<c t="b"><v>1</v></c>' when not {col} then '<c t="b"><v>0</v></c>' """
                "else '<c/>' end")
    if upper in _INTEGER_TYPES or upper.startswith("DECIMAL"):
        return f"coalesce('<c><v>' || {col}::varchar || '</v></c>', '<c/>')"
    if upper in ("DOUBLE", "FLOAT"):
        # NaN and infinities have no spreadsheet number: an empty cell.
        return f"case when isfinite({col}) then '<c><v>' || {col}::varchar || '</v></c>' else '<c/>' end"
    if upper == "DATE":
        serial = f"({col} - date '1899-12-30')"
        return f"""coalesce('<c s="{_STYLE_DATE}"><v>' || {serial}::varchar || '</v></c>', '<c/>')"""
    if upper in _TIMESTAMP_TYPES:
        # Serial days since 1899-12-30; a zoned instant is written in UTC (the query converts first).
        serial = f"(epoch_us({col}) / 86400000000 + {_EXCEL_EPOCH_DAYS})"
        return f"""coalesce('<c s="{_STYLE_DATETIME}"><v>' || {serial}::varchar || '</v></c>', '<c/>')"""
    return _text_cell_sql(f"{col}::varchar")


def _clean_text(text: str, limit: int = MAX_CELL_CHARS) -> str:
    """Text written from Python (headers, sheet names) without the characters XML cannot hold."""
    text = text.replace("\x00", "\ufffd")[:limit]
    return "".join(ch for ch in text if ch in "\t\n\r" or (ch >= " " and ch not in "\ufffe\uffff"))


def _xml_text(text: str) -> str:
    """A header cell's text, cleaned and escaped like the SQL cells."""
    return escape(_clean_text(text)).replace("\r", "&#13;")


def _sheet_start(columns: list[str]) -> bytes:
    """The sheet XML up to and including the bold header row (frozen while scrolling)."""
    cells = "".join(
        f'<c t="inlineStr" s="{_STYLE_HEADER}"><is><t xml:space="preserve">{_xml_text(c)}</t></is></c>' for c in columns)
    return (f'{_XML_DECL}<worksheet xmlns="{_MAIN_NS}"><sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
            f"<sheetData><row>{cells}</row>").encode()


_SHEET_END = b"</sheetData></worksheet>"


def _arrow_text(column) -> tuple[memoryview, memoryview]:
    """The UTF-8 bytes of an Arrow string column as one buffer (no Python string per row) and its offsets."""
    import pyarrow as pa

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.large_string())  # e.g. a string view, if DuckDB is set to produce them
    _, offsets_buffer, data = column.buffers()
    width = 8 if pa.types.is_large_string(column.type) else 4
    offsets = memoryview(offsets_buffer).cast("q" if width == 8 else "i")
    return memoryview(data), offsets[column.offset:column.offset + len(column) + 1]


def _write_package(target, sheet_names: list[str], time_zone: str | None = None) -> None:
    """The workbook parts around the sheets: content types, relationships, workbook, styles."""
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
    numbers = range(1, len(sheet_names) + 1)
    overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="{sheet_type}"/>' for n in numbers)
    target.writestr("[Content_Types].xml", (
        f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        f"{overrides}</Types>"))
    target.writestr("_rels/.rels", (
        f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">'
        f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'))
    sheets = "".join(f'<sheet name={quoteattr(_clean_text(name, 31))} sheetId="{n}" r:id="rId{n}"/>'
                     for n, name in zip(numbers, sheet_names))
    target.writestr("xl/workbook.xml", (
        f'{_XML_DECL}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><sheets>{sheets}</sheets></workbook>'))
    sheet_rels = "".join(
        f'<Relationship Id="rId{n}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{n}.xml"/>' for n in numbers)
    target.writestr("xl/_rels/workbook.xml.rels", (
        f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">{sheet_rels}'
        f'<Relationship Id="rId{len(sheet_names) + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
        "</Relationships>"))
    target.writestr("xl/styles.xml", _STYLES_XML.replace("{datetime_format}", quoteattr(datetime_format(time_zone))))


def sheet_rows_query(
    conn: duckdb.DuckDBPyConnection, query: str, params: dict | list | None, order_by: str | None = None
) -> tuple[str, list[str]]:
    """SQL giving each row of `query` as its sheet XML (`row_xml`, one `<row>` element), and the column names."""
    described = conn.execute(f"select * from ({query}) limit 0", params).description
    # One concat over every cell: chained `||` copied the growing row once per cell (a third of the export).
    cells = ", ".join(_cell_sql(name, str(type_code)) for name, type_code, *_ in described)
    row_sql = f"concat('<row>', {cells}, '</row>')" if cells else "'<row></row>'"
    # Sorted before the XML is made: the sort then carries the values, not their (larger) markup.
    source = f"(select * from ({query}) order by {order_by})" if order_by else f"({query})"
    return f"select {row_sql} as row_xml from {source}", [d[0] for d in described]


def copy_query_to_xlsx(
    conn: duckdb.DuckDBPyConnection,
    query: str,
    params: dict | list | None,
    path: str | Path,
    order_by: str | None = None,
    sheet_name: str = "Sheet",
    max_rows_per_sheet: int = MAX_DATA_ROWS_PER_SHEET,
    time_zone: str | None = None,
) -> int:
    """Stream a query's rows into an xlsx with typed cells, full sheets continuing on new ones; returns rows.
    Date-times show `time_zone` beside them when given (`datetime_format`).

    DuckDB turns each row into its sheet XML (numbers as numbers, booleans, timestamps as Excel dates,
    text escaped as inline strings); Python only deflates Arrow buffers of that XML into the zip, so
    no Python object is made per row or cell. The query and `order_by` are SQL built by the caller
    from whitelisted identifiers; values come as bound `params`. Without `order_by` the order is
    DuckDB's: a plain scan keeps storage order, but a join does not (a LEFT join emits each vector's
    matched rows first), so pass `order_by` when order matters. The file appears complete or not at
    all (written beside, then renamed).
    """
    path = Path(path)
    rows_query, columns = sheet_rows_query(conn, query, params, order_by)
    return _write_workbook(conn, rows_query, params, columns, path, sheet_name, max_rows_per_sheet, time_zone)


def _write_workbook(conn, rows_query: str, params, columns: list[str], path: Path, sheet_name: str,
                    max_rows_per_sheet: int, time_zone: str | None = None) -> int:
    """Write the rows of `rows_query` (sheet XML per row) into the workbook at `path`; returns rows."""
    import os
    import uuid
    import zipfile

    # Beside the target (same file system, so the rename is atomic); created by zipfile, so the umask applies.
    work = path.parent / f".{path.name}.{uuid.uuid4().hex}.part"
    total, sheet_names, sheet, in_sheet = 0, [], None, 0
    try:
        # Level 1: sheet XML is mostly repeated tags, so the fastest deflate level costs little size.
        with zipfile.ZipFile(work, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target:
            reader = conn.execute(rows_query, params).to_arrow_reader(_BATCH_ROWS)
            for batch in reader:
                if not batch.num_rows:
                    continue  # an empty batch may come without a data buffer
                data, offsets = _arrow_text(batch.column(0))
                start, rows = 0, batch.num_rows
                while start < rows:
                    if sheet is None or in_sheet == max_rows_per_sheet:
                        if sheet is not None:
                            sheet.write(_SHEET_END)
                            sheet.close()
                        sheet_names.append(sheet_name if not sheet_names else f"{sheet_name} {len(sheet_names) + 1}")
                        sheet = target.open(f"xl/worksheets/sheet{len(sheet_names)}.xml", "w", force_zip64=True)
                        sheet.write(_sheet_start(columns))
                        in_sheet = 0
                    take = min(rows - start, max_rows_per_sheet - in_sheet)
                    sheet.write(data[offsets[start]:offsets[start + take]])
                    start, in_sheet, total = start + take, in_sheet + take, total + take
            if sheet is None:  # no rows: one sheet with the header
                sheet_names.append(sheet_name)
                sheet = target.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
                sheet.write(_sheet_start(columns))
            sheet.write(_SHEET_END)
            sheet.close()
            _write_package(target, sheet_names, time_zone)
        os.replace(work, path)
    except BaseException:
        work.unlink(missing_ok=True)
        raise
    return total
