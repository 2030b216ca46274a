"""The compliance commands of the `campaigns` CLI: dnc add|remove|import|list|suppressed, rules, contacts zone."""

from __future__ import annotations

import json

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
    code, out, _ = run(capsys, db, "dnc", "suppressed", str(campaign_id), "--json")
    assert [(r["contact_id"], r["dnc_list"], r["dnc_reason"]) for r in json.loads(out)] == [(contact_id, "global", "asked")]
    assert run(capsys, db, "dnc", "remove", "+1305*")[0] == 0
    code, _, err = run(capsys, db, "dnc", "remove", "+1305*")
    assert (code, err.strip()) == (2, "error: +1305* is not on the global list")
    code, _, err = run(capsys, db, "dnc", "add", "hello")
    assert (code, err.strip()) == (2, "error: entry 1: 'hello': not a phone number")
    code, _, err = run(capsys, db, "dnc", "remove", "+16025550999", "--campaign", "99")
    assert (code, err.strip()) == (2, "error: campaign 99 does not exist")


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
    add_contacts(db, campaign_id, 2)
    tuesday_10_phoenix = datetime(2026, 4, 28, 17, 0, tzinfo=timezone.utc)
    with transaction(db) as conn:
        add_dnc(conn, ["+16025550000"], tuesday_10_phoenix)
    run_tick(db, FakeProvider(), VirtualClock(tuesday_10_phoenix), pace_seconds=0)
    code, out, _ = run(capsys, db, "rules", "audit", str(campaign_id), "--json")
    # a sum over the audit rows was a 128-bit integer, printed as the string "1"
    assert (code, json.loads(out)) == (0, [{"rule": "do_not_call", "claims": 1, "skipped": 1,
                                             "last_at": "2026-04-28T17:00:00+00:00"}])


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
