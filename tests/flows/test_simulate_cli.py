"""`campaigns simulate`: the summary tells the span the simulated clock really covered, and whether it completed."""

from __future__ import annotations

import json

from flows.cli import main
from tests.factories import add_contacts, make_campaign_db


def simulate_cli(capsys, db, *args: str) -> str:
    assert main(["--db", str(db), "simulate", *args]) == 0
    return capsys.readouterr().out


def test_a_campaign_that_completes_on_its_first_day_does_not_claim_the_days_asked_for(db, capsys):
    # one attempt each: every contact is finished on Monday, April 27 (the campaign's start date)
    ids = make_campaign_db(db, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 5)
    out = simulate_cli(capsys, db, str(ids["campaign_id"]), "--days", "14")
    assert "simulated 14 day(s)" not in out
    assert "hour(s) (2026-04-27 07:00 to 2026-04-27 " in out  # local midnight to the same afternoon, UTC
    assert "14 day(s) requested), completed: every contact finished" in out


def test_the_json_result_has_the_covered_span_and_the_outcome(db, capsys):
    ids = make_campaign_db(db, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 5)
    result = json.loads(simulate_cli(capsys, db, str(ids["campaign_id"]), "--days", "14", "--json"))
    assert result["requested_days"] == 14
    assert 0 < result["simulated_days"] < 1
    assert (result["completed"], result["contacts_left"]) == (True, 0)
