"""The call commands of the `campaigns` CLI: enrich, feedback, calls show (in-process via main)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tasks.store import connect, transaction
from tasks.telephony import simulator_path
from tasks.telephony.base import CallRequest
from tasks.telephony.simulator import SimulatedProvider
from tests.flows.cli_run import run
from tests.tasks.seeding import call_row, seed_call

QUEUED = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)


@pytest.fixture
def call_id(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        return seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, provider_call_id="pc_1")


def test_feedback_up_with_a_comment(capsys, campaign_db, call_id):
    code, out, err = run(capsys, campaign_db["db"], "feedback", str(call_id), "--up", "--comment", "Nice close", "--json")
    assert (code, err) == (0, "")
    assert {k: json.loads(out)[k] for k in ("call_id", "rating", "comment")} == {
        "call_id": call_id, "rating": "up", "comment": "Nice close"}
    code, out, _ = run(capsys, campaign_db["db"], "feedback", str(call_id), "--clear-rating")
    assert (code, out.strip()) == (0, f"call {call_id}: rating -, comment Nice close")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--up", "--down"], "error: give only one of --up, --down, --clear-rating"),
        ([], "error: feedback: give a rating, a comment or clear the rating"),
        (["--comment", "x" * 2001], "error: comment: is 2001 characters; at most 2000"),
    ],
)
def test_bad_feedback_is_one_line_and_exit_2(capsys, campaign_db, call_id, args, message):
    code, out, err = run(capsys, campaign_db["db"], "feedback", str(call_id), *args)
    assert (code, out, err.strip()) == (2, "", message)


def test_feedback_on_an_unknown_call(capsys, campaign_db, call_id):
    code, _, err = run(capsys, campaign_db["db"], "feedback", "999", "--down")
    assert (code, err.strip()) == (2, "error: call 999 does not exist")


def test_calls_show(capsys, campaign_db, call_id):
    run(capsys, campaign_db["db"], "feedback", str(call_id), "--down")
    code, out, err = run(capsys, campaign_db["db"], "calls", "show", str(call_id), "--json")
    shown = json.loads(out)
    assert (code, err) == (0, "")
    assert (shown["call_id"], shown["status"], shown["contact_name"], shown["feedback_rating"]) == (
        call_id, "registered", "Test Person", "down")
    assert shown["dynamic_variables"] == {"contact_name": "Test Person"}
    code, _, err = run(capsys, campaign_db["db"], "calls", "show", "999")
    assert (code, err.strip()) == (2, "error: call 999 does not exist")


def test_calls_show_prints_the_dynamic_variables_as_json_text(capsys, campaign_db, call_id):
    """They were a Python repr ({'contact_name': 'Test Person'}), unlike `show` and what --json gives."""
    code, out, err = run(capsys, campaign_db["db"], "calls", "show", str(call_id))
    assert (code, err) == (0, "")
    [line] = [line for line in out.splitlines() if line.startswith("dynamic_variables ")]
    assert line.split(maxsplit=1)[1] == '{"contact_name": "Test Person"}'


def test_enrich_with_the_simulator_on_a_virtual_clock(capsys, campaign_db):
    db = campaign_db["db"]
    provider = SimulatedProvider(simulator_path(db=db), seed=42)
    with transaction(db) as conn:
        call_id = seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED)
        key = call_row(conn, call_id)["attempt_key"]
        provider_call_id = provider.place_call(CallRequest("+16025551234", "+16025550100", "agent_sim_1", key), QUEUED)
        conn.execute("update calls set provider_call_id = ? where call_id = ?", [provider_call_id, call_id])
    provider.close()
    later = (QUEUED + timedelta(minutes=20)).isoformat()
    code, out, err = run(capsys, db, "enrich", "--now", later, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"pending": 1, "asked": 1, "changed": 1, "stuck_errors": 0, "analysis_missing": 0,
                               "unknown": 0, "provider_errors": 0}
    with connect(db) as conn:
        assert call_row(conn, call_id)["analyzed_at"] is not None
    code, _, err = run(capsys, db, "enrich", "--now", "yesterday")
    assert (code, err.strip()) == (2, "error: --now: 'yesterday' is not an ISO date-time (e.g. 2026-04-28T17:00:00Z)")
