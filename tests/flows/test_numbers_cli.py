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
