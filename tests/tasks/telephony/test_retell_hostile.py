"""The Retell adapter facing answers it should not get: wrong field types, odd errors, hostile headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.enums import CallStatus
from tasks.call_state import updates_frame
from tasks.telephony.base import CallRequest, InvalidNumber, OutcomeUnknown, ProviderError, ProviderUnavailable
from tasks.telephony.retell import RetellProvider, parse_retell_call, sign_retell_payload, verify_retell_signature

KEY = "sk-test-HOSTILE-9"
NOW = datetime(2026, 5, 5, 16, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
REQUEST = CallRequest(to_number="+14155550123", from_number="+14155550100", provider_agent_id="agent_42",
                      attempt_key="c1-k7-a1")


# -- call payloads ---------------------------------------------------------------------------------

MALFORMED = {
    "call_id not text": {"call_id": {"id": 1}},
    "no call_status": {"call_status": None},
    "call_status not text": {"call_status": ["ended"]},
    "reason not text": {"disconnection_reason": {"code": "user_hangup"}},
    "reason a number": {"disconnection_reason": 5},
    "start_timestamp not a number": {"start_timestamp": "yesterday"},
    "start_timestamp out of range": {"start_timestamp": 10**20},
    "end_timestamp before year 1": {"end_timestamp": -10**16},
    "duration_ms not a number": {"duration_ms": "90"},
    "duration_ms NaN": {"duration_ms": float("nan")},  # Python's json reads NaN and Infinity
    "combined_cost infinite": {"call_cost": {"combined_cost": float("inf")}},
    "duration_ms past any float": {"duration_ms": 10**400},
    "duration_ms negative": {"duration_ms": -5_000_000},  # stored as -5000 s, it skewed Avg. Call Duration
    "combined_cost negative": {"call_cost": {"combined_cost": -3}},
    "call_cost not an object": {"call_cost": "12"},
    "combined_cost not a number": {"call_cost": {"combined_cost": "abc"}},
    "transcript not text": {"transcript": {"turns": []}},
    "recording_url not text": {"recording_url": 5},
    "call_analysis not an object": {"call_analysis": ["x"]},
    "call_successful not a boolean": {"call_analysis": {"call_successful": "yes"}},
    "in_voicemail not a boolean": {"call_analysis": {"in_voicemail": "no"}},
    "call_summary not text": {"call_analysis": {"call_summary": ["x"]}},
    "user_sentiment not text": {"call_analysis": {"user_sentiment": {"v": 1}}},
    "custom_analysis_data not an object": {"call_analysis": {"custom_analysis_data": [1, 2]}},
}


@pytest.mark.parametrize("change", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_call_payload_is_a_provider_error(change):
    # a TypeError/ValueError here would crash a whole enrichment pass, or answer a webhook with a 500
    payload = {"call_id": "call_x", "call_status": "ended", "disconnection_reason": "user_hangup", **change}
    with pytest.raises(ProviderError, match="Retell call payload"):
        parse_retell_call(payload)


def test_what_a_well_formed_payload_gives_can_always_be_stored():
    payload = {"call_id": "call_x", "call_status": "ended", "disconnection_reason": "ivr_reached",
               "start_timestamp": 1.7779968e12, "duration_ms": 1500, "call_cost": {"combined_cost": 3},
               "metadata": {"attempt_key": 17},  # not one of ours (we send text): no attempt key
               "call_analysis": {"user_sentiment": "Confused", "custom_analysis_data": {"k": [1]}}}
    call = parse_retell_call(payload)
    assert (call.status, call.disconnect_reason_raw, call.attempt_key, call.cost_cents) == (
        CallStatus.ended, "ivr_reached", None, 3.0)
    assert updates_frame([(1, call)]).height == 1


def test_one_malformed_answer_does_not_stop_an_enrichment_pass(server, provider):
    import polars as pl

    from tasks.enrichment import collect_updates

    good = server.add_call(call_status="ended", disconnection_reason="user_hangup", start_timestamp=NOW_MS,
                           end_timestamp=NOW_MS + 30_000)
    bad = server.add_call(call_status="ended", disconnection_reason="user_hangup", transcript={"turns": []})
    pending = pl.DataFrame({
        "call_id": [1, 2], "provider_call_id": [good["call_id"], bad["call_id"]], "attempt_key": ["a", "b"],
        "status": ["registered", "registered"], "queued_at": [NOW, NOW], "analyzed_at": [None, None],
        "stuck": [False, False], "overdue": [False, False],
    }, schema_overrides={"analyzed_at": pl.Datetime("us", "UTC")})
    plan = collect_updates(provider, pending, NOW, 30)
    assert plan.provider_errors == 1
    assert plan.updates.filter(pl.col("call_id") == 1)["status"].to_list() == ["ended"]


# -- HTTP errors -----------------------------------------------------------------------------------

def test_a_refused_caller_number_is_not_an_invalid_destination(server, provider):
    # InvalidNumber finishes the contact for good (invalid_destination): only for the number we dial
    server.fail(400, times=1, message="from_number +14155550100 is not a number of this workspace")
    with pytest.raises(ProviderError, match="from_number") as caught:
        provider.place_call(REQUEST, NOW)
    assert not isinstance(caught.value, InvalidNumber)
    server.fail(400, times=1, message="Invalid to_number: must be E.164")
    with pytest.raises(InvalidNumber):
        provider.place_call(REQUEST, NOW)


@pytest.mark.parametrize("status", [507, 520, 522])
def test_any_5xx_on_a_read_is_retried(server, provider, sleeps, status):
    call = server.add_call()
    server.fail(status, times=2)
    assert provider.get_call(call["call_id"], NOW).provider_call_id == call["call_id"]
    assert len(sleeps) == 2
    server.fail(status, times=10)
    with pytest.raises(ProviderUnavailable):
        provider.get_call(call["call_id"], NOW)


def test_a_5xx_from_the_application_on_a_create_is_an_unknown_outcome(server, provider):
    server.fail(520, times=1, path_prefix="/v2/create-phone-call")
    with pytest.raises(OutcomeUnknown):
        provider.place_call(REQUEST, NOW)
    assert server.count("POST", "/v2/create-phone-call") == 1  # never retried: it may have dialled


# -- signatures ------------------------------------------------------------------------------------

def test_an_absurd_signature_timestamp_is_refused_not_a_crash():
    # int() of more than 4,300 digits raises ValueError: before the key is even checked, a 500
    good = sign_retell_payload(b"{}", KEY, NOW)
    assert verify_retell_signature(b"{}", f"v={'1' * 5000},{good.split(',')[1]}", KEY, NOW) is False
    assert verify_retell_signature(b"{}", good, KEY, NOW + timedelta(seconds=1)) is True


def test_a_listing_that_hands_out_the_same_page_key_again_stops(sleeps):
    import httpx

    asked = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        if len(asked) > 50:  # without the guard the loop would never end
            return httpx.Response(400, json={"error_message": "test gave up"})
        return httpx.Response(200, json={"calls": [{"call_id": "call_1", "call_status": "ended"}],
                                         "pagination_key": "call_1"})

    client = RetellProvider("http://retell.invalid", KEY, sleep=sleeps.append, transport=httpx.MockTransport(answer))
    with pytest.raises(ProviderUnavailable, match="pagination does not advance"):
        client.list_calls(NOW - timedelta(hours=1), NOW)
    assert len(asked) == 2
