"""`campaigns numbers health`: every outbound number's rotation state and whether it can dial at all."""

from __future__ import annotations

import json

from tasks.store import transaction
from tests.factories import make_campaign_db
from tests.flows.cli_run import run


def test_a_number_in_rotation_with_an_inactive_trunk_cannot_dial(capsys, db):
    make_campaign_db(db)
    with transaction(db) as conn:
        down = conn.execute("select min(number_id) from phone_numbers").fetchone()[0]
        conn.execute("update phone_numbers set sip_trunk_status = 'inactive' where number_id = ?", [down])
    code, out, _ = run(capsys, db, "numbers", "health", "--json")
    rows = {row["number_id"]: row for row in json.loads(out)}
    assert code == 0
    # rotation is the health verdict; the trunk decides too (tasks.dialing.usable_numbers skips it)
    assert (rows[down]["in_rotation"], rows[down]["can_dial"]) == (True, False)
    assert all(row["can_dial"] for number_id, row in rows.items() if number_id != down)
    code, out, _ = run(capsys, db, "numbers", "health")
    assert "can_dial" in out.splitlines()[0]


def test_numbers_restore_takes_the_virtual_clock_of_dial(capsys, db):
    # stamped with the wall clock, a restore came before a `dial --now` tick's calls, which paused it again at once
    from datetime import UTC, datetime

    from tasks.number_health import pause_number
    from tasks.store import connect

    ids = make_campaign_db(db)
    number = ids["number_ids"][0]
    with transaction(db) as conn:
        pause_number(conn, number, datetime(2027, 3, 13, 5, 10, tzinfo=UTC), "connection rate 2.0% over 50 calls")
    code, out, err = run(capsys, db, "numbers", "restore", str(number), "--now", "2027-03-13T05:15:00Z", "--json")
    assert (code, err, json.loads(out)) == (0, "", {"number_id": number, "restored": True})
    with connect(db) as conn:
        assert conn.execute("select changed_at from number_status_changes where action = 'restored'").fetchall() == [
            (datetime(2027, 3, 13, 5, 15, tzinfo=UTC),)]
    code, _out, err = run(capsys, db, "numbers", "restore", str(number), "--now", "yesterday")
    assert code == 2 and err.count("\n") == 1 and "--now" in err
