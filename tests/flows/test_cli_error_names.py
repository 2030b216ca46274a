"""A refused command names what the user typed (the option, the argument as the usage line shows it), not the
field a task checks; one line on stderr, exit code 2, nothing written. Run in-process through flows.cli.main."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from tests.flows.cli_run import run
from tests.flows.test_cli_input_errors import imported, refused, store_digest, write


@pytest.fixture
def contacts(campaign_db, capsys, tmp_path) -> dict:
    """The reference campaign with two imported contacts: a US one and a Mexican one."""
    csv = write(tmp_path / "two.csv", "Phone,Name\n+16025550101,Ann\n+525512345678,Memo\n")
    ids = imported(capsys, campaign_db, csv)
    return {**campaign_db, "us": str(ids["US"]), "mx": str(ids["MX"]), "csv": csv}


def test_list_names_the_sort_option(campaign_db, capsys):
    assert refused(capsys, campaign_db["db"], "list", "--sort", "bogus") == (
        '--sort: "bogus" is not one of created, name')


def test_numbers_name_their_arguments(campaign_db, capsys):
    db = campaign_db["db"]
    assert refused(capsys, db, "numbers", "set-status", "1", "bogus") == (
        'STATUS argument: "bogus" is not one of active, inactive, error')
    assert refused(capsys, db, "numbers", "add", "+1602") == 'E164 argument: "+1602" is not a valid phone number'
    assert refused(capsys, db, "numbers", "add", "+16025550100") == (
        "E164 argument: +16025550100 is already an outbound number")


def test_agents_add_names_the_name_argument(campaign_db, capsys):
    db, agent_id = campaign_db["db"], campaign_db["agent_id"]
    assert refused(capsys, db, "agents", "add", "Ava") == (
        f'NAME argument: agent {agent_id} is already named "Ava"; choose another name')
    assert refused(capsys, db, "agents", "add", "  ") == "NAME argument: an agent needs a name"


def test_contacts_edit_names_the_options(contacts, capsys):
    db, us, mx = contacts["db"], contacts["us"], contacts["mx"]
    assert refused(capsys, db, "contacts", "edit", us, "--phone", "x") == "--phone: 'x': not a phone number"
    assert refused(capsys, db, "contacts", "edit", us, "--phone", "+525512345678") == (
        f"--phone: +525512345678 already belongs to contact {mx}")
    assert refused(capsys, db, "contacts", "edit", us, "--email", "john@@example").startswith("--email: ")
    # every problem at once, each under its option
    message = refused(capsys, db, "contacts", "edit", us, "--phone", "x", "--email", "john@@example")
    assert message.startswith("--phone: 'x': not a phone number; --email: "), message


def test_contacts_zone_names_the_time_zone_option(contacts, capsys):
    assert refused(capsys, contacts["db"], "contacts", "zone", contacts["us"], "--time-zone", "Bad/Zone") == (
        "--time-zone: unknown IANA time zone 'Bad/Zone' (e.g. America/New_York)")


def test_contacts_zone_says_a_missing_contact_does_not_exist_whichever_option(contacts, capsys):
    # --state said "contact 999 not found", --time-zone "contact 999 does not exist"
    for option, value in (("--state", "FL"), ("--time-zone", "America/Chicago")):
        assert refused(capsys, contacts["db"], "contacts", "zone", "999", option, value) == "contact 999 does not exist"
    # and `contacts edit` said "contact 999 not found"
    assert refused(capsys, contacts["db"], "contacts", "edit", "999", "--name", "x") == "contact 999 does not exist"


@pytest.mark.parametrize("prefect", [[], ["--prefect"]])
def test_import_names_the_map_option(contacts, capsys, prefect):
    db, campaign = contacts["db"], str(contacts["campaign_id"])
    assert refused(capsys, db, "import", campaign, str(contacts["csv"]), "--map", "Phone=bogus_target", *prefect) == (
        "--map: unknown target 'bogus_target': use contact_phone, contact_name, company_name, email, "
        "custom:<name> or ignore")
    assert refused(capsys, db, "import", campaign, str(contacts["csv"]), "--map", "Name=custom:", *prefect) == (
        "--map: custom target 'custom:' needs a name, e.g. custom:plan")


@pytest.mark.parametrize("prefect", [[], ["--prefect"]])
def test_import_into_a_missing_campaign_says_it_does_not_exist(campaign_db, capsys, tmp_path, prefect):
    csv = write(tmp_path / "f.csv", "Phone,Name\n+16025550199,Zed\n")
    assert refused(capsys, campaign_db["db"], "import", "99", str(csv), *prefect) == "campaign 99 does not exist"


def test_contacts_remove_from_a_missing_campaign_says_it_does_not_exist(contacts, capsys):
    db, us, campaign = contacts["db"], contacts["us"], contacts["campaign_id"]
    assert refused(capsys, db, "contacts", "remove", "99", us) == "campaign 99 does not exist"
    code, _out, err = run(capsys, db, "contacts", "remove", str(campaign), us)
    assert (code, err) == (0, "")
    assert refused(capsys, db, "contacts", "remove", str(campaign), us) == (
        f"contact {us} is not enrolled in campaign {campaign}")


def test_clearing_the_start_date_of_an_active_campaign_names_start_date(campaign_db, capsys):
    db, campaign = campaign_db["db"], str(campaign_db["campaign_id"])
    assert refused(capsys, db, "edit", campaign, "--start-date", "none") == (
        f"--start-date: an active campaign needs a start date; deactivate it first (campaigns deactivate {campaign})")
    # with --active typed, that option is the one to name
    assert refused(capsys, db, "edit", campaign, "--active", "--start-date", "none") == (
        "--active: an active campaign needs a start date: set one, or turn Active off")
    # with another problem, each under its option
    assert refused(capsys, db, "edit", campaign, "--start-date", "none", "--batch-size", "0") == (
        "--batch-size: must be between 1 and 500, got 0; --start-date: an active campaign needs a start date; "
        f"deactivate it first (campaigns deactivate {campaign})")
    # deactivated first, the start date clears
    assert run(capsys, db, "deactivate", campaign)[0] == 0
    code, _out, err = run(capsys, db, "edit", campaign, "--start-date", "none")
    assert (code, err) == (0, "")


def test_contacts_zone_refuses_a_state_name_where_the_states_are_unknown(contacts, capsys):
    # the `holidays` package lists no subdivisions of MX (nor is pycountry a dependency): a name is refused
    # by its form; a code such as ZZ cannot be told from a real one there
    assert refused(capsys, contacts["db"], "contacts", "zone", contacts["mx"], "--state", "Jalisco") == (
        "--state: 'Jalisco' is not a state/province code of MX "
        "(its ISO 3166-2 code without the country: 1 to 3 letters or digits)")


def test_contacts_zone_checks_the_states_pycountry_knows(contacts, capsys, monkeypatch):
    # with pycountry installed, MX's states are known: MX-ZZ was stored and matched no rule, silently
    codes = ["MX-AGU", "MX-CMX", "MX-JAL"]
    fake = SimpleNamespace(subdivisions=SimpleNamespace(
        get=lambda country_code: [SimpleNamespace(code=c) for c in codes] if country_code == "MX" else None))
    monkeypatch.setitem(sys.modules, "pycountry", fake)
    db, mx = contacts["db"], contacts["mx"]
    assert refused(capsys, db, "contacts", "zone", mx, "--state", "ZZ") == (
        "--state: 'ZZ' is not a state/province code of MX (e.g. AGU)")
    before = store_digest(db)
    code, out, err = run(capsys, db, "contacts", "zone", mx, "--state", "jal")
    assert (code, err) == (0, "") and "MX-JAL" in out
    assert store_digest(db) != before
    # holidays' list still decides for the US
    assert refused(capsys, db, "contacts", "zone", contacts["us"], "--state", "ZZ") == (
        "--state: 'ZZ' is not a state/province code of US (e.g. AK)")


def test_the_messages_are_single_lines_under_json(campaign_db, capsys):
    # --json changes the output, not the error line
    code, out, err = run(capsys, campaign_db["db"], "--json", "list", "--sort", "bogus")
    assert (code, out, err) == (2, "", 'error: --sort: "bogus" is not one of created, name\n')


def test_nothing_is_written_by_a_refused_import_map(contacts, capsys):
    db = contacts["db"]
    with duckdb.connect(str(db), read_only=True) as conn:
        before = conn.execute("select count(*) from contacts").fetchone()[0], \
            conn.execute("select count(*) from import_runs").fetchone()[0]
    refused(capsys, db, "import", str(contacts["campaign_id"]), str(contacts["csv"]), "--map", "Phone=nope")
    with duckdb.connect(str(db), read_only=True) as conn:
        after = conn.execute("select count(*) from contacts").fetchone()[0], \
            conn.execute("select count(*) from import_runs").fetchone()[0]
    assert after == before and Path(contacts["csv"]).exists()
