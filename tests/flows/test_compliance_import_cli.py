"""`campaigns rules import` and `campaigns dnc import`: what a file says is what is stored, or one error line."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.flows.cli_run import run
from tests.flows.test_cli_input_errors import RULES_CSV, refused, write

# ------------------------------------------------------------------ rules import


def shipped_lines() -> list[str]:
    return RULES_CSV.read_text(encoding="utf-8").splitlines()


def stored_rules(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute("select rule_id, country, subdivision, mon, sat, sun, max_calls_24h, max_calls_30d, source"
                            " from calling_rules order by rule_id").fetchall()


@pytest.mark.parametrize(("copied", "rule_id"), [("US,", "US-STRICT"), ("US-FL,", "US-FL-2")])
def test_rules_import_refuses_two_rules_for_one_place(campaign_db, capsys, tmp_path, copied, rule_id):
    # US-STRICT beside US (both country US, no subdivision) was accepted; only one of them ever applied
    lines = shipped_lines()
    first = 1 + next(i for i, line in enumerate(lines) if line.startswith(copied))
    twin = lines[first - 1].replace(copied, f"{rule_id},", 1).replace("08:00-21:00", "09:00-20:00")
    rules = write(tmp_path / "rules.csv", "\n".join([*lines, twin]) + "\n")
    assert refused(capsys, campaign_db["db"], "rules", "import", str(rules)) == (
        f"{rules} row {len(lines) + 1} country: rule {rule_id} has the same country and subdivision as rule "
        f"{copied.rstrip(',')} (row {first}); one rule per place")


def test_rules_import_names_both_rows_of_a_repeated_rule_id(campaign_db, capsys, tmp_path):
    lines = shipped_lines()
    rules = write(tmp_path / "rules.csv", "\n".join([*lines, lines[1]]) + "\n")
    assert refused(capsys, campaign_db["db"], "rules", "import", str(rules)) == (
        f"{rules} row {len(lines) + 1} rule_id: rule US appears more than once (first in row 2)")


@pytest.mark.parametrize("separator", [";", "\t"], ids=["semicolon", "tab"])
@pytest.mark.parametrize("sep_line", [False, True], ids=["detected", "sep-line"])
def test_rules_import_reads_a_semicolon_or_tab_separated_file(campaign_db, capsys, tmp_path, separator, sep_line):
    # European Excel saves `;`: every column was "missing" (the header read as one column)
    db = campaign_db["db"]
    # the store holds the shipped rules (the migration installs data/calling_rules.csv)
    expected = [(*row[:-1], row[-1].replace(",", separator)) for row in stored_rules(db)]
    text = RULES_CSV.read_text(encoding="utf-8").replace(",", separator)  # as `sed 's/,/;/g'` (quoted commas too)
    rules = write(tmp_path / "rules.csv", (f"sep={separator}\n" if sep_line else "") + text)
    code, out, err = run(capsys, db, "rules", "import", str(rules))
    assert (code, out, err) == (0, "5 rules in force\n", ""), err
    assert stored_rules(db) == expected


def test_rules_import_counts_a_sep_line_as_row_1(campaign_db, capsys, tmp_path):
    text = RULES_CSV.read_text(encoding="utf-8").replace(",", ";").replace("US-FL;US;", "US-FL;USA;", 1)
    rules = write(tmp_path / "rules.csv", "sep=;\r\n" + text)
    assert refused(capsys, campaign_db["db"], "rules", "import", str(rules)) == (
        f"{rules} row 4 country: 'USA' is not an ISO 3166 alpha-2 country code (e.g. US)")


def test_rules_import_names_the_row_a_spreadsheet_shows(campaign_db, capsys, tmp_path):
    # a source cell over three lines moved every later row two rows down ("row 6" for the FR rule in row 4)
    lines = shipped_lines()
    lines[1] = lines[1].replace('"47 CFR', '"Sources:\n47 CFR\nsee', 1)
    lines[3] = lines[3].replace("FR,FR,,10:00-13:00 14:00-20:00,", "FR,FR,,10:00-13:00 12:00-20:00,", 1)
    lines.insert(3, "")  # a blank line is a row of the sheet too
    rules = write(tmp_path / "rules.csv", "\n".join(lines) + "\n")
    assert refused(capsys, campaign_db["db"], "rules", "import", str(rules)) == (
        f"{rules} row 5 mon: windows 10:00-13:00 and 12:00-20:00 overlap")


@pytest.mark.parametrize("multiline", [False, True])
def test_rules_import_names_a_short_row_as_a_spreadsheet_shows_it(campaign_db, capsys, tmp_path, multiline):
    # the row was the file's physical line: a source cell over three lines moved every later row by two
    lines = shipped_lines()
    header_fields = len(lines[0].split(","))
    if multiline:
        lines[1] = lines[1].replace('"47 CFR', '"Sources:\n\n47 CFR', 1)
    lines[3] = ",".join(lines[3].split(",")[:4])
    rules = write(tmp_path / "short.csv", "\n".join(lines) + "\n")
    assert refused(capsys, campaign_db["db"], "rules", "import", str(rules)) == (
        f"{rules} row 4: 4 fields, the header has {header_fields} (a missing or extra comma?)")


def test_rules_import_keeps_a_multiline_source(campaign_db, capsys, tmp_path):
    db = campaign_db["db"]
    lines = shipped_lines()
    lines[1] = lines[1].replace('"47 CFR', '"Sources:\n47 CFR', 1)
    rules = write(tmp_path / "rules.csv", "\n".join(lines) + "\n")
    code, _out, err = run(capsys, db, "rules", "import", str(rules))
    assert (code, err) == (0, ""), err
    assert next(row for row in stored_rules(db) if row[0] == "US")[-1].startswith("Sources:\n47 CFR 64.1200")


# ------------------------------------------------------------------ dnc import


def dnc_rows(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute("select pattern, reason from do_not_call order by pattern").fetchall()


def test_dnc_import_says_how_many_were_already_listed(campaign_db, capsys, tmp_path):
    # a re-import said "added 0 from FILE" where `dnc add` says "(2 already listed)"
    db = campaign_db["db"]
    numbers = write(tmp_path / "dnc.csv", "Phone\n+16025550111\n+16025550112\n+1 602 555 0111\n")
    assert run(capsys, db, "dnc", "import", str(numbers)) == (0, f"added 2 from {numbers}\n", "")
    more = write(tmp_path / "more.csv", "Phone\n+16025550112\n+16025550113\n")
    assert run(capsys, db, "dnc", "import", str(more)) == (0, f"added 1 from {more} (1 already listed)\n", "")
    code, out, err = run(capsys, db, "dnc", "import", str(numbers), "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"added": 0, "already_listed": 2}


def test_dnc_import_stores_each_rows_reason(campaign_db, capsys, tmp_path):
    # a Reason column was ignored: every entry got --reason, or nothing
    db = campaign_db["db"]
    numbers = write(tmp_path / "dnc.csv", "Phone, REASON \n+16025550111,asked on the phone\n+16025550112,\n"
                                          "+16025550113,  \n+16025550111,again\n")
    code, out, err = run(capsys, db, "dnc", "import", str(numbers), "--reason", "complaint list")
    assert (code, err) == (0, ""), err
    assert out == f"added 3 from {numbers}\n"  # the second +16025550111 is the same entry (the first reason kept)
    assert dnc_rows(db) == [("+16025550111", "asked on the phone"), ("+16025550112", "complaint list"),
                            ("+16025550113", "complaint list")]
    without = write(tmp_path / "without.csv", "reason,phone\nlawyer,+16025550114\n,+16025550115\n")
    assert run(capsys, db, "dnc", "import", str(without))[0] == 0
    assert dnc_rows(db)[3:] == [("+16025550114", "lawyer"), ("+16025550115", None)]


def test_dnc_import_reads_a_first_line_that_is_a_national_number_as_data(campaign_db, capsys, tmp_path):
    # without --country the first number was taken for a header: "row 2, column 6025550116: ..."
    db = campaign_db["db"]
    numbers = write(tmp_path / "dnc.csv", "6025550116\n6025550117\n")
    message = refused(capsys, db, "dnc", "import", str(numbers))
    assert message.startswith(f"{numbers} row 1, column 1: '6025550116': missing country code"), message
    two = write(tmp_path / "two.csv", "(602) 555-0116,Ann\n602-555-0117,Bo\n")
    assert refused(capsys, db, "dnc", "import", str(two)).startswith(
        f"{two} row 1, column 1: '(602) 555-0116': missing country code")
    code, out, err = run(capsys, db, "dnc", "import", str(numbers), "--country", "US")
    assert (code, out, err) == (0, f"added 2 from {numbers}\n", "")
    assert [pattern for pattern, _reason in dnc_rows(db)] == ["+16025550116", "+16025550117"]


def test_dnc_import_reads_the_sheet_named_by_sheet(campaign_db, capsys, tmp_path):
    import xlsxwriter

    db = campaign_db["db"]
    book = tmp_path / "dnc.xlsx"
    workbook = xlsxwriter.Workbook(str(book))
    for name, number in (("Customers", "+16025550111"), ("Opt-outs", "+16025550199")):
        sheet = workbook.add_worksheet(name)
        sheet.write_string(0, 0, "Phone")
        sheet.write_string(1, 0, number)
    workbook.close()
    code, out, err = run(capsys, db, "dnc", "import", str(book), "--sheet", "Opt-outs")
    assert (code, out, err) == (0, f"added 1 from {book}\n", "")
    assert dnc_rows(db) == [("+16025550199", None)]
    assert refused(capsys, db, "dnc", "import", str(book), "--sheet", "Nope") == (
        "dnc.xlsx: no sheet named 'Nope' (sheets: Customers, Opt-outs)")
    numbers = write(tmp_path / "dnc.csv", "Phone\n+16025550112\n")
    assert refused(capsys, db, "dnc", "import", str(numbers), "--sheet", "Opt-outs") == (
        "--sheet: dnc.csv is a .csv file, which has no sheets; --sheet is for .xlsx files")
