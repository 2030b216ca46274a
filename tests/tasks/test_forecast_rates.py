"""The forecast simulates with the campaign's observed outcome mix once it has enough calls, else with the defaults."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tasks.forecast import (
    MIN_OBSERVED_CALLS,
    PRIOR_CALLS,
    ObservedRates,
    choose_rates,
    forecast,
    observed_rates,
)
from tasks.settings import reset_settings
from tasks.store import connect, transaction
from tasks.telephony.simulator import DEFAULT_RATES, FAILURE_SHARE, SUCCESS_SHARE, OutcomeRates
from tests.factories import add_contacts, make_campaign_db

PHOENIX = ZoneInfo("America/Phoenix")
# the history is the week before the forecast: Tuesday 21 April 2026, 10:00 in Phoenix (no DST there)
TUESDAY_10 = datetime(2026, 4, 21, 10, 0, tzinfo=PHOENIX)
MONDAY_MIDNIGHT_PHOENIX = datetime(2026, 4, 27, 7, 0, tzinfo=UTC)
# (status, disconnect_reason, in_voicemail, duration_seconds) of each outcome class the forecast counts
OUTCOME_CALLS = {
    "connected": ("ended", "agent_hangup", False, None),
    "voicemail": ("ended", "voicemail_reached", True, None),
    "no_answer": ("not_connected", "dial_no_answer", False, None),
    "busy": ("not_connected", "dial_busy", False, None),
    "declined": ("not_connected", "user_declined", False, None),
    "failed": ("not_connected", "dial_failed", False, None),
    "invalid": ("not_connected", "invalid_destination", False, None),
    # voicemails the provider did not recognise: a personalised greeting the agent talked into for 35 s (billed
    # per minute), and one the analysis found with no duration (billed flat, a standard voicemail)
    "greeting": ("ended", "agent_hangup", True, 35.0),
    "voicemail_without_duration": ("ended", "agent_hangup", True, None),
}


def add_history(db, campaign_id: int, counts: dict[str, int], *, at: datetime = TUESDAY_10, successful: int = 0,
                first: int = 0, prefix: str = "+1602666") -> None:
    """Finished contacts (prefix + NNNN; Phoenix by default) with one ended call each: `counts` calls per outcome
    class at `at`, the first `successful` connected ones successful."""
    outcomes = [outcome for outcome, n in counts.items() for _ in range(n)]
    with transaction(db) as conn:
        for i, outcome in enumerate(outcomes, start=first):
            status, reason, in_voicemail, seconds = OUTCOME_CALLS[outcome]
            success = outcome == "connected" and successful > 0
            successful -= success
            contact_id = conn.execute(
                "insert into contacts (phone_e164, name) values (?, ?) returning contact_id",
                [f"{prefix}{i:04d}", f"Earlier {i}"]).fetchone()[0]
            conn.execute(
                "insert into campaign_contacts (campaign_id, contact_id, attempts, finished_at, finished_reason)"
                " values (?, ?, 1, ?, 'max_attempts')", [campaign_id, contact_id, at])
            conn.execute(
                """insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status,
                       disconnect_reason, call_successful, in_voicemail, duration_seconds, credits, provider,
                       queued_at, registered_at, ended_at, updated_at)
                   values (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 1, 'simulator', ?, ?, ?, ?)""",
                [campaign_id, contact_id, f"history-{i}", f"{prefix}{i:04d}", status, reason, success, in_voicemail,
                 seconds, at, at, at + timedelta(minutes=1), at])


def rates_of(db, campaign_id: int) -> ObservedRates:
    with connect(db) as conn:
        return observed_rates(conn, campaign_id)


def test_without_calls_the_observed_rates_are_exactly_the_defaults(campaign_db):
    observed = rates_of(campaign_db["db"], campaign_db["campaign_id"])
    assert (observed.calls, observed.mix, observed.success_share) == (0, {}, None)
    assert observed.rates == DEFAULT_RATES


def test_the_observed_mix_is_counted_per_outcome_and_each_share_leans_toward_its_default(campaign_db):
    add_history(campaign_db["db"], campaign_db["campaign_id"], {
        "connected": 10, "voicemail": 5, "no_answer": 60, "busy": 15, "declined": 5, "failed": 3, "invalid": 2,
    }, successful=3)
    observed = rates_of(campaign_db["db"], campaign_db["campaign_id"])
    assert observed.calls == 100
    assert observed.mix == {"connected": 0.10, "voicemail": 0.05, "no_answer": 0.60, "busy": 0.15, "declined": 0.05,
                            "failed": 0.03, "invalid": 0.02}
    assert observed.success_share == 0.3
    rates = observed.rates
    assert PRIOR_CALLS == 20  # the expected values below use 20 pseudo-calls at the default share
    assert rates.voicemail_share == pytest.approx((5 + 20 * 0.30) / (15 + 20))  # 5 of 15 answered were voicemail
    assert rates.no_answer_share == pytest.approx((60 + 20 * 0.70) / (80 + 20))  # of 80 unanswered
    assert rates.busy_share == pytest.approx((15 + 20 * 0.15) / (80 + 20))
    # failures are counted among the calls to valid numbers (invalid ones are the simulator's own, by number)
    assert rates.failure_scale * FAILURE_SHARE == pytest.approx((3 + 20 * 0.03) / (98 + 20))
    assert rates.success_scale * SUCCESS_SHARE == pytest.approx((3 + 20 * SUCCESS_SHARE) / (10 + 20))


def test_greetings_talked_into_are_a_share_of_the_voicemails_leaning_toward_none(campaign_db):
    add_history(campaign_db["db"], campaign_db["campaign_id"], {
        "connected": 10, "voicemail": 6, "greeting": 12, "voicemail_without_duration": 2, "no_answer": 70})
    observed = rates_of(campaign_db["db"], campaign_db["campaign_id"])
    # the mix still shows every voicemail as one (the dashboard and CLI read it): 20 of 100 calls
    assert observed.mix["voicemail"] == 0.20 and set(observed.mix) == set(OUTCOME_CALLS) - {
        "greeting", "voicemail_without_duration"}
    assert observed.rates.voicemail_share == pytest.approx((20 + 20 * 0.30) / (30 + 20))
    # 12 of the 20 voicemails were greetings talked into (one without a duration is a standard voicemail), leaning
    # toward the default (none) by 20 pseudo-calls
    assert DEFAULT_RATES.greeting_share == 0.0
    assert observed.rates.greeting_share == pytest.approx(12 / (20 + 20))


def test_standard_voicemails_alone_learn_no_greetings(campaign_db):
    add_history(campaign_db["db"], campaign_db["campaign_id"], {
        "connected": 10, "voicemail": 30, "voicemail_without_duration": 5, "no_answer": 55})
    assert rates_of(campaign_db["db"], campaign_db["campaign_id"]).rates.greeting_share == 0.0


def test_the_answer_scale_compares_pick_ups_with_the_default_curve_and_a_thin_hour_leans_to_the_campaign(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    # 190 calls at 10:00 (default pick-up chance 0.42 on a Tuesday), 19 picked up: a tenth, a quarter of the default
    add_history(db, campaign_id, {"connected": 14, "voicemail": 5, "no_answer": 171}, at=TUESDAY_10)
    # 10 calls at 15:00 (default 0.34), all picked up: too few to trust on their own
    add_history(db, campaign_id, {"connected": 10}, at=TUESDAY_10 + timedelta(hours=5), first=190)
    scale = rates_of(db, campaign_id).rates.answer_scale_by_hour
    expected_10, expected_15 = 190 * 0.42, 10 * 0.34
    mean_chance = (expected_10 + expected_15) / 200
    overall = (29 + 20 * mean_chance) / (expected_10 + expected_15 + 20 * mean_chance)
    assert overall == pytest.approx(0.4078, abs=1e-4)
    assert scale[10] == pytest.approx((19 + 20 * overall * 0.42) / (expected_10 + 20 * 0.42))  # its own 19 / 79.8 = 0.24
    assert scale[10] == pytest.approx(0.2543, abs=1e-4)
    assert scale[15] == pytest.approx((10 + 20 * overall * 0.34) / (expected_15 + 20 * 0.34))  # 2.94 alone, pulled down
    assert scale[15] == pytest.approx(1.2522, abs=1e-4)
    assert scale[3] == scale[20] == pytest.approx(overall)  # hours never called: the default shape at the campaign's level


def test_calls_are_placed_in_the_callees_local_hour_even_in_a_half_hour_zone(campaign_db):
    # 04:40 UTC is 10:10 in Kolkata (UTC+5:30): counted in the 10:00 band, although grouped by UTC quarter hour
    at = datetime(2026, 4, 21, 4, 40, tzinfo=UTC)
    add_history(campaign_db["db"], campaign_db["campaign_id"], {"no_answer": 30}, at=at, prefix="+91981234")
    scale = rates_of(campaign_db["db"], campaign_db["campaign_id"]).rates.answer_scale_by_hour
    assert scale[10] < scale[9] == scale[4] == scale[11]  # nobody picked up at 10:00; other hours take the campaign's level


@pytest.mark.parametrize(("calls", "choice", "expected_rates", "label"), [
    (0, "auto", "default", "default"),
    (MIN_OBSERVED_CALLS - 1, "auto", "default", "default (199 calls so far, 200 needed)"),  # too few to replace the odds
    (MIN_OBSERVED_CALLS, "auto", "observed", "observed: 200 calls"),
    (1234, "auto", "observed", "observed: 1,234 calls"),
    (5, "observed", "observed", "observed: 5 calls"),  # forced
    (1234, "default", "default", "default"),  # forced
])
def test_which_rates_the_forecast_uses(calls, choice, expected_rates, label):
    observed = ObservedRates(calls=calls, mix={}, success_share=None, rates=OutcomeRates(voicemail_share=0.1))
    rates, used = choose_rates(observed, choice)
    assert (rates, used) == ({"default": DEFAULT_RATES, "observed": observed.rates}[expected_rates], label)


def test_an_unknown_rates_choice_is_refused():
    with pytest.raises(ValueError, match="auto, observed or default"):
        choose_rates(ObservedRates(0, {}, None, DEFAULT_RATES), "guess")


def test_forcing_observed_rates_without_calls_gives_exactly_the_default_forecast(db):
    ids = make_campaign_db(db, batch_size=20, max_attempts=2)
    add_contacts(db, ids["campaign_id"], 12)
    forced = forecast(db, ids["campaign_id"], MONDAY_MIDNIGHT_PHOENIX, seed=4, pace_seconds=3, rates="observed")
    default = forecast(db, ids["campaign_id"], MONDAY_MIDNIGHT_PHOENIX, seed=4, pace_seconds=3, rates="default")
    assert (forced.rates_used, default.rates_used) == ("observed: 0 calls", "default")
    assert forced.calls > 12  # retries happened
    assert {**forced.as_dict(), "rates_used": ""} == {**default.as_dict(), "rates_used": ""}


@pytest.fixture
def no_number_pauses(monkeypatch):
    """Number health never pauses the only number (a low connection rate would, and the forecast honours it)."""
    monkeypatch.setenv("CAMPAIGNS_NUMBER_MIN_CONNECTION_RATE", "0")
    monkeypatch.setenv("CAMPAIGNS_NUMBER_MAX_SPAM_MARKS", "100000")
    reset_settings()


# Stated tolerance: the forecast's connection rate (≈ 150 simulated calls) is within 4 points of the
# observed 5% (the default odds give about 25% in these hours).
RATE_TOLERANCE = 0.04


def test_a_campaign_answered_far_less_than_the_default_is_forecast_later_with_fewer_successes(db, no_number_pauses):
    # retries at once, up to 8 a day, and at most 70 calls a day from the one number: the calls needed set the date
    ids = make_campaign_db(db, batch_size=20, max_attempts=8, attempts_per_day=8, number_daily_cap=70,
                           weekly_schedule={d: [["09:00", "12:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                           retry_policy={r: "now" for r in ("dial_no_answer", "dial_busy", "user_declined",
                                                           "voicemail_reached", "short_user_hangup")})
    campaign_id = ids["campaign_id"]
    # last week: 240 calls, 12 connected (5%) where the default curve expects about 25%
    add_history(db, campaign_id, {"connected": 12, "voicemail": 8, "no_answer": 150, "busy": 35, "declined": 30,
                                  "failed": 3, "invalid": 2}, successful=4)
    add_contacts(db, campaign_id, 20)
    observed = forecast(db, campaign_id, MONDAY_MIDNIGHT_PHOENIX, seed=8, pace_seconds=3)
    default = forecast(db, campaign_id, MONDAY_MIDNIGHT_PHOENIX, seed=8, pace_seconds=3, rates="default")
    assert (observed.rates_used, default.rates_used) == ("observed: 240 calls", "default")
    assert observed.observed_connection_rate == 0.05
    assert observed.forecast_connection_rate == pytest.approx(0.05, abs=RATE_TOLERANCE)
    assert default.forecast_connection_rate > 0.05 + 2 * RATE_TOLERANCE
    # the daily number cap sets the day; the minute of the last call within that day is noise (both forecasts
    # draw the same numbers per attempt: only the pick-up chance differs), so the date is compared
    assert observed.completion.date() >= default.completion.date()
    assert observed.successful_contacts < default.successful_contacts
    assert observed.calls > default.calls


def test_voicemail_greetings_talked_into_are_forecast_at_the_per_minute_rate(db, migrated_store, no_number_pauses):
    # the same campaign twice, every past call a voicemail: standard ones (75 flat) or greetings the agent talked
    # into (333 a started minute); the same seed draws the same voicemails, so mostly their price differs
    def forecast_with(path, voicemail_class: str):
        ids = make_campaign_db(path, batch_size=20, max_attempts=2)
        add_history(path, ids["campaign_id"], {voicemail_class: 60})
        add_contacts(path, ids["campaign_id"], 20)
        return forecast(path, ids["campaign_id"], MONDAY_MIDNIGHT_PHOENIX, seed=6, pace_seconds=3, rates="observed")

    other = shutil.copyfile(migrated_store, db.parent / "greetings.duckdb")
    standard, greetings = forecast_with(db, "voicemail"), forecast_with(other, "greeting")
    assert standard.observed_mix == greetings.observed_mix == {**dict.fromkeys(standard.observed_mix, 0.0),
                                                               "voicemail": 1.0}  # the mix shows both as voicemail
    assert standard.forecast_mix["voicemail"] > 0.4  # most simulated calls reach a voicemail box
    # 60 of 60 voicemails shrunk by 20 pseudo-calls: 75% of the simulated voicemails bill 333 (under a minute)
    # instead of 75; the history's calls bill 1 credit each, in both
    simulated_standard, simulated_greetings = standard.credits - 60, greetings.credits - 60
    assert simulated_greetings - simulated_standard >= 5 * (333 - 75)
    assert simulated_greetings > 1.3 * simulated_standard
