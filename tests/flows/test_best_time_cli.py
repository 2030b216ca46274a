"""`campaigns best-time ID`: the weekday × hour table says which rates rest on too few calls, as the heatmap does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tasks.best_time import MIN_CELL_CALLS, refresh_best_time_stats
from tasks.store import transaction
from tests.factories import add_contacts
from tests.flows.cli_run import run
from tests.tasks.test_best_time import add_call

TUE_10_PHOENIX = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)


def test_a_rate_over_few_calls_is_marked_not_reliable(capsys, campaign_db):
    db, cid = campaign_db["db"], campaign_db["campaign_id"]
    phoenix = add_contacts(db, cid, 1)[0]  # no time_zones: called in the campaign's zone (Phoenix)
    with transaction(db) as conn:
        add_call(conn, cid, phoenix, TUE_10_PHOENIX, True, "lucky")  # Tue 10:00: 1 of 1 connected
        for i in range(MIN_CELL_CALLS):  # Tue 11:00: 3 of 10 connected
            add_call(conn, cid, phoenix, TUE_10_PHOENIX + timedelta(hours=1), i < 3, f"k{i}")
        refresh_best_time_stats(conn, TUE_10_PHOENIX + timedelta(hours=2))
    code, out, _ = run(capsys, db, "best-time", str(cid))
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert lines[1] == ["tue", "10", "1", "1", "100%", "fewer", "than", "10", "calls:", "not", "reliable", "yet"]
    assert lines[2] == ["tue", "11", "10", "3", "30%"]  # enough calls: no note
    code, out, _ = run(capsys, db, "best-time", str(cid), "--json")
    seen = [cell for cell in json.loads(out) if cell["calls"]]
    assert [(c["weekday"], c["hour"], c["calls"], c["connection_rate"]) for c in seen] == [(1, 10, 1, 1.0), (1, 11, 10, 0.3)]
