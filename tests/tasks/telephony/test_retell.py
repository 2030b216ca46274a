"""The Retell adapter against a real local HTTP server that follows Retell's documented shapes."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from schemas.enums import CallStatus, DisconnectReason, Sentiment
from tasks.telephony.base import (
    BatchTelephonyProvider,
    CallNotFound,
    CallRequest,
    ConcurrencyLimitReached,
    InvalidNumber,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    TelephonyProvider,
)
from tasks.telephony.retell import (
    RetellProvider,
    parse_retell_call,
    sign_retell_payload,
    verify_retell_signature,
)
from tests.tasks.telephony.retell_server import FakeRetell

KEY = "sk-test-SECRET-123"
NOW = datetime(2026, 5, 5, 16, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
REQUEST = CallRequest(
    to_number="+14155550123", from_number="+14155550100", provider_agent_id="agent_42",
    attempt_key="c1-k7-a1", dynamic_variables={"contact_name": "Ana", "company_name": "Acme"},
    metadata={"campaign_id": "1"},
)


@pytest.fixture
def impatient(server, sleeps):
    """A client with a short read timeout, for the tests where the server hangs (1 s) past it."""
    client = RetellProvider(server.url, KEY, max_tries=4, backoff_seconds=0.01, read_timeout=0.3, sleep=sleeps.append)
    yield client
    client.close()


def ended_payload(**overrides):
    payload = {
        "call_id": "call_abc",
        "agent_id": "agent_42",
        "call_status": "ended",
        "start_timestamp": 1_777_996_800_000,  # 2026-05-05 16:00:00 UTC
        "end_timestamp": 1_777_996_890_500,
        "duration_ms": 90_500,
        "disconnection_reason": "user_hangup",
        "call_analysis": {
            "call_successful": True,
            "call_summary": "Booked a demo.",
            "user_sentiment": "Positive",
            "in_voicemail": False,
            "custom_analysis_data": {"interested": True},
        },
        "call_cost": {"combined_cost": 12.5},
        "transcript": "Agent: Hi\nUser: Hello",
        "recording_url": "https://example.invalid/r.wav",
        "transcript_with_tool_calls": [
            {"role": "agent", "content": "Hi"},
            {"role": "tool_call_invocation", "name": "book"},
            {"role": "tool_call_result", "content": "ok"},
            {"role": "tool_call_invocation", "name": "end_call"},
        ],
        "metadata": {"attempt_key": "c1-k7-a1"},
    }
    payload.update(overrides)
    return payload


def test_is_a_telephony_provider(provider):
    assert isinstance(provider, TelephonyProvider)


def test_parse_ended_call_maps_every_field():
    call = parse_retell_call(ended_payload())
    assert call.provider_call_id == "call_abc"
    assert call.status is CallStatus.ended
    assert call.attempt_key == "c1-k7-a1"
    assert call.disconnect_reason is DisconnectReason.user_hangup
    assert call.disconnect_reason_raw == "user_hangup"
    assert call.started_at == datetime(2026, 5, 5, 16, 0, tzinfo=UTC)
    assert call.ended_at == datetime(2026, 5, 5, 16, 1, 30, 500000, tzinfo=UTC)
    assert call.duration_seconds == 90.5
    assert call.analyzed is True
    assert (call.call_successful, call.summary, call.user_sentiment, call.in_voicemail) == (
        True, "Booked a demo.", Sentiment.Positive, False)
    assert call.custom_analysis == {"interested": True}
    assert call.cost_cents == 12.5
    assert call.tools_count == 2  # two tool_call_invocation entries
    assert call.transcript == "Agent: Hi\nUser: Hello"
    assert call.recording_url == "https://example.invalid/r.wav"


@pytest.mark.parametrize(
    ("raw_status", "expected"),
    [("registered", CallStatus.registered), ("ongoing", CallStatus.in_progress), ("ended", CallStatus.ended),
     ("not_connected", CallStatus.not_connected), ("error", CallStatus.error)],
)
def test_parse_maps_statuses(raw_status, expected):
    assert parse_retell_call({"call_id": "c", "call_status": raw_status}).status is expected


@pytest.mark.parametrize(
    ("raw_reason", "expected"),
    [("dial_no_answer", DisconnectReason.dial_no_answer),
     ("voicemail_reached", DisconnectReason.voicemail_reached),
     # reasons the provider has beyond our 19 become error_unknown; the raw value is kept
     ("ivr_reached", DisconnectReason.error_unknown),
     ("sip_routing_error", DisconnectReason.error_unknown),
     # Retell's own platform error is our platform-side error
     ("error_retell", DisconnectReason.error_dapta)],
)
def test_parse_maps_reasons_keeping_the_raw_value(raw_reason, expected):
    call = parse_retell_call({"call_id": "c", "call_status": "ended", "disconnection_reason": raw_reason})
    assert (call.disconnect_reason, call.disconnect_reason_raw) == (expected, raw_reason)


# Retell's documented disconnection_reason values (get-call, in the order of its API reference).
RETELL_REASONS = (
    "user_hangup", "agent_hangup", "call_transfer", "voicemail_reached", "ivr_reached", "inactivity",
    "max_duration_reached", "concurrency_limit_reached", "no_concurrency_fallback", "no_valid_payment",
    "scam_detected", "dial_busy", "dial_failed", "dial_no_answer", "invalid_destination",
    "telephony_provider_permission_denied", "telephony_provider_unavailable", "sip_routing_error", "marked_as_spam",
    "user_declined", "error_llm_websocket_open", "error_llm_websocket_lost_connection", "error_llm_websocket_runtime",
    "error_llm_websocket_corrupt_payload", "error_no_audio_received", "error_asr", "error_retell", "error_unknown",
    "error_user_not_joined", "registered_call_timeout", "transfer_bridged", "transfer_cancelled", "manual_stopped",
    "call_take_over",
)


def test_every_documented_reason_maps_to_one_of_ours():
    # our 19 codes are Retell's under the same name, but for error_dapta: Retell calls it error_retell;
    # any other reason is error_unknown, its raw value kept
    ours = {reason.value: reason for reason in DisconnectReason}
    expected = {raw: ours.get(raw, DisconnectReason.error_unknown) for raw in RETELL_REASONS}
    expected["error_retell"] = DisconnectReason.error_dapta
    mapped = {}
    for raw in RETELL_REASONS:
        call = parse_retell_call({"call_id": "c", "call_status": "error", "disconnection_reason": raw})
        assert call.disconnect_reason_raw == raw
        mapped[raw] = call.disconnect_reason
    assert mapped == expected
    # every one of our codes but our own platform error's name is one Retell sends
    assert set(ours) - set(RETELL_REASONS) == {"error_dapta"}


def test_parse_call_ended_event_has_no_analysis_yet():
    # the call_ended webhook carries no call_analysis: not analyzed, analysis fields empty
    payload = ended_payload()
    del payload["call_analysis"], payload["transcript_with_tool_calls"]
    call = parse_retell_call(payload)
    assert (call.analyzed, call.call_successful, call.user_sentiment, call.tools_count) == (False, None, None, None)


def test_parse_rejects_a_payload_without_call_id():
    with pytest.raises(ProviderError, match="call_id"):
        parse_retell_call({"call_status": "ended"})


def test_create_sends_documented_body_and_returns_call_id(server, provider):
    call_id = provider.place_call(REQUEST, NOW)
    sent = server.seen[-1]
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "from_number": "+14155550100",
        "to_number": "+14155550123",
        "override_agent_id": "agent_42",
        "retell_llm_dynamic_variables": {"contact_name": "Ana", "company_name": "Acme"},
        "metadata": {"campaign_id": "1", "attempt_key": "c1-k7-a1"},
    }
    assert call_id in server.calls


def test_get_call_follows_the_lifecycle(server, provider):
    call_id = provider.place_call(REQUEST, NOW)
    assert provider.get_call(call_id, NOW).status is CallStatus.registered
    server.update_call(call_id, call_status="ongoing", start_timestamp=NOW_MS)
    assert provider.get_call(call_id, NOW).status is CallStatus.in_progress
    server.update_call(call_id, **{k: v for k, v in ended_payload().items() if k not in ("call_id", "metadata")})
    call = provider.get_call(call_id, NOW)
    assert (call.status, call.disconnect_reason, call.analyzed, call.attempt_key) == (
        CallStatus.ended, DisconnectReason.user_hangup, True, "c1-k7-a1")


def test_get_unknown_call_raises_not_found(provider):
    with pytest.raises(CallNotFound):
        provider.get_call("call_missing", NOW)


def test_list_calls_paginates_until_exhausted(server, provider):
    for i in range(2150):
        server.add_call(start_timestamp=NOW_MS + i, metadata={"attempt_key": f"k{i}"})
    server.add_call(start_timestamp=NOW_MS - 60_000)  # before `since`: not listed
    calls = provider.list_calls(NOW, NOW)
    assert len(calls) == 2150
    assert len({c.provider_call_id for c in calls}) == 2150
    assert server.count("POST", "/v3/list-calls") == 3  # 1000 + 1000 + 150
    assert all(s.body["limit"] == 1000 for s in server.seen)


def test_list_calls_sends_v3_typed_filters(server, provider):
    # /v3/list-calls takes typed filters; v2's {"lower_threshold": ...} is refused (400)
    provider.list_calls(NOW, NOW)
    assert server.seen[-1].body == {
        "filter_criteria": {"start_timestamp": {"type": "number", "op": "ge", "value": NOW_MS}},
        "limit": 1000,
        "sort_order": "ascending",
    }


def test_list_calls_reads_the_v3_answer_across_pages(server, provider):
    # {"items": [...], "pagination_key": ..., "has_more": ...}, the key an opaque cursor
    for i in range(1001):
        server.add_call(start_timestamp=NOW_MS + i)
    assert len(provider.list_calls(NOW, NOW)) == 1001
    assert [s.body.get("pagination_key") for s in server.seen] == [None, "call_001000"]


def test_find_by_attempt_key_matches_metadata(server, provider):
    server.add_call(start_timestamp=NOW_MS - 1000, metadata={"attempt_key": "other"})
    wanted = server.add_call(start_timestamp=NOW_MS - 500, metadata={"attempt_key": "c1-k7-a1"})
    assert provider.find_by_attempt_key("c1-k7-a1", NOW).provider_call_id == wanted["call_id"]
    assert provider.find_by_attempt_key("never-placed", NOW) is None


def test_active_calls_counts_registered_and_ongoing(server, provider):
    server.add_call(call_status="registered")
    server.add_call(call_status="ongoing", start_timestamp=NOW_MS)
    server.add_call(call_status="ongoing", start_timestamp=NOW_MS - 2 * 3_600_000)  # a long call, still up
    server.add_call(call_status="ended", start_timestamp=NOW_MS)
    assert provider.active_calls(NOW) == 3
    ongoing, ringing = (s.body["filter_criteria"] for s in server.seen)
    assert ongoing["call_status"] == {"type": "enum", "op": "in", "value": ["ongoing"]}
    # list-calls cannot filter on registered (a 400): the adapter counts the ring's minutes itself
    assert "call_status" not in ringing
    assert ringing["start_timestamp"]["value"] == NOW_MS - 10 * 60_000


def test_active_calls_does_not_list_the_last_two_hours_of_finished_calls(server, provider):
    # the dialer asks before every call: 2,500 calls ended in the last two hours must not be read each time
    for i in range(2500):
        server.add_call(call_status="ended", start_timestamp=NOW_MS - 7_000_000 + i * 2_000)
    server.add_call(call_status="registered", start_timestamp=NOW_MS - 30_000)
    server.add_call(call_status="ongoing", start_timestamp=NOW_MS - 60_000)
    assert provider.active_calls(NOW) == 2
    assert server.count("POST", "/v3/list-calls") == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_get_retries_then_succeeds(server, provider, sleeps, status):
    call = server.add_call()
    server.fail(status, times=2)
    assert provider.get_call(call["call_id"], NOW).provider_call_id == call["call_id"]
    assert server.count("GET", "/v2/get-call") == 3
    # exponential backoff with jitter: the second wait is longer than the first's minimum doubled
    assert len(sleeps) == 2 and 0.005 <= sleeps[0] <= 0.015 and 0.01 <= sleeps[1] <= 0.03


def test_create_retries_429_then_dials_once(server, provider):
    server.fail(429, times=3, path_prefix="/v2/create-phone-call")
    provider.place_call(REQUEST, NOW)
    assert server.count("POST", "/v2/create-phone-call") == 4
    assert len(server.calls) == 1


def test_retry_after_header_is_respected(server, provider, sleeps):
    call = server.add_call()
    server.fail(429, times=1, retry_after="2")
    provider.get_call(call["call_id"], NOW)
    assert sleeps == [2.0]


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, RateLimited), (503, ProviderUnavailable), (500, ProviderUnavailable)],
)
def test_exhausted_retries_raise_typed_errors(server, provider, status, error):
    call = server.add_call()
    server.fail(status, times=10)
    with pytest.raises(error):
        provider.get_call(call["call_id"], NOW)
    assert server.count("GET", "/v2/get-call") == 4  # bounded: max_tries


def test_create_rate_limited_after_retries(server, provider):
    server.fail(429, times=10)
    with pytest.raises(RateLimited):
        provider.place_call(REQUEST, NOW)
    assert server.calls == {}


def test_create_500_is_not_retried_because_the_call_may_exist(server, provider):
    # a 500 may come after the call was dialled: retrying could dial twice
    server.fail(500, times=1)
    with pytest.raises(OutcomeUnknown):
        provider.place_call(REQUEST, NOW)
    assert server.count("POST", "/v2/create-phone-call") == 1


@pytest.mark.parametrize("status", [502, 504])
def test_create_gateway_error_is_not_retried_because_the_call_may_exist(server, provider, status):
    # a gateway answers 502/504 after forwarding the request: here the call was created behind it,
    # and a retry would ring the same person a second time
    server.fail(status, times=1, path_prefix="/v2/create-phone-call", then_process=True)
    with pytest.raises(OutcomeUnknown):
        provider.place_call(REQUEST, NOW)
    assert server.count("POST", "/v2/create-phone-call") == 1
    assert len(server.calls) == 1
    assert provider.find_by_attempt_key("c1-k7-a1", NOW) is not None  # reconciliation finds it


def test_create_retries_503_then_dials_once(server, provider):
    # "service unavailable" is answered without processing: retried like a 429
    server.fail(503, times=2, path_prefix="/v2/create-phone-call")
    provider.place_call(REQUEST, NOW)
    assert server.count("POST", "/v2/create-phone-call") == 3
    assert len(server.calls) == 1


def test_create_timeout_raises_outcome_unknown_and_reconciles_by_key(server, impatient):
    server.hang(1.0, times=1, path_prefix="/v2/create-phone-call", then_process=True)
    with pytest.raises(OutcomeUnknown) as caught:
        impatient.place_call(REQUEST, NOW)
    assert isinstance(caught.value, ProviderUnavailable)  # handlers of ProviderUnavailable still catch it
    assert server.count("POST", "/v2/create-phone-call") == 1  # never retried: it may have dialled
    # the server went on and created the call: reconciliation finds it by attempt key
    deadline = time.monotonic() + 10
    while not server.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert impatient.find_by_attempt_key("c1-k7-a1", NOW) is not None


def test_read_timeouts_are_retried_then_unavailable(server, impatient):
    call = server.add_call()
    server.hang(1.0, times=4, path_prefix="/v2/get-call")
    with pytest.raises(ProviderUnavailable, match="timed out"):
        impatient.get_call(call["call_id"], NOW)
    assert server.count("GET", "/v2/get-call") == 4


def test_timeout_then_success(server, impatient):
    call = server.add_call()
    server.hang(1.0, times=1, path_prefix="/v2/get-call")
    assert impatient.get_call(call["call_id"], NOW).provider_call_id == call["call_id"]


def test_malformed_json_is_retried(server, provider):
    call = server.add_call()
    server.malformed(times=1)
    assert provider.get_call(call["call_id"], NOW).provider_call_id == call["call_id"]


def test_connection_refused_is_unavailable(sleeps):
    with FakeRetell(api_key=KEY) as fake:
        url = fake.url
    client = RetellProvider(url, KEY, max_tries=2, backoff_seconds=0, connect_timeout=0.5, sleep=sleeps.append)
    with pytest.raises(ProviderUnavailable, match="cannot connect"):
        client.place_call(REQUEST, NOW)
    assert len(sleeps) == 1


def test_invalid_number_is_typed(provider):
    with pytest.raises(InvalidNumber):
        provider.place_call(CallRequest("0415 555", "+14155550100", "agent_42", "k"), NOW)


def test_wrong_key_is_a_clear_error_without_the_key(server):
    client = RetellProvider(server.url, "wrong-key-XYZ", backoff_seconds=0)
    with pytest.raises(ProviderError, match="API key was refused") as caught:
        client.place_call(REQUEST, NOW)
    assert "wrong-key-XYZ" not in str(caught.value)


def test_missing_key_is_refused():
    with pytest.raises(ProviderError, match="RETELL_API_KEY"):
        RetellProvider("http://127.0.0.1:9", None)


def test_api_key_never_in_errors_or_logs(server, provider, caplog):
    caplog.set_level(logging.DEBUG)
    call = server.add_call()
    server.fail(503, times=10)
    with pytest.raises(ProviderUnavailable) as caught:
        provider.get_call(call["call_id"], NOW)
    server.fail(400, times=1)
    with pytest.raises(ProviderError) as bad_request:
        provider.place_call(REQUEST, NOW)
    assert "retry" in caplog.text  # retries are logged ...
    for text in (caplog.text, str(caught.value), repr(caught.value), str(bad_request.value)):
        assert KEY not in text  # ... but never the key
    assert KEY not in repr(provider.__dict__.get("_client"))


def test_signature_round_trip():
    body = b'{"event":"call_ended","call":{"call_id":"c"}}'
    header = sign_retell_payload(body, KEY, NOW)
    assert header.startswith(f"v={NOW_MS},d=")
    assert verify_retell_signature(body, header, KEY, NOW + timedelta(seconds=30)) is True


@pytest.mark.parametrize(
    ("body", "key", "checked_at", "header_override"),
    [
        (b'{"event":"call_ended"}!', KEY, NOW, None),  # body changed
        (b'{"event":"call_ended"}', "other-key", NOW, None),  # signed with another key
        (b'{"event":"call_ended"}', KEY, NOW + timedelta(minutes=5, seconds=1), None),  # stale: > 5 min skew
        (b'{"event":"call_ended"}', KEY, NOW - timedelta(minutes=6), None),  # from the future
        (b'{"event":"call_ended"}', KEY, NOW, ""),  # no header
        (b'{"event":"call_ended"}', KEY, NOW, "garbage"),  # unparseable header
    ],
)
def test_signature_rejected(body, key, checked_at, header_override):
    header = sign_retell_payload(b'{"event":"call_ended"}', KEY, NOW) if header_override is None else header_override
    assert verify_retell_signature(body, header, key, checked_at) is False


def test_has_batch_forms(provider):
    assert isinstance(provider, BatchTelephonyProvider)


def test_429_for_concurrency_is_typed(server, provider):
    server.fail(429, times=10, message="Concurrency limit reached for this workspace")
    with pytest.raises(ConcurrencyLimitReached):
        provider.place_call(REQUEST, NOW)


def test_place_calls_paces_and_types_refusals(server, provider, sleeps):
    bad = CallRequest("12345", "+14155550100", "agent_42", "bad")
    results = provider.place_calls([REQUEST, bad, REQUEST], NOW, pace_seconds=3)
    assert isinstance(results[0], str) and isinstance(results[1], InvalidNumber) and isinstance(results[2], str)
    assert sleeps == [3, 3]  # one pause between consecutive calls


def test_place_calls_stops_when_the_provider_fails(server, provider):
    server.fail(500, times=1, path_prefix="/v2/create-phone-call")
    results = provider.place_calls([REQUEST, REQUEST, REQUEST], NOW)
    assert len(results) == 1 and isinstance(results[0], OutcomeUnknown)
    assert server.count("POST", "/v2/create-phone-call") == 1


def test_place_calls_stops_at_a_refusal_that_is_not_about_the_callee(server, provider):
    # a refused request (an unknown agent, a bad key) would refuse every call: returned, not raised, and the rest
    # are not sent
    server.fail(400, times=10, path_prefix="/v2/create-phone-call", message="override_agent_id is not valid")
    results = provider.place_calls([REQUEST, REQUEST, REQUEST], NOW)
    assert len(results) == 1 and type(results[0]) is ProviderError
    assert server.count("POST", "/v2/create-phone-call") == 1


def test_find_by_attempt_keys_with_one_listing(server, provider):
    a = server.add_call(start_timestamp=NOW_MS - 1000, metadata={"attempt_key": "a"})
    b = server.add_call(start_timestamp=NOW_MS - 500, metadata={"attempt_key": "b"})
    server.add_call(start_timestamp=NOW_MS - 400, metadata={"attempt_key": "other"})
    found = provider.find_by_attempt_keys(["a", "b", "missing"], NOW)
    assert {key: call.provider_call_id for key, call in found.items()} == {"a": a["call_id"], "b": b["call_id"]}
    assert server.count("POST", "/v3/list-calls") == 1


# -- records nested hundreds deep ------------------------------------------------------------------

def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("where", ["custom_analysis_data", "transcript_with_tool_calls"])
def test_a_record_nested_hundreds_deep_is_a_provider_error_not_a_recursion_error(where):
    payload = ended_payload()
    if where == "custom_analysis_data":
        payload["call_analysis"]["custom_analysis_data"] = {"x": _nested(900)}
    else:
        payload[where] = _nested(900)
    with pytest.raises(ProviderError, match="nested too deeply"):
        parse_retell_call(payload)
    payload[where if where != "custom_analysis_data" else "call_analysis"] = ended_payload()[
        where if where != "custom_analysis_data" else "call_analysis"]
    assert parse_retell_call(payload).provider_call_id == "call_abc"


def test_a_get_call_answer_nested_past_the_json_parser_is_a_provider_error():
    import httpx

    deep = b'{"call_id": "call_abc", "call_status": "ended", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=deep))
    client = RetellProvider("http://retell.invalid", KEY, max_tries=2, backoff_seconds=0, transport=transport,
                            sleep=lambda s: None)
    with pytest.raises(ProviderError, match="nested too deeply") as raised:
        client.get_call("call_abc", NOW)
    assert not isinstance(raised.value, ProviderUnavailable)  # the same answer again: no use asking the pass again


def test_an_enrichment_pass_records_a_nested_record_as_that_calls_error(server, campaign_db):
    from tasks.enrichment import collect_updates, pending_calls
    from tasks.store import connect, transaction
    from tests.tasks.seeding import seed_call

    queued = NOW - timedelta(minutes=5)
    deep = server.add_call(**{**ended_payload(), "call_id": "call_deep", "transcript_with_tool_calls": _nested(900)})
    fine = server.add_call(**{**ended_payload(), "call_id": "call_fine"})
    with transaction(campaign_db["db"]) as conn:
        ids = {pc["call_id"]: seed_call(conn, campaign_db["campaign_id"], phone, queued, provider="retell",
                                        provider_call_id=pc["call_id"])
               for pc, phone in ((deep, "+16025551234"), (fine, "+16025551235"))}
    with connect(campaign_db["db"]) as conn:
        pending = pending_calls(conn, NOW, 30)
    plan = collect_updates(RetellProvider(server.url, KEY, max_tries=1), pending, NOW, 30)
    assert plan.provider_errors == 1
    rows = {row["call_id"]: row for row in plan.updates.to_dicts()}
    assert rows[ids["call_fine"]]["status"] == "ended"
    assert ids["call_deep"] not in rows or rows[ids["call_deep"]]["status"] is None


# -- another store's call under our attempt key ------------------------------------------------------

def test_find_by_attempt_key_skips_a_listed_call_to_another_number(server, provider):
    # attempt keys are unique within one store: a staging store on the same Retell account lists its 1.32.1 too
    server.add_call(start_timestamp=NOW_MS - 1000, to_number="+15559990000", metadata={"attempt_key": "1.32.1"})
    ours = server.add_call(start_timestamp=NOW_MS - 500, to_number="+14155550123", metadata={"attempt_key": "1.32.1"})
    assert provider.find_by_attempt_key("1.32.1", NOW, to_number="+14155550123").provider_call_id == ours["call_id"]
    assert provider.find_by_attempt_key("1.32.1", NOW, to_number="+14155550999") is None
    found = provider.find_by_attempt_keys(["1.32.1"], NOW, to_numbers={"1.32.1": "+14155550123"})
    assert found["1.32.1"].provider_call_id == ours["call_id"]
    assert provider.find_by_attempt_keys(["1.32.1"], NOW, to_numbers={"1.32.1": "+14155550999"}) == {}


def test_find_by_attempt_key_skips_a_call_placed_before_our_row_was_queued(server, provider):
    # a store restored from a backup reuses the keys of the calls placed after the backup, to the same numbers: the
    # older call (yesterday) is not the one our row (queued a minute ago) asked for; ours, placed after it, is
    older = server.add_call(start_timestamp=NOW_MS - 86_400_000, to_number="+14155550123",
                            metadata={"attempt_key": "1.40.1"})
    queued = NOW - timedelta(minutes=1)
    assert provider.find_by_attempt_key("1.40.1", NOW, to_number="+14155550123").provider_call_id == older["call_id"]
    assert provider.find_by_attempt_key("1.40.1", NOW, to_number="+14155550123", placed_after=queued) is None
    # our provider's clock may run a little behind ours: a call a minute "before" our row is still ours
    ours = server.add_call(start_timestamp=NOW_MS - 120_000, to_number="+14155550123", metadata={"attempt_key": "1.40.1"})
    found = provider.find_by_attempt_key("1.40.1", NOW, to_number="+14155550123", placed_after=queued)
    assert found.provider_call_id == ours["call_id"]
