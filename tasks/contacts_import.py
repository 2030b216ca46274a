"""Contact import and the contact list: read CSV/XLSX, map columns, normalise phones, validate,
merge duplicates, upsert the CRM and enroll in a campaign; plus remove, edit and export.

Row numbers are what a user sees in a spreadsheet: the header is row 1, so the first data record
is row 2. For CSV they count records, not physical lines: a quoted field holding a line break
does not shift the numbers of the records after it. Blank records are skipped but still counted,
and so is Excel's delimiter line ("sep=;"): after it the header is row 2 and the first record row 3.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import posixpath
import re
import threading
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pandera.polars as pa
import polars as pl

from schemas.contact_import import (
    COMPANY,
    CUSTOM_PREFIX,
    EMAIL,
    FIELD_TARGETS,
    HEADER_SYNONYMS,
    IGNORE,
    MULTI_SOURCE_TARGETS,
    NAME,
    NAME_PART_KEYS,
    PHONE,
    PROPERTY_MAX,
    REQUIRED_COLUMNS,
    check_reason,
    header_key,
    import_schema,
    parse_target,
    snake_case,
)
from schemas.enums import holds_contact_sql
from tasks.errors import NotFoundError, UserError, ValidationError, read_input_file
from tasks.phones import EXCEL_ERRORS, check_region, normalise_phone, normalise_phones
from tasks.store import same_file

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")
DELIMITERS = (",", ";", "\t")
# Excel writes (and reads) a first line "sep=X" naming the delimiter: one of these four.
_DELIMITER_HINT = re.compile(rb"sep=([,;\t|])(?:\r?\n|\Z)", re.IGNORECASE)
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
# A record with more fields than its header is read this many fields past the first non-blank line at
# most (each extra field is a column of the whole file in memory); a wider one is still rejected.
MAX_EXTRA_FIELDS = 32
# UTF-16 without a byte-order mark is recognised by the NUL half of each character in this much text.
UTF16_SNIFF_BYTES = 4096
# Hostile-input limits (issue #10): a million contacts is about 75 MB of CSV; no contact field is
# anywhere near 10,000 characters; an honest 1M-row workbook unpacks to well under 1 GB.
MAX_FILE_BYTES = 512 * 2**20
MAX_CELL_CHARS = 10_000
# A wide CRM export has a few hundred columns. Each column is held for every row, and checking the rows
# costs time in the square of the columns (5,000 columns: a minute; a 1 MB line of commas: 13 GB and hours).
MAX_COLUMNS = 1_000
MAX_XLSX_UNPACKED_BYTES = 1024 * 2**20
# Rows below a header without a phone column searched for the real header (a title above it).
HEADER_SEARCH_ROWS = 20
# An error line names at most this many columns (or sheets), each cut to this many characters: a 200-column
# export without a phone column made a 10 KB line, a binary file named .csv a 3 KB one.
LISTED_NAMES = 12
LISTED_NAME_CHARS = 40
# A CSV with a NUL (and not UTF-16), or mostly control characters, in this many first bytes is not text.
TEXT_SNIFF_BYTES = 1024
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
# An .xlsx error cell as fastexcel reports it (calamine's names) -> the value Excel shows.
_CALAMINE_ERROR = re.compile(r"Error\((\w+)\)")
_EXCEL_ERROR_TEXT = {"NA": "#N/A", "Value": "#VALUE!", "Ref": "#REF!", "Div0": "#DIV/0!", "Name": "#NAME?",
                     "Null": "#NULL!", "Num": "#NUM!", "GettingData": "#GETTING_DATA"}
# An .xlsx cell holding a formula but no saved value (written by a program such as openpyxl, never calculated
# by a spreadsheet app) reads as empty: fastexcel (calamine) reads saved values only. Such cells are found in
# the sheet's XML, read in pieces of whole rows of this many bytes or more, alongside fastexcel's read of it.
XLSX_SCAN_CHUNK = 2**20
_XML_PREFIX = rb"(?:[A-Za-z_][\w.-]*:)?"  # "x:c": the Open XML SDK's writers name the elements so
# What a formula cell without a saved value ends with, as a regular expression (slow: for XML with space
# between its tags); each match is checked (`_untrusted_formula`).
_NO_SAVED_VALUE = re.compile(
    rb"(?:</" + _XML_PREFIX + rb"f>|<" + _XML_PREFIX + rb"f\b[^>]*/>)\s*</" + _XML_PREFIX + rb"c>"
    rb"|<" + _XML_PREFIX + rb"v\b[^>]*?/>|<" + _XML_PREFIX + rb"v\b[^>]*>\s*</" + _XML_PREFIX + rb"v>"
)
# A program may also save a stand-in for a formula's value. XlsxWriter (behind polars' write_excel, and pandas'
# to_excel when installed) saves the number 0 unless its caller gives the result, and has every workbook it makes
# ask to be calculated in full when opened (<calcPr fullCalcOnLoad="1"/> in xl/workbook.xml): Excel does so,
# fastexcel does not. In a workbook that asks so, a number formula saved as 0 holds a stand-in (`_untrusted_formula`);
# elsewhere, 0 is a result Excel or LibreOffice saved. LibreOffice (by default) keeps the stand-ins when it opens and
# saves such a file, and drops the request: the file then looks like any other.
_STAND_IN_VALUE = re.compile(
    rb"(?:</" + _XML_PREFIX + rb"f>|<" + _XML_PREFIX + rb"f\b[^>]*/>)\s*<" + _XML_PREFIX + rb"v>\s*0\s*</"
    + _XML_PREFIX + rb"v>\s*</" + _XML_PREFIX + rb"c>"
)
_ZERO_VALUE = re.compile(rb"<" + _XML_PREFIX + rb"v\b[^>/]*>\s*0\s*</" + _XML_PREFIX + rb"v>")
_FULL_CALC_ON_LOAD = re.compile(rb"<" + _XML_PREFIX + rb"""calcPr\b[^>]*\sfullCalcOnLoad\s*=\s*["'](?:1|true)["']""")
_CELL_TAG = re.compile(rb"<" + _XML_PREFIX + rb"c(?=[\s/>])[^>]*>")
_CELL_END = re.compile(rb"</" + _XML_PREFIX + rb"c>")
_ROW_END = re.compile(rb"</" + _XML_PREFIX + rb"row>")
_FORMULA_TAG = re.compile(rb"<" + _XML_PREFIX + rb"f(?=[\s/>])")
_FORMULA_END = re.compile(rb"</([A-Za-z_][\w.-]*:)?f>")
_VALUE_TAG = re.compile(rb"<" + _XML_PREFIX + rb"v(?=[\s/>])")
_CELL = re.compile(rb"<" + _XML_PREFIX + rb"c(?=[\s/>])([^>]*?)(?:/>|>(.*?)</" + _XML_PREFIX + rb"c>)", re.DOTALL)
_HAS_VALUE = re.compile(rb"<" + _XML_PREFIX + rb"v\b[^>/]*>\s*[^<\s]|<" + _XML_PREFIX + rb"is\b")
_CELL_REF = re.compile(rb"""\sr\s*=\s*["']([A-Za-z]{1,3})([0-9]{1,7})["']""")
_CELL_TYPE = re.compile(rb"""\st\s*=\s*["']([^"']*)["']""")
# Zip-based documents other than .xlsx, by a member only they have: what to tell their user.
OTHER_ZIP_DOCUMENTS = {
    "Index/Document.iwa": "an Apple Numbers document: export it from Numbers as .xlsx or .csv",
    "content.xml": "an OpenDocument file (an .ods spreadsheet?): save it as .xlsx or .csv",
}
REPORT_COLUMNS = {"row": pl.Int64, "column": pl.String, "value": pl.String, "reason": pl.String}
# Columns of the mapped frame, in order; custom properties follow as "custom:<key>".
MAPPED_COLUMNS = ("row", "phone_raw", NAME, COMPANY, EMAIL)
_ROW = "__file_row__"
# The first sheet of a workbook with other sheets, read because none was named (`FirstSheet`), noted on the
# frame `read_xlsx` returns so that `map_columns` can name it.
_FIRST_SHEET_NOTE = "_first_sheet_read"
# The report line (column, value, reason) of a record with more fields than the header: noted by
# read_csv_bytes on the frame it returns, carried as this column of the mapped frame until `validate`.
EXTRA_FIELDS = "extra_fields"
_EXTRA_FIELDS_NOTE = "_extra_field_rejects"
# Contact fields an edit may change directly (the CRM column each one is stored in).
EDITABLE_FIELDS = {"name": "name", "company": "company", "email": "email"}


@dataclass
class ImportResult:
    """What an import did (or, for a dry run, would do), with the rejected rows and the fields left empty."""

    campaign_id: int
    file: str
    mapping: dict[str, str]
    country: str | None
    rows: int = 0
    imported: int = 0
    updated: int = 0
    enrolled: int = 0
    duplicates_merged: int = 0
    invalid: int = 0
    warned: int = 0  # rows imported with a field left empty: its value failed its check (see `warnings`)
    dry_run: bool = False
    import_id: int | None = None  # the import_runs row of a committed import
    rejected: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)  # the fields left empty, as rejected lists its rows

    def to_dict(self) -> dict:
        return asdict(self)


def every_row_rejected(result: Mapping) -> bool:
    """Whether an import's result (`ImportResult.to_dict`) rejected every row of a file that had some: it imported
    nothing, and the CLI exits 2 and the flow ends Failed on it (a wrong sheet, the phone column mapped wrong)."""
    return bool(result["rows"]) and result["invalid"] >= result["rows"]


# ---------------------------------------------------------------- reading


def listed_names(names: Iterable[str], quoted: bool = False) -> str:
    """Names (columns, sheets) for an error line: the first LISTED_NAMES, each cut to LISTED_NAME_CHARS with
    its control characters escaped, then "… and N more"."""
    names = list(names)
    shown = []
    for name in names[:LISTED_NAMES]:
        if len(name) > LISTED_NAME_CHARS:
            name = name[: LISTED_NAME_CHARS - 1] + "…"
        name = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
        shown.append(f'"{name}"' if quoted else name)
    more = len(names) - LISTED_NAMES
    return ", ".join(shown) + (f", … and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class FirstSheet:
    """The first sheet of a workbook that has others, read because no sheet was named: an error about the
    sheet names it and the others (the contacts are often on the second sheet, after a summary)."""

    name: str
    others: tuple[str, ...]
    option: str | None = "--sheet"  # how the user chooses another sheet, if they can

    def says(self, prefix: str, problem: str) -> str:
        """``prefix`` ("book.xlsx: ") + 'sheet "Summary" (the first) ' + ``problem`` + the other sheets."""
        sheets = f"sheet{'s' if len(self.others) > 1 else ''} {listed_names(self.others, quoted=True)}"
        choose = f": choose one with {self.option}" if self.option else " (only the first is read)"
        return (f'{prefix}sheet "{listed_names([self.name])}" (the first) {problem}; '
                f"the workbook also has {sheets}{choose}")


def first_sheet_read(frame: pl.DataFrame) -> FirstSheet | None:
    """The first sheet `read_contacts_file` read from a workbook with others (no sheet named), else None;
    noted on the frame it returned (a frame derived from it has none)."""
    return getattr(frame, _FIRST_SHEET_NOTE, None)


def decode_bytes(data: bytes) -> tuple[bytes, str]:
    """File bytes as UTF-8 (what Polars reads) and the encoding found: UTF-16 by BOM, UTF-8, else cp1252/Latin-1
    line by line (`decode_legacy_lines`).

    UTF-16 without a byte-order mark is recognised by its NUL bytes (`bare_utf16`); UnicodeDecodeError
    when bytes a BOM or that pattern promised are not valid in it.
    """
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16: FF FE starts both
        return data.decode("utf-32").encode("utf-8"), "utf-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16").encode("utf-8"), "utf-16"
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    bare = bare_utf16(data)
    if bare is not None:
        return data.decode(bare).encode("utf-8"), bare
    try:
        data.decode("utf-8")
        return data, "utf-8"
    except UnicodeDecodeError:
        pass
    return decode_legacy_lines(data)


def decode_legacy_lines(data: bytes) -> tuple[bytes, str]:
    """Text that is not valid UTF-8 as UTF-8 and the encoding found, each line decoded on its own: as UTF-8
    when it is valid UTF-8, else as cp1252 (Latin-1 when it has a byte cp1252 leaves undefined: 0x81, 0x8d...).

    The encoding found is "cp1252" (or "latin-1") for a file in it, "utf-8 with cp1252 lines" for a UTF-8
    file with some lines saved from Windows: decoded whole as cp1252, its every "José" became "JosÃ©".
    """
    if data.decode("utf-8", errors="ignore").isascii():  # no UTF-8 character at all: one legacy file, read whole
        try:
            return data.decode("cp1252").encode("utf-8"), "cp1252"
        except UnicodeDecodeError:
            pass
    lines, legacy, utf8_lines = [], "cp1252", False
    for line in data.splitlines(keepends=True):  # only CR and LF split bytes: no multibyte character is cut
        try:
            line.decode("utf-8")
            lines.append(line)
            utf8_lines = utf8_lines or not line.isascii()
            continue
        except UnicodeDecodeError:
            pass
        try:
            lines.append(line.decode("cp1252").encode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line.decode("latin-1").encode("utf-8"))
            legacy = "latin-1"
    return b"".join(lines), f"utf-8 with {legacy} lines" if utf8_lines else legacy


def bare_utf16(data: bytes) -> str | None:
    """The codec of UTF-16 text without a byte-order mark ("utf-16-le" or "utf-16-be"), else None: in its
    first few KB most odd (LE) or even (BE) bytes are NUL, as the high half of every ASCII character is,
    and few of the others are. UTF-8 and single-byte text have no NUL there at all."""
    sample = data[:UTF16_SNIFF_BYTES]
    pairs = len(sample) // 2
    if not pairs:
        return None
    even, odd = sample[0 : 2 * pairs : 2].count(0), sample[1 : 2 * pairs : 2].count(0)
    if 2 * odd > pairs and 10 * even < pairs:
        return "utf-16-le"
    if 2 * even > pairs and 10 * odd < pairs:
        return "utf-16-be"
    return None


def delimiter_hint(data: bytes) -> tuple[str | None, bytes]:
    """Excel's delimiter line: (X, the text after it) when the first line is "sep=X", else (None, data)."""
    match = _DELIMITER_HINT.match(data)
    if match is None:
        return None, data
    return match.group(1).decode(), data[match.end():]


def detect_delimiter(data: bytes) -> str:
    """The delimiter among , ; and tab that occurs most often outside quotes in the header line."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in data[:65536].decode("utf-8", errors="ignore"):
        if char == '"':
            quoted = not quoted
        elif char == "\n" and not quoted:
            break
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _name_headers(values: Iterable[str | None]) -> list[str]:
    """Header cells made usable: trimmed, blanks named column_N, repeats suffixed " (2)"."""
    names: list[str] = []
    for position, value in enumerate(values, start=1):
        name = (value or "").strip() or f"column_{position}"
        base, n = name, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    return names


def _check_cell_sizes(grid: pl.DataFrame, path: Path) -> None:
    """Refuse a file with a cell longer than any contact field could be (a hostile or wrong file)."""
    if grid.height == 0 or grid.width == 0:
        return
    longest = grid.select(pl.all().str.len_chars().max()).row(0)
    for position, size in enumerate(longest):
        if size is not None and size > MAX_CELL_CHARS:
            column = grid.columns[position]
            row = grid.with_row_index("_r", offset=1).filter(pl.col(column).str.len_chars() > MAX_CELL_CHARS)["_r"][0]
            raise UserError(f"{path.name}: row {row}, column {position + 1}: a cell of {size:,} characters "
                            f"(at most {MAX_CELL_CHARS:,}); is this the right file?")


def _with_headers(grid: pl.DataFrame, path: Path, lone_row: bool = False, *, first_sheet: FirstSheet | None = None,
                  extra_rows: bool = False) -> pl.DataFrame:
    """The grid's first non-blank row as headers over the rows below it.

    Blank rows above the header stay in the frame as blank records (dropped by `apply_mapping`), so a
    record's position still gives the row the user sees when the header is not in row 1. A grid of
    that one row, or of blank rows below it, is refused (no data rows) unless `lone_row`: then it is the
    headers over no rows. ``extra_rows``: records below the header hold fields past its columns (cut off the
    grid, see `_cut_extra_fields`): they are data rows. ``first_sheet``: the errors name the sheet read.
    """
    def refuse(problem: str, sheet_problem: str) -> UserError:
        if first_sheet is None:
            return UserError(f"{path.name}: {problem}")
        return UserError(first_sheet.says(f"{path.name}: ", sheet_problem))

    if grid.height == 0 or grid.width == 0:
        raise refuse("the file is empty (no header row)", "is empty")
    is_blank = grid.select(
        pl.all_horizontal([pl.col(c).str.strip_chars().fill_null("") == "" for c in grid.columns]).alias("blank")
    ).to_series()
    if is_blank.all():
        raise refuse("the file is empty (no header row)", "is empty")
    _check_cell_sizes(grid, path)
    header_at = int(is_blank.arg_min())  # the first row that is not blank
    headers = _name_headers(grid.row(header_at))
    # "Name,Phone" and blank lines imported "rows 0" (exit 0) where "Name,Phone" alone was refused
    if not lone_row and not extra_rows and is_blank.slice(header_at + 1).all():
        raise refuse("the file has a header row but no data rows", "has a header row but no data rows")
    frame = pl.concat([grid.slice(0, header_at), grid.slice(header_at + 1)])
    return frame.rename(dict(zip(grid.columns, headers)))


def read_csv_bytes(data: bytes, path: Path, lone_row: bool = False) -> pl.DataFrame:
    """A delimited text file's records as an all-text frame whose columns are its header cells.

    A first line "sep=X" names the delimiter and stays in the frame as a blank record, so positions
    still give the file's rows. Records with more non-empty fields than the header are kept without
    the extra ones and noted on the frame for the import's report (`extra_field_rejects`).
    """
    if not data.strip():
        raise UserError(f"{path.name}: the file is empty")
    # A workbook named .csv was read as text: Polars' "CSV malformed" for an .xlsx, "no data rows" for an .xls.
    if data.startswith(ZIP_MAGIC):
        raise UserError(f"{path.name}: is a zip file (an .xlsx workbook?), not CSV text; "
                        "name a workbook .xlsx, or save it as CSV")
    if data.startswith(OLE_MAGIC):
        raise UserError(f"{path.name}: is an Office file (an old .xls workbook?), not CSV text; save it as .csv or .xlsx")
    if not looks_like_text(data):  # its "header" was kilobytes of binary named as columns
        raise UserError(f"{path.name}: not a text (CSV) file; is this the right file?")
    try:
        utf8, _ = decode_bytes(data)
    except UnicodeDecodeError as error:  # a byte-order mark (or the NULs of UTF-16) promised an encoding the bytes break
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise UserError(f"{path.name}: starts with a {error.encoding} byte-order mark but byte {error.start} "
                            f"is not valid {error.encoding}; save the file as UTF-8") from None
        raise UserError(f"{path.name}: reads as {error.encoding} without a byte-order mark but byte {error.start} "
                        f"is not valid {error.encoding}; save the file as UTF-8") from None
    if b"\n" not in utf8 and b"\r" in utf8:  # classic Mac line ends (Excel's "CSV (Macintosh)")
        utf8 = utf8.replace(b"\r", b"\n")
    hinted, utf8 = delimiter_hint(utf8)
    skipped = 0 if hinted is None else 1  # records before `utf8` in the file
    if hinted is not None and not utf8.strip():
        raise UserError(f"{path.name}: the file is empty (a sep={hinted} line and no header row)")
    separator = hinted or detect_delimiter(utf8)
    _check_header_width(utf8, separator, skipped, path)
    try:
        grid, widened, cut = _read_grid(utf8, separator)
    except (pl.exceptions.PolarsError, OSError) as error:
        row = _unclosed_quote_row(utf8)
        if row is not None:
            raise UserError(f"{path.name}: row {row + skipped}: a field opens with a quote (\") that is never closed") from None
        raise UserError(f"{path.name}: cannot read as CSV ({str(error).splitlines()[0]})") from error
    if skipped and grid.width:  # the "sep=" line, as a blank record: row numbers stay the file's own
        grid = pl.concat([pl.DataFrame({c: [None] for c in grid.columns}, schema=grid.schema), grid])
    grid, extra = _cut_extra_fields(grid, utf8, separator, skipped, widened, cut, path)
    frame = _with_headers(grid, path, lone_row, extra_rows=extra is not None and extra.height > 0)
    if extra is not None:
        setattr(frame, _EXTRA_FIELDS_NOTE, extra)
    return frame


def looks_like_text(data: bytes) -> bool:
    """False for bytes that cannot be a text file (a program, an image, an archive named .csv): a NUL byte in the
    first TEXT_SNIFF_BYTES when they are not UTF-16/32 (with a byte-order mark, or bare: `bare_utf16`), or more
    than a tenth of them control characters other than tab, line ends and form feed."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    data = data.removeprefix(codecs.BOM_UTF8)
    if bare_utf16(data) is not None:
        return True
    head = data[:TEXT_SNIFF_BYTES]
    if b"\x00" in head:
        return False
    controls = sum(1 for byte in head if (byte < 0x20 and byte not in b"\t\n\r\x0b\x0c") or byte == 0x7F)
    return controls < 3 or 10 * controls <= len(head)


def _check_header_width(data: bytes, separator: str, skipped: int, path: Path) -> None:
    """Refuse, before Polars reads the file, a first line or header line of more than MAX_COLUMNS fields (they set
    the grid's width; a wider record below the header is cut at MAX_EXTRA_FIELDS past it by `_read_grid`)."""
    mark = separator.encode()
    for number, line in enumerate(io.BytesIO(data), start=1 + skipped):
        fields = line.count(mark) + 1  # quoted delimiters too: at least as many as the record has
        if fields > MAX_COLUMNS:
            raise UserError(f"{path.name}: row {number} has {fields:,} fields (at most {MAX_COLUMNS:,} columns); "
                            "is this the right file?")
        if line.strip(b' \t\r\n"' + mark):
            return


def _check_grid_width(grid: pl.DataFrame, path: Path) -> None:
    """Refuse a sheet with more than MAX_COLUMNS columns holding values."""
    if grid.width > MAX_COLUMNS:
        raise UserError(f"{path.name}: {grid.width:,} columns (at most {MAX_COLUMNS:,}); is this the right file?")


def _csv_options(separator: str) -> dict:
    return {"has_header": False, "separator": separator, "infer_schema": False, "quote_char": '"', "raise_if_empty": False}


def _read_grid(data: bytes, separator: str) -> tuple[pl.DataFrame, bool, bool]:
    """(grid, widened, cut): the records as an all-text grid with one column per field.

    The grid is as wide as the first line unless a record has more fields (or the first line is blank
    and the header wider): then as wide as the widest record (``widened``), but at most MAX_EXTRA_FIELDS
    past the first non-blank line, records wider than that cut to fit (``cut``).
    """
    options = _csv_options(separator)
    try:
        return pl.read_csv(io.BytesIO(data), truncate_ragged_lines=False, **options), False, False
    except pl.exceptions.PolarsError:
        pass  # a wider record than the first line, or a file Polars cannot read at any width
    mark = separator.encode()
    widest, first = 1, None  # delimiters per line, quoted ones too: no fewer than a one-line record's fields
    for line in io.BytesIO(data):
        fields = line.count(mark) + 1
        widest = max(widest, fields)
        if first is None and line.strip(b' \t\r\n"' + mark):
            first = fields
    limit = (first or 1) + MAX_EXTRA_FIELDS
    width = min(widest, limit)
    while True:  # a quoted line break can join lines into a record wider than any one of them
        cut = width >= limit
        try:
            grid = pl.read_csv(
                io.BytesIO(data), truncate_ragged_lines=cut, missing_columns="insert",
                schema={f"column_{i}": pl.String for i in range(1, width + 1)}, **options,
            )
            return grid, True, cut
        except pl.exceptions.PolarsError:
            if cut:
                raise
            width = min(2 * width, limit)


def _cut_extra_fields(grid: pl.DataFrame, data: bytes, separator: str, skipped: int, widened: bool, cut: bool,
                      path: Path) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The grid as wide as its header record, and the report lines (REPORT_COLUMNS) of the records below the
    header with non-empty fields past it, or None. Empty fields past it (Excel's "a,b,c,,,") are dropped.

    ``skipped`` records of the file (the "sep=" line) lead the grid but not ``data``.
    """
    if grid.height <= skipped or grid.width == 0:
        return grid, None
    if not widened and any((value or "").strip() for value in grid.row(skipped)):
        return grid, None  # the header is the first line and the grid is as wide as it
    is_blank = grid.select(
        pl.all_horizontal([pl.col(c).str.strip_chars().fill_null("") == "" for c in grid.columns]).alias("blank")
    ).to_series()
    if is_blank.all():
        return grid, None
    header_at = int(is_blank.arg_min())
    # The header record's own fields, trailing empty ones included (they name columns column_N).
    header = pl.read_csv(io.BytesIO(data), skip_rows=header_at - skipped, n_rows=1, truncate_ragged_lines=True,
                         **_csv_options(separator))
    width = min(max(header.width, 1), grid.width)
    if width == grid.width:
        return grid, None
    _check_cell_sizes(grid, path)  # the extra fields too, before any of them is copied into the report
    extra = grid.columns[width:]
    filled = [pl.col(c).str.strip_chars().fill_null("") != "" for c in extra]
    fields = pl.max_horizontal([pl.when(f).then(pl.lit(width + 1 + k)) for k, f in enumerate(filled)])
    counted = pl.when(pl.lit(cut) & (pl.col("fields") == grid.width)).then(pl.format("at least {}", "fields"))
    where = pl.when(pl.col("fields") == width + 1).then(pl.lit(f"field {width + 1}"))
    rejects = (
        grid.with_row_index("index")
        .filter((pl.col("index") > header_at) & pl.any_horizontal(filled))
        .select(
            (pl.col("index").cast(pl.Int64) + 1).alias("row"),
            fields.alias("fields"),
            pl.concat_list([pl.col(c).str.strip_chars().fill_null("") for c in extra]).alias("extra"),
        )
        .select(
            "row",
            where.otherwise(pl.format("fields {}-{}", pl.lit(width + 1), "fields")).alias("column"),
            pl.col("extra").list.head(pl.col("fields") - width).list.join(separator).alias("value"),
            pl.format(
                "row {} has {} fields but the header has {}: put quotes around a value that holds a {}",
                "row", counted.otherwise(pl.col("fields").cast(pl.String)), pl.lit(width),
                pl.lit(_DELIMITER_NAMES.get(separator, separator)),
            ).alias("reason"),
        )
    )
    return grid.select(grid.columns[:width]), rejects.cast(REPORT_COLUMNS)


def extra_field_rejects(frame: pl.DataFrame) -> pl.DataFrame | None:
    """The report lines (REPORT_COLUMNS) of the records `read_contacts_file` found with more non-empty
    fields than the header, or None; noted on the frame it returned (a frame derived from it has none)."""
    return getattr(frame, _EXTRA_FIELDS_NOTE, None)


def _unclosed_quote_row(data: bytes) -> int | None:
    """The row (header = 1) where a quoted field starts that no quote closes, if there is one: after an
    odd number of quotes, the last one opens it; the line breaks outside quotes before it count the rows."""
    parts = data.split(b'"')
    if len(parts) % 2:
        return None
    return 1 + sum(part.count(b"\n") for part in parts[0:-1:2])


def check_xlsx_container(path: Path) -> None:
    """Refuse what is not a plain .xlsx before a reader unpacks it: encrypted, not a zip, or a zip bomb."""
    with open(path, "rb") as handle:
        head = handle.read(len(OLE_MAGIC))
    if not head:
        raise UserError(f"{path.name}: the file is empty")
    if head == OLE_MAGIC:
        # Excel saves a password-protected workbook as an encrypted OLE file (so is an old .xls)
        raise UserError(f"{path.name}: the workbook is password-protected (or an old .xls); "
                        "save it without a password as .xlsx")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path.name}: cannot read as XLSX (not a zip container, which an .xlsx is; a CSV file? name it .csv)")
    try:
        with zipfile.ZipFile(path) as book:
            unpacked = sum(entry.file_size for entry in book.infolist())
            members = set(book.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise UserError(f"{path.name}: cannot read as XLSX ({error})") from None
    if "xl/workbook.xml" not in members:  # the calamine reader's message named a missing part ("_rels/.rels")
        other = next((what for member, what in OTHER_ZIP_DOCUMENTS.items() if member in members), None)
        if other is not None:
            raise UserError(f"{path.name}: is {other}")
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise UserError(f"{path.name}: unpacks to {unpacked / 2**20:,.0f} MB (at most "
                        f"{MAX_XLSX_UNPACKED_BYTES / 2**20:,.0f} MB); a damaged or hostile workbook, or save it as .csv")


def read_xlsx(path: Path, sheet: str | None = None, lone_row: bool = False,
              sheet_option: str | None = "--sheet") -> pl.DataFrame:
    """An .xlsx sheet (the first unless named) as an all-text frame; numeric phone cells keep every digit, and
    an error cell reads as the error Excel shows ("#N/A"), as a CSV export writes it (see `apply_mapping`).

    When no sheet is named and the workbook has others, an error about the sheet read names it and them
    (`FirstSheet`; ``sheet_option`` is how the caller's user chooses another, None if they cannot); so does
    `map_columns`, from the note on the frame (`first_sheet_read`).

    A formula cell is read as its saved value; a sheet with formula cells that have none (a file written by a
    program and never saved by a spreadsheet app), or only a stand-in (XlsxWriter's 0 in a workbook that asks to
    be calculated when opened), is refused, naming the first and counting the others (`untrusted_formula_cells`).
    """
    import fastexcel

    check_xlsx_container(path)

    try:
        reader = fastexcel.read_excel(str(path))
    except Exception as error:  # fastexcel raises its own exception types for corrupt files
        raise UserError(f"{path.name}: cannot read as XLSX ({str(error).splitlines()[0]})") from error
    if sheet is not None and sheet not in reader.sheet_names:
        raise UserError(f"{path.name}: no sheet named {sheet!r} (sheets: {listed_names(reader.sheet_names)})")
    names = list(reader.sheet_names)
    first = FirstSheet(names[0], tuple(names[1:]), sheet_option) if sheet is None and len(names) > 1 else None
    name = sheet if sheet is not None else names[0]
    stop = threading.Event()
    # The sheet's XML is searched for formulas without a saved value (or with a stand-in) while fastexcel reads
    # it (fastexcel lets go of the GIL): on a second core the search costs no time (see `untrusted_formula_cells`).
    with ThreadPoolExecutor(max_workers=1) as pool:
        search = pool.submit(untrusted_formula_cells, path, name, stop)
        try:
            # skip_rows=0: keep blank rows above the header, so row numbers are the sheet's own
            loaded = reader.load_sheet(name, header_row=None, dtypes="string", skip_rows=0)
            batch, cell_errors = loaded.to_arrow_with_errors()
            grid = pl.DataFrame(batch)
        except Exception as error:
            stop.set()
            raise UserError(f"{path.name}: cannot read sheet ({str(error).splitlines()[0]})") from error
        (unsaved, first_unsaved), (stand_ins, first_stand_in) = search.result()
    if cell_errors is not None:
        grid = _with_error_cells(grid, cell_errors.errors)
    if unsaved:  # before the empty-sheet and no-data-rows errors: a sheet of such cells reads as empty
        raise _unsaved_formulas_error(path, name, grid, unsaved, first_unsaved)
    if stand_ins:  # they read as 0
        raise _stand_in_formulas_error(path, name, grid, stand_ins, first_stand_in)
    if grid.width == 0:
        raise UserError(first.says(f"{path.name}: ", "is empty") if first else f"{path.name}: the sheet is empty")
    _check_grid_width(grid, path)
    # Whole-number cells can come back as "6025550199.0": drop the float tail so no digit is lost. Date
    # cells come back as "2024-01-15 00:00:00": a date without a time of day is kept as the date alone. A
    # time-only cell ("14:30") comes back on Excel's day 0, "1899-12-31 14:30:00": kept as the time alone.
    grid = grid.with_columns(
        pl.all().cast(pl.String).str.replace(r"^(\d+)\.0+$", "$1").str.replace(r"^1899-12-31 (\d{2}:\d{2}:\d{2})$", "$1")
        .str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", "$1")
    )
    frame = _with_headers(grid, path, lone_row, first_sheet=first)
    if first is not None:
        setattr(frame, _FIRST_SHEET_NOTE, first)
    return frame


def _with_error_cells(grid: pl.DataFrame, cell_errors: list) -> pl.DataFrame:
    """The grid with each Excel error cell (read as null) holding the error's text ("#N/A")."""
    found: dict[int, tuple[list[int], list[str]]] = {}
    for cell in cell_errors:
        match = _CALAMINE_ERROR.search(cell.detail)  # "Expected string but got 'Error(NA)'"
        if match is not None and match.group(1) in _EXCEL_ERROR_TEXT:
            row, column = cell.position
            rows, texts = found.setdefault(column, ([], []))
            rows.append(row)
            texts.append(_EXCEL_ERROR_TEXT[match.group(1)])
    columns = []
    for column, (rows, texts) in found.items():
        values = grid.to_series(column).cast(pl.String).clone()
        values.scatter(rows, texts)
        columns.append(values)
    return grid.with_columns(columns) if columns else grid


def formula_cells_without_value(path: Path, sheet: str,
                                stop: threading.Event | None = None) -> tuple[int, tuple[int, int] | None]:
    """How many cells of an .xlsx sheet (by name) hold a formula but no saved value, and the first one's
    (row, column), both from 1 (None if its cell has no reference). fastexcel reads such a cell as empty.

    Excel and LibreOffice save every formula's value; a program may write the formula alone (openpyxl writes
    an empty <v/>, others no <v>). A text formula's empty <v/> (t="str") is its value, empty text, as Excel
    saves =IF(A2="","",A2): not counted. See `untrusted_formula_cells`, which also counts stand-in values.
    """
    return untrusted_formula_cells(path, sheet, stop, stand_ins=False)[0]


def untrusted_formula_cells(path: Path, sheet: str, stop: threading.Event | None = None, stand_ins: bool = True
                            ) -> tuple[tuple[int, tuple[int, int] | None], tuple[int, tuple[int, int] | None]]:
    """The formula cells of an .xlsx sheet (by name) whose saved value the import cannot use, as (count, first
    cell's (row, column) from 1, or None if its cell has no reference) for each of two kinds: those without a
    saved value (`formula_cells_without_value`), then, with ``stand_ins``, those whose saved value is a stand-in:
    the number 0 in a workbook that asks to be calculated in full when opened (`_STAND_IN_VALUE`: XlsxWriter's
    formula written without its result; one written with it, or a workbook without a formula, is read as usual).

    The XML is read in pieces of whole rows (`_sheet_pieces`); until the first formula, a piece costs a search
    for one byte (`_formula_tag`), then for a few strings (`_unsaved_markers`). The search ends early, returning
    nothing found, once ``stop`` is set; a sheet it cannot find or read is left to fastexcel.
    """
    found = [[0, None], [0, None]]  # without a saved value, with a stand-in: [count, first]
    markers = None
    try:
        with zipfile.ZipFile(path) as book:
            part = _sheet_part(book, sheet)
            if part is None:
                return (0, None), (0, None)
            stand_ins = stand_ins and _calculated_when_opened(book)
            patterns = (_NO_SAVED_VALUE, _STAND_IN_VALUE) if stand_ins else (_NO_SAVED_VALUE,)
            for data, end in _sheet_pieces(book, part, stop):
                if markers is None:
                    markers = _unsaved_markers(data, end, stand_ins)
                    if markers is None:
                        continue  # no formula so far
                if markers:
                    hits = (at for marker in markers for at in _positions(data, marker, end))
                else:
                    hits = (hit.start() for pattern in patterns for hit in pattern.finditer(data, 0, end))
                cells: dict[int, tuple[re.Match, int] | None] = {}
                for at in hits:
                    cell = _cell_around(data, at)
                    if cell is not None and cell.start() not in cells:
                        kind = _untrusted_formula(data, cell, stand_ins)
                        cells[cell.start()] = None if kind is None else (cell, kind)
                for _, (cell, kind) in sorted((at, c) for at, c in cells.items() if c is not None):
                    if not found[kind][0]:
                        found[kind][1] = _cell_position(cell.group())
                    found[kind][0] += 1
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error):
        return (0, None), (0, None)
    if stop is not None and stop.is_set():
        return (0, None), (0, None)
    return tuple(found[0]), tuple(found[1])


def _calculated_when_opened(book: zipfile.ZipFile) -> bool:
    """Whether the workbook asks to be calculated in full when opened (<calcPr fullCalcOnLoad="1"/>)."""
    try:
        return _FULL_CALC_ON_LOAD.search(book.read("xl/workbook.xml")) is not None
    except KeyError:
        return False


def _unsaved_markers(data: bytes, end: int, stand_ins: bool = False) -> tuple[bytes, ...] | None:
    """The byte strings that mark a formula cell without a saved value (and, with ``stand_ins``, one saved as 0)
    in this sheet's XML, as its first formula's end tag shows it written: with its prefix ("x:"), and no space
    between tags. None before the first formula; () when the XML has space between its tags: the regular
    expressions search it then."""
    at = _formula_tag(data, end)
    if at < 0:
        return None
    tag = _FORMULA_END.search(data, max(data.rfind(b"<", 0, at), 0), end)
    if tag is None:
        return None
    if data[tag.end():tag.end() + 1].isspace():
        return ()
    x = tag.group(1) or b""
    markers = (b"</" + x + b"f></" + x + b"c>", b"/></" + x + b"c>", b"<" + x + b"v/>", b"<" + x + b"v />",
               b"<" + x + b"v></" + x + b"v>")
    zero = b"<" + x + b"v>0</" + x + b"v></" + x + b"c>"
    return markers + (b"</" + x + b"f>" + zero, b"/>" + zero) if stand_ins else markers


def _formula_tag(data: bytes, end: int) -> int:
    """Where a formula element's tag (<f>, </f>, <x:f ...>) may be in data[:end], or -1 if none is. An "f" is rare in
    a sheet's markup (and text is mostly in the shared strings part): the search for it runs at memory speed; past
    a few in text, "f>" is searched for (in "</f>": a shared formula's other cells, <f .../>, follow its first)."""
    at = data.find(b"f", 0, end)
    for _ in range(64):
        if at < 0:
            return -1
        if 0 < at < end - 1 and data[at - 1] in b"</:" and data[at + 1] in b" \t\r\n/>":
            return at
        at = data.find(b"f", at + 1, end)
    return data.find(b"f>", at, end) if at >= 0 else -1


def _positions(data: bytes, marker: bytes, end: int):
    """Where ``marker`` starts in data[:end]."""
    at = data.find(marker, 0, end)
    while at >= 0:
        yield at
        at = data.find(marker, at + 1, end)


def _untrusted_formula(data: bytes, cell: re.Match, stand_ins: bool = False) -> int | None:
    """0 if the cell whose start tag is ``cell`` holds a formula and no saved value; 1 if, with ``stand_ins``, a
    formula and the number 0 (`_STAND_IN_VALUE`); else None."""
    close = _CELL_END.search(data, cell.end())
    content = data[cell.end():close.start() if close is not None else len(data)]
    if _FORMULA_TAG.search(content) is None:
        return None
    kind = _CELL_TYPE.search(cell.group())
    kind = None if kind is None else kind.group(1)
    if _HAS_VALUE.search(content) is None:
        return 0 if kind != b"str" or _VALUE_TAG.search(content) is None else None
    return 1 if stand_ins and kind in (None, b"n") and _ZERO_VALUE.search(content) is not None else None


def _sheet_part(book: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip member holding the sheet of this name, from the workbook's list of sheets and its links."""
    from xml.etree import ElementTree

    def local(name: str) -> str:  # "{namespace}sheet" -> "sheet" (strict and transitional files differ)
        return name.rsplit("}", 1)[-1]

    try:
        workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
        links = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return None
    entry = next((e for e in workbook.iter() if local(e.tag) == "sheet" and e.get("name") == sheet), None)
    link = None if entry is None else next((v for k, v in entry.attrib.items() if local(k) == "id"), None)
    target = next((e.get("Target") for e in links.iter() if local(e.tag) == "Relationship" and e.get("Id") == link),
                  None)
    if link is None or not target:
        return None
    part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    return part if part in book.NameToInfo else None


def _sheet_pieces(book: zipfile.ZipFile, part: str, stop: threading.Event | None = None):
    """The XML of a sheet part as (buffer, end) pairs: buffer[:end] holds whole rows (a cell is never cut), read
    XLSX_SCAN_CHUNK bytes at a time; the last pair holds what follows the last row."""
    rest = b""
    with book.open(part) as stream:
        while stop is None or not stop.is_set():
            chunk = stream.read(XLSX_SCAN_CHUNK)
            if not chunk:
                break
            data = rest + chunk if rest else chunk
            end = _last_row_end(data)
            if end is None:  # no row ends yet (a very wide row): read on
                rest = data
                continue
            yield data, end
            rest = data[end:]
    if rest:
        yield rest, len(rest)


def _last_row_end(data: bytes) -> int | None:
    """Where the last "</row>" in the XML ends ("row>" can also be text: a ">" need not be escaped)."""
    at = len(data)
    while (at := data.rfind(b"row>", 0, at)) >= 0:
        start = data.rfind(b"</", 0, at)
        if start >= 0 and _ROW_END.fullmatch(data, start, at + 4):
            return at + 4
    return None


def _cell_around(data: bytes, at: int) -> re.Match | None:
    """The start tag of the cell (<c ...>) whose content holds position ``at``, or None. A "<" in XML always
    starts a tag (text escapes it), and a cell's content has a few: walk back over them."""
    for _ in range(8):
        at = data.rfind(b"<", 0, at)
        if at < 0 or _CELL_END.match(data, at):
            return None
        cell = _CELL_TAG.match(data, at)
        if cell is not None:
            return None if cell.group().endswith(b"/>") else cell
    return None


def _cell_position(tag: bytes) -> tuple[int, int] | None:
    """(row, column), both from 1, of a cell's start tag (r="AB12"); None without one (the attribute is optional)."""
    ref = _CELL_REF.search(tag)
    if ref is None:
        return None
    column = 0
    for letter in ref.group(1).upper():
        column = 26 * column + letter - 64
    return int(ref.group(2)), column


def _column_letters(column: int) -> str:
    """A column's letters (1 -> A, 28 -> AB)."""
    letters = ""
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _unsaved_formulas_error(path: Path, sheet: str, grid: pl.DataFrame, count: int,
                            first: tuple[int, int] | None) -> UserError:
    """The error for a sheet with ``count`` formula cells without a saved value, naming the first by its row and
    its column's header (its letter above or in the header row, or when the header is blank)."""
    return _formula_cells_error(path, sheet, grid, count, first, "a formula with no saved value",
                                "(the file was never opened and saved in a spreadsheet app); open and save it in "
                                "Excel or LibreOffice, or export it as CSV")


def _stand_in_formulas_error(path: Path, sheet: str, grid: pl.DataFrame, count: int,
                             first: tuple[int, int] | None) -> UserError:
    """The error for a sheet with ``count`` formula cells saved with a stand-in 0 (`_STAND_IN_VALUE`), named as
    by `_unsaved_formulas_error`. LibreOffice keeps the stand-ins unless told to recalculate: the advice says so."""
    return _formula_cells_error(path, sheet, grid, count, first, "a formula saved with 0 in place of its value",
                                "(the program that wrote the file left its calculation to a spreadsheet app); "
                                "open and save it in Excel (in LibreOffice, first Data > Calculate > Recalculate "
                                "Hard), or paste the values over the formulas")


def _formula_cells_error(path: Path, sheet: str, grid: pl.DataFrame, count: int, first: tuple[int, int] | None,
                         what: str, advice: str) -> UserError:
    """One line: where the first of ``count`` such cells is, what it holds, what to do."""
    where = f"{path.name}, sheet {listed_names([sheet])}"
    if first is not None:
        row, column = first
        where += f", row {row}, column {_column_header(path, sheet, grid, row, column)}"
    more = f", and {count - 1:,} more cell{'s' if count > 2 else ''} like it" if count > 1 else ""
    return UserError(f"{where}: {what}{more} {advice}")


def _column_header(path: Path, sheet: str, grid: pl.DataFrame, row: int, column: int) -> str:
    """How an error names the sheet's column (from 1) at this row: the header the import reads for it, else
    its letter. The grid starts at the sheet's row 1 but at its first column with a value, found from the
    sheet's first cell with a value (fastexcel does not say)."""
    letters = _column_letters(column)
    header_at = next((i for i, values in enumerate(grid.iter_rows()) if any((v or "").strip() for v in values)), None)
    if header_at is None or row - 1 <= header_at:
        return letters
    start = None
    with zipfile.ZipFile(path) as book:
        part = _sheet_part(book, sheet)
        for data, end in _sheet_pieces(book, part) if part is not None else ():
            cell = next((c for c in _CELL.finditer(data, 0, end) if c.group(2) and _HAS_VALUE.search(c.group(2))), None)
            if cell is not None:
                start = _cell_position(cell.group())
                break
    if start is None or start[0] > grid.height:
        return letters
    index = next((i for i, v in enumerate(grid.row(start[0] - 1)) if v is not None), None)
    index = None if index is None else column - start[1] + index
    if index is None or not 0 <= index < grid.width or not (grid.row(header_at)[index] or "").strip():
        return letters
    return listed_names([_name_headers(grid.row(header_at))[index]])


def read_contacts_file(path: str | Path, sheet: str | None = None, *, lone_row: bool = False,
                       sheet_option: str | None = "--sheet") -> pl.DataFrame:
    """A contacts file (CSV or XLSX) as an all-text frame: one column per header, one row per record.

    A file of a header alone is refused, unless `lone_row` (a do-not-call file may be one number).
    ``sheet_option``: how the user chooses another sheet of a workbook (named in errors about the first
    sheet, read when ``sheet`` is None); None when they cannot.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UserError(f"{path.name}: unsupported file type {suffix or '(none)'}; use .csv or .xlsx (save .xls/.ods as .xlsx)")
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UserError(f"{path.name}: {size / 2**20:,.0f} MB is over the {MAX_FILE_BYTES / 2**20:,.0f} MB import limit; split the file")
    if suffix == ".xlsx":
        return read_xlsx(path, sheet, lone_row, sheet_option)
    return read_csv_bytes(read_input_file(path, "CSV file"), path, lone_row)


# ---------------------------------------------------------------- mapping


def suggest_mapping(headers: Iterable[str]) -> dict[str, str]:
    """A target for each header from English/Spanish synonyms; anything else becomes a custom property.

    The first header of each target wins; the name may come from several part headers ("First Name" +
    "Last Name"), unless a header holds the whole name ("Full Name"): then that one alone.
    """
    keys = {header: header_key(header) for header in headers}
    whole_name = next((h for h, k in keys.items() if HEADER_SYNONYMS.get(k) == NAME and k not in NAME_PART_KEYS), None)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header, key in keys.items():
        target = HEADER_SYNONYMS.get(key)
        if target == NAME and whole_name is not None and header != whole_name:
            target = None
        if target and (target not in taken or target in MULTI_SOURCE_TARGETS):
            mapping[header] = target
            taken.add(target)
        else:
            mapping[header] = CUSTOM_PREFIX + snake_case(header)
    return mapping


def parse_map_options(options: Iterable[str]) -> dict[str, str]:
    """``--map SOURCE=TARGET`` options as {source: target}; the last '=' splits ("a=b=email")."""
    overrides: dict[str, str] = {}
    for option in options:
        source, sep, target = option.rpartition("=")
        if not sep or not source.strip():
            raise ValidationError("--map", f"{option!r} is not SOURCE=TARGET")
        overrides[source.strip()] = target
    return overrides


def resolve_mapping(headers: list[str], overrides: Mapping[str, str] | None = None,
                    source: str | None = None) -> dict[str, str]:
    """The mapping to use: the suggestion with ``overrides`` applied, checked and de-duplicated.

    ``source`` (the file's name) starts the messages of the errors it raises.
    """
    mapping = suggest_mapping(headers)
    by_fold = {h.casefold(): h for h in headers}
    explicit: dict[str, str] = {}
    for column, target in (overrides or {}).items():
        header = column if column in mapping else by_fold.get(column.strip().casefold())
        if header is None:
            raise ValidationError("--map", f"column {column!r} is not in {source or 'the file'} "
                                           f"(columns: {listed_names(headers)})")
        explicit[header] = parse_target(target)
    for header, target in explicit.items():
        if target in FIELD_TARGETS:
            clashing = [h for h, t in explicit.items() if t == target]
            if len(clashing) > 1 and target not in MULTI_SOURCE_TARGETS:
                raise ValidationError("--map", f"{target} is mapped from several columns: {', '.join(clashing)}")
            # The suggestion's columns for this target step aside and become custom properties (a name
            # given with --map replaces the suggested one rather than being joined to it).
            for other, suggested in mapping.items():
                if suggested == target and other not in explicit:
                    mapping[other] = CUSTOM_PREFIX + snake_case(other)
        mapping[header] = target
    if PHONE not in mapping.values():
        raise UserError(
            f"{source + ': ' if source else ''}no column maps to {PHONE} (columns: {listed_names(headers)}); "
            f"name it with --map 'COLUMN={PHONE}'"
        )
    return _unique_custom_keys(mapping)


def map_columns(frame: pl.DataFrame, overrides: Mapping[str, str] | None = None,
                source: str | None = None) -> dict[str, str]:
    """`resolve_mapping` for a file as read. When no column maps to the phone because a title or notes
    sit above the real header, the error names the row that looks like the header: the advice to name
    the phone column with --map could not help there."""
    try:
        return resolve_mapping(frame.columns, overrides, source)
    except ValidationError:
        raise
    except UserError:  # no column maps to the phone
        # A CSV title line of one field makes a header of one column: the fields past it are in the report note.
        extra = extra_field_rejects(frame)
        beyond = {} if extra is None else dict(zip(extra["row"], extra["value"]))
        for index, cells in enumerate(frame.head(HEADER_SEARCH_ROWS).iter_rows()):
            row = index + 2  # the frame's row i is the file's row i + 2 (rows above the header stay, blank)
            texts = [*cells, *re.split(r"[,;\t|]", beyond.get(row) or "")]
            phone = next((t.strip() for t in texts if t and HEADER_SYNONYMS.get(header_key(t)) == PHONE), None)
            # a header names several fields (or is the file's only column): a data row holding the word "Phone"
            # among a name and an e-mail is not one, and "delete the rows above it" would cost the real header
            named = sum(1 for t in texts if t and HEADER_SYNONYMS.get(header_key(t)) is not None)
            filled = sum(1 for t in texts if t and t.strip())
            if phone is not None and (named >= 2 or filled == 1):
                raise UserError(
                    f"{source + ': ' if source else ''}no column maps to {PHONE} in the header (the first non-blank "
                    f"row: {listed_names(frame.columns)}); row {row} looks like the header ({phone!r}): "
                    "delete the rows above it"
                ) from None
        first = first_sheet_read(frame)
        if first is None:
            raise
        # a summary first sheet: "no column maps to contact_phone (columns: Total, Count)" said nothing of the others
        raise UserError(
            first.says(source + ": " if source else "",
                       f"has no column that maps to {PHONE} (columns: {listed_names(frame.columns)})")
            + f", or name the phone column with --map 'COLUMN={PHONE}'"
        ) from None


def _unique_custom_keys(mapping: dict[str, str]) -> dict[str, str]:
    seen: set[str] = set()
    out: dict[str, str] = {}
    for header, target in mapping.items():
        if target.startswith(CUSTOM_PREFIX):
            base, n = target, 2
            while target in seen:
                target, n = f"{base}_{n}", n + 1
            seen.add(target)
        out[header] = target
    return out


def custom_columns(mapping: Mapping[str, str]) -> list[str]:
    """The custom-property targets of a mapping, in file order."""
    return [t for t in mapping.values() if t.startswith(CUSTOM_PREFIX)]


def column_sources(mapping: Mapping[str, str]) -> dict[str, str]:
    """Mapped column -> the file header(s) it came from, for the per-row report."""
    sources: dict[str, list[str]] = {"phone_raw": [], "phone_e164": []}
    for header, target in mapping.items():
        if target == PHONE:
            sources["phone_raw"].append(header)
            sources["phone_e164"].append(header)
        elif target != IGNORE:
            sources.setdefault(target, []).append(header)
    return {column: " + ".join(headers) for column, headers in sources.items()}


def apply_mapping(frame: pl.DataFrame, mapping: Mapping[str, str]) -> pl.DataFrame:
    """The file frame as mapped columns (MAPPED_COLUMNS + custom ones): trimmed text, blanks as null,
    blank records dropped, ``row`` the number the user sees in the file (header = row 1).

    An Excel error value (EXCEL_ERRORS: an .xlsx error cell, or that text in a CSV) is no value: null in
    every column but the phone, whose normalisation refuses the row naming the error. A record holding
    one is not blank.

    When the file had records with more fields than the header (`extra_field_rejects`), an
    EXTRA_FIELDS column follows: each such record's report line (a struct), null on the others.
    """
    def clean(column: str) -> pl.Expr:
        text = pl.col(column).str.strip_chars()
        return pl.when((text == "") | text.is_in(list(EXCEL_ERRORS))).then(None).otherwise(text)

    def sources(target: str) -> list[str]:
        return [h for h, t in mapping.items() if t == target]

    def joined(target: str) -> pl.Expr:
        cols = sources(target)
        if not cols:
            return pl.lit(None, dtype=pl.String)
        if len(cols) == 1:
            return clean(cols[0])
        parts = pl.concat_str([clean(c) for c in cols], separator=" ", ignore_nulls=True)
        return pl.when(parts == "").then(None).otherwise(parts)

    phone_text = pl.col(sources(PHONE)[0]).str.strip_chars()  # an Excel error stays, for the report to name
    phone = pl.when(phone_text == "").then(None).otherwise(phone_text).str.replace(r"^(\d+)\.0+$", "$1")
    blank = pl.all_horizontal([pl.col(c).str.strip_chars().fill_null("") == "" for c in frame.columns])
    # The row number's working name must not be one of the file's own columns ("row" or even this one).
    row_name = _ROW
    while row_name in frame.columns:
        row_name += "_"
    mapped = frame.with_row_index(row_name, offset=2)
    extra = extra_field_rejects(frame)
    if extra is not None:
        lines = extra.select(pl.col("row").cast(mapped.schema[row_name]).alias(row_name),
                             pl.struct("column", "value", "reason").alias(EXTRA_FIELDS))
        mapped = mapped.join(lines, on=row_name, how="left", maintain_order="left")
        # a record whose only content is past the header's columns is not blank: it is reported
        blank = blank & pl.col(EXTRA_FIELDS).is_null()
    return mapped.filter(~blank).select(
        pl.col(row_name).cast(pl.Int64).alias("row"),
        phone.alias("phone_raw"),
        joined(NAME).alias(NAME),
        joined(COMPANY).alias(COMPANY),
        joined(EMAIL).alias(EMAIL),
        *[joined(target).alias(target) for target in custom_columns(mapping)],
        *([EXTRA_FIELDS] if extra is not None else []),
    )


# ---------------------------------------------------------------- normalise, validate, merge


def normalise(mapped: pl.DataFrame, region: str | None, workers: int | None = None) -> pl.DataFrame:
    """The mapped frame plus phone_e164, number_type, region, time_zones and phone_error per row; a phone
    with an extension is refused (EXTENSION_REASON), not imported as its main line."""
    phones = normalise_phones(mapped["phone_raw"], region, workers=workers, refuse_extension=True)
    out = mapped.join(phones, on="phone_raw", how="left", nulls_equal=False)
    return out.with_columns(
        pl.when(pl.col("phone_raw").is_null()).then(pl.lit("phone is empty")).otherwise(pl.col("phone_error")).alias("phone_error")
    ).sort("row")


def validate(normalised: pl.DataFrame, mapping: Mapping[str, str]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(valid rows, rejects, warnings), the two reports with one line per problem: row, column, value, reason.

    A row is rejected for its phone or for more fields than its header (its values may sit in the wrong
    columns); a rejected row's other problems are listed with it. In a row kept, a field that fails its check
    (any but REQUIRED_COLUMNS: an e-mail, a name, a company, a custom property) is left empty, which an upsert
    never writes over a stored value, and listed among the warnings.
    """
    sources = column_sources(mapping)
    if EXTRA_FIELDS in normalised.columns:  # records with more fields than the header (read_csv_bytes)
        extra_rejects = normalised.filter(pl.col(EXTRA_FIELDS).is_not_null()).select("row", pl.col(EXTRA_FIELDS).struct.unnest())
        normalised = normalised.drop(EXTRA_FIELDS)
    else:
        extra_rejects = pl.DataFrame(schema=REPORT_COLUMNS)
    phone_rejects = normalised.filter(pl.col("phone_error").is_not_null()).select(
        "row", pl.lit(sources["phone_raw"]).alias("column"), pl.col("phone_raw").alias("value"),
        pl.col("phone_error").alias("reason"),
    )
    checked = normalised.select("row", "phone_e164", NAME, COMPANY, EMAIL, *custom_columns(mapping))
    failed = {**REPORT_COLUMNS, "field": pl.String}
    try:
        import_schema(custom_columns(mapping)).validate(checked, lazy=True)
        failures = pl.DataFrame(schema=failed)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases.filter(pl.col("index").is_not_null())
        rows = checked["row"]
        failures = pl.DataFrame(
            [
                {
                    "row": rows[int(case["index"])],
                    "column": sources.get(case["column"], case["column"]),
                    "value": case["failure_case"],
                    "reason": check_reason(case["column"], case["check"]),
                    "field": case["column"],
                }
                for case in cases.iter_rows(named=True)
                # A phone that failed normalisation is already reported with its precise reason.
                if not (case["column"] == "phone_e164" and normalised["phone_error"][int(case["index"])] is not None)
            ],
            schema=failed,
        )
    failures = pl.concat([failures, _zone_property_failures(normalised, mapping, sources)])
    required = failures.filter(pl.col("field").is_in(list(REQUIRED_COLUMNS)))
    blocking = pl.concat([extra_rejects["row"], phone_rejects["row"], required["row"]])
    rejected_row = pl.col("row").is_in(blocking.implode())
    rejects = pl.concat([extra_rejects.cast(REPORT_COLUMNS), phone_rejects.cast(REPORT_COLUMNS),
                         failures.filter(rejected_row).select(*REPORT_COLUMNS)]).sort("row", maintain_order=True)
    emptied = failures.filter(~rejected_row)
    warnings = emptied.select("row", "column", "value", pl.format("{}: imported without it", "reason").alias("reason"))
    left_empty = [
        pl.when(pl.col("row").is_in(in_rows)).then(None).otherwise(pl.col(field_name)).alias(field_name)
        for field_name, in_rows in emptied.group_by("field", maintain_order=True).agg("row").iter_rows()
    ]
    valid = _canonical_zones(normalised.filter(~rejected_row).with_columns(left_empty), mapping)
    return valid, rejects, warnings.sort("row", maintain_order=True)


# The custom properties that place a callee (tasks.compliance reads them to find the callee's legal calling hours)
ZONE_PROPERTIES = ("time_zone", "timezone", "tz")
STATE_PROPERTIES = ("state", "us_state", "province")
BAD_ZONE = "not a time zone (such as America/New_York); the phone's zone is used"
BAD_US_STATE = "not a US state (a name or a code such as FL); the phone's area code is used"


def _zone_names() -> dict[str, str]:
    """Every time zone this machine knows, by its name in lower case."""
    import zoneinfo

    return {name.lower(): name for name in zoneinfo.available_timezones()}


def _us_state_texts() -> list[str]:
    """What names a US state, in lower case: its code or a name (tasks.compliance.us_state)."""
    from tasks.compliance import _US_STATE_NAMES, US_STATE_ZONES

    return sorted({code.lower() for code in US_STATE_ZONES} | set(_US_STATE_NAMES))


def _zone_property_failures(frame: pl.DataFrame, mapping: Mapping[str, str], sources: Mapping[str, str]) -> pl.DataFrame:
    """A mapped time zone that is no time zone, or a US contact's state that is no US state: a failed field (imported
    without it, and said so). The callee's hours were silently taken from the phone instead."""
    failed = {**REPORT_COLUMNS, "field": pl.String}
    parts = []
    for column in custom_columns(mapping):
        key = column.removeprefix(CUSTOM_PREFIX)
        text = pl.col(column).str.strip_chars()
        if key in ZONE_PROPERTIES:
            bad, reason = ~text.str.to_lowercase().is_in(list(_zone_names())), BAD_ZONE
        elif key in STATE_PROPERTIES:
            bad, reason = (pl.col("region") == "US") & ~text.str.to_lowercase().is_in(_us_state_texts()), BAD_US_STATE
        else:
            continue
        parts.append(frame.filter(pl.col(column).is_not_null() & bad).select(
            "row", pl.lit(sources.get(column, column)).alias("column"), pl.col(column).alias("value"),
            pl.lit(reason).alias("reason"), pl.lit(column).alias("field")))
    return pl.concat(parts).cast(failed) if parts else pl.DataFrame(schema=failed)


def _canonical_zones(frame: pl.DataFrame, mapping: Mapping[str, str]) -> pl.DataFrame:
    """A mapped time zone written in another case ("america/new_york") as its name ("America/New_York")."""
    columns = [c for c in custom_columns(mapping) if c.removeprefix(CUSTOM_PREFIX) in ZONE_PROPERTIES]
    if not columns:
        return frame
    names = _zone_names()
    return frame.with_columns(
        pl.col(c).str.strip_chars().str.to_lowercase().replace_strict(names, default=pl.col(c)).alias(c) for c in columns)


def report_lines(rejects: pl.DataFrame, warnings: pl.DataFrame) -> pl.DataFrame:
    """The --report CSV: `validate`'s rejects and warnings in file order, REPORT_COLUMNS then ``outcome``: "rejected"
    (the row was not imported) or "imported" (the row was, without the field named)."""
    return pl.concat([
        rejects.select(*REPORT_COLUMNS).with_columns(outcome=pl.lit("rejected")),
        warnings.select(*REPORT_COLUMNS).with_columns(outcome=pl.lit("imported")),
    ]).sort("row", maintain_order=True)


def merge_duplicates(valid: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """One row per E.164 (later non-empty values win; ``row`` is the first occurrence) and how many merged."""
    values = [c for c in valid.columns if c not in ("row", "phone_raw", "phone_e164", "phone_error")]
    merged = (
        valid.sort("row")
        .group_by("phone_e164", maintain_order=True)
        .agg(pl.col("row").first(), *[pl.col(c).drop_nulls().last() for c in values])
    )
    return merged, valid.height - merged.height


# ---------------------------------------------------------------- writing


def campaign_country(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> str | None:
    """The campaign's country (ISO alpha-2 or None); NotFoundError when there is no such campaign."""
    row = conn.execute("select country from campaigns where campaign_id = ?", [campaign_id]).fetchone()
    if row is None:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    return row[0]


def properties_json(frame: pl.DataFrame) -> pl.Series:
    """Each row's custom columns as a JSON object text of its non-empty values ("{}" when none)."""
    customs = [c for c in frame.columns if c.startswith(CUSTOM_PREFIX)]
    if not customs:
        return pl.Series("properties", ["{}"] * frame.height, dtype=pl.String)
    encoded = frame.select(
        pl.struct([pl.col(c).alias(c[len(CUSTOM_PREFIX):]) for c in customs]).struct.json_encode().alias("properties")
    ).to_series()
    # Drop null members so a merge never blanks a stored property. Keys are snake_case, and a quote
    # inside a value is escaped, so `"key":null` can only be a member, never text in a value.
    return encoded.str.replace_all(r'"[a-z][a-z0-9_]*":null,?', "").str.replace(r",\}$", "}")


def upsert_contacts(conn: duckdb.DuckDBPyConnection, merged: pl.DataFrame, now: datetime) -> tuple[int, int]:
    """Update CRM contacts whose phone is in ``merged`` (only when a value changes) and insert the
    others; returns (inserted, updated). Runs in the caller's transaction."""
    fields = ["row", "phone_e164", NAME, COMPANY, EMAIL, "number_type", "region", "time_zones"]
    incoming = merged.select(fields).with_columns(properties_json(merged))
    conn.register("incoming_contacts", incoming)
    try:
        updated = conn.execute(
            """
            update contacts c set
                name = coalesce(i.contact_name, c.name),
                company = coalesce(i.company_name, c.company),
                email = coalesce(i.email, c.email),
                properties = json_merge_patch(c.properties, i.properties::json),
                number_type = i.number_type,
                region = i.region,
                time_zones = i.time_zones,
                updated_at = $now
            from incoming_contacts i
            where c.phone_e164 = i.phone_e164
              and (i.contact_name is not null and i.contact_name is distinct from c.name
                   or i.company_name is not null and i.company_name is distinct from c.company
                   or i.email is not null and i.email is distinct from c.email
                   or i.number_type is distinct from c.number_type
                   or i.region is distinct from c.region
                   or i.time_zones is distinct from c.time_zones
                   -- compared key by key: merging reorders keys, so the JSON text may differ
                   or len(list_filter(json_keys(i.properties::json),
                                      k -> (c.properties ->> k) is distinct from (i.properties::json ->> k))) > 0)
            """,
            {"now": now},
        ).fetchone()[0]
        inserted = conn.execute(
            """
            insert into contacts (phone_e164, name, company, email, properties, number_type, region, time_zones, created_at, updated_at)
            select i.phone_e164, i.contact_name, i.company_name, i.email, i.properties::json, i.number_type, i.region,
                   i.time_zones, $now, $now
            from incoming_contacts i
            anti join contacts c on c.phone_e164 = i.phone_e164
            order by i.row
            """,
            {"now": now},
        ).fetchone()[0]
    finally:
        conn.unregister("incoming_contacts")
    return inserted, updated


def enroll_contacts(conn: duckdb.DuckDBPyConnection, campaign_id: int, merged: pl.DataFrame, now: datetime) -> int:
    """Enroll the contacts with the phones of ``merged`` in the campaign (file order); returns how many were new.

    A contact enrolled again after a removal gets back what its earlier calls in the campaign count (the
    limits are the campaign's, not the enrollment's): its attempts, its attempts on the campaign-local day of
    the last one, its last call, the call still in flight if any, the numbering of its attempt keys
    (`call_seq`), its finish when a call was successful or not retryable, and the retry wait, number to avoid or
    `never` finish its last call's release set (`call_state.restore_retries`). Before, they started over: the
    next claim reused the key of its first call, or called it again at once past its limits, even while its
    first call was still ringing.
    """
    phones = merged.select("phone_e164", "row")
    conn.register("incoming_phones", phones)
    enrolled = conn.execute(
        """
        insert into campaign_contacts (campaign_id, contact_id, added_at, call_seq, attempts, attempts_day,
                                       attempts_on_day, last_call_at, in_flight_call_id, finished_at, finished_reason)
        with matched as (
            select c.contact_id, p.row
            from incoming_phones p
            join contacts c on c.phone_e164 = p.phone_e164
        ),
        new_enrollments as (
            select m.contact_id, m.row
            from matched m
            anti join campaign_contacts e on e.campaign_id = $campaign_id and e.contact_id = m.contact_id
        ),
        earlier as (
            -- the re-enrolled contacts' calls in the campaign, with the campaign-local day of each
            select k.*, (k.queued_at at time zone z.time_zone)::date as local_day
            from calls k cross join (select time_zone from campaigns where campaign_id = $campaign_id) z
            where k.campaign_id = $campaign_id and k.contact_id in (select contact_id from new_enrollments)
        ),
        per_contact as (
            select contact_id,
                   -- attempt keys are '<campaign>.<contact>.<call_seq>'
                   max(split_part(attempt_key, '.', 3)::integer) as call_seq,
                   count(*) filter (where counts_as_attempt)::integer as attempts,
                   max(local_day) filter (where counts_as_attempt) as attempts_day,
                   max(queued_at) as last_call_at,
                   -- in flight until released: an ended call waits for its analysis (`call_state`: "done"); a
                   -- contact re-enrolled in that gap was called again before its first call's success arrived
                   max(call_id) filter (where {holds_contact}) as in_flight_call_id,
                   min(coalesce(analyzed_at, ended_at, queued_at)) filter (where call_successful) as successful_at,
                   min(coalesce(ended_at, queued_at)) filter (where disconnect_reason = 'invalid_destination')
                       as not_retryable_at
            from earlier
            group by contact_id
        ),
        on_day as (
            select e.contact_id, count(*)::integer as attempts_on_day
            from earlier e join per_contact p on p.contact_id = e.contact_id and e.local_day = p.attempts_day
            where e.counts_as_attempt
            group by e.contact_id
        ),
        final as (
            select n.contact_id, n.row, coalesce(p.call_seq, 0) as call_seq, coalesce(p.attempts, 0) as attempts,
                   p.attempts_day, coalesce(d.attempts_on_day, 0) as attempts_on_day, p.last_call_at,
                   p.in_flight_call_id,
                   coalesce(p.successful_at, p.not_retryable_at) as finished_at,
                   case when p.successful_at is not null then 'successful'
                        when p.not_retryable_at is not null then 'not_retryable' end as finished_reason
            from new_enrollments n left join per_contact p using (contact_id) left join on_day d using (contact_id)
        )
        select $campaign_id, contact_id, $now, call_seq, attempts, attempts_day, attempts_on_day, last_call_at,
               in_flight_call_id, finished_at, finished_reason
        from final order by row
        """.replace("{holds_contact}", holds_contact_sql()),
        {"campaign_id": campaign_id, "now": now},
    ).fetchone()[0]
    conn.unregister("incoming_phones")
    if enrolled:
        from tasks.call_state import restore_retries  # the retry policy's imports (numpy), only when enrolling

        restore_retries(conn, campaign_id, now)  # the wait (or `never` finish) its last call's release set
    return enrolled


def record_import(conn: duckdb.DuckDBPyConnection, result: ImportResult, now: datetime) -> int:
    """Add the audit row of a committed import (import_runs); returns its id."""
    return conn.execute(
        """
        insert into import_runs (campaign_id, file_name, mapping, country, rows_read, imported, updated, enrolled,
                                 duplicates_merged, invalid, warned, imported_at)
        values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        returning import_id
        """,
        [result.campaign_id, Path(result.file).name, json.dumps(result.mapping, ensure_ascii=False), result.country,
         result.rows, result.imported, result.updated, result.enrolled, result.duplicates_merged, result.invalid,
         result.warned, now],
    ).fetchone()[0]


def check_report_path(path: str | Path, keep: Mapping[Path, str] | None = None) -> Path:
    """The --report CSV to write, refused (before any import work is written) when it cannot be written, is
    one of the files in `keep` ({file: what it is}: the store, the imported file), is not named .csv or is in a
    folder that does not exist: a report replaces its target whole (`--report data/campaigns.duckdb` replaced
    the database with a two-line CSV, `--report campaign.yaml` a YAML), and a mistyped folder was created."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--report {path}: is a folder; name the CSV file, e.g. {path / 'rejected.csv'}")
    for kept, what in (keep or {}).items():
        if same_file(path, kept):  # a link to it too
            raise UserError(f"--report {path}: is {what} ({kept}), which the report would replace; name another file")
    if path.suffix.lower() != ".csv":  # as the exports' --out
        raise UserError(f"--report {path}: must end in .csv")
    folder = path.parent
    if not folder.exists():
        raise UserError(f"--report {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"--report {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"--report {path}: cannot write there (permission)")
    return path


def stage_report(report: pl.DataFrame, path: str | Path, keep: Mapping[Path, str] | None = None) -> Path:
    """Write the per-row report to a temporary file beside ``path``; the import moves it into place once committed."""
    path = check_report_path(path, keep)
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        write_report(report, staged)
    except OSError as error:
        staged.unlink(missing_ok=True)
        raise UserError(f"--report {path}: cannot write ({error.strerror or error})") from None
    return staged


def write_report(report: pl.DataFrame, path: str | Path) -> Path:
    """The per-row report as CSV (`report_lines`: row, column, value, reason, outcome), formula-looking text
    neutralised: the values come from the imported file, and the report is opened in a spreadsheet."""
    from tasks.excel import neutralise_formulas

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    neutralise_formulas(report).write_csv(path)
    return path


# ---------------------------------------------------------------- the contact list


def remove_contact_from_campaign(conn: duckdb.DuckDBPyConnection, campaign_id: int, contact_id: int) -> None:
    """Delete one enrollment; the CRM contact and its past calls stay. NotFoundError if the campaign does not exist or
    the contact is not enrolled in it."""
    deleted = conn.execute(
        "delete from campaign_contacts where campaign_id = ? and contact_id = ?", [campaign_id, contact_id]
    ).fetchone()[0]
    if not deleted:
        campaign_country(conn, campaign_id)  # no such campaign: says so, not "not enrolled"
        raise NotFoundError(f"contact {contact_id} is not enrolled in campaign {campaign_id}")


def edit_contact(
    conn: duckdb.DuckDBPyConnection, contact_id: int, changes: Mapping[str, str | None], now: datetime,
    default_country: str | None = None,
) -> dict:
    """Change a CRM contact's name/company/email/phone and custom properties (``key`` or ``custom:key``).

    A phone is re-validated and renormalised (a national number is read in ``default_country``,
    else in the contact's current region); a phone already used by another contact, or with an extension,
    is refused. An empty value clears a field or property. Returns the contact as stored.
    """
    row = conn.execute("select properties, region from contacts where contact_id = ?", [contact_id]).fetchone()
    if row is None:
        raise NotFoundError(f"contact {contact_id} does not exist")
    properties = json.loads(row[0]) if row[0] else {}
    sets: dict[str, object] = {}
    problems: list[ValidationError] = []  # every bad value at once, not the first one only
    region = check_region(default_country) or row[1]
    for key, raw in changes.items():
        try:
            _edit_one(conn, contact_id, key, raw, region, properties, sets)
        except ValidationError as error:
            problems.append(error)
    if problems:
        from schemas.campaign import combined_error

        raise combined_error(problems)
    if sets:
        columns = list(sets)  # names come from the fixed set above, never from the caller
        assignments = ", ".join(f"{c} = ?" for c in columns)
        conn.execute(
            f"update contacts set {assignments}, updated_at = ? where contact_id = ?",
            [*(sets[c] for c in columns), now, contact_id],
        )
        # its calling zone and state follow the new number (or a state property) now, not at the next claim
        from tasks.compliance import resolve_zones

        resolve_zones(conn, [contact_id])
    return get_contact(conn, contact_id)


def _edit_one(conn: duckdb.DuckDBPyConnection, contact_id: int, key: str, raw: str | None, region: str | None,
              properties: dict, sets: dict[str, object]) -> None:
    """One change of `edit_contact` checked and added to `sets` (a property into `properties`); ValidationError if bad."""
    value = raw.strip() if isinstance(raw, str) else raw
    value = value or None
    if key == "phone":
        if value is None:
            raise ValidationError("phone", "a contact needs a phone")
        e164, number_type, new_region, zones, reason = normalise_phone(value, region, refuse_extension=True)
        if reason:
            raise ValidationError("phone", f"{value!r}: {reason}")
        other = conn.execute(
            "select contact_id from contacts where phone_e164 = ? and contact_id <> ?", [e164, contact_id]
        ).fetchone()
        if other:
            raise ValidationError("phone", f"{e164} already belongs to contact {other[0]}")
        sets.update(phone_e164=e164, number_type=number_type, region=new_region, time_zones=zones)
    elif key in EDITABLE_FIELDS:
        _check_field(key, value)
        sets[EDITABLE_FIELDS[key]] = value
    else:
        given = key[len(CUSTOM_PREFIX):] if key.startswith(CUSTOM_PREFIX) else key
        if not header_key(given):  # snake_case would quietly call "!!!" "column"
            raise ValidationError("property", f"{given!r} is not a property name (use letters, digits and _)")
        name = snake_case(given)
        if value is None:
            properties.pop(name, None)
        elif len(value) > PROPERTY_MAX:  # the import's limit for a custom property
            raise ValidationError(name, f"longer than {PROPERTY_MAX:,} characters ({len(value):,})")
        else:
            properties[name] = value
        sets["properties"] = json.dumps(properties, ensure_ascii=False)


def _check_field(key: str, value: str | None) -> None:
    frame = pl.DataFrame(
        {"row": [2], "phone_e164": ["+10000000000"], NAME: [value if key == "name" else None],
         COMPANY: [value if key == "company" else None], EMAIL: [value if key == "email" else None]},
        schema={"row": pl.Int64, "phone_e164": pl.String, NAME: pl.String, COMPANY: pl.String, EMAIL: pl.String},
    )
    try:
        import_schema([]).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        case = errors.failure_cases.row(0, named=True)
        raise ValidationError(key, check_reason(case["column"], case["check"])) from None


def get_contact(conn: duckdb.DuckDBPyConnection, contact_id: int) -> dict:
    """One CRM contact as a dict (properties decoded); NotFoundError if missing."""
    cursor = conn.execute("select * from contacts where contact_id = ?", [contact_id])
    row = cursor.fetchone()
    if row is None:
        raise NotFoundError(f"contact {contact_id} does not exist")
    contact = dict(zip([d[0] for d in cursor.description], row))
    contact["properties"] = json.loads(contact["properties"]) if contact["properties"] else {}
    return contact


# The Contact List export's own columns, headed as the tab heads them: header → SQL over the enrollment
# `e`, its contact `c` and its Contact List row `s` (kept by aggregate_metrics as the tab reads it: an
# enrollment it has not seen yet has zeros, as in the tab). Times are the campaign's local times, as in
# the tab and the Call Logs export; the fields come first, the figures and the enrollment time last.
EXPORT_FIELD_COLUMNS: list[tuple[str, str]] = [
    ("Contact ID", "c.contact_id"),
    ("Phone Number", "c.phone_e164"),
    ("Name", "c.name"),
    ("Company", "c.company"),
    ("Email", "c.email"),
]
EXPORT_STATS_COLUMNS: list[tuple[str, str]] = [
    ("Attempts", "coalesce(s.attempts, 0)"),
    ("Connected", "coalesce(s.connected, 0)"),
    ("Successful", "coalesce(s.successful, 0)"),
    ("Credits", "coalesce(s.credits, 0)"),
    ("Duration (s)", "coalesce(s.total_duration_seconds, 0)"),
    ("Last Disconnection", "s.last_disconnect_reason"),
    ("Last Call Date", "timezone($time_zone, s.last_call_at)"),
    ("Created At", "timezone($time_zone, e.added_at)"),
]


def contacts_for_export(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> pl.DataFrame:
    """The Contact List export's rows, in enrollment order: the contact's fields, each custom property as
    its own column (sorted by name), then the tab's figures and Created At (campaign-local times).

    A property named like one of the export's headers is headed `custom_<name>`, prefixed again until no
    column has that name (a re-imported export brings its columns back as properties).
    """
    from tasks.metrics import _campaign_zone

    time_zone = _campaign_zone(conn, campaign_id)
    select_list = ", ".join(f'{expr} as "{header}"' for header, expr in EXPORT_FIELD_COLUMNS + EXPORT_STATS_COLUMNS)
    base = conn.execute(
        f"""
        with enrolled as (
            select contact_id, added_at, enroll_seq from campaign_contacts where campaign_id = $campaign_id
        ),
        final as (
            select {select_list}, c.properties::varchar as properties
            from enrolled e
            join contacts c using (contact_id)
            left join contact_stats s on s.campaign_id = $campaign_id and s.contact_id = e.contact_id
            order by e.enroll_seq
        )
        select * from final
        """,
        {"campaign_id": campaign_id, "time_zone": time_zone},
    ).pl()
    decoded = [json.loads(p) if p else {} for p in base["properties"].to_list()]
    keys = sorted({k for d in decoded for k in d})
    custom = pl.DataFrame({k: [None if d.get(k) is None else str(d.get(k)) for d in decoded] for k in keys},
                          schema=dict.fromkeys(keys, pl.String))
    fields = [header for header, _ in EXPORT_FIELD_COLUMNS]
    stats = [header for header, _ in EXPORT_STATS_COLUMNS]
    taken = {*fields, *stats, *keys}
    renames = {}
    for key in keys:
        if key in fields or key in stats:
            free = f"custom_{key}"
            while free in taken:
                free = f"custom_{free}"
            renames[key] = free
            taken.add(free)
    return pl.concat([base.select(fields), custom.rename(renames), base.select(stats)], how="horizontal")


def export_contacts(conn: duckdb.DuckDBPyConnection, campaign_id: int, out: str | Path) -> Path:
    """The campaign's contact list as .xlsx (`contacts_for_export`), formula-looking text neutralised;
    the file appears complete or not at all."""
    from tasks.excel import neutralise_formulas, write_xlsx

    frame = contacts_for_export(conn, campaign_id)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    zone = conn.execute("select time_zone from campaigns where campaign_id = ?", [campaign_id]).fetchone()
    write_xlsx(neutralise_formulas(frame), path, sheet_name="Contacts", time_zone=zone[0] if zone else None)
    return path
