"""The retry policy's times by hand: outcome boundaries, local days of 23 and 25 hours, bands across DST changes.

Each expectation is worked out on the calendar (the comment says how) and checked on both paths: the
per-call `next_call_at` and the batch `retry_decisions` that enrichment runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from tasks.retry_policy import (
    CampaignRetry,
    check_overrides,
    effective_policy,
    next_call_at,
    parse_rule,
    retry_decisions,
    rule_for,
)
from tasks.schedule import Schedule

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def schedule(time_zone: str, days=EVERY_DAY, hours=(("08:00", "18:00"),), end: date | None = None) -> Schedule:
    return Schedule.from_row(time_zone, days, {d: [list(h) for h in hours] for d in days}, date(2026, 1, 1), end)


NEW_YORK = schedule("America/New_York")
HAVANA = schedule("America/Havana", hours=(("00:00", "24:00"),))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def batch_retry_at(campaign: CampaignRetry, reason: str, seconds: float | None, queued: datetime,
                   ended: datetime | None, now: datetime) -> datetime | None:
    """The retry time `retry_decisions` (the enrichment's batch path) writes for one call."""
    released = pl.DataFrame({
        "call_id": [1], "campaign_id": [1], "disconnect_reason": [reason], "duration_seconds": [seconds],
        "queued_at": [queued], "ended_at": [ended], "from_number": ["+16025550100"],
    }, schema_overrides={"queued_at": pl.Datetime("us", "UTC"), "ended_at": pl.Datetime("us", "UTC"),
                         "duration_seconds": pl.Float64, "disconnect_reason": pl.String})
    return retry_decisions({1: campaign}, released, now)["retry_at"][0]


@pytest.mark.parametrize(("reason", "seconds", "expected"), [
    ("user_hangup", 9.999, "next_day"),   # under 10 s: a short hang-up
    ("user_hangup", 10.0, None),          # exactly 10 s is a conversation: no rule
    ("user_hangup", None, "next_day"),    # no duration reported: counted as short
    ("voicemail_reached", 25.0, "next_day_other_band"),
    ("user_declined", 0.0, "next_day"),
    ("dial_failed", 0.0, None),           # no default rule: the engine's plain behaviour
    ("invalid_destination", 0.0, "never"),
    ("error_unknown", None, None),
])
def test_the_default_rule_of_each_outcome(reason, seconds, expected):
    rule = rule_for(effective_policy(None), reason, seconds)
    assert (rule.text if rule else None) == expected


def test_a_user_hangup_override_leaves_short_hangups_to_their_own_rule():
    policy = effective_policy({"user_hangup": "1h"})
    assert (rule_for(policy, "user_hangup", 4.0).text, rule_for(policy, "user_hangup", 60.0).text) == ("next_day", "1h")


@pytest.mark.parametrize(("ended", "expected"), [
    # New York, Sunday 2026-11-01 is 25 hours long (02:00 EDT falls back to 01:00 EST)
    (utc(2026, 11, 1, 2, 0), utc(2026, 11, 1, 4, 0)),    # Sat 22:00 EDT -> Sun 00:00 EDT
    (utc(2026, 11, 1, 15, 0), utc(2026, 11, 2, 5, 0)),   # Sun 10:00 EST -> Mon 00:00 EST, 25 h after Sun 00:00
    # Sunday 2026-03-08 is 23 hours long (02:00 EST jumps to 03:00 EDT)
    (utc(2026, 3, 8, 3, 0), utc(2026, 3, 8, 5, 0)),      # Sat 22:00 EST -> Sun 00:00 EST
    (utc(2026, 3, 8, 14, 0), utc(2026, 3, 9, 4, 0)),     # Sun 10:00 EDT -> Mon 00:00 EDT, 23 h after Sun 00:00
])
def test_next_day_is_the_next_campaign_local_midnight_on_short_and_long_days(ended, expected):
    campaign = CampaignRetry(NEW_YORK, effective_policy(None), 1)
    rule = parse_rule("next_day")
    assert next_call_at(rule, NEW_YORK, ended - timedelta(minutes=1), ended, 1) == expected
    assert batch_retry_at(campaign, "user_declined", 0.0, ended - timedelta(minutes=1), ended, ended) == expected


@pytest.mark.parametrize(("ended", "expected"), [
    # Havana skips its midnight: 2026-03-08 begins at 01:00 CDT (05:00 UTC)
    (utc(2026, 3, 8, 1, 0), utc(2026, 3, 8, 5, 0)),      # Sat 20:00 CST
    # and 2026-11-01 has two midnights (01:00 CDT falls back to 00:00 CST): the day begins at the first
    (utc(2026, 11, 1, 0, 0), utc(2026, 11, 1, 4, 0)),    # Sat 20:00 CDT
])
def test_next_day_where_midnight_is_skipped_or_repeated(ended, expected):
    campaign = CampaignRetry(HAVANA, effective_policy(None), 1)
    assert next_call_at(parse_rule("next_day"), HAVANA, ended, ended, 1) == expected
    assert batch_retry_at(campaign, "user_declined", 0.0, ended, ended, ended) == expected


@pytest.mark.parametrize(("called", "expected"), [
    # the wall clock moves 3 hours, whatever the offset did overnight
    (utc(2026, 10, 31, 14, 0), utc(2026, 11, 1, 18, 0)),  # Sat 10:00 EDT -> Sun 13:00 EST
    (utc(2026, 3, 7, 15, 0), utc(2026, 3, 8, 17, 0)),     # Sat 10:00 EST -> Sun 13:00 EDT
    # Sat 15:00 EST: 18:00 is the window's (excluded) end, so one band earlier: Sun 12:00 EDT
    (utc(2026, 3, 7, 20, 0), utc(2026, 3, 8, 16, 0)),
])
def test_another_band_across_a_dst_change_keeps_the_local_hours(called, expected):
    campaign = CampaignRetry(NEW_YORK, effective_policy(None), 1)
    ended = called + timedelta(minutes=4)  # the band is the call's, not its end's
    assert next_call_at(parse_rule("next_day_other_band"), NEW_YORK, called, ended, 1) == expected
    assert batch_retry_at(campaign, "voicemail_reached", 25.0, called, ended, ended) == expected


def test_another_band_in_a_quiet_week_on_the_batch_path():
    # Phoenix (no DST), Mon-Fri 08:00-18:00: Friday 16:00 -> Monday 13:00 (19:00 closed, weekend skipped)
    phoenix = schedule("America/Phoenix", days=["mon", "tue", "wed", "thu", "fri"])
    friday_16 = utc(2026, 5, 1, 23, 0)
    assert batch_retry_at(CampaignRetry(phoenix, effective_policy(None), 1), "voicemail_reached", 25.0,
                          friday_16, friday_16 + timedelta(minutes=1), friday_16) == utc(2026, 5, 4, 20, 0)


@pytest.mark.parametrize(("hours", "called", "expected"), [
    # 08-10 and 16-18: from 09:00 no time exactly 3, 6 or 9 h away is open; the nearest open time at least
    # 3 h away is 16:00 (before 2026-12-06 the retry fell back to midnight and came again at 09:00)
    ((("08:00", "10:00"), ("16:00", "18:00")), (9, 0), (16, 0)),
    # from 17:00, 20:00 is closed and the morning window lies wholly before 14:00: from its opening
    ((("08:00", "10:00"), ("16:00", "18:00")), (17, 0), (8, 0)),
    # 09-12 and 13:30-17:45 from 09:30: 12:30 is closed; 13:30 (4 h away) is nearer than 15:30
    ((("09:00", "12:00"), ("13:30", "17:45")), (9, 30), (13, 30)),
    # 06-08 and 15-20 from 11:00: 14:00 and 08:00 closed; 15:00 (4 h later) against 07:59 (3 h earlier): earlier
    ((("06:00", "08:00"), ("15:00", "20:00")), (11, 0), (6, 0)),
])
def test_another_band_is_the_nearest_open_time_a_band_away(hours, called, expected):
    phoenix = schedule("America/Phoenix", hours=hours)  # UTC-7 all year
    called_at = utc(2026, 5, 4, 7) + timedelta(hours=called[0], minutes=called[1])
    retry = utc(2026, 5, 5, 7) + timedelta(hours=expected[0], minutes=expected[1])
    ended = called_at + timedelta(minutes=2)
    assert next_call_at(parse_rule("next_day_other_band"), phoenix, called_at, ended, 1) == retry
    assert batch_retry_at(CampaignRetry(phoenix, effective_policy(None), 1), "voicemail_reached", 25.0,
                          called_at, ended, ended) == retry


def test_no_band_open_within_a_week_waits_for_the_next_local_midnight():
    # Mondays 09:00-10:00 only: from 09:30 every band (12:30, 06:30, 15:30, ...) is closed all week; the
    # fallback is the local midnight after the call (Phoenix, Mon 2026-05-04 09:30 = 16:30 UTC)
    mondays = schedule("America/Phoenix", days=["mon"], hours=(("09:00", "10:00"),))
    called, ended = utc(2026, 5, 4, 16, 30), utc(2026, 5, 4, 16, 35)
    expected = utc(2026, 5, 5, 7, 0)  # Tue 00:00 MST
    assert next_call_at(parse_rule("next_day_other_band"), mondays, called, ended, 1) == expected
    assert batch_retry_at(CampaignRetry(mondays, effective_policy(None), 1), "voicemail_reached", 25.0,
                          called, ended, ended) == expected


def test_a_wait_runs_from_the_end_of_the_call_or_from_now_when_no_end_is_known():
    campaign = CampaignRetry(NEW_YORK, effective_policy(None), 1)
    queued, ended, now = utc(2026, 4, 28, 14, 0), utc(2026, 4, 28, 14, 3), utc(2026, 4, 28, 14, 10)
    assert batch_retry_at(campaign, "dial_no_answer", 0.0, queued, ended, now) == ended + timedelta(hours=2)
    assert batch_retry_at(campaign, "dial_busy", 0.0, queued, None, now) == now + timedelta(minutes=30)


@pytest.mark.parametrize(("text", "accepted"), [
    ("3650d", True),
    ("87600h", True),      # 3650 days in hours
    ("3651d", False),
    ("5256001m", False),   # 3650 days and a minute
    ("9999999999d", False),  # more days than a timedelta holds: was an OverflowError, not a rule error
])
def test_a_wait_is_at_most_ten_years(text, accepted):
    if accepted:
        assert check_overrides({"dial_busy": text}) == {"dial_busy": "3650d"}
    else:
        with pytest.raises(ValueError, match=rf'dial_busy: "{text}" is too long a wait \(at most 3650d\)'):
            check_overrides({"dial_busy": text})


def test_a_longer_wait_stored_before_the_limit_still_reads():
    # the limit is checked where settings enter; a stored policy must not stop enrichment
    assert effective_policy('{"dial_busy": "4000d"}')["dial_busy"].wait == timedelta(days=4000)
