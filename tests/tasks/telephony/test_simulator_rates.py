"""The simulator's outcome odds can be replaced (the forecast replays a campaign's observed mix); the defaults never move."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from schemas.enums import STATUS_FOR_REASON, Sentiment
from schemas.enums import DisconnectReason as R
from tasks.credits import RateCard, call_credits
from tasks.telephony.base import CallRequest
from tasks.telephony.simulator import (
    DEFAULT_RATES,
    FAILURE_SHARE,
    GREETING_TALK_SECONDS,
    SUCCESS_SHARE,
    OutcomeRates,
    SimulatedProvider,
    simulate_outcome,
)

# Tuesday 5 May 2026, 11:00 in New York: the callees below are New Yorkers
TUESDAY_MORNING = datetime(2026, 5, 5, 11, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
CALLS = 4000


def outcomes(rates: OutcomeRates | None = None, seed: int = 7, calls: int = CALLS):
    extra = () if rates is None else (rates,)
    return [simulate_outcome(seed, f"k{i}", f"+1212555{i % 10000:04d}", TUESDAY_MORNING + i % 600, *extra)
            for i in range(calls)]


def shares(results) -> Counter:
    counts = Counter(o.reason for o in results)
    return Counter({reason: n / len(results) for reason, n in counts.items()})


def test_the_default_outcomes_never_move():
    # fingerprint of 3,000 default outcomes of the counter-based draws (splitmix64 over a blake2b key, dead numbers
    # by CRC-32), pinned when they replaced the per-call random.Random stream (fingerprint 31c4f918..., commit 841a83a);
    # re-pinned (was 390b9aff...) when the key stopped hashing the placed time: a call's moment now counts only
    # through its callee's local hour and weekday, so a call that waited for a free line keeps its outcome
    digest = hashlib.sha256()
    for i in range(3000):
        o = simulate_outcome(7, f"k{i}", f"+1602555{i % 10000:04d}", 1777300000.0 + i * 397.0)
        digest.update(repr((o.reason.value, round(o.talk_seconds, 6), o.call_successful, o.in_voicemail, o.sentiment,
                            o.custom_analysis, o.tools_count)).encode())
    assert digest.hexdigest()[:16] == "4eb15cefc0722773"


def test_neutral_rates_give_exactly_the_default_outcomes():
    # a freshly built OutcomeRates() is the identity: the forecast with no observed calls equals the default one
    assert outcomes(OutcomeRates()) == outcomes()
    assert OutcomeRates() == DEFAULT_RATES


def test_the_answer_scale_multiplies_the_pick_up_chance_at_that_hour_only():
    default = shares(outcomes())
    answered = (R.voicemail_reached, R.user_hangup, R.agent_hangup, R.call_transfer, R.inactivity, R.max_duration_reached)
    halved_at_11 = shares(outcomes(OutcomeRates(answer_scale_by_hour=tuple(0.5 if h == 11 else 1.0 for h in range(24)))))
    halved_at_9 = shares(outcomes(OutcomeRates(answer_scale_by_hour=tuple(0.5 if h == 9 else 1.0 for h in range(24)))))
    default_answered = sum(default[r] for r in answered)  # 0.44 × 0.97 at 11:00 on a weekday
    assert default_answered == pytest.approx(0.427, abs=0.025)
    assert sum(halved_at_11[r] for r in answered) == pytest.approx(default_answered / 2, abs=0.02)
    assert halved_at_9 == default  # the calls are placed at 11:00: another hour's factor changes nothing


def test_the_unanswered_split_voicemail_failures_and_success_follow_the_override():
    rates = OutcomeRates(no_answer_share=0.2, busy_share=0.5, voicemail_share=0.0, failure_scale=3.0, success_scale=2.0)
    results = outcomes(rates)
    got = shares(results)
    unanswered = got[R.dial_no_answer] + got[R.dial_busy] + got[R.user_declined]
    assert got[R.dial_no_answer] / unanswered == pytest.approx(0.2, abs=0.03)
    assert got[R.dial_busy] / unanswered == pytest.approx(0.5, abs=0.03)
    assert got[R.voicemail_reached] == 0
    failed = sum(got[r] for r in (R.marked_as_spam, R.dial_failed, R.error_asr, R.error_no_audio_received,
                                  R.error_unknown, R.telephony_provider_unavailable))
    assert failed == pytest.approx(3 * FAILURE_SHARE, abs=0.015)
    conversations = [o for o in results if o.answered and not o.in_voicemail]
    default_conversations = [o for o in outcomes() if o.answered and not o.in_voicemail]
    success = sum(o.call_successful for o in conversations) / len(conversations)
    assert sum(o.call_successful for o in default_conversations) / len(default_conversations) == pytest.approx(
        SUCCESS_SHARE, abs=0.03)  # the analytic share the forecast scales against
    assert success == pytest.approx(2 * SUCCESS_SHARE, abs=0.05)


def credits(outcome) -> int:
    """What billing charges for the simulated call (tasks.credits, the one rate card)."""
    return call_credits(STATUS_FOR_REASON[outcome.reason], outcome.reason, outcome.talk_seconds, outcome.in_voicemail)


def test_a_greeting_share_of_voicemails_is_talked_into_and_billed_per_minute():
    rates = OutcomeRates(voicemail_share=0.5, greeting_share=0.4)
    results = outcomes(rates)
    voicemails = [o for o in results if o.in_voicemail]
    greetings = [o for o in voicemails if o.reason != R.voicemail_reached]
    assert len(voicemails) == pytest.approx(0.5 * 0.427 * CALLS, rel=0.12)  # half the ~43% that pick up at 11:00
    assert len(greetings) / len(voicemails) == pytest.approx(0.4, abs=0.05)
    # the agent took the greeting for the person, left its message and hung up: a voicemail in the analysis only
    assert {o.reason for o in greetings} == {R.agent_hangup}
    assert all(GREETING_TALK_SECONDS[0] <= o.talk_seconds < GREETING_TALK_SECONDS[1] for o in greetings)
    assert all((o.call_successful, o.sentiment, o.tools_count) == (False, Sentiment.Unknown, 0) for o in greetings)
    assert all(not any(o.custom_analysis.values()) and o.cost_cents > 0 for o in greetings)
    # billed as answered minutes (under a minute each: one), where a standard voicemail bills the flat rate
    assert {credits(o) for o in greetings} == {RateCard().per_answered_minute}
    assert {credits(o) for o in voicemails if o.reason == R.voicemail_reached} == {RateCard().per_voicemail}


def test_a_greeting_only_turns_a_standard_voicemail_into_one():
    # its own draw: every other call keeps the outcome it has without greetings, and so does the voicemail mix
    without, with_greetings = outcomes(OutcomeRates(greeting_share=0.0)), outcomes(OutcomeRates(greeting_share=1.0))
    changed = [(a, b) for a, b in zip(without, with_greetings) if a != b]
    assert changed and all(a.reason == R.voicemail_reached and b.reason == R.agent_hangup and b.in_voicemail
                           for a, b in changed)
    assert len(changed) == sum(o.in_voicemail for o in without)


def test_zero_scales_remove_answers_failures_and_successes():
    results = outcomes(OutcomeRates(answer_scale_by_hour=(0.0,) * 24, failure_scale=0.0), calls=1000)
    assert {o.reason for o in results} <= {R.dial_no_answer, R.dial_busy, R.user_declined, R.invalid_destination}
    assert not any(o.call_successful for o in outcomes(OutcomeRates(success_scale=0.0), calls=1000))


@pytest.mark.parametrize("bad", [
    {"answer_scale_by_hour": (1.0,) * 23},  # one factor per hour
    {"answer_scale_by_hour": (-0.1,) + (1.0,) * 23},
    {"voicemail_share": 1.2},
    {"greeting_share": 1.01},  # a share of voicemails
    {"greeting_share": -0.1},
    {"no_answer_share": 0.7, "busy_share": 0.4},  # the two shares of unanswered calls pass 1
    {"failure_scale": 40.0},  # 40 × 3% of calls cannot fail
    {"success_scale": -1.0},
])
def test_impossible_rates_are_refused(bad):
    with pytest.raises(ValueError):
        OutcomeRates(**bad)


def test_the_provider_places_calls_with_its_rates(tmp_path):
    silent = SimulatedProvider(tmp_path / "sim.sqlite", seed=1, concurrency_limit=500,
                               rates=OutcomeRates(answer_scale_by_hour=(0.0,) * 24))
    now = datetime.fromtimestamp(TUESDAY_MORNING, UTC)
    requests = [CallRequest(to_number=f"+1212555{i:04d}", from_number="+12125550000", provider_agent_id="a",
                            attempt_key=f"k{i}") for i in range(200)]
    ids = silent.place_calls(requests, now)
    calls = silent.get_calls(ids, datetime.fromtimestamp(TUESDAY_MORNING + 3600, UTC))
    assert not any(call.started_at and call.duration_seconds for call in calls)  # nobody picked up
    assert SimulatedProvider(tmp_path / "other.sqlite").rates == DEFAULT_RATES
