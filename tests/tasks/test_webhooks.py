"""Retell webhook events: signatures (good, bad, stale, missing), parsing, any order, any repeats."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from tasks.call_state import find_call_id
from tasks.store import connect, transaction
from tasks.telephony.retell import sign_retell_payload
from tasks.webhooks import WebhookRejected, apply_event, parse_event
from tests.tasks.seeding import call_row, enrollment_row, seed_call

KEY = "key_webhook_test"
QUEUED = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)
NOW = QUEUED + timedelta(minutes=3)
START_MS = int(QUEUED.timestamp() * 1000) + 4000


def retell_events(call_id: str = "call_w1", attempt_key: str | None = None) -> dict[str, dict]:
    """The three events Retell sends for one answered call, as it sends them."""
    base = {"call_id": call_id, "agent_id": "agent_1", "metadata": {"attempt_key": attempt_key} if attempt_key else {},
            "start_timestamp": START_MS}
    ended = {**base, "call_status": "ended", "end_timestamp": START_MS + 75_000, "duration_ms": 75_000,
             "disconnection_reason": "user_hangup", "transcript": "Agent: Hi\nUser: Hello",
             "recording_url": "https://rec/w1.wav", "call_cost": {"combined_cost": 9.0}}
    return {
        "call_started": {"event": "call_started", "call": {**base, "call_status": "ongoing"}},
        "call_ended": {"event": "call_ended", "call": ended},
        "call_analyzed": {"event": "call_analyzed", "call": {**ended, "call_analysis": {
            "call_successful": True, "call_summary": "Agreed to a demo", "user_sentiment": "Positive",
            "in_voicemail": False, "custom_analysis_data": {"interested": True}}}},
    }


def signed(payload: dict, at: datetime = NOW, key: str = KEY) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    return body, sign_retell_payload(body, key, at)


@pytest.fixture
def call_id(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        return seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, provider="retell",
                         provider_call_id="call_w1", attempt_key="1.1.1")


def deliver(db, payload: dict, now: datetime = NOW):
    body, header = signed(payload, now)
    event = parse_event(body, header, KEY, now)
    with transaction(db) as conn:
        return apply_event(conn, event, now)


# -- signatures ----------------------------------------------------------------------------------

def test_a_good_signature_gives_the_parsed_event():
    body, header = signed(retell_events()["call_ended"])
    event = parse_event(body, header, KEY, NOW)
    assert (event.event, event.call.provider_call_id, event.call.status.value, event.call.duration_seconds) == (
        "call_ended", "call_w1", "ended", 75.0)


@pytest.mark.parametrize(
    ("header", "body_change", "now", "message"),
    [
        (None, None, NOW, "X-Retell-Signature missing"),
        ("", None, NOW, "X-Retell-Signature missing"),
        ("v=123,d=zz", None, NOW, "X-Retell-Signature invalid or stale"),  # not hex
        ("garbage", None, NOW, "X-Retell-Signature invalid or stale"),
        ("wrong-key", None, NOW, "X-Retell-Signature invalid or stale"),  # signed with another key
        ("good", b" ", NOW, "X-Retell-Signature invalid or stale"),  # body changed after signing
        ("good", None, NOW + timedelta(minutes=5, seconds=1), "X-Retell-Signature invalid or stale"),  # stale replay
        ("good", None, NOW - timedelta(minutes=5, seconds=1), "X-Retell-Signature invalid or stale"),  # from the future
    ],
)
def test_a_bad_signature_is_refused_with_401(header, body_change, now, message):
    body, good = signed(retell_events()["call_ended"])
    if header == "good":
        header = good
    elif header == "wrong-key":
        header = signed(retell_events()["call_ended"], key="another_key")[1]
    with pytest.raises(WebhookRejected, match=message) as refused:
        parse_event(body + (body_change or b""), header, KEY, now)
    assert refused.value.status == 401


def test_a_signature_five_minutes_old_is_still_accepted():
    body, header = signed(retell_events()["call_ended"], at=NOW)
    assert parse_event(body, header, KEY, NOW + timedelta(minutes=5)).event == "call_ended"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "body is not JSON"),
        (b"[1, 2]", "body has no event"),
        (b'{"event": "call_ended", "call": {"call_status": "ended"}}', "no call_id"),
    ],
)
def test_a_signed_but_malformed_body_is_refused_with_400(body, message):
    with pytest.raises(WebhookRejected, match=message) as refused:
        parse_event(body, sign_retell_payload(body, KEY, NOW), KEY, NOW)
    assert refused.value.status == 400


def test_half_an_emoji_in_a_delivery_is_stored_as_a_replacement_character(campaign_db, call_id):
    # JSON.stringify of a transcript cut inside an emoji escapes a lone surrogate, which json.loads accepts and no
    # UTF-8 store can hold: the delivery was answered 500 (and dropped after Retell's retries)
    event = retell_events()["call_analyzed"]
    event["call"]["transcript"] = "Agent: hello \ud83d"
    event["call"]["call_analysis"]["custom_analysis_data"] = {"note\udc00": "x\ud800y"}
    body, _ = signed(event)
    assert b"\\ud83d" in body  # escaped in the JSON, as JavaScript sends it
    assert deliver(campaign_db["db"], event).status == 200
    with connect(campaign_db["db"]) as conn:
        transcript, custom = conn.execute("select transcript, custom_analysis from calls where call_id = ?",
                                          [call_id]).fetchone()
    assert transcript == "Agent: hello \ufffd" and json.loads(custom) == {"note\ufffd": "x\ufffdy"}
    unknown = retell_events(call_id="x\ud800")["call_ended"]
    assert deliver(campaign_db["db"], unknown).status == 202  # an unknown call, not a 500


def test_an_event_type_we_do_not_handle_is_ignored():
    body, header = signed({"event": "transcript_updated", "call": {"call_id": "call_w1"}})
    assert parse_event(body, header, KEY, NOW) is None


# -- applying ------------------------------------------------------------------------------------

def test_the_three_events_in_order_give_the_full_row(campaign_db, call_id):
    events = retell_events()
    results = [deliver(campaign_db["db"], events[name]) for name in ("call_started", "call_ended", "call_analyzed")]
    assert [(r.status, r.call_id, r.changed) for r in results] == [(200, call_id, True)] * 3
    with connect(campaign_db["db"]) as conn:
        row, enrollment = call_row(conn, call_id), enrollment_row(conn, call_id)
    assert (row["status"], row["disconnect_reason"], row["duration_seconds"], row["credits"]) == (
        "ended", "user_hangup", 75.0, 666)
    assert (row["call_successful"], row["summary"], row["user_sentiment"], row["analyzed_at"]) == (
        True, "Agreed to a demo", "Positive", NOW)
    assert (enrollment["in_flight_call_id"], enrollment["finished_reason"]) == (None, "successful")


def test_call_ended_alone_keeps_the_contact_waiting_for_the_analysis(campaign_db, call_id):
    deliver(campaign_db["db"], retell_events()["call_ended"])
    with connect(campaign_db["db"]) as conn:
        assert enrollment_row(conn, call_id)["in_flight_call_id"] == call_id
        assert call_row(conn, call_id)["credits"] == 666


def _final_state(db, call_id) -> tuple[dict, dict]:
    with connect(db) as conn:
        return call_row(conn, call_id), enrollment_row(conn, call_id)


@pytest.mark.parametrize("order", list(itertools.permutations(["call_started", "call_ended", "call_analyzed"])))
def test_every_order_of_the_three_events_gives_the_same_row(tmp_path, monkeypatch, order):
    from tasks.settings import reset_settings
    from tests.factories import make_campaign_db

    def final_row(names, label) -> tuple[dict, dict]:
        path = tmp_path / f"{label}.duckdb"
        ids = make_campaign_db(path)
        with transaction(path) as conn:
            cid = seed_call(conn, ids["campaign_id"], "+16025551234", QUEUED, provider="retell",
                            provider_call_id="call_w1", attempt_key="1.1.1")
        events = retell_events()
        for name in names:
            deliver(path, events[name])
        return _final_state(path, cid)

    monkeypatch.delenv("CAMPAIGNS_DB", raising=False)
    reset_settings()
    assert final_row(order, "shuffled") == final_row(("call_started", "call_ended", "call_analyzed"), "in_order")


def test_repeated_deliveries_change_nothing(campaign_db, call_id):
    events = retell_events()
    for name in ("call_started", "call_ended", "call_analyzed"):
        deliver(campaign_db["db"], events[name])
    before = _final_state(campaign_db["db"], call_id)
    # Retell retries deliveries; a late retry of any event, even minutes later, is a no-op
    later = NOW + timedelta(minutes=4)
    again = [deliver(campaign_db["db"], events[name], later) for name in ("call_analyzed", "call_started", "call_ended")]
    assert [(r.status, r.changed) for r in again] == [(200, False)] * 3
    assert _final_state(campaign_db["db"], call_id) == before


def test_an_event_finds_its_call_by_attempt_key_before_the_provider_id_is_stored(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        # the dialer crashed between the provider's answer and storing its call id
        call_id = seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, status="created",
                            provider="retell", attempt_key="1.1.1")
    result = deliver(campaign_db["db"], retell_events(attempt_key="1.1.1")["call_started"])
    assert (result.status, result.call_id) == (200, call_id)
    with connect(campaign_db["db"]) as conn:
        row = call_row(conn, call_id)
    assert (row["status"], row["provider_call_id"]) == ("in_progress", "call_w1")


def test_an_event_for_an_unknown_call_is_acknowledged_and_not_stored(campaign_db, call_id):
    result = deliver(campaign_db["db"], retell_events(call_id="call_other", attempt_key="9.9.9")["call_ended"])
    assert (result.status, result.call_id) == (202, None)
    with connect(campaign_db["db"]) as conn:
        assert conn.execute("select count(*) from calls where status <> 'registered'").fetchone()[0] == 0


def test_webhooks_and_polling_store_the_same_row(tmp_path, monkeypatch):
    from tasks.enrichment import apply_plan, collect_updates, pending_calls
    from tasks.settings import reset_settings
    from tasks.telephony.retell import RetellProvider
    from tests.factories import make_campaign_db
    from tests.tasks.telephony.retell_server import FakeRetell

    monkeypatch.delenv("CAMPAIGNS_DB", raising=False)
    reset_settings()

    def fresh(label):
        path = tmp_path / f"{label}.duckdb"
        ids = make_campaign_db(path)
        with transaction(path) as conn:
            cid = seed_call(conn, ids["campaign_id"], "+16025551234", QUEUED, provider="retell",
                            provider_call_id="call_w1", attempt_key="1.1.1")
        return path, cid

    events = retell_events(attempt_key="1.1.1")
    hooked, hooked_id = fresh("webhooks")
    for name in ("call_started", "call_ended", "call_analyzed"):
        deliver(hooked, events[name])

    polled, polled_id = fresh("polling")
    with FakeRetell(api_key="k") as server:
        server.add_call(**events["call_analyzed"]["call"])
        with connect(polled) as conn:
            pending = pending_calls(conn, NOW, 30)
        plan = collect_updates(RetellProvider(server.url, "k", max_tries=1), pending, NOW, 30)
    with transaction(polled) as conn:
        apply_plan(conn, plan, NOW)
    assert _final_state(polled, polled_id) == _final_state(hooked, hooked_id)


# -- hostile bodies ------------------------------------------------------------------------------

def test_a_signature_with_an_absurd_timestamp_is_refused_with_401():
    # int() of more than 4,300 digits raises ValueError: unchecked, anyone could make the endpoint answer 500
    body, good = signed(retell_events()["call_ended"])
    with pytest.raises(WebhookRejected) as refused:
        parse_event(body, f"v={'9' * 5000},{good.split(',')[1]}", KEY, NOW)
    assert refused.value.status == 401


def test_a_body_nested_thousands_deep_is_refused_with_400():
    body = b'{"event": "call_ended", "call": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(WebhookRejected, match="nested") as refused:
        parse_event(body, sign_retell_payload(body, KEY, NOW), KEY, NOW)
    assert refused.value.status == 400


HOSTILE_CALLS = {
    "reason an object": {"disconnection_reason": {"$gt": ""}},
    "reason a number": {"disconnection_reason": 7},
    "status a list": {"call_status": ["ended"]},
    "no status": {"call_status": None},
    "timestamp past year 9999": {"end_timestamp": 10**18},
    "cost not an object": {"call_cost": "free"},
    "transcript an object": {"transcript": {"text": "hi"}},
    "verdict as text": {"call_analysis": {"call_successful": "true"}},
    "sentiment a list": {"call_analysis": {"user_sentiment": ["Positive"]}},
}


@pytest.mark.parametrize("change", list(HOSTILE_CALLS.values()), ids=list(HOSTILE_CALLS))
def test_a_signed_event_with_fields_of_the_wrong_type_is_refused_with_400_and_writes_nothing(
    campaign_db, call_id, change
):
    from starlette.testclient import TestClient

    from flows.webhooks_app import create_app

    payload = retell_events()["call_analyzed"]
    payload["call"].update(change)
    with pytest.raises(WebhookRejected) as refused:
        parse_event(*signed(payload), KEY, NOW)
    assert refused.value.status == 400
    body, header = signed(payload)
    with TestClient(create_app(campaign_db["db"], api_key=KEY, clock=lambda: NOW)) as client:
        answer = client.post("/webhooks/retell", content=body, headers={"X-Retell-Signature": header})
    assert (answer.status_code, answer.json()["error"].startswith("Retell call payload")) == (400, True)
    with connect(campaign_db["db"]) as conn:
        row = call_row(conn, call_id)
    assert (row["status"], row["disconnect_reason"], row["analyzed_at"]) == ("registered", None, None)


# -- another store's call under our attempt key ----------------------------------------------------

def test_an_event_with_our_attempt_key_but_another_provider_call_is_ignored_and_writes_nothing(
    campaign_db, call_id, caplog
):
    # attempt keys are unique within one store only: a restored backup, or a staging store sharing the Retell
    # account, sends events for its own call 1.1.1; applying it rewrote our call and put a phone on do-not-call
    foreign = retell_events(call_id="call_FROM_OTHER_STORE", attempt_key="1.1.1")["call_analyzed"]
    foreign["call"]["call_analysis"]["custom_analysis_data"] = {"do_not_call": True}
    with connect(campaign_db["db"]) as conn:
        before = call_row(conn, call_id)
    with caplog.at_level("WARNING", logger="tasks.webhooks"):
        result = deliver(campaign_db["db"], foreign)
    assert (result.status, result.message, result.call_id, result.changed) == (
        202, "ignored: attempt key belongs to another provider call", None, False)
    assert [r.getMessage() for r in caplog.records if "call_FROM_OTHER_STORE" in r.getMessage()] != []
    assert len([r for r in caplog.records if r.name == "tasks.webhooks"]) == 1
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, call_id) == before
        assert conn.execute("select count(*) from do_not_call").fetchone()[0] == 0
    # our own call's events, with the same key, still apply
    assert deliver(campaign_db["db"], retell_events(attempt_key="1.1.1")["call_analyzed"]).call_id == call_id


def test_an_event_for_a_call_that_started_before_our_unplaced_row_with_its_key_is_ignored(campaign_db, caplog):
    # a store restored from a backup queued attempt 1.1.1 again; the row has no provider call id yet (its tick died
    # before the provider answered, or the provider refused it). A late event of the call placed with that key before
    # the restore started a day before our row was queued: it used to be applied to our row as its outcome.
    with transaction(campaign_db["db"]) as conn:
        ours = seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED + timedelta(days=1),
                         status="created", provider="retell", attempt_key="1.1.1")
    with connect(campaign_db["db"]) as conn:
        before = call_row(conn, ours)
    with caplog.at_level("WARNING", logger="tasks.webhooks"):
        result = deliver(campaign_db["db"], retell_events(call_id="call_BEFORE_RESTORE", attempt_key="1.1.1")[
            "call_analyzed"], now=QUEUED + timedelta(days=1, minutes=3))
    assert (result.status, result.message, result.call_id) == (
        202, "ignored: the call started before our attempt with its key", None)
    assert any("call_BEFORE_RESTORE" in r.getMessage() for r in caplog.records)
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, ours) == before
        # the same key on a call that started after our row was queued is ours (the answer to our placement was lost)
        assert find_call_id(conn, provider_call_id="call_x", attempt_key="1.1.1",
                            started_at=QUEUED + timedelta(days=1, seconds=4)) == ours
        # a provider clock a few minutes behind ours is allowed for
        assert find_call_id(conn, provider_call_id="call_x", attempt_key="1.1.1",
                            started_at=QUEUED + timedelta(days=1, minutes=-4)) == ours
        assert find_call_id(conn, provider_call_id="call_x", attempt_key="1.1.1",
                            started_at=QUEUED + timedelta(hours=23)) is None


# -- nesting that json.loads accepts but the rest of the parse did not ---------------------------------

def _nested(depth: int):
    return json.loads("[" * depth + "]" * depth)


@pytest.mark.parametrize(
    ("where", "depth"),
    [("custom_analysis_data", 600), ("transcript_with_tool_calls", 900), ("custom_analysis_data", 300)],
)
def test_a_call_nested_hundreds_deep_is_refused_with_400_and_writes_nothing(campaign_db, call_id, where, depth):
    # json.loads took it; the parse after it raised RecursionError: a 500 and a 3,000-line traceback
    from starlette.testclient import TestClient

    from flows.webhooks_app import create_app

    payload = retell_events()["call_analyzed"]
    if where == "custom_analysis_data":
        payload["call"]["call_analysis"]["custom_analysis_data"] = {"x": _nested(depth)}
    else:
        payload["call"][where] = _nested(depth)
    body, header = signed(payload)
    with pytest.raises(WebhookRejected, match="body is nested too deeply") as refused:
        parse_event(body, header, KEY, NOW)
    assert refused.value.status == 400
    with TestClient(create_app(campaign_db["db"], api_key=KEY, clock=lambda: NOW)) as client:
        answer = client.post("/webhooks/retell", content=body, headers={"X-Retell-Signature": header})
    assert (answer.status_code, answer.json()) == (400, {"error": "body is nested too deeply"})
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, call_id)["status"] == "registered"


def test_a_call_nested_a_few_levels_is_still_applied(campaign_db, call_id):
    payload = retell_events()["call_analyzed"]
    payload["call"]["call_analysis"]["custom_analysis_data"] = {"x": _nested(20)}
    assert deliver(campaign_db["db"], payload).status == 200
