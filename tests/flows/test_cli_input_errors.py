"""Bad input on the `campaigns` command line: one line on stderr naming what and where, exit code 2,
and nothing written. Run in-process through flows.cli.main."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import duckdb
import pytest

from tests.flows.cli_run import run

DATA = Path(__file__).resolve().parents[2] / "data"
RULES_CSV = DATA / "calling_rules.csv"
EXAMPLE_YAML = DATA / "example_campaign.yaml"
# Every table a bad command could write to.
TABLES = ("campaigns", "contacts", "campaign_contacts", "agents", "phone_numbers", "do_not_call", "calling_rules",
          "import_runs")


def store_digest(db: Path) -> str:
    """A digest of every row of the tables bad input must leave alone."""
    digest = hashlib.sha256()
    with duckdb.connect(str(db), read_only=True) as conn:
        for table in TABLES:
            digest.update(repr(conn.execute(f"select * from {table} order by all").fetchall()).encode())
    return digest.hexdigest()


def refused(capsys, db: Path, *args: str) -> str:
    """Run a command that must fail on bad input; returns its single stderr line (without 'error: ')."""
    before = store_digest(db)
    code, out, err = run(capsys, db, *args)
    assert code == 2, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert store_digest(db) == before  # nothing half-written
    return lines[0].removeprefix("error: ")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_xlsx(path: Path, rows: list[list[str | None]], first_row: int = 0) -> Path:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    for offset, row in enumerate(rows):
        for column, value in enumerate(row):
            if value is not None:
                sheet.write_string(first_row + offset, column, value)
    workbook.close()
    return path


# ------------------------------------------------------------------ import


def test_an_import_whose_report_cannot_be_written_writes_nothing(campaign_db, capsys, tmp_path):
    # the report used to be written after the commit: the contacts were in, then a traceback
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    contacts = write(tmp_path / "good.csv", "Phone,Name\n+16025550101,Ann\nnot a phone,Bob\n")
    folder = tmp_path / "reports"
    folder.mkdir()
    message = refused(capsys, db, "import", str(campaign_id), str(contacts), "--report", str(folder))
    assert message.startswith(f"--report {folder}: is a folder")
    a_file = write(tmp_path / "a-file.txt", "x")
    message = refused(capsys, db, "import", str(campaign_id), str(contacts), "--report", str(a_file / "r.csv"))
    assert message == f"--report {a_file / 'r.csv'}: {a_file} is a file, not a folder"


@pytest.mark.parametrize("target, what", [("store", "the database"), ("contacts", "the file being imported"),
                                          ("link", "the database")])
def test_an_import_report_never_replaces_the_store_or_the_imported_file(campaign_db, capsys, tmp_path, target, what):
    # `--report data/campaigns.duckdb` replaced the whole database with a two-line CSV once the import committed
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    contacts = write(tmp_path / "good.csv", "Phone,Name\n+16025550101,Ann\nnot a phone,Bob\n")
    link = tmp_path / "report.csv"
    link.symlink_to(db)
    report = {"store": db, "contacts": contacts, "link": link}[target]
    before = (db.read_bytes(), contacts.read_bytes())
    message = refused(capsys, db, "import", str(campaign_id), str(contacts), "--report", str(report))
    assert message.startswith(f"--report {report}: is {what} (")
    assert (db.read_bytes(), contacts.read_bytes()) == before


def test_an_import_with_a_report_writes_it_once_committed(campaign_db, capsys, tmp_path):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    contacts = write(tmp_path / "good.csv", "Phone,Name\n+16025550101,Ann\nnot a phone,Bob\n")
    report = tmp_path / "new" / "rejected.csv"
    report.parent.mkdir()  # a missing folder is refused, not created
    code, _out, err = run(capsys, db, "import", str(campaign_id), str(contacts), "--report", str(report))
    assert (code, err) == (0, "")
    assert report.read_text().splitlines() == ["row,column,value,reason,outcome",
                                               "3,Phone,not a phone,not a phone number,rejected"]
    assert [p.name for p in report.parent.iterdir()] == ["rejected.csv"]  # no staged file left behind


def test_a_column_named_like_the_row_number_is_imported_as_a_property(campaign_db, capsys, tmp_path):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    contacts = write(tmp_path / "rowcol.csv", "Phone,__file_row__,row\n+16025550101,7,8\n")
    code, _out, err = run(capsys, db, "import", str(campaign_id), str(contacts))
    assert (code, err) == (0, "")
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("select count(*) from campaign_contacts").fetchone()[0] == 1


def test_no_phone_column_names_the_file(campaign_db, capsys, tmp_path):
    contacts = write(tmp_path / "people.csv", "Foo,Bar\na,b\n")
    message = refused(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(contacts))
    assert message.startswith("people.csv: no column maps to contact_phone (columns: Foo, Bar)")


def test_an_xlsx_with_its_header_in_row_3_reports_the_rows_excel_shows(campaign_db, capsys, tmp_path):
    # calamine skipped the blank rows above the header: the bad phone in Excel row 5 was "row 3"
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    book = write_xlsx(tmp_path / "late.xlsx", [["Phone", "Name"], ["+16025550101", "a"], ["bad", "b"]], first_row=2)
    code, out, err = run(capsys, db, "import", str(campaign_id), str(book), "--dry-run", "--json")
    assert (code, err) == (0, ""), err
    import json

    assert [(r["row"], r["column"], r["value"]) for r in json.loads(out)["rejected"]] == [(5, "Phone", "bad")]


@pytest.mark.parametrize("prefect", [[], ["--prefect"]])
def test_import_refuses_a_sheet_for_a_csv_file(campaign_db, capsys, tmp_path, prefect):
    # --sheet was ignored silently on a CSV, and the import went ahead (exit 0)
    contacts = write(tmp_path / "contacts.csv", "Phone\n+16025550101\n")
    message = refused(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(contacts),
                      "--sheet", "Contacts", *prefect)
    assert message == "--sheet: contacts.csv is a .csv file, which has no sheets; --sheet is for .xlsx files"


def test_import_prefect_refuses_bad_input_in_one_line_before_the_flow_starts(campaign_db, capsys, tmp_path):
    # the flow logged a 29-65 line traceback before the error line
    contacts = write(tmp_path / "people.csv", "Foo,Bar\na,b\n")
    message = refused(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(contacts), "--prefect")
    assert message.startswith("people.csv: no column maps to contact_phone")
    folder = tmp_path / "reports"
    folder.mkdir()
    good = write(tmp_path / "good.csv", "Phone\n+16025550101\n")
    message = refused(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(good), "--prefect",
                      "--report", str(folder))
    assert message.startswith(f"--report {folder}: is a folder")


# ------------------------------------------------------------------ exports, dashboard, usage


@pytest.mark.parametrize("command", ["contacts", "calls"])
def test_an_export_to_a_folder_or_under_a_file_is_refused(campaign_db, capsys, tmp_path, command):
    db, campaign_id = campaign_db["db"], str(campaign_db["campaign_id"])
    folder = tmp_path / "d.xlsx"
    folder.mkdir()
    assert refused(capsys, db, "export", command, campaign_id, "--out", str(folder)).startswith(
        f"--out {folder}: is a folder")
    a_file = write(tmp_path / "ok.txt", "x")
    assert refused(capsys, db, "export", command, campaign_id, "--out", str(a_file / "x.xlsx")) == (
        f"--out {a_file / 'x.xlsx'}: folder {a_file} is a file, not a folder")


def test_the_dashboard_port_must_be_a_tcp_port(campaign_db, capsys):
    message = refused(capsys, campaign_db["db"], "dashboard", "--port", "99999")
    assert message == "campaigns dashboard: Invalid value for '--port': Input should be less than or equal to 65535"


@pytest.mark.parametrize(("args", "expected"), [
    (["show", "abc"], "campaigns show: Invalid value for 'campaign_id': Input should be a valid integer"),
    (["create", "--agent", "1", "--time-zone", "UTC"], "campaigns create: Missing option '--name'."),
    (["bogus"], "campaigns: No such command 'bogus'."),
    (["simulate", "1", "--days", "0"], "campaigns simulate: Invalid value for '--days'"),
])
def test_usage_errors_are_one_line(campaign_db, capsys, args, expected):
    # Click drew them as a 5-6 line box
    assert refused(capsys, campaign_db["db"], *args).startswith(expected)


def test_help_still_works(campaign_db, capsys):
    code, out, err = run(capsys, campaign_db["db"], "show", "--help")
    assert (code, err) == (0, "")
    assert "Usage" in out and "campaign_id" in out.lower()


@pytest.mark.parametrize("args", [["dnc", "list", "--campaign", "99"], ["dnc", "suppressed", "99"],
                                  ["rules", "audit", "99"], ["best-time", "99"]])
def test_an_unknown_campaign_is_an_error_not_an_empty_list(campaign_db, capsys, args):
    assert refused(capsys, campaign_db["db"], *args) == "campaign 99 does not exist"


def test_a_campaign_country_must_be_a_real_country(campaign_db, capsys):
    # UTC is used by no country, so only the code itself can be checked; "XX" passed and every import failed
    message = refused(capsys, campaign_db["db"], "create", "--name", "X", "--agent", str(campaign_db["agent_id"]),
                      "--time-zone", "UTC", "--hours", "08:00-18:00", "--country", "XX")
    assert message == '--country: "XX" is not a known ISO 3166 alpha-2 country code (e.g. US)'


# ------------------------------------------------------------------ --db


def test_a_db_that_is_not_a_duckdb_file_is_refused(capsys, tmp_path):
    # DuckDB opened a CSV as a throwaway database: every write vanished
    csv_file = write(tmp_path / "contacts.csv", "Phone\n+16025550101\n")
    code, _out, err = run(capsys, csv_file, "list")
    assert (code, err) == (2, f"error: cannot open database {csv_file}: not a DuckDB database file; "
                              "point --db (or CAMPAIGNS_DB) at a .duckdb file\n")
    assert csv_file.read_text() == "Phone\n+16025550101\n"
    sqlite_file = tmp_path / "s.sqlite"
    sqlite_file.write_bytes(b"SQLite format 3\x00" + bytes(100))
    code, _out, err = run(capsys, sqlite_file, "list")
    assert (code, err) == (2, f"error: cannot open database {sqlite_file}: a SQLite file; "
                              "point --db (or CAMPAIGNS_DB) at a .duckdb file\n")


# ------------------------------------------------------------------ apply


def test_apply_refuses_unreadable_yaml_in_one_line(campaign_db, capsys, tmp_path):
    db = campaign_db["db"]
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    assert refused(capsys, db, "apply", str(folder)) == f"{folder}: is a folder, not a YAML file"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfename: x\n")
    assert refused(capsys, db, "apply", str(binary)) == f"{binary}: not UTF-8 text (byte 0); save the YAML as UTF-8"


def test_apply_names_an_impossible_date_and_a_repeated_key_with_their_lines(campaign_db, capsys, tmp_path):
    db = campaign_db["db"]
    example = EXAMPLE_YAML.read_text(encoding="utf-8")
    feb30 = write(tmp_path / "feb30.yaml", "start_date: 2026-02-30\n" + example.replace("start_date:", "#"))
    assert refused(capsys, db, "apply", str(feb30)) == (
        f"{feb30}: not valid YAML (line 1): 2026-02-30 is not a date (day is out of range for month)")
    # the second `name` silently won before
    repeated = write(tmp_path / "dup.yaml", "name: First\n" + example)
    line = 1 + next(i for i, text in enumerate(example.splitlines(), start=1) if text.startswith("name:"))
    assert refused(capsys, db, "apply", str(repeated)) == (
        f"{repeated}: not valid YAML (line {line}): duplicate key 'name' (first on line 1)")


def test_a_campaign_is_not_created_active_past_its_end_date(campaign_db, capsys, tmp_path):
    # `activate` and `edit --active` refused it, `create --active` and `apply` with `active: true` did not
    db = campaign_db["db"]
    assert refused(capsys, db, "create", "--name", "Past", "--agent", "1", "--time-zone", "America/Phoenix", "--country", "US",
                   "--hours", "08:00-18:00", "--start-date", "2020-01-06", "--end-date", "2020-01-31",
                   "--number", "1", "--active") == (
        "--active: cannot create it active: its end date 2020-01-31 has passed (America/Phoenix); "
        "set a later end date or leave it inactive")
    example = EXAMPLE_YAML.read_text(encoding="utf-8")
    past = write(tmp_path / "past.yaml", example.replace("start_date: 2026-04-27", "start_date: 2020-01-06")
                 .replace("end_date: null", "end_date: 2020-01-31").replace("\nname:", "\nname: Past campaign #"))
    assert "cannot create it active: its end date 2020-01-31 has passed" in refused(capsys, db, "apply", str(past))
    code, _out, err = run(capsys, db, "create", "--name", "Past", "--agent", "1", "--time-zone", "America/Phoenix", "--country", "US",
                          "--hours", "08:00-18:00", "--start-date", "2020-01-06", "--end-date", "2020-01-31",
                          "--number", "1", "--no-active")
    assert (code, err) == (0, "")  # inactive, it is created (and shows as Completed)


# ------------------------------------------------------------------ rules import, dnc import


def rules_with(tmp_path: Path, old: str, new: str) -> Path:
    text = RULES_CSV.read_text(encoding="utf-8")
    assert old in text
    return write(tmp_path / "rules.csv", text.replace(old, new, 1))


def test_rules_import_refuses_a_country_that_is_no_iso_code(campaign_db, capsys, tmp_path):
    # a rule for "USA" was accepted and never applied to anyone
    rules = rules_with(tmp_path, "US-FL,US,", "US-FL,USA,")
    line = 1 + next(i for i, text in enumerate(rules.read_text().splitlines()) if text.startswith("US-FL,"))
    assert refused(capsys, campaign_db["db"], "rules", "import", str(rules)) == (
        f"{rules} row {line} country: 'USA' is not an ISO 3166 alpha-2 country code (e.g. US)")


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n \n"], ids=["empty", "bom-only", "blank-lines"])
def test_rules_import_says_an_empty_file_is_empty(campaign_db, capsys, tmp_path, content):
    empty = tmp_path / "rules.csv"
    empty.write_bytes(content)
    assert refused(capsys, campaign_db["db"], "rules", "import", str(empty)) == f"{empty}: the file is empty"


def test_rules_import_refuses_a_column_written_twice(campaign_db, capsys, tmp_path):
    # the last "mon" won: a 09:00-20:00 window became 00:00-24:00 without a word
    lines = RULES_CSV.read_text(encoding="utf-8").splitlines()
    width = len(lines[0].split(","))
    rules = write(tmp_path / "twice.csv", "\n".join([lines[0] + ",mon", *(line + ",00:00-24:00" for line in lines[1:])]) + "\n")
    assert refused(capsys, campaign_db["db"], "rules", "import", str(rules)) == (
        f"{rules} row 1, column {width + 1}: column 'mon' appears twice in the header")


@pytest.mark.parametrize(("subdivision", "message"), [
    ("US-FL", "'US-FL': write it without the country, as contacts carry it (FL)"),
    ("ZZ", "'ZZ' is not a US state code (e.g. FL)"),
])
def test_rules_import_refuses_a_subdivision_no_contact_can_have(campaign_db, capsys, tmp_path, subdivision, message):
    # such a rule was accepted and never applied: Florida's callees fell to the US rule without a word
    rules = rules_with(tmp_path, "US-FL,US,FL,", f"US-FL,US,{subdivision},")
    line = 1 + next(i for i, text in enumerate(rules.read_text().splitlines()) if text.startswith("US-FL,"))
    assert refused(capsys, campaign_db["db"], "rules", "import", str(rules)) == f"{rules} row {line} subdivision: {message}"


def test_rules_import_refuses_overlapping_windows_on_a_day(campaign_db, capsys, tmp_path):
    # "10:00-13:00 12:00-20:00" was read as their union: a typo for a lunch break became no break at all
    rules = rules_with(tmp_path, "FR,FR,,10:00-13:00 14:00-20:00,", "FR,FR,,10:00-13:00 12:00-20:00,")
    line = 1 + next(i for i, text in enumerate(rules.read_text().splitlines()) if text.startswith("FR,"))
    assert refused(capsys, campaign_db["db"], "rules", "import", str(rules)) == (
        f"{rules} row {line} mon: windows 10:00-13:00 and 12:00-20:00 overlap")


def test_rules_import_takes_windows_that_touch(campaign_db, capsys, tmp_path):
    rules = rules_with(tmp_path, "FR,FR,,10:00-13:00 14:00-20:00,", "FR,FR,,10:00-13:00 13:00-24:00,")
    code, _out, err = run(capsys, campaign_db["db"], "rules", "import", str(rules))
    assert (code, err) == (0, ""), err


def test_rules_import_refuses_missing_files_and_workbooks_in_one_line(campaign_db, capsys, tmp_path):
    db = campaign_db["db"]
    missing = tmp_path / "missing.csv"
    assert refused(capsys, db, "rules", "import", str(missing)) == f"{missing}: file not found"
    book = write_xlsx(tmp_path / "rules.xlsx", [["rule_id", "country"]])
    assert refused(capsys, db, "rules", "import", str(book)) == f"{book}: is a workbook; save the rules as CSV (UTF-8) first"


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_rules_import_reads_the_encodings_contact_files_may_have(campaign_db, capsys, tmp_path, encoding):
    # a UTF-16 or Windows-1252 file was a UnicodeDecodeError traceback
    rules = tmp_path / "rules.csv"
    text = RULES_CSV.read_text(encoding="utf-8").replace("Decret", "Décret")
    rules.write_bytes(text.encode(encoding))
    code, out, err = run(capsys, campaign_db["db"], "rules", "import", str(rules))
    assert (code, err) == (0, ""), err
    assert out.endswith("rules in force\n")
    if encoding == "utf-16":
        assert rules.read_bytes().startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


def test_dnc_import_names_the_row_the_user_sees_and_the_column(campaign_db, capsys, tmp_path):
    # blank rows were not counted ("row 3") and the column was not named
    numbers = write(tmp_path / "dnc.csv", "Phone\n+16025550111\n\n,\nbad\n")
    assert refused(capsys, campaign_db["db"], "dnc", "import", str(numbers)) == (
        f"{numbers} row 5, column Phone: 'bad': not a phone number")


# ------------------------------------------------------------------ contacts edit / zone


def imported(capsys, campaign_db: dict, csv: Path) -> dict[str, int]:
    """Import a contacts CSV into the campaign through the CLI; {region: contact_id} of the contacts."""
    code, _out, err = run(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(csv))
    assert (code, err) == (0, "")
    with duckdb.connect(str(campaign_db["db"]), read_only=True) as conn:
        return dict(conn.execute("select region, contact_id from contacts").fetchall())


@pytest.fixture
def one_contact(campaign_db, capsys, tmp_path) -> dict:
    [contact_id] = imported(capsys, campaign_db, write(tmp_path / "one.csv", "Phone,Name\n+16025550101,Ann\n")).values()
    return {**campaign_db, "contact_id": str(contact_id)}


def test_contacts_edit_set_keeps_the_import_limits(one_contact, capsys):
    db, contact_id = one_contact["db"], one_contact["contact_id"]
    # "!!!" was stored as a property named "column"; 1,001 characters passed the import's 1,000 limit
    assert refused(capsys, db, "contacts", "edit", contact_id, "--set", "!!!=x") == (
        "--set: '!!!' is not a property name (use letters, digits and _)")
    assert refused(capsys, db, "contacts", "edit", contact_id, "--set", "plan=" + "x" * 1001) == (
        "plan: longer than 1,000 characters (1,001)")


def test_contacts_zone_refuses_a_state_the_country_does_not_have(one_contact, capsys):
    assert refused(capsys, one_contact["db"], "contacts", "zone", one_contact["contact_id"], "--state", "ZZZ") == (
        "--state: 'ZZZ' is not a state/province code of US (e.g. AK)")


@pytest.mark.parametrize("extra", [[], ["--dry-run"], ["--json"]])
def test_an_import_whose_every_row_is_rejected_exits_2_after_its_report(campaign_db, capsys, tmp_path, extra):
    # a wrong file (another sheet, the wrong column mapped as the phone) used to end "imported 0" with exit 0
    contacts = write(tmp_path / "wrong.csv", "Phone,Name\nAnn,x\n\nBob,y\n")
    db = campaign_db["db"]
    before = store_digest(db)
    code, out, err = run(capsys, db, "import", str(campaign_db["campaign_id"]), str(contacts), *extra)
    assert code == 2, (code, out, err)
    assert err.splitlines() == ["error: wrong.csv: every row was rejected (2 of 2), nothing imported; "
                                "first: row 2, column Phone: not a phone number"]
    assert ("\"invalid\": 2" if extra == ["--json"] else "rows 2, imported 0") in out  # the report still shows why
    assert store_digest(db) == before


def test_an_import_with_one_good_row_among_rejected_ones_exits_0(campaign_db, capsys, tmp_path):
    contacts = write(tmp_path / "mixed.csv", "Phone,Name\nAnn,x\n+16025550101,y\n")
    code, out, err = run(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(contacts))
    assert (code, err) == (0, ""), err
    assert "imported 1" in out
