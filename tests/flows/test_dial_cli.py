"""`campaigns dial`: one tick from the shell; a campaign that fails does not hide what the others did."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tasks.campaigns import duplicate_campaign
from tasks.store import connect, transaction
from tests.factories import add_contacts, make_campaign_db
from tests.flows.cli_run import run

TUESDAY_10_PHOENIX = "2026-04-28T17:00:00+00:00"


def test_a_failing_campaign_is_named_after_the_others_dialed_and_exits_1(db, capsys, monkeypatch):
    monkeypatch.setenv("CAMPAIGNS_DIAL_PACE_SECONDS", "0")
    first = make_campaign_db(db)
    [contact] = add_contacts(db, first["campaign_id"], 1)
    code, out, _ = run(capsys, db, "dial", "--now", TUESDAY_10_PHOENIX, "--json")
    assert (code, json.loads(out)["placed"]) == (0, 1)
    with transaction(db) as conn:
        second = duplicate_campaign(conn, first["campaign_id"], datetime(2026, 4, 28, tzinfo=UTC))
        conn.execute("update campaigns set active = true, start_date = date '2026-04-27' where campaign_id = ?", [second])
        # an enrollment written by hand that restarts the contact's attempt keys: its claim hits a unique key
        conn.execute("delete from campaign_contacts where campaign_id = ?", [first["campaign_id"]])
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [first["campaign_id"], contact])
    add_contacts(db, second, 1)
    code, out, err = run(capsys, db, "dial", "--now", "2026-04-29T17:00:00+00:00")
    assert code == 1
    assert f"campaign {second}: claimed 1, placed 1" in out
    assert err.startswith(f"error: campaign {first['campaign_id']} (Spring outreach): ConstraintException")
    assert err.count("\n") == 1
    with connect(db) as conn:
        assert conn.execute("select count(*) from calls where campaign_id = ?", [second]).fetchone()[0] == 1
