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
