"""`campaigns forecast ID`: the forecast on the command line, saying which outcome rates it used."""

from __future__ import annotations

import json

import pytest

from tests.factories import add_contacts, make_campaign_db
from tests.flows.cli_run import run
from tests.tasks.test_forecast_rates import add_history


@pytest.fixture
def small_campaign(db) -> int:
    """The reference campaign with 8 contacts, one attempt each: a forecast of one calling day."""
    ids = make_campaign_db(db, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 8)
    return ids["campaign_id"]


def test_the_forecast_says_the_default_rates_were_used_before_any_call(capsys, db, small_campaign):
    code, out, _ = run(capsys, db, "forecast", str(small_campaign), "--seed", "3")
    assert code == 0
    assert "Calls                 8" in out  # one attempt for each of the 8 contacts
    assert "Rates used            default" in out
    # the Metrics tab's rate (contacts) beside the simulation's (calls), each named
    connected = int(out.split("Connected contacts    ")[1].split()[0])
    assert f"Connection rate       {connected / 8:.1%} of contacts by the end (as the Metrics tab counts); " in out
    assert "of calls (observed so far: no calls yet of calls)" not in out


def test_the_json_keeps_its_keys_and_adds_the_rates(capsys, db, small_campaign):
    add_history(db, small_campaign, {"connected": 2, "no_answer": 8})
    code, out, _ = run(capsys, db, "forecast", str(small_campaign), "--seed", "3", "--json")
    data = json.loads(out)
    assert code == 0
    assert {"campaign_id", "start", "completion", "contacts", "remaining_contacts", "held_back_contacts", "calls",
            "connected_calls", "connected_contacts", "successful_contacts", "credits", "observed_connection_rate",
            "forecast_connection_rate", "seed", "horizon_days"} <= set(data)  # the keys before the rates existed
    assert data["rates_used"] == "default (10 calls so far, 200 needed)"
    assert (data["observed_calls"], data["observed_mix"]["connected"]) == (10, 0.2)
    assert data["calls"] == 18  # the 10 made and the 8 to make


def test_rates_can_be_forced_and_a_wrong_choice_is_refused(capsys, db, small_campaign):
    add_history(db, small_campaign, {"connected": 2, "no_answer": 8})
    code, out, _ = run(capsys, db, "forecast", str(small_campaign), "--seed", "3", "--rates", "observed")
    assert code == 0
    assert "Rates used            observed: 10 calls" in out
    assert "Observed outcomes     connected 20% · voicemail 0% · no answer 80% · busy 0%" in out
    code, _, err = run(capsys, db, "forecast", str(small_campaign), "--rates", "guess")
    assert code == 2
    assert "guess" in err


def test_the_completion_is_given_in_the_campaigns_zone_with_utc_beside_it(capsys, db, small_campaign):
    code, out, _ = run(capsys, db, "forecast", str(small_campaign), "--seed", "3", "--json")
    completion = json.loads(out)["completion"]
    from datetime import datetime
    from zoneinfo import ZoneInfo

    moment = datetime.fromisoformat(completion)
    code, out, _ = run(capsys, db, "forecast", str(small_campaign), "--seed", "3")
    assert code == 0
    local = moment.astimezone(ZoneInfo("America/Phoenix"))
    assert f"Expected completion   {local:%Y-%m-%d %H:%M} America/Phoenix ({moment.astimezone(ZoneInfo('UTC')):%H:%M} UTC)" in out


def test_a_finished_campaign_says_no_call_was_simulated(capsys, db, small_campaign):
    import duckdb

    with duckdb.connect(str(db)) as conn:
        conn.execute("update campaign_contacts set finished_at = now(), finished_reason = 'max_attempts', attempts = 1")
    code, out, _ = run(capsys, db, "forecast", str(small_campaign), "--seed", "3")
    assert code == 0, out
    assert "no calls simulated" in out and "n/a" not in out


def test_a_campaign_held_by_a_paused_number_has_no_expected_completion(capsys, db, small_campaign):
    # its only number out of rotation: the forecast gave the last call so far as the "Expected completion"
    from datetime import UTC, datetime

    from tasks.number_health import pause_number
    from tasks.store import transaction

    with transaction(db) as conn:
        number_id = conn.execute("select outbound_number_ids[1] from campaigns").fetchone()[0]
        pause_number(conn, number_id, datetime(2026, 4, 26, tzinfo=UTC), "3 spam marks in 81 calls in 24 h")
    code, out, _ = run(capsys, db, "forecast", str(small_campaign), "--seed", "3")
    assert code == 0
    line = next(text for text in out.splitlines() if text.startswith("Expected completion"))
    assert line.startswith("Expected completion   none while dialing is held (8 contacts left)"), line
    assert "Held back by          outbound number" in out


def test_a_campaign_with_only_do_not_call_contacts_left_completes(capsys, db, small_campaign):
    """Two of the eight on the do-not-call list: the simulation finishes the six others and nothing holds dialing.
    The CLI said "none while dialing is held (2 contacts left)" while its JSON gave the completion."""
    from datetime import UTC, datetime

    from tasks.compliance import add_dnc
    from tasks.store import transaction

    with transaction(db) as conn:
        add_dnc(conn, ["+16025550000", "+16025550001"], datetime(2026, 4, 20, tzinfo=UTC))
    code, out, _ = run(capsys, db, "forecast", str(small_campaign), "--seed", "3", "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["held_back_contacts"], data["do_not_call_contacts"], data["held_by"]) == (2, 2, None)
    assert data["completion"] is not None and data["calls"] == 6
    code, out, _ = run(capsys, db, "forecast", str(small_campaign), "--seed", "3")
    line = next(text for text in out.splitlines() if text.startswith("Expected completion"))
    assert "held" not in line and "America/Phoenix" in line, line
    assert "2 expected never to finish, 2 of them on a do-not-call list)" in out
    assert "Held back by" not in out
