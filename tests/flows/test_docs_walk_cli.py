"""Found walking the README's command table and docs/dialing.md (bad input, README: one line on stderr
naming what and where, exit code 2, nothing written):
- a country flag with an unknown code was accepted silently whenever no number of the run needed it (a
  campaign with its own country, numbers written with +, a contact edit without --phone);
- a bad CAMPAIGNS_* environment value was a pydantic traceback and exit code 1;
- an input file argument naming a folder was "unsupported file type (none)" under its bare name;
- `campaigns simulate` said "N contact(s) still to dial" when only contacts on a do-not-call list were left
  (docs/dialing.md: such a run is complete)."""

from __future__ import annotations

import pytest

from tests.flows.test_cli_input_errors import one_contact, refused, write  # noqa: F401  (fixture)

UNKNOWN = "unknown country code 'XX' (use ISO 3166 alpha-2, e.g. US)"


def test_import_refuses_an_unknown_default_country_even_when_the_campaign_has_one(campaign_db, capsys, tmp_path):
    contacts = write(tmp_path / "people.csv", "Phone,Name\n+16025550101,Ann\n6025550102,Bob\n")
    for extra in ([], ["--dry-run"]):
        assert refused(capsys, campaign_db["db"], "import", str(campaign_db["campaign_id"]), str(contacts),
                       "--default-country", "XX", *extra) == f"--default-country: {UNKNOWN}"


@pytest.mark.parametrize("args", [
    ["dnc", "add", "+16025550111", "--country", "XX"],
    ["dnc", "remove", "+16025550111", "--country", "XX"],
])
def test_dnc_refuses_an_unknown_country_even_for_numbers_with_a_country_code(campaign_db, capsys, args):
    assert refused(capsys, campaign_db["db"], *args) == f"--country: {UNKNOWN}"


def test_dnc_import_refuses_an_unknown_country(campaign_db, capsys, tmp_path):
    numbers = write(tmp_path / "dnc.csv", "phone\n+16025550177\n")
    assert refused(capsys, campaign_db["db"], "dnc", "import", str(numbers), "--country", "XX") == (
        f"--country: {UNKNOWN}")


def test_contacts_edit_refuses_an_unknown_default_country_without_a_phone(one_contact, capsys):  # noqa: F811
    assert refused(capsys, one_contact["db"], "contacts", "edit", one_contact["contact_id"], "--name", "Q",
                   "--default-country", "XX") == f"--default-country: {UNKNOWN}"


@pytest.mark.parametrize(("variable", "value"), [
    ("CAMPAIGNS_PROVIDER", "bogus"),
    ("CAMPAIGNS_LOCK_TIMEOUT_SECONDS", "abc"),
])
def test_a_bad_setting_in_the_environment_is_one_line_naming_the_variable(campaign_db, capsys, monkeypatch,
                                                                          variable, value):
    # README: bad input is one line and exit 2; a bad CAMPAIGNS_* value was a pydantic traceback and exit 1
    from tasks.settings import reset_settings

    monkeypatch.setenv(variable, value)
    reset_settings()
    try:
        message = refused(capsys, campaign_db["db"], "dial", "--now", "2026-04-28T17:00:00Z")
    finally:
        monkeypatch.delenv(variable)
        reset_settings()
    assert message.startswith(f"environment {variable}: ")
    assert value not in message  # values are never echoed: CAMPAIGNS_STORE_URL may carry a password


@pytest.mark.parametrize("name", ["folder", "named-like.csv"])
def test_an_input_file_that_is_a_folder_is_named_as_one(campaign_db, capsys, tmp_path, name):
    # was "folder: unsupported file type (none)" (the bare name) or "…/named-like.csv: file not found"
    folder = tmp_path / name
    folder.mkdir()
    db, campaign_id = campaign_db["db"], str(campaign_db["campaign_id"])
    assert refused(capsys, db, "import", campaign_id, str(folder)) == (
        f"{folder}: is a folder, not a contacts file (.csv or .xlsx)")
    assert refused(capsys, db, "dnc", "import", str(folder)) == f"{folder}: is a folder, not a CSV/XLSX file"


def test_simulate_says_a_run_left_with_only_listed_contacts_is_done(db, capsys):
    # docs/dialing.md: nothing left but contacts on a do-not-call list → the run is complete; the summary
    # said "2 contact(s) still to dial" for people nothing will ever release
    import json

    from flows.cli import main
    from tests.factories import add_contacts, make_campaign_db

    ids = make_campaign_db(db, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 5)
    assert main(["--db", str(db), "dnc", "add", "+16025550000", "+16025550001"]) == 0
    capsys.readouterr()
    assert main(["--db", str(db), "simulate", str(ids["campaign_id"]), "--days", "3"]) == 0
    out = capsys.readouterr().out
    assert "done: the 2 contact(s) left are on a do-not-call list" in out, out
    assert main(["--db", str(db), "simulate", str(ids["campaign_id"]), "--days", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["completed"], result["contacts_left"], result["left_on_do_not_call"]) == (False, 2, 2)
    assert result["done"] is True  # what a script waits for: --json said only completed: false


def test_simulate_counts_contacts_out_of_attempts_as_done_as_the_status_does(db, capsys):
    # Max Attempts lowered below the attempts made: the campaign is Completed, and simulate says so too
    import json

    from flows.cli import main
    from tasks.store import transaction
    from tests.factories import add_contacts, make_campaign_db

    ids = make_campaign_db(db, max_attempts=3)
    add_contacts(db, ids["campaign_id"], 3)
    with transaction(db) as conn:
        conn.execute("update campaign_contacts set attempts = 2")
        conn.execute("update campaigns set max_attempts = 2")
    assert main(["--db", str(db), "simulate", str(ids["campaign_id"]), "--days", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["completed"], result["contacts_left"], result["placed"]) == (True, 0, 0)
