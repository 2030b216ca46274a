"""Rolling caps at their edges: a cap of 0 calls allows no call at all, not even to a number never called."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tasks.compliance import load_rules, replace_rules
from tasks.dialing import _classify
from tasks.store import connect, transaction
from tests.tasks.test_compliance import TUE_10_PHOENIX, add_numbers, add_past_calls, eligible_ids, plan_of


@pytest.mark.parametrize(("cap", "rule"), [("max_calls_24h", "cap_24h:US-FL"), ("max_calls_30d", "cap_30d:US-FL")])
@pytest.mark.parametrize("called_before", [False, True])
def test_a_cap_of_zero_holds_back_every_number(campaign_db, cap, rule, called_before):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    miami, phoenix = add_numbers(db, campaign_id, ["+13055550100", "+16025550100"])
    with transaction(db) as conn:
        rules = load_rules(conn)
        rules["US-FL"] = replace(rules["US-FL"], **{cap: 0})
        replace_rules(conn, list(rules.values()), TUE_10_PHOENIX)
    if called_before:
        add_past_calls(db, "+13055550100", [TUE_10_PHOENIX - timedelta(hours=2)], campaign_id=99)
    # Florida allows no call at all now; Arizona (US rule, no cap) is untouched
    assert eligible_ids(db, campaign_id) == [phoenix]
    with connect(db) as conn:
        _picked, skipped = _classify(conn, plan_of(db, campaign_id), TUE_10_PHOENIX, timedelta(0), size=10, audit=True)
    assert skipped.to_dicts() == [{"rule": rule, "skipped": 1, "sample_contact_ids": [miami]}]


def test_a_24h_cap_counts_an_attempt_until_a_day_after_its_batch_may_place_it(campaign_db):
    # A batch places its calls over minutes after its claim; the cap counted attempts from their claim, so the
    # call of yesterday's 14:00:00 claim placed at 14:00:18 no longer counted at today's 14:00:00 claim: a 4th
    # call in 24 h to a Florida number whose rule allows 3.
    from tasks.clock import VirtualClock
    from tasks.dialing import HORIZON_SLACK_SECONDS, run_manual
    from tests.fakes import FakeProvider

    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    [miami] = add_numbers(db, campaign_id, ["+13055550100"])
    with transaction(db) as conn:
        conn.execute("update campaigns set max_attempts = 9, attempts_per_day = 9")

    def claim(at) -> int:
        result = run_manual(db, FakeProvider(), campaign_id, VirtualClock(at), pace_seconds=3)
        with transaction(db) as conn:  # its outcome came: the contact is free again
            conn.execute("update campaign_contacts set in_flight_call_id = null")
            conn.execute("update calls set status = 'not_connected' where status = 'registered'")
        return result.placed

    first = TUE_10_PHOENIX
    assert [claim(first + timedelta(hours=h)) for h in (0, 2, 4)] == [1, 1, 1]
    with connect(db) as conn:
        size = conn.execute("select batch_size from campaigns where campaign_id = ?", [campaign_id]).fetchone()[0]
        # the claim's placing deadline: its batch size at 3 s a call, plus the slack for waiting on free lines
        span = timedelta(seconds=3 * size + HORIZON_SLACK_SECONDS)
        assert conn.execute("select min(attempted_at) from phone_attempts").fetchone()[0] == first + span
    assert claim(first + timedelta(hours=24)) == 0  # the first call may have rung at first + span
    with connect(db) as conn:
        held = conn.execute("select rule from claim_audit order by tick_at desc limit 1").fetchone()[0]
    assert held == "cap_24h:US-FL"
    assert claim(first + timedelta(hours=24) + span + timedelta(seconds=1)) == 1
    assert miami
