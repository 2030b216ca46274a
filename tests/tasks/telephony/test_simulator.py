"""The simulator: seeded and deterministic, a realistic mix by local time, limits, lifecycle, durable state."""

from __future__ import annotations

import json
import multiprocessing
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from schemas.enums import CallStatus, DisconnectReason, Sentiment
from tasks.telephony.base import (
    BatchTelephonyProvider,
    CallBatch,
    CapacityWait,
    CallNotFound,
    CallRequest,
    ColumnarTelephonyProvider,
    ConcurrencyLimitReached,
    FrameTelephonyProvider,
    InvalidNumber,
    ProviderUnavailable,
    RateLimited,
    TelephonyProvider,
    WaitingTelephonyProvider,
    place_batch,
)
from tasks.call_state import _UPDATE_SCHEMA, updates_frame
from tasks.settings import reset_settings
from tasks.telephony.simulator import (
    DEFAULT_RATES,
    FRAME_SCHEMA,
    REASONS,
    SENTIMENTS,
    Outcome,
    OutcomeRates,
    Outcomes,
    SimulatedProvider,
    callee_zone,
    is_always_invalid,
    simulate_outcome,
    simulate_outcomes,
)

NEW_YORK = ZoneInfo("America/New_York")
# Tuesday 5 May 2026, 18:00 in New York = 22:00 UTC
TUESDAY_EVENING = datetime(2026, 5, 5, 18, 0, tzinfo=NEW_YORK).astimezone(UTC)


def request(i: int, number: str | None = None, key: str | None = None) -> CallRequest:
    return CallRequest(
        to_number=f"+1212555{i % 10000:04d}" if number is None else number, from_number="+12125550000",
        provider_agent_id="agent_sim_1", attempt_key=key or f"k{i}",
        dynamic_variables={"contact_name": f"Contact {i}", "company_name": "Acme"},
    )


@pytest.fixture
def sim(tmp_path) -> SimulatedProvider:
    provider = SimulatedProvider(tmp_path / "simulator.sqlite", seed=7, concurrency_limit=1000)
    yield provider
    provider.close()


def outcomes_at(local: datetime, count: int, seed: int = 1):
    """``count`` outcomes for distinct New York numbers dialled at the given New York time."""
    ts = local.timestamp()
    return [simulate_outcome(seed, f"k{i}", f"+1212{2000000 + i:07d}", ts + i * 0.001) for i in range(count)]


def an_always_invalid_number() -> str:
    return next(n for n in (f"+1212555{i:04d}" for i in range(10000)) if is_always_invalid(n))


def test_is_a_telephony_provider(sim):
    assert isinstance(sim, TelephonyProvider)


def test_same_seed_gives_identical_outcomes_in_fresh_instances(tmp_path):
    runs = []
    for name in ("a", "b"):
        provider = SimulatedProvider(tmp_path / f"{name}.sqlite", seed=11, concurrency_limit=1000)
        ids = provider.place_calls([request(i) for i in range(300)], TUESDAY_EVENING, pace_seconds=3)
        runs.append(provider.get_calls(ids, TUESDAY_EVENING + timedelta(hours=2)))
    assert runs[0] == runs[1]


def test_another_seed_gives_other_outcomes(tmp_path):
    reasons = []
    for seed in (1, 2):
        provider = SimulatedProvider(tmp_path / f"s{seed}.sqlite", seed=seed, concurrency_limit=1000)
        ids = provider.place_calls([request(i) for i in range(300)], TUESDAY_EVENING, pace_seconds=3)
        reasons.append([c.disconnect_reason for c in provider.get_calls(ids, TUESDAY_EVENING + timedelta(hours=2))])
    assert reasons[0] != reasons[1]


def test_outcome_is_a_pure_function_of_its_seeds():
    args = (5, "k-1", "+12125550123", 1_778_000_000.25)
    assert simulate_outcome(*args) == simulate_outcome(*args)


def test_outcome_mix_is_realistic_on_a_weekday_evening():
    outcomes = outcomes_at(datetime(2026, 5, 5, 18, 0, tzinfo=NEW_YORK), 5000)
    reasons = Counter(o.reason for o in outcomes)
    answered = [o for o in outcomes if o.answered]
    conversations = [o for o in answered if not o.in_voicemail]
    share = lambda part, whole: len(part) / len(whole)  # noqa: E731
    assert 0.35 <= share(answered, outcomes) <= 0.60  # evening answer probability ~0.50
    assert 0.24 <= reasons[DisconnectReason.voicemail_reached] / len(answered) <= 0.36  # ~30% of answers
    assert 0.005 <= reasons[DisconnectReason.invalid_destination] / 5000 <= 0.03
    assert 0 < reasons[DisconnectReason.marked_as_spam] / 5000 <= 0.02
    assert reasons[DisconnectReason.dial_no_answer] > reasons[DisconnectReason.dial_busy] > 0
    assert reasons[DisconnectReason.user_declined] > 0
    rare = sum(reasons[r] for r in (DisconnectReason.error_asr, DisconnectReason.error_no_audio_received,
                                    DisconnectReason.error_unknown, DisconnectReason.telephony_provider_unavailable))
    assert 0 < rare / 5000 <= 0.03
    assert 0.22 <= sum(o.call_successful for o in conversations) / len(conversations) <= 0.40
    talk = [o.talk_seconds for o in conversations]
    assert 55 <= statistics.median(talk) <= 90  # log-normal, median ~70 s
    assert max(talk) <= 900
    assert {o.reason for o in conversations} >= {
        DisconnectReason.agent_hangup, DisconnectReason.user_hangup,
        DisconnectReason.call_transfer, DisconnectReason.inactivity}
    assert all(o.talk_seconds == 0 and not o.call_successful and o.sentiment is None
               for o in outcomes if not o.answered)


def test_long_tail_of_conversations_hits_max_duration():
    outcomes = outcomes_at(datetime(2026, 5, 5, 18, 0, tzinfo=NEW_YORK), 10000)
    capped = [o for o in outcomes if o.reason == DisconnectReason.max_duration_reached]
    assert capped and all(o.talk_seconds == 900 for o in capped)


@pytest.mark.parametrize(
    ("worse", "better"),
    [
        (datetime(2026, 5, 5, 3, 0, tzinfo=NEW_YORK), datetime(2026, 5, 5, 18, 0, tzinfo=NEW_YORK)),  # 03:00 < 18:00
        (datetime(2026, 5, 5, 7, 0, tzinfo=NEW_YORK), datetime(2026, 5, 5, 11, 0, tzinfo=NEW_YORK)),  # early < late morning
        (datetime(2026, 5, 10, 18, 0, tzinfo=NEW_YORK), datetime(2026, 5, 5, 18, 0, tzinfo=NEW_YORK)),  # Sunday < Tuesday
    ],
)
def test_answer_rate_follows_the_callees_local_time(worse, better):
    rate = lambda when: sum(o.answered for o in outcomes_at(when, 3000)) / 3000  # noqa: E731
    assert rate(worse) + 0.05 < rate(better)


def test_local_time_is_the_callees_not_utc():
    # the same UTC instant is 18:00 in New York but 03:00 in Paris (next day)
    instant = datetime(2026, 5, 5, 18, 0, tzinfo=NEW_YORK).timestamp()
    new_york = sum(simulate_outcome(1, f"k{i}", f"+1212{2000000 + i:07d}", instant).answered for i in range(3000))
    paris = sum(simulate_outcome(1, f"k{i}", f"+3314{2000000 + i:07d}", instant).answered for i in range(3000))
    assert paris + 150 < new_york


@pytest.mark.parametrize(
    ("number", "zone"),
    [("+12125550123", "America/New_York"), ("+14155550123", "America/Los_Angeles"),
     ("+33142000000", "Europe/Paris"), ("+999123456789", "UTC")],
)
def test_callee_zone(number, zone):
    assert callee_zone(number).key == zone


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Pacific/Chatham",
                                  "America/Phoenix", "Asia/Kathmandu"])
def test_cached_utc_offsets_are_the_zones_offsets_around_dst_changes(zone):
    from tasks.telephony import simulator

    tz = ZoneInfo(zone)
    # every second-aligned and odd instant for two hours around each 2026 change (or 1 January and 1 July)
    changes = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)]
    day = datetime(2026, 1, 1, tzinfo=UTC)
    while day.year == 2026:
        if (day + timedelta(hours=6)).astimezone(tz).utcoffset() != day.astimezone(tz).utcoffset():
            hour = day
            while hour.astimezone(tz).utcoffset() == day.astimezone(tz).utcoffset():
                hour += timedelta(minutes=1)
            changes.append(hour)
        day += timedelta(hours=6)
    simulator._offset_cache.clear()
    for change in changes:
        start = change.timestamp() - 3600
        # asked twice, in two orders: the second pass answers from the cache
        instants = [start + step * 7.25 for step in range(7200 // 7)]
        for ts in instants + instants[::-1]:
            expected = datetime.fromtimestamp(ts, tz).utcoffset() // timedelta(microseconds=1)
            assert simulator._utc_offset_micros(tz, ts) == expected, (zone, ts)
    assert simulator._offset_cache  # the cache was used


def test_invalid_numbers_are_always_invalid(sim):
    number = an_always_invalid_number()
    ids = [sim.place_call(request(i, number=number), TUESDAY_EVENING + timedelta(minutes=i)) for i in range(5)]
    calls = sim.get_calls(ids, TUESDAY_EVENING + timedelta(hours=1))
    assert {(c.status, c.disconnect_reason) for c in calls} == {(CallStatus.not_connected, DisconnectReason.invalid_destination)}
    assert simulate_outcome(999, "any", number, 0.0).reason == DisconnectReason.invalid_destination  # any seed


@pytest.mark.parametrize("number", ["2125550123", "+0125550123", "+1 212 555 0123", ""])
def test_non_e164_is_refused_and_not_recorded(sim, number):
    with pytest.raises(InvalidNumber):
        sim.place_call(request(1, number=number), TUESDAY_EVENING)
    assert sim.total_placed() == 0


def connected_call_id(sim: SimulatedProvider, voicemail: bool = False) -> str:
    for i in range(500):
        outcome = simulate_outcome(sim.seed, f"k{i}", request(i).to_number, TUESDAY_EVENING.timestamp())
        if outcome.answered and outcome.in_voicemail == voicemail:
            return sim.place_call(request(i), TUESDAY_EVENING)
    raise AssertionError("no connected call in 500 draws")


def test_lifecycle_of_a_conversation_on_the_clock(sim):
    call_id = connected_call_id(sim)
    final = sim.get_call(call_id, TUESDAY_EVENING + timedelta(hours=1))
    answered_at, ended_at = final.started_at, final.ended_at
    assert final.status is CallStatus.ended and final.analyzed
    assert TUESDAY_EVENING < answered_at < ended_at
    assert final.duration_seconds == pytest.approx((ended_at - answered_at).total_seconds(), abs=0.01)
    assert final.transcript and "Contact" in final.transcript and final.recording_url
    assert final.user_sentiment in set(Sentiment) and final.summary
    assert set(final.custom_analysis) == {"interested", "callback_requested", "do_not_call"}
    assert final.cost_cents > 0 and final.tools_count is not None

    ringing = sim.get_call(call_id, TUESDAY_EVENING + timedelta(seconds=1))
    assert (ringing.status, ringing.started_at, ringing.disconnect_reason) == (CallStatus.registered, None, None)
    talking = sim.get_call(call_id, answered_at + timedelta(seconds=1))
    assert (talking.status, talking.started_at) == (CallStatus.in_progress, answered_at)
    just_ended = sim.get_call(call_id, ended_at + timedelta(seconds=1))
    # ended, but the analysis arrives 10-30 s later
    assert (just_ended.status, just_ended.analyzed, just_ended.call_successful) == (CallStatus.ended, False, None)
    assert just_ended.disconnect_reason == final.disconnect_reason
    assert sim.get_call(call_id, ended_at + timedelta(seconds=30)).analyzed is True


def test_voicemail_is_ended_in_voicemail_and_not_successful(sim):
    call = sim.get_call(connected_call_id(sim, voicemail=True), TUESDAY_EVENING + timedelta(hours=1))
    assert (call.status, call.disconnect_reason, call.in_voicemail, call.call_successful) == (
        CallStatus.ended, DisconnectReason.voicemail_reached, True, False)
    assert call.duration_seconds > 0


def test_not_connected_call_has_no_duration_and_minimal_analysis(sim):
    call_id = sim.place_call(request(1, number=an_always_invalid_number()), TUESDAY_EVENING)
    assert sim.get_call(call_id, TUESDAY_EVENING).status is CallStatus.registered
    call = sim.get_call(call_id, TUESDAY_EVENING + timedelta(minutes=2))
    assert (call.status, call.duration_seconds, call.analyzed, call.in_voicemail, call.call_successful) == (
        CallStatus.not_connected, 0, True, False, False)
    assert (call.user_sentiment, call.summary, call.transcript, call.custom_analysis) == (None, None, None, None)


def test_concurrency_limit_is_enforced(tmp_path):
    sim = SimulatedProvider(tmp_path / "s.sqlite", concurrency_limit=3)
    for i in range(3):
        sim.place_call(request(i), TUESDAY_EVENING)
    assert sim.active_calls(TUESDAY_EVENING) == 3
    with pytest.raises(ConcurrencyLimitReached):
        sim.place_call(request(3), TUESDAY_EVENING)
    assert sim.total_placed() == 3  # the refusal placed nothing
    later = TUESDAY_EVENING + timedelta(hours=1)  # every call has ended (max 15 min + ring)
    assert sim.active_calls(later) == 0
    sim.place_call(request(3), later)


def test_batch_placement_respects_the_limit_over_time(tmp_path):
    sim = SimulatedProvider(tmp_path / "s.sqlite", concurrency_limit=5)
    results = sim.place_calls([request(i) for i in range(200)], TUESDAY_EVENING, pace_seconds=3)
    ids = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert refused and all(isinstance(r, ConcurrencyLimitReached) for r in refused)
    assert results[:5] == ids[:5]  # the first five always fit
    # at every placement instant, no more than 5 calls were in progress
    for index, result in enumerate(results):
        if isinstance(result, str):
            assert sim.active_calls(TUESDAY_EVENING + timedelta(seconds=3 * index)) <= 5


def test_rate_limit_on_the_virtual_clock(tmp_path):
    sim = SimulatedProvider(tmp_path / "s.sqlite", rate_limit_per_second=1)
    sim.place_call(request(1), TUESDAY_EVENING)
    with pytest.raises(RateLimited):
        sim.place_call(request(2), TUESDAY_EVENING + timedelta(milliseconds=500))
    sim.place_call(request(2), TUESDAY_EVENING + timedelta(seconds=1, milliseconds=1))


def test_injected_failures_for_engine_tests(sim):
    sim.fail_next(ProviderUnavailable("down"), times=2)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            sim.place_call(request(1), TUESDAY_EVENING)
    sim.place_call(request(1), TUESDAY_EVENING)
    assert sim.total_placed() == 1


def test_state_survives_a_new_instance_on_the_same_file(tmp_path):
    path = tmp_path / "s.sqlite"
    first = SimulatedProvider(path, seed=3, concurrency_limit=2)
    ids = [first.place_call(request(i), TUESDAY_EVENING) for i in range(2)]
    first.close()
    second = SimulatedProvider(path, seed=3, concurrency_limit=2)
    assert second.active_calls(TUESDAY_EVENING) == 2
    with pytest.raises(ConcurrencyLimitReached):  # the limit counts the first instance's calls
        second.place_call(request(9), TUESDAY_EVENING)
    later = TUESDAY_EVENING + timedelta(hours=1)
    assert [c.provider_call_id for c in second.list_calls(TUESDAY_EVENING, later)] == ids
    assert second.find_by_attempt_key("k1", later).provider_call_id == ids[1]
    assert second.find_by_attempt_key("never", later) is None
    assert second.get_call(ids[0], later) == first.get_call(ids[0], later)


def test_list_calls_since(sim):
    early = sim.place_call(request(1), TUESDAY_EVENING)
    late = sim.place_call(request(2), TUESDAY_EVENING + timedelta(minutes=10))
    later = TUESDAY_EVENING + timedelta(hours=1)
    assert [c.provider_call_id for c in sim.list_calls(TUESDAY_EVENING, later)] == [early, late]
    assert [c.provider_call_id for c in sim.list_calls(TUESDAY_EVENING + timedelta(minutes=5), later)] == [late]


def test_repeated_attempt_keys_are_all_recorded(sim):
    sim.place_call(request(1, key="dup"), TUESDAY_EVENING)
    sim.place_call(request(1, key="dup"), TUESDAY_EVENING + timedelta(minutes=1))
    sim.place_call(request(2, key="once"), TUESDAY_EVENING)
    assert (sim.placed_count("dup"), sim.placed_count("once"), sim.placed_count("never")) == (2, 1, 0)
    assert sim.duplicate_attempt_keys() == {"dup": 2}


@pytest.mark.parametrize("call_id", ["sim_404", "sim_000000001x", "sim_" + "9" * 5000, "other_000000001"])
def test_unknown_call_id_is_not_found(sim, call_id):
    sim.place_calls([request(i) for i in range(500)], TUESDAY_EVENING)  # sim_000000001 .. sim_000000500 exist
    with pytest.raises(CallNotFound):
        sim.get_call(call_id, TUESDAY_EVENING)


def _place_from_another_process(path: str, offset: int) -> None:
    provider = SimulatedProvider(path, concurrency_limit=20)
    for i in range(40):
        try:
            provider.place_call(request(offset + i), TUESDAY_EVENING)
        except ConcurrencyLimitReached:
            pass


def test_processes_share_state_and_the_limit(tmp_path):
    path = str(tmp_path / "s.sqlite")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_place_from_another_process, args=(path, 1000 * n)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    # 80 tries at the same instant from two processes: exactly the limit got through
    assert SimulatedProvider(path).active_calls(TUESDAY_EVENING) == 20


def test_has_batch_forms(sim):
    assert isinstance(sim, BatchTelephonyProvider)
    assert isinstance(sim, FrameTelephonyProvider)
    assert isinstance(sim, ColumnarTelephonyProvider)
    assert isinstance(sim, WaitingTelephonyProvider)


def a_call_batch(count: int) -> CallBatch:
    """Calls as a claim hands them over; one to-number is not E.164, a name needs escaping in JSON."""
    numbers = [f"+1212555{i:04d}" for i in range(count)]
    numbers[3] = "0212 555"
    names = [f"Contact {i}" for i in range(count)]
    names[5] = 'Zoë "Z" O\'Brien'
    return CallBatch(
        to_numbers=numbers, from_numbers=["+12125550000"] * count, attempt_keys=[f"7.{i}.1" for i in range(count)],
        dynamic_variables=[json.dumps({"contact_name": name, "company_name": "Acme", "email": ""}, ensure_ascii=False,
                                      separators=(",", ":")) for name in names],
        provider_agent_id="agent_sim_1", metadata={"campaign_id": "7"},
    )


def test_a_call_batch_is_placed_exactly_as_its_requests(tmp_path):
    # the same seed and limit on two files: one gets the columns, the other the CallRequests they stand for
    batch = a_call_batch(60)
    by_columns = SimulatedProvider(tmp_path / "columns.sqlite", seed=3, concurrency_limit=12)
    by_requests = SimulatedProvider(tmp_path / "requests.sqlite", seed=3, concurrency_limit=12)
    for provider in (by_columns, by_requests):
        provider.fail_next(RateLimited("slow down"))
    answers = by_columns.place_call_batch(batch, TUESDAY_EVENING, pace_seconds=2.0)
    expected = by_requests.place_calls(batch.requests(), TUESDAY_EVENING, pace_seconds=2.0)
    as_text = [a if isinstance(a, str) else f"{type(a).__name__}: {a}" for a in answers]
    assert as_text == [a if isinstance(a, str) else f"{type(a).__name__}: {a}" for a in expected]
    # every kind of answer happened: placed, refused at the limit, not E.164, the injected refusal
    assert {type(a) for a in answers} == {str, ConcurrencyLimitReached, InvalidNumber, RateLimited}
    # the stored rows are the same bytes, so any reader (another process, get_calls) sees the same calls
    assert by_columns._read("select * from sim_calls order by seq") == by_requests._read("select * from sim_calls order by seq")
    ids = [a for a in answers if isinstance(a, str)]
    later = TUESDAY_EVENING + timedelta(hours=1)
    assert_frame_equal(by_columns.get_calls_frame(ids, later), by_requests.get_calls_frame(ids, later))


def _one_by_one_waiting(provider: SimulatedProvider, batch: CallBatch, start: datetime, pace: float,
                        wait: CapacityWait) -> tuple[list, list[datetime]]:
    """The real-time dialer's loop (tasks/dialing._place_one_by_one + _wait_for_capacity) on a virtual clock."""
    answers, moments, now = [], [], start
    for index, request in enumerate(batch.requests()):
        if index:
            now += timedelta(seconds=pace)
        waited = 0.0
        while waited < wait.max_wait and provider.active_calls(now) >= provider.concurrency_limit:
            now += timedelta(seconds=wait.step)
            waited += wait.step
        if wait.until is not None and now >= wait.until:
            break
        try:
            answers.append(provider.place_call(request, now))
        except (ConcurrencyLimitReached, InvalidNumber, RateLimited) as refusal:
            answers.append(refusal)
        moments.append(now)
    return answers, moments


@pytest.mark.parametrize("max_wait, until_minutes, start_seconds", [
    (300.0, None, 0), (300.0, 2, 0), (6.0, None, 0),
    (300.0, None, -100),  # from 17:58:20 in New York: calls planned before 18:00 wait past it (their hour changes)
])
def test_a_waiting_batch_is_placed_as_the_dialer_places_calls_one_by_one(tmp_path, max_wait, until_minutes, start_seconds):
    # 4 lines for 60 calls 3 s apart: most calls wait for a line; with a short wait some are refused; with a
    # window end the batch stops there. Outcomes are drawn at the moment each call is really placed.
    batch = a_call_batch(60)
    start = TUESDAY_EVENING + timedelta(seconds=start_seconds)
    until = start + timedelta(minutes=until_minutes) if until_minutes else None
    wait = CapacityWait(step=3.0, max_wait=max_wait, until=until)
    waiting = SimulatedProvider(tmp_path / "waiting.sqlite", seed=5, concurrency_limit=4)
    placed = waiting.place_call_batch_waiting(batch, start, 3.0, wait)
    reference = SimulatedProvider(tmp_path / "reference.sqlite", seed=5, concurrency_limit=4)
    answers, moments = _one_by_one_waiting(reference, batch, start, 3.0, wait)
    as_text = [a if isinstance(a, str) else f"{type(a).__name__}: {a}" for a in placed.answers]
    assert as_text == [a if isinstance(a, str) else f"{type(a).__name__}: {a}" for a in answers]
    assert placed.placed_at == moments
    assert waiting._read("select * from sim_calls order by seq") == reference._read("select * from sim_calls order by seq")
    # the waits happened: calls later than the plain pace, never more than 4 up at once
    assert moments[-1] > start + timedelta(seconds=3.0 * (len(moments) - 1))
    for moment in placed.placed_at:
        assert waiting.active_calls(moment) <= 4
    refused = sum(isinstance(a, ConcurrencyLimitReached) for a in placed.answers)
    assert (refused > 0) == (max_wait < 300)
    assert (len(placed.answers) < 60) == (until is not None)


def test_call_batch_requests_are_what_the_dialer_sends():
    request = a_call_batch(6).requests()[5]
    assert request == CallRequest(
        to_number="+12125550005", from_number="+12125550000", provider_agent_id="agent_sim_1", attempt_key="7.5.1",
        dynamic_variables={"contact_name": 'Zoë "Z" O\'Brien', "company_name": "Acme", "email": ""},
        metadata={"attempt_key": "7.5.1", "campaign_id": "7"},
    )


class _RequestsOnly:
    """A batch provider without the columnar form (as the Retell adapter)."""

    def __init__(self, inner: SimulatedProvider):
        self.asked: list[CallRequest] = []
        self._inner = inner

    def place_calls(self, requests, now, pace_seconds=0.0):
        self.asked += requests
        return self._inner.place_calls(requests, now, pace_seconds)


def test_place_batch_uses_the_columns_when_it_can_and_requests_otherwise(tmp_path):
    batch = a_call_batch(6)
    plain = _RequestsOnly(SimulatedProvider(tmp_path / "a.sqlite", seed=3, concurrency_limit=100))
    columnar = SimulatedProvider(tmp_path / "b.sqlite", seed=3, concurrency_limit=100)
    assert [type(a) for a in place_batch(plain, batch, TUESDAY_EVENING, 1.0)] == [str, str, str, InvalidNumber, str, str]
    assert plain.asked == batch.requests()
    assert place_batch(columnar, batch, TUESDAY_EVENING, 1.0)[:3] == ["sim_000000001", "sim_000000002", "sim_000000003"]


def test_batch_stops_at_an_unavailable_provider(sim):
    sim.fail_next(RateLimited("slow down"))
    sim.fail_next(ProviderUnavailable("down"))
    results = sim.place_calls([request(i) for i in range(5)], TUESDAY_EVENING)
    # a refusal is per request; an outage ends the batch and the rest is not attempted
    assert [type(r) for r in results] == [RateLimited, ProviderUnavailable]
    assert sim.total_placed() == 0


def test_defaults_come_from_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMPAIGNS_SIMULATOR_SEED", "5")
    monkeypatch.setenv("CAMPAIGNS_PROVIDER_CONCURRENCY_LIMIT", "3")
    reset_settings()
    try:
        provider = SimulatedProvider(tmp_path / "s.sqlite")
        assert (provider.seed, provider.concurrency_limit, provider.rate_limit_per_second) == (5, 3, None)
    finally:
        reset_settings()


def test_find_by_attempt_keys_in_one_query(sim):
    first = sim.place_call(request(1, key="a"), TUESDAY_EVENING)
    sim.place_call(request(1, key="a"), TUESDAY_EVENING + timedelta(minutes=1))  # a double dial: first one wins
    second = sim.place_call(request(2, key="b"), TUESDAY_EVENING)
    found = sim.find_by_attempt_keys(["a", "b", "missing"], TUESDAY_EVENING + timedelta(hours=1))
    assert {key: call.provider_call_id for key, call in found.items()} == {"a": first, "b": second}


def as_outcome(outcomes: Outcomes, i: int) -> Outcome:
    """Row ``i`` of the batch form, as the one-call form returns it."""
    sentiment, custom = int(outcomes.sentiment[i]), int(outcomes.custom[i])
    return Outcome(
        reason=REASONS[outcomes.reason[i]], ring_seconds=float(outcomes.ring_seconds[i]),
        talk_seconds=float(outcomes.talk_seconds[i]), analysis_delay_seconds=float(outcomes.analysis_delay_seconds[i]),
        call_successful=bool(outcomes.call_successful[i]), in_voicemail=bool(outcomes.in_voicemail[i]),
        sentiment=SENTIMENTS[sentiment] if sentiment >= 0 else None,
        custom_analysis={"interested": bool(custom & 4), "callback_requested": bool(custom & 2),
                         "do_not_call": bool(custom & 1)} if custom >= 0 else None,
        tools_count=int(outcomes.tools_count[i]), cost_cents=float(outcomes.cost_cents[i]),
    )


# New York springs forward at 07:00 UTC on 8 March 2026: the batch below crosses it (offsets differ per call)
SPRING_FORWARD = datetime(2026, 3, 8, 7, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("rates", [
    DEFAULT_RATES,
    OutcomeRates(no_answer_share=0.2, busy_share=0.5, voicemail_share=0.6, failure_scale=3.0, success_scale=2.0),
    OutcomeRates(answer_scale_by_hour=tuple(h / 12 for h in range(24)), failure_scale=0.0),
    OutcomeRates(voicemail_share=0.6, greeting_share=0.5),  # personalised greetings talked into
])
@pytest.mark.parametrize("start", [SPRING_FORWARD - 3 * 3600, TUESDAY_EVENING.timestamp()])
def test_batch_outcomes_are_exactly_the_one_by_one_outcomes(rates, start):
    # New York, Los Angeles, Paris and an unknown country, every few seconds over six hours
    prefixes = ("+1212", "+1415", "+3314", "+9991")
    numbers = [f"{prefixes[i % 4]}{2000000 + i:07d}" for i in range(3000)]
    keys = [f"k{i}" for i in range(3000)]
    placed = start + np.arange(3000) * 7.2 + 0.123456
    batch = simulate_outcomes(5, keys, numbers, placed, rates)
    one_by_one = [simulate_outcome(5, k, n, ts, rates) for k, n, ts in zip(keys, numbers, placed.tolist())]
    assert [as_outcome(batch, i) for i in range(3000)] == one_by_one
    # the sample holds every kind of call, so every branch was compared
    assert {o.reason for o in one_by_one} >= {DisconnectReason.dial_no_answer, DisconnectReason.invalid_destination}
    if rates.answer_scale_by_hour[12] > 0:
        assert {o.reason for o in one_by_one} >= {DisconnectReason.voicemail_reached, DisconnectReason.user_hangup}
    greetings = [o for o in one_by_one if o.in_voicemail and o.reason != DisconnectReason.voicemail_reached]
    assert bool(greetings) == (rates.greeting_share > 0)


def test_talk_times_are_whole_milliseconds():
    # get_calls reports round(talk, 3): the frame can report the stored value as it is
    talk = [o.talk_seconds for o in outcomes_at(datetime(2026, 5, 5, 18, 0, tzinfo=NEW_YORK), 2000) if o.answered]
    assert talk and all(round(t, 3) == t for t in talk)


def expected_frame(provider: SimulatedProvider, ids: list[str], now: datetime) -> pl.DataFrame:
    """What tasks.call_state makes of get_calls, without our call id."""
    frame = updates_frame(list(enumerate(provider.get_calls(ids, now))))
    return frame.select("provider_call_id", *(c for c in frame.columns if c not in ("call_id", "provider_call_id")))


def test_frame_schema_is_the_update_frames_without_our_call_id():
    assert FRAME_SCHEMA == {"provider_call_id": _UPDATE_SCHEMA["provider_call_id"],
                            **{k: v for k, v in _UPDATE_SCHEMA.items() if k not in ("call_id", "provider_call_id")}}


@pytest.mark.parametrize("rates", [DEFAULT_RATES, OutcomeRates(voicemail_share=0.6, greeting_share=0.5)])
def test_get_calls_frame_is_get_calls_field_for_field(tmp_path, rates):
    path = tmp_path / "s.sqlite"
    placer = SimulatedProvider(path, seed=3, concurrency_limit=10_000, rates=rates)
    ids = placer.place_calls([request(i) for i in range(400)], TUESDAY_EVENING, pace_seconds=0.7)
    asked = ids[::-1] + ids[:50]  # any order, repeats allowed
    # a fresh instance reads the rows back from SQLite and get_calls decodes them on its own path
    reader = SimulatedProvider(path, seed=3)
    # ringing, talking, just ended, analysed: every state of every kind of call
    for minutes in (0, 1, 3, 5, 8, 12, 20, 60):
        now = TUESDAY_EVENING + timedelta(minutes=minutes)
        expected = expected_frame(reader, asked, now)
        assert_frame_equal(placer.get_calls_frame(asked, now), expected)  # from the placing instance's memory
        assert_frame_equal(reader.get_calls_frame(asked, now), expected)  # read back from SQLite, then cached
    states = set(expected_frame(reader, ids, TUESDAY_EVENING + timedelta(minutes=5)).select("status", "analyzed").rows())
    assert states >= {("registered", False), ("in_progress", False), ("ended", False), ("ended", True),
                      ("not_connected", True), ("error", True)}
    # a greeting talked into reads as one: the callee's greeting, then the agent's message
    greetings = expected.filter(pl.col("in_voicemail") & (pl.col("disconnect_reason") == "agent_hangup"))
    assert greetings.height == 0 if rates == DEFAULT_RATES else greetings.height > 10
    assert all(t.startswith("User: Hi, this is Contact") and "Please call us back" in t for t in greetings["transcript"])


def test_get_calls_frame_from_a_small_cache(tmp_path):
    # a cache of 50 calls keeps only the newest: the rest come back from SQLite, still in the order asked
    sim = SimulatedProvider(tmp_path / "s.sqlite", seed=3, concurrency_limit=10_000, cache_size=50)
    ids = [i for b in range(4) for i in sim.place_calls([request(100 * b + i) for i in range(60)], TUESDAY_EVENING)]
    later = TUESDAY_EVENING + timedelta(hours=1)
    for asked in (ids, ids[::-1], ids[:10] + ids[-10:]):
        assert_frame_equal(sim.get_calls_frame(asked, later), expected_frame(sim, asked, later))


def test_get_calls_frame_of_an_unknown_id_is_not_found(sim):
    known = sim.place_call(request(1), TUESDAY_EVENING)
    with pytest.raises(CallNotFound, match="sim_404"):
        sim.get_calls_frame([known, "sim_404"], TUESDAY_EVENING)
    assert sim.get_calls_frame([], TUESDAY_EVENING).schema == FRAME_SCHEMA
