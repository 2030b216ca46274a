"""The import end to end: run_import (atomicity, dry run, countries), the Prefect flow, and the CLI
commands import, contacts remove/edit and export contacts."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from flows.import_contacts import PLAIN_STEPS, run_import
from tasks.errors import NotFoundError, UserError
from tasks.store import connect
from tests.factories import make_campaign_db
from tests.flows.cli_run import run as cli

DATA = Path(__file__).resolve().parents[2] / "data"
SAMPLE_CSV, SAMPLE_XLSX = DATA / "sample_contacts.csv", DATA / "sample_contacts.xlsx"
# What the shipped sample holds (data/make_samples.py, fixed seed): 5 of its rows have a good phone and a bad
# e-mail, imported without it (they were rejected whole before: 307 contacts were 302, 13 rejected rows 18).
SAMPLE_COUNTS = {"rows": 334, "imported": 307, "updated": 0, "enrolled": 307, "duplicates_merged": 14, "invalid": 13,
                 "warned": 5}


def counts(result) -> dict:
    data = result if isinstance(result, dict) else result.to_dict()
    return {k: data[k] for k in SAMPLE_COUNTS}


def table_sizes(db) -> tuple[int, int]:
    with connect(db) as conn:
        return (
            conn.execute("select count(*) from contacts").fetchone()[0],
            conn.execute("select count(*) from campaign_contacts").fetchone()[0],
        )


def test_sample_csv_imports_and_the_xlsx_of_the_same_rows_changes_nothing(campaign_db, tmp_path):
    result = run_import(campaign_db["campaign_id"], SAMPLE_CSV, db=campaign_db["db"], report_path=tmp_path / "r.csv")
    assert counts(result) == SAMPLE_COUNTS
    assert table_sizes(campaign_db["db"]) == (307, 307)
    report = pl.read_csv(tmp_path / "r.csv", infer_schema=False)
    assert report.columns == ["row", "column", "value", "reason", "outcome"]
    assert report["outcome"].value_counts(sort=True).rows() == [("rejected", len(result.rejected)),
                                                                  ("imported", len(result.warnings))]
    again = run_import(campaign_db["campaign_id"], SAMPLE_XLSX, db=campaign_db["db"])
    assert counts(again) == {**SAMPLE_COUNTS, "imported": 0, "enrolled": 0}


def test_dry_run_counts_like_a_real_import_and_writes_nothing(campaign_db):
    result = run_import(campaign_db["campaign_id"], SAMPLE_CSV, db=campaign_db["db"], dry_run=True)
    assert counts(result) == SAMPLE_COUNTS and result.dry_run
    assert table_sizes(campaign_db["db"]) == (0, 0)


def test_a_failure_mid_import_leaves_the_database_unchanged(campaign_db, tmp_path):
    cid = campaign_db["campaign_id"]
    run_import(cid, _csv(tmp_path, "Phone,Name\n6025550199,Ann\n"), db=campaign_db["db"])
    with connect(campaign_db["db"]) as conn:
        before = conn.execute("select * from contacts").fetchall()

    def enroll_then_fail(conn, *args):
        PLAIN_STEPS["enroll"](conn, *args)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        run_import(cid, SAMPLE_CSV, db=campaign_db["db"], steps={**PLAIN_STEPS, "enroll": enroll_then_fail})
    with connect(campaign_db["db"]) as conn:
        assert conn.execute("select * from contacts").fetchall() == before
    assert table_sizes(campaign_db["db"]) == (1, 1)


def _csv(tmp_path: Path, text: str, name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_campaign_is_not_found_and_writes_nothing(campaign_db):
    with pytest.raises(NotFoundError, match="campaign 999 does not exist"):
        run_import(999, SAMPLE_CSV, db=campaign_db["db"])
    assert table_sizes(campaign_db["db"]) == (0, 0)


def test_file_without_a_phone_column_writes_nothing(campaign_db, tmp_path):
    with pytest.raises(UserError, match="no column maps to contact_phone"):
        run_import(campaign_db["campaign_id"], _csv(tmp_path, "Name,Plan\nAnn,Gold\n"), db=campaign_db["db"])
    assert table_sizes(campaign_db["db"]) == (0, 0)


@pytest.mark.parametrize(
    ("default_country", "e164", "invalid"),
    [
        ("MX", "+525512345678", 0),  # the campaign has no country: --default-country reads the national number
        (None, None, 1),  # neither: "missing country code and no default country"
    ],
)
def test_a_campaign_without_country_uses_the_default_country(tmp_path, db, default_country, e164, invalid):
    ids = make_campaign_db(db)
    with connect(db) as conn:  # older campaigns may have no country (the column allows NULL)
        conn.execute("update campaigns set country = null where campaign_id = ?", [ids["campaign_id"]])
    result = run_import(ids["campaign_id"], _csv(tmp_path, "Teléfono\n55 1234 5678\n"), db=db, default_country=default_country)
    assert result.invalid == invalid
    with connect(db) as conn:
        assert conn.execute("select max(phone_e164) from contacts").fetchone()[0] == e164


@pytest.mark.prefect
def test_the_prefect_flow_runs_the_same_import(prefect_harness, campaign_db):
    from flows.import_contacts import import_contacts

    data = import_contacts(campaign_db["campaign_id"], str(SAMPLE_CSV), db=str(campaign_db["db"]))
    assert counts(data) == SAMPLE_COUNTS
    assert table_sizes(campaign_db["db"]) == (307, 307)


# ---------------------------------------------------------------- CLI


def test_cli_import_prints_the_mapping_and_counts(capsys, campaign_db):
    code, out, err = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(SAMPLE_CSV))
    assert (code, err) == (0, "")
    assert "  Phone Number -> contact_phone\n" in out and "  Plan -> custom:plan\n" in out
    assert ("rows 334, imported 307, updated 0, enrolled 307, duplicates merged 14, invalid 13, "
            "without a bad value 5\n") in out


def test_cli_import_json_with_map_override(capsys, campaign_db, tmp_path):
    path = _csv(tmp_path, "Tel,Who,Notes\n602-555-0199,Ann,vip\n123,Bob,\n")
    code, out, _ = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path),
                       "--map", "Tel=contact_phone", "--map", "Who=contact_name", "--map", "Notes=ignore", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["mapping"] == {"Tel": "contact_phone", "Who": "contact_name", "Notes": "ignore"}
    assert counts(data) == {"rows": 2, "imported": 1, "updated": 0, "enrolled": 1, "duplicates_merged": 0, "invalid": 1,
                            "warned": 0}
    assert data["rejected"] == [{"row": 3, "column": "Tel", "value": "123", "reason": "too short"}]


def test_cli_import_says_which_mapped_zones_place_nobody_and_the_callee_is_placed_by_the_rest(capsys, campaign_db,
                                                                                              tmp_path):
    from tasks.compliance import resolve_zones

    path = _csv(tmp_path, "Phone,Name,Time Zone,State\n+16025550301,A,Mars/Olympus,\n+16025550303,C,,ZZ\n"
                          "+16025550304,D,america/new_york,\n")
    code, out, _ = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path), "--json")
    data = json.loads(out)
    assert (code, data["imported"], data["warned"]) == (0, 3, 2)
    assert [(w["row"], w["column"]) for w in data["warnings"]] == [(2, "Time Zone"), (3, "State")]
    with connect(campaign_db["db"]) as conn:
        resolve_zones(conn)
        placed = conn.execute("select c.name, z.time_zones, c.zone_source, c.properties from contacts c"
                              " join zone_keys z using (zone_key) order by c.name").fetchall()
    assert [(name, list(zones), source) for name, zones, source, _ in placed] == [
        ("A", ["America/Phoenix"], "phone"), ("C", ["America/Phoenix"], "phone"),
        ("D", ["America/New_York"], "mapped")]  # New York's hours, not Phoenix's
    assert "Mars" not in placed[0][3]


def test_cli_import_keeps_a_row_with_a_bad_email_and_lists_it_after_the_rejected(capsys, campaign_db, tmp_path):
    path = _csv(tmp_path, "Name,Phone,Email\nJohn,602 555 0199,john@@example\nBob,123,bob@example.com\n")
    report = tmp_path / "report.csv"
    code, out, err = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path),
                         "--report", str(report))
    assert (code, err) == (0, "")
    assert "imported 1, updated 0, enrolled 1, duplicates merged 0, invalid 1, without a bad value 1\n" in out
    rejected, kept = out.index("\nrejected:\n"), out.index("\nimported without these values (a contact already in the CRM keeps its own):\n")
    assert rejected < kept
    assert "john@@example  not a valid e-mail address: imported without it" in out[kept:]
    # the report keeps its columns and adds which kind each line is
    assert report.read_text().splitlines() == [
        "row,column,value,reason,outcome",
        "2,Email,john@@example,not a valid e-mail address: imported without it,imported",
        "3,Phone,123,too short,rejected",
    ]
    with connect(campaign_db["db"]) as conn:
        assert conn.execute("select name, email from contacts").fetchall() == [("John", None)]


def test_cli_import_shows_the_first_fields_left_empty_and_counts_the_others(capsys, campaign_db, tmp_path):
    from flows.cli.contact_cmds import SHOWN_REJECTS

    lines = [f"6025550{100 + i},bad{i}@" for i in range(SHOWN_REJECTS + 2)]
    path = _csv(tmp_path, "Phone,Email\n" + "\n".join(lines) + "\n")
    code, out, _ = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path), "--dry-run")
    assert code == 0
    assert "\nrejected:" not in out
    assert out.endswith(f"bad{SHOWN_REJECTS - 1}@  not a valid e-mail address: imported without it\n"
                        "… 2 more (use --report F.csv or --json)\n")
    code, out, _ = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path), "--dry-run",
                       "--json")
    data = json.loads(out)
    assert (data["dry_run"], data["warned"], len(data["warnings"]), data["invalid"]) == (True, SHOWN_REJECTS + 2,
                                                                                         SHOWN_REJECTS + 2, 0)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("old.xls", "x", "error: old.xls: unsupported file type .xls; use .csv or .xlsx"),
        ("empty.csv", "", "error: empty.csv: the file is empty"),
        ("nophone.csv", "Name\nAnn\n", "error: nophone.csv: no column maps to contact_phone (columns: Name)"),
    ],
)
def test_cli_import_bad_files_exit_2_with_one_line(capsys, campaign_db, tmp_path, name, content, message):
    code, out, err = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(_csv(tmp_path, content, name)))
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize("prefect", [[], ["--prefect"]])
def test_cli_import_of_a_workbook_named_csv_or_a_titled_file_exits_2_with_one_line(capsys, campaign_db, tmp_path, prefect):
    # a workbook named .csv: "cannot read as CSV (CSV malformed: expected 13 rows, ...)"; a title above the
    # header: "name it with --map 'COLUMN=contact_phone'", which cannot help
    import shutil

    shutil.copyfile(SAMPLE_XLSX, tmp_path / "contacts.csv")
    titled = _csv(tmp_path, "Contacts export\n\nPhone,Name\n+16025550199,Ann\n", "titled.csv")
    for path, message in (
        (tmp_path / "contacts.csv", "error: contacts.csv: is a zip file (an .xlsx workbook?), not CSV text"),
        (titled, "error: titled.csv: no column maps to contact_phone in the header (the first non-blank row: "
                 "Contacts export); row 3 looks like the header ('Phone'): delete the rows above it\n"),
    ):
        code, out, err = cli(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(path), *prefect)
        assert code == 2 and out == ""
        assert err.startswith(message) and err.count("\n") == 1
    assert table_sizes(campaign_db["db"]) == (0, 0)


def test_cli_contacts_edit_remove_and_export(capsys, campaign_db, tmp_path):
    cid = str(campaign_db["campaign_id"])
    cli(capsys, campaign_db["db"], "import", cid, str(_csv(tmp_path, "Phone,Name\n6025550199,=cmd\n")))
    code, out, _ = cli(capsys, campaign_db["db"], "contacts", "edit", "1", "--phone", "480 555 0100", "--set", "plan=Gold", "--json")
    assert code == 0 and (json.loads(out)["phone_e164"], json.loads(out)["properties"]) == ("+14805550100", {"plan": "Gold"})
    out_file = tmp_path / "list.xlsx"
    assert cli(capsys, campaign_db["db"], "export", "contacts", cid, "--out", str(out_file))[0] == 0
    assert pl.read_excel(out_file).select("Name", "plan").rows() == [("'=cmd", "Gold")]
    assert cli(capsys, campaign_db["db"], "contacts", "remove", cid, "1")[0] == 0
    code, _, err = cli(capsys, campaign_db["db"], "contacts", "remove", cid, "1")
    assert code == 2 and err == f"error: contact 1 is not enrolled in campaign {cid}\n"
    assert table_sizes(campaign_db["db"]) == (1, 0)


def test_a_committed_import_leaves_an_audit_row_and_a_dry_run_none(campaign_db):
    cid = campaign_db["campaign_id"]
    run_import(cid, SAMPLE_CSV, db=campaign_db["db"], dry_run=True)
    result = run_import(cid, SAMPLE_CSV, db=campaign_db["db"])
    with connect(campaign_db["db"]) as conn:
        rows = conn.execute(
            "select import_id, campaign_id, file_name, country, rows_read, imported, updated, enrolled,"
            " duplicates_merged, invalid, warned, mapping->>'Phone Number' from import_runs"
        ).fetchall()
    assert rows == [(result.import_id, cid, "sample_contacts.csv", "US", 334, 307, 0, 307, 14, 13, 5, "contact_phone")]
