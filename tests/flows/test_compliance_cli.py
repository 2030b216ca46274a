"""The compliance commands of the `campaigns` CLI: dnc add|remove|import|list|suppressed, rules, contacts zone."""

from __future__ import annotations

import json
from pathlib import Path

from tests.factories import add_contacts
from tests.flows.cli_run import run


def test_dnc_lists_from_the_command_line(campaign_db, capsys, tmp_path):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    [contact_id] = add_contacts(db, campaign_id, 1)
    assert run(capsys, db, "dnc", "add", "+1305*", "(602) 555-0000", "--country", "US", "--reason", "asked")[0] == 0
    assert run(capsys, db, "dnc", "add", "+16025550999", "--campaign", str(campaign_id))[0] == 0
    file = tmp_path / "dnc.csv"
    file.write_text("number\n+13125550100\n", encoding="utf-8")
    assert run(capsys, db, "dnc", "import", str(file))[0] == 0
    code, out, _ = run(capsys, db, "dnc", "list", "--json")
    assert sorted(r["pattern"] for r in json.loads(out)) == ["+1305*", "+13125550100", "+16025550000"]
    code, out, _ = run(capsys, db, "dnc", "list", "--all", "--json")
    assert len(json.loads(out)) == 4
    code, _, err = run(capsys, db, "dnc", "list", "--all", "--campaign", str(campaign_id))
    assert (code, err.strip()) == (2, "error: give --campaign ID (that campaign's list) or --all (every list), not both")
    code, out, _ = run(capsys, db, "dnc", "suppressed", str(campaign_id), "--json")
    assert [(r["contact_id"], r["dnc_list"], r["dnc_reason"]) for r in json.loads(out)] == [(contact_id, "global", "asked")]
    assert run(capsys, db, "dnc", "remove", "+1305*")[0] == 0
    code, _, err = run(capsys, db, "dnc", "remove", "+1305*")
    assert (code, err.strip()) == (2, "error: +1305* is not on the global list")
    code, _, err = run(capsys, db, "dnc", "add", "hello")
    assert (code, err.strip()) == (2, "error: entry 1: 'hello': not a phone number")
    code, _, err = run(capsys, db, "dnc", "remove", "+16025550999", "--campaign", "99")
    assert (code, err.strip()) == (2, "error: campaign 99 does not exist")


def test_rules_list_shows_every_day_of_the_week(campaign_db, capsys, tmp_path):
    # a rule whose Tuesday differs: the table shows it (it used to show mon, sat and sun only)
    shipped = (Path(__file__).resolve().parents[2] / "data" / "calling_rules.csv").read_text(encoding="utf-8")
    header, *rows = shipped.splitlines()
    french = next(i for i, row in enumerate(rows) if row.startswith("FR,"))
    cells = rows[french].split(",")
    cells[4] = "11:00-12:00"  # tue
    rows[french] = ",".join(cells)
    rules = tmp_path / "rules.csv"
    rules.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    assert run(capsys, campaign_db["db"], "rules", "import", str(rules))[0] == 0
    code, out, _ = run(capsys, campaign_db["db"], "rules", "list")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert code == 0 and "hours" in out.splitlines()[0]
    assert "mon 10:00-13:00 14:00-20:00; tue 11:00-12:00; wed-fri 10:00-13:00 14:00-20:00; sat-sun none" in lines["FR"]
    assert "mon-sun 08:00-21:00" in lines["US"]


def test_rules_and_contact_zone_from_the_command_line(campaign_db, capsys):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    [contact_id] = add_contacts(db, campaign_id, 1)
    code, out, _ = run(capsys, db, "rules", "list", "--json")
    assert {r["rule_id"] for r in json.loads(out)} == {"US", "US-FL", "FR", "CO", "DEFAULT"}
    code, out, _ = run(capsys, db, "contacts", "zone", str(contact_id), "--state", "FL", "--json")
    assert json.loads(out) == {"contact_id": contact_id, "time_zones": ["America/Chicago", "America/New_York"],
                               "country": "US", "subdivision": "FL", "source": "hand"}
    code, _, err = run(capsys, db, "contacts", "zone", str(contact_id), "--time-zone", "Mars/Base")
    assert code == 2 and "unknown IANA time zone 'Mars/Base'" in err
    code, out, _ = run(capsys, db, "rules", "audit", str(campaign_id), "--json")
    assert (code, json.loads(out)) == (0, [])


def test_rules_audit_counts_are_numbers_in_json(campaign_db, capsys):
    from datetime import datetime, timezone

    from tasks.clock import VirtualClock
    from tasks.compliance import add_dnc
    from tasks.dialing import run_tick
    from tasks.store import transaction
    from tests.fakes import FakeProvider

    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    listed, _ = add_contacts(db, campaign_id, 2)
    tuesday_10_phoenix = datetime(2026, 4, 28, 17, 0, tzinfo=timezone.utc)
    with transaction(db) as conn:
        add_dnc(conn, ["+16025550000"], tuesday_10_phoenix)
    run_tick(db, FakeProvider(), VirtualClock(tuesday_10_phoenix), pace_seconds=0)
    code, out, _ = run(capsys, db, "rules", "audit", str(campaign_id), "--json")
    # a sum over the audit rows was a 128-bit integer, printed as the string "1"; the samples are ids too
    assert (code, json.loads(out)) == (0, [{"rule": "do_not_call", "claims": 1, "skipped": 1,
                                             "last_at": "2026-04-28T17:00:00+00:00", "sample_contact_ids": [listed]}])


def test_dnc_import_of_a_file_without_a_header_from_the_command_line(campaign_db, capsys, tmp_path):
    db = campaign_db["db"]
    file = tmp_path / "numbers.csv"
    file.write_text("(305) 555-0100\n(305) 555-0101\n", encoding="utf-8")
    code, out, _ = run(capsys, db, "dnc", "import", str(file), "--country", "US")
    assert (code, out.strip()) == (0, f"added 2 from {file}")
    bad = tmp_path / "bad.csv"
    bad.write_text("phone\n+13055550102,+13055550103\n", encoding="utf-8")
    code, _, err = run(capsys, db, "dnc", "import", str(bad))
    assert code == 2 and err.startswith(f"error: {bad} row 2, field 2: '+13055550103'") and err.count("\n") == 1
    code, out, _ = run(capsys, db, "dnc", "list", "--json")
    assert sorted(r["pattern"] for r in json.loads(out)) == ["+13055550100", "+13055550101"]


def test_dnc_import_of_a_file_of_one_number_from_the_command_line(campaign_db, capsys, tmp_path):
    # a single line was refused as "a header row but no data rows"
    file = tmp_path / "one.csv"
    file.write_text("+14155550100\n", encoding="utf-8")
    code, out, err = run(capsys, campaign_db["db"], "dnc", "import", str(file))
    assert (code, out.strip(), err) == (0, f"added 1 from {file}", "")


def test_rules_audit_since_a_campaign_local_day_or_an_instant(campaign_db, capsys):
    from datetime import datetime, timezone

    import polars as pl

    from tasks.compliance import record_audit
    from tasks.store import transaction

    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    monday_2330_phoenix = datetime(2026, 4, 28, 6, 30, tzinfo=timezone.utc)  # already Tuesday in UTC
    tuesday_10_phoenix = datetime(2026, 4, 28, 17, 0, tzinfo=timezone.utc)
    with transaction(db) as conn:
        for now, sample in ((monday_2330_phoenix, [1, 2]), (tuesday_10_phoenix, [3])):
            audit = pl.DataFrame({"rule": ["do_not_call"], "skipped": [len(sample)], "sample_contact_ids": [sample]})
            record_audit(conn, campaign_id, now, "tick", audit)

    def audit_since(since: str) -> list[dict]:
        code, out, err = run(capsys, db, "rules", "audit", str(campaign_id), "--since", since, "--json")
        assert (code, err) == (0, "")
        return json.loads(out)

    # a date is the start of that day in the campaign's zone (America/Phoenix, UTC-7): 07:00 UTC
    assert audit_since("2026-04-28") == [{"rule": "do_not_call", "claims": 1, "skipped": 1,
                                          "last_at": "2026-04-28T17:00:00+00:00", "sample_contact_ids": [3]}]
    # a date-time is that instant (UTC when it names no offset, as --now)
    assert audit_since("2026-04-28T06:30:00") == [{"rule": "do_not_call", "claims": 2, "skipped": 3,
                                                   "last_at": "2026-04-28T17:00:00+00:00",
                                                   "sample_contact_ids": [3, 1, 2]}]
    assert audit_since("2026-04-28T10:00:01-07:00") == []
    code, out, _ = run(capsys, db, "rules", "audit", str(campaign_id), "--since", "2026-04-28")
    assert code == 0 and "do_not_call" in out and "3" in out.splitlines()[1]


def test_rules_audit_refuses_a_since_that_is_no_date_in_one_line(campaign_db, capsys):
    code, out, err = run(capsys, campaign_db["db"], "rules", "audit", str(campaign_db["campaign_id"]), "--since", "yesterday")
    assert (code, out) == (2, "")
    assert err == "error: --since: 'yesterday' is not an ISO date or date-time (e.g. 2026-04-28 or 2026-04-28T17:00:00Z)\n"


def test_a_campaign_list_reads_national_numbers_in_the_campaign_country(campaign_db, capsys, tmp_path):
    """`dnc add 3001234567 --campaign ID` was refused ("missing country code and no default country") although
    the campaign has a country; the global list, which has none, still needs --country."""
    db = campaign_db["db"]
    code, out, err = run(capsys, db, "create", "--name", "Bogota", "--agent", str(campaign_db["agent_id"]),
                         "--time-zone", "America/Bogota", "--country", "CO", "--hours", "08:00-18:00", "--json")
    assert (code, err) == (0, "")
    bogota = str(json.loads(out)["campaign_id"])
    assert run(capsys, db, "dnc", "add", "300 123 4567", "--campaign", bogota) == (0, "added 1\n", "")
    file = tmp_path / "dnc.csv"
    file.write_text("phone\n301 765 4321\n", encoding="utf-8")
    assert run(capsys, db, "dnc", "import", str(file), "--campaign", bogota)[0] == 0
    # --country still decides when given: a US number on the Bogota campaign's list
    assert run(capsys, db, "dnc", "add", "602 555 0199", "--campaign", bogota, "--country", "US")[0] == 0
    code, out, _ = run(capsys, db, "dnc", "list", "--campaign", bogota, "--json")
    assert sorted(r["pattern"] for r in json.loads(out)) == ["+16025550199", "+573001234567", "+573017654321"]
    assert run(capsys, db, "dnc", "remove", "3001234567", "--campaign", bogota) == (0, "removed 3001234567\n", "")
    code, out, err = run(capsys, db, "dnc", "add", "300 123 4567")
    assert (code, err) == (2, "error: entry 1: '300 123 4567': missing country code and no default country\n")
