"""`campaigns dial`: one tick from the shell; a campaign that fails does not hide what the others did."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

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


def test_a_tick_that_places_nothing_says_why_for_each_campaign(campaign_db, capsys):
    """It printed only "placed 0 call(s)": a campaign outside its window or inactive gets no batch, and no line."""
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    with transaction(db) as conn:
        copy = duplicate_campaign(conn, campaign_id, datetime(2026, 4, 28, tzinfo=UTC))  # a copy is inactive
    # 03:00 UTC is Monday 20:00 in Phoenix (UTC-7), after the 08:00-18:00 window; no offset given: read as UTC
    code, out, err = run(capsys, db, "dial", "--now", "2026-04-28T03:00:00")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "virtual clock at 2026-04-28 03:00:00 UTC",
        "reconciled 0 call(s); placed 0 call(s)",
        f"  campaign {campaign_id}: no batch (outside its calling window: Mon 2026-04-27 20:00 America/Phoenix;"
        " next opens Tue 2026-04-28 08:00)",
        f"  campaign {copy}: no batch (inactive)",
    ]
    # inside the window the batch line says why it placed nothing; the same instant with its offset
    code, out, err = run(capsys, db, "dial", "--now", "2026-04-28T10:00:00-07:00", "--json")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert (result["now"], result["placed"]) == ("2026-04-28T17:00:00+00:00", 0)
    assert [(b["campaign_id"], b["message"]) for b in result["batches"]] == [(campaign_id, "no eligible contacts")]
    assert result["idle"] == [{"campaign_id": copy, "reason": "inactive"}]


@pytest.mark.parametrize(("dates", "now", "reason"), [
    ({"start_date": "2026-05-04"}, TUESDAY_10_PHOENIX, "starts on 2026-05-04"),
    ({"end_date": "2026-04-27"}, TUESDAY_10_PHOENIX, "ended on 2026-04-27"),
    # Saturday 10:00 in Phoenix: not a calling day
    ({}, "2026-05-02T17:00:00Z", "outside its calling window: Sat 2026-05-02 10:00 America/Phoenix;"
                                 " next opens Mon 2026-05-04 08:00"),
])
def test_the_reason_a_campaign_gets_no_batch(db, capsys, dates, now, reason):
    campaign_id = make_campaign_db(db, **dates)["campaign_id"]
    code, out, err = run(capsys, db, "dial", "--now", now, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["idle"] == [{"campaign_id": campaign_id, "reason": reason}]


def test_the_now_option_says_an_instant_without_offset_is_utc():
    import typer

    from flows.cli.common import app

    commands = typer.main.get_command(app).commands
    for name in ("dial", "run", "enrich"):
        [option] = [p for p in commands[name].params if p.name == "now"]
        assert "without an offset is UTC" in option.help, name


def test_run_of_a_campaign_without_an_outbound_number_exits_2(campaign_db, capsys):
    # it printed "claimed 0, placed 0 (no outbound number configured)" and exited 0, as when nobody is due
    import duckdb

    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    with duckdb.connect(str(db)) as conn:
        conn.execute("update campaigns set outbound_number_ids = [], rotation_enabled = false")
    code, out, err = run(capsys, db, "run", str(campaign_id), "--now", "2026-04-28T17:00:00Z")
    assert code == 2 and "(no outbound number configured)" in out
    assert err == (f"error: campaign {campaign_id}: no outbound number configured; add one with "
                   f"`campaigns edit {campaign_id} --number ID`\n")
