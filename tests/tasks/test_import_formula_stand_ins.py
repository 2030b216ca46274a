"""An .xlsx whose formula cells hold a stand-in instead of their value is refused; one whose values can be trusted
is read as usual.

XlsxWriter (and so pandas' and polars' writers) saves each formula with the number 0 unless its caller gives the
result, and has every workbook it makes ask to be calculated in full when opened (<calcPr fullCalcOnLoad="1"/>),
which Excel does and the import's reader does not: a phone or name computed by a formula read as "0". Excel and
LibreOffice save the values they calculated and no such request: their 0 is a result.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from tasks import contacts_import as ci
from tasks.errors import UserError

STAND_IN = ("a formula saved with 0 in place of its value{} (the program that wrote the file left its calculation to "
            "a spreadsheet app); open and save it in Excel (in LibreOffice, first Data > Calculate > Recalculate "
            "Hard), or paste the values over the formulas")
# What Excel and LibreOffice write: no request to calculate on opening (LibreOffice 7.4's own line).
SAVED_CALC = '<calcPr iterateCount="100" refMode="A1" iterate="false" iterateDelta="0.0001"/>'


def _xlsxwriter_book(path: Path, rows: int = 3, results: bool = False, sheets: tuple[str, ...] = ("Contacts",)) -> Path:
    """What a script writes with XlsxWriter: Phone ="+1"&B2 and Name ="Contact "&B2 as formulas (with their
    results when ``results``, else XlsxWriter's stand-in 0), a Local number and a Calls count of 0 as plain cells;
    on each of ``sheets``."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    for name in sheets:
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, ["Phone", "Local", "Name", "Calls"])
        for row in range(1, rows + 1):
            local = f"60255501{row:02}"
            if results:
                sheet.write_formula(row, 0, f'="+1"&B{row + 1}', None, "+1" + local)
                sheet.write_formula(row, 2, f'="Contact "&B{row + 1}', None, "Contact " + local)
            else:
                sheet.write_formula(row, 0, f'="+1"&B{row + 1}')
                sheet.write_formula(row, 2, f'="Contact "&B{row + 1}')
            sheet.write_string(row, 1, local)
            sheet.write_number(row, 3, 0)  # a plain 0, not a formula: a value like any other
    book.close()
    return path


def _rewritten(source: Path, path: Path, sheet_xml: str | None = None, calc: str | None = None) -> Path:
    """A copy of the workbook at ``source`` with its first sheet's XML and/or its <calcPr .../> replaced."""
    with zipfile.ZipFile(source) as book, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in book.infolist():
            content = book.read(item)
            if item.filename == "xl/worksheets/sheet1.xml" and sheet_xml is not None:
                content = sheet_xml.encode()
            if item.filename == "xl/workbook.xml" and calc is not None:
                content, found = re.subn(rb"<calcPr\b[^>]*/>", calc.encode(), content)
                assert found == 1
            out.writestr(item.filename, content)
    return path


def _book_of_rows(path: Path, rows: list[str], calc: str, prefix: str = "", spaced: bool = False) -> Path:
    """A workbook whose sheet Contacts holds these rows of cells (written with ``prefix``: x:c, x:f ...; spaced: a
    line break and indent between tags) and whose workbook part has this <calcPr>."""
    from tests.tasks.test_contacts_import import _xlsx_of_sheet_xml

    written = _xlsx_of_sheet_xml(path.with_name(path.stem + ".rows.xlsx"), rows, prefix, spaced, sheet_name="Contacts")
    return _rewritten(written, path, calc=calc)


def _text(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def _message(path: Path, where: str, more: str = "") -> str:
    return f"{path.name}, sheet Contacts, {where}: " + STAND_IN.format(more)


def test_xlsxwriter_formulas_without_their_results_are_refused_naming_the_first(tmp_path):
    # the phones and names read as "0": every row was rejected, or the names imported as "0"
    path = _xlsxwriter_book(tmp_path / "contacts.xlsx")
    with pytest.raises(UserError) as raised:
        ci.read_contacts_file(path)
    assert str(raised.value) == _message(path, "row 2, column Phone", ", and 5 more cells like it")
    from tasks.compliance import read_dnc_rows  # the do-not-call import reads a workbook the same way

    with pytest.raises(UserError) as raised:
        read_dnc_rows(path)
    assert str(raised.value) == _message(path, "row 2, column Phone", ", and 5 more cells like it")
    assert ci.untrusted_formula_cells(path, "Contacts") == ((0, None), (6, (2, 1)))


def test_the_first_stand_in_is_named_by_its_header_or_its_letter(tmp_path):
    import xlsxwriter

    path = tmp_path / "one.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Contacts")
    sheet.write_row(0, 0, ["Phone", "Name", ""])
    sheet.write_row(1, 0, ["+16025550101", "Ann"])
    sheet.write_formula(6, 1, '=UPPER("bo")')  # B7, under the Name header
    book.close()
    with pytest.raises(UserError) as raised:
        ci.read_contacts_file(path)
    assert str(raised.value) == _message(path, "row 7, column Name")
    sheet_xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    beside = _rewritten(path, tmp_path / "beside.xlsx", sheet_xml.replace('r="B7"', 'r="C7"'))  # no header above
    with pytest.raises(UserError, match=r"^beside\.xlsx, sheet Contacts, row 7, column C: a formula saved with 0 "):
        ci.read_contacts_file(beside)


def test_the_import_command_refuses_stand_ins_and_writes_nothing(campaign_db, capsys, tmp_path):
    # good phones, names computed by a formula: every contact was imported named "0"
    import xlsxwriter

    from tests.flows.test_cli_input_errors import refused

    path = tmp_path / "contacts.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Contacts")
    sheet.write_row(0, 0, ["First", "Last", "Name", "Phone"])
    for row in range(1, 4):
        sheet.write_row(row, 0, [f"Ann{row}", "Lee"])
        sheet.write_formula(row, 2, f'=A{row + 1}&" "&B{row + 1}')
        sheet.write_string(row, 3, f"+160255501{row:02}")
    book.close()
    message = refused(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path))
    assert message == _message(path, "row 2, column Name", ", and 2 more cells like it")
    assert refused(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path), "--dry-run") == message
    assert refused(capsys, campaign_db["db"], "dnc", "import", str(path)) == message


def test_xlsxwriter_formulas_with_their_results_and_files_without_formulas_are_read(tmp_path):
    # the workbook asks to be calculated when opened, but the caller saved each formula's result: read as saved
    path = _xlsxwriter_book(tmp_path / "results.xlsx", results=True)
    assert ci.untrusted_formula_cells(path, "Contacts") == ((0, None), (0, None))
    assert ci.read_contacts_file(path).rows() == [
        (f"+160255501{r:02}", f"60255501{r:02}", f"Contact 60255501{r:02}", "0") for r in (1, 2, 3)]
    # XlsxWriter asks so in every workbook it makes: one without a formula (its number 0 a plain value) is read
    import xlsxwriter

    plain = tmp_path / "plain.xlsx"
    book = xlsxwriter.Workbook(str(plain))
    book.add_worksheet("Contacts").write_row(0, 0, ["Phone", "Calls"])
    book.worksheets()[0].write_row(1, 0, ["+16025550101", 0])
    book.close()
    assert b'fullCalcOnLoad="1"' in zipfile.ZipFile(plain).read("xl/workbook.xml")
    assert ci.read_contacts_file(plain).rows() == [("+16025550101", "0")]


def test_a_formula_saved_as_0_by_a_spreadsheet_app_is_its_value(tmp_path):
    # Excel and LibreOffice save what they calculated and no request to calculate again: =COUNT(...) is 0
    rows = [
        _text("A1", "Phone") + _text("B1", "Calls"),
        _text("A2", "+16025550102") + '<c r="B2" s="0" t="n"><f aca="false">COUNT(C2:D2)</f><v>0</v></c>',
        _text("A3", "+16025550103") + '<c r="B3"><f>COUNT(C3:D3)</f><v>0</v></c>',
    ]
    path = _book_of_rows(tmp_path / "saved.xlsx", rows, SAVED_CALC)
    assert ci.untrusted_formula_cells(path, "Contacts") == ((0, None), (0, None))
    assert ci.read_contacts_file(path).rows() == [("+16025550102", "0"), ("+16025550103", "0")]
    assert ci.read_contacts_file(_rewritten(_xlsxwriter_book(tmp_path / "xw.xlsx"), tmp_path / "excel.xlsx",
                                            calc='<calcPr calcId="191029"/>'))["Calls"].to_list() == ["0"] * 3
    # the same cells in a workbook that asks to be calculated when opened are stand-ins
    path = _book_of_rows(tmp_path / "unsaved.xlsx", rows, '<calcPr calcId="124519" fullCalcOnLoad="1"/>')
    assert ci.untrusted_formula_cells(path, "Contacts") == ((0, None), (2, (2, 2)))
    with pytest.raises(UserError) as raised:
        ci.read_contacts_file(path)
    assert str(raised.value) == _message(path, "row 2, column Calls", ", and 1 more cell like it")


@pytest.mark.parametrize("prefix, spaced", [("", False), ("x", False), ("", True)], ids=["plain", "prefixed", "spaced"])
@pytest.mark.parametrize("calc", ['<calcPr calcId="124519" fullCalcOnLoad="1"/>',
                                  '<calcPr fullCalcOnLoad="true" calcId="191029" calcMode="auto"/>'])
def test_every_way_of_writing_a_stand_in_is_found_and_only_a_stand_in(tmp_path, prefix, spaced, calc):
    rows = [
        _text("A1", "Phone") + _text("B1", "Local") + _text("C1", "Name"),
        # XlsxWriter's stand-in, then one with the number type written, then a shared formula's other cell
        '<c r="A2" s="1"><f>"+1"&amp;B2</f><v>0</v></c>' + _text("B2", "6025550102"),
        '<c r="A3" t="n"><f t="shared" ref="A3:A4" si="0">"+1"&amp;B3</f><v>0</v></c>' + _text("B3", "6025550103"),
        '<c r="A4"><f t="shared" si="0"/><v>0</v></c>' + _text("B4", "6025550104"),
        # results, read as saved: text 0 (a caller's "0"), FALSE, another number, an array formula's
        '<c r="A5" t="str"><f>"+1"&amp;B5</f><v>+16025550105</v></c>' + '<c r="C5" t="str"><f>"0"</f><v>0</v></c>',
        '<c r="A6" t="str"><f>"+1"&amp;B6</f><v>+16025550106</v></c>' + '<c r="C6" t="b"><f>1=2</f><v>0</v></c>',
        '<c r="A7" t="str"><f>"+1"&amp;B7</f><v>+16025550107</v></c>' + '<c r="C7"><f>1-1.5</f><v>-0.5</v></c>',
        # and a plain 0, no formula
        '<c r="A8" t="str"><f t="array" ref="A8">"+1"&amp;B8</f><v>+16025550108</v></c><c r="C8"><v>0</v></c>',
    ]
    path = _book_of_rows(tmp_path / "book.xlsx", rows, calc, prefix, spaced)
    with pytest.raises(UserError) as raised:
        ci.read_contacts_file(path)
    assert str(raised.value) == _message(path, "row 2, column Phone", ", and 2 more cells like it")
    assert ci.untrusted_formula_cells(path, "Contacts") == ((0, None), (3, (2, 1)))
    assert ci.formula_cells_without_value(path, "Contacts") == (0, None)
    rows[1:4] = [_text(f"A{r}", f"+160255501{r:02}") + _text(f"B{r}", f"60255501{r:02}") for r in (2, 3, 4)]
    path = _book_of_rows(tmp_path / "results.xlsx", rows, calc, prefix, spaced)
    assert ci.read_contacts_file(path)["Name"].to_list() == [None, None, None, "0", "false", "-0.5", "0"]


def test_only_the_sheet_imported_counts(tmp_path):
    import xlsxwriter

    path = tmp_path / "two.xlsx"
    book = xlsxwriter.Workbook(str(path))
    first = book.add_worksheet("Contacts")
    first.write_row(0, 0, ["Phone", "Name"])
    first.write_row(1, 0, ["+16025550101", "Ann"])
    totals = book.add_worksheet("Totals")  # a summary sheet of formulas beside the contacts
    totals.write_row(0, 0, ["Phone", "Contacts"])
    totals.write_formula(1, 1, "=COUNTA(Contacts!A:A)-1")
    book.close()
    assert ci.read_contacts_file(path).rows() == [("+16025550101", "Ann")]
    with pytest.raises(UserError) as raised:
        ci.read_contacts_file(path, sheet="Totals")
    assert str(raised.value) == "two.xlsx, sheet Totals, row 2, column Contacts: " + STAND_IN.format("")


def test_formulas_without_a_value_are_named_before_stand_ins(tmp_path):
    # XlsxWriter writes an empty <v> for a result given as "": the error for those (open and save) comes first
    import xlsxwriter

    path = tmp_path / "both.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Contacts")
    sheet.write_row(0, 0, ["Phone", "Name"])
    sheet.write_formula(1, 0, '="+16025550101"')
    sheet.write_formula(1, 1, '="Ann"', None, "")
    book.close()
    assert ci.untrusted_formula_cells(path, "Contacts") == ((1, (2, 2)), (1, (2, 1)))
    with pytest.raises(UserError, match=r"^both\.xlsx, sheet Contacts, row 2, column Name: a formula with no saved "
                                        r"value \(the file was never opened"):
        ci.read_contacts_file(path)


def test_stand_ins_are_counted_across_the_pieces_the_sheet_is_read_in(tmp_path, monkeypatch):
    path = _xlsxwriter_book(tmp_path / "many.xlsx", rows=300)
    monkeypatch.setattr(ci, "XLSX_SCAN_CHUNK", 97)  # rows cut at every place
    with pytest.raises(UserError) as raised:
        ci.read_contacts_file(path)
    assert str(raised.value) == _message(path, "row 2, column Phone", ", and 599 more cells like it")
    assert ci.untrusted_formula_cells(path, "Contacts") == ((0, None), (600, (2, 1)))
