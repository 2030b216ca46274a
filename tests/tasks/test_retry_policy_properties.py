"""Property test: the batch `retry_decisions` decides exactly what `rule_for` + `next_call_at` decide call by call.

The batch path works on epoch microseconds with one time zone lookup per campaign-local day; the
generated batches crowd many calls onto the same days around DST changes (both hemispheres, and
zones that change at midnight), with schedules that leave no band open within a week.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.enums import WEEKDAYS
from tasks.retry_policy import (
    POLICY_KEYS,
    RETRY_SCHEMA,
    CampaignRetry,
    effective_policy,
    next_call_at,
    retry_decisions,
    rule_for,
)
from tasks.schedule import Schedule

ZONES = ["America/Phoenix", "America/New_York", "Europe/London", "Australia/Sydney",
         "America/Santiago", "America/Havana", "Asia/Kolkata", "Pacific/Chatham"]
# instants a day or two before DST changes of those zones (and one quiet week)
AROUND = [datetime(2026, 3, 7, 12, tzinfo=UTC), datetime(2026, 3, 28, 12, tzinfo=UTC),
          datetime(2026, 4, 4, 12, tzinfo=UTC), datetime(2026, 9, 5, 12, tzinfo=UTC),
          datetime(2026, 10, 31, 12, tzinfo=UTC), datetime(2026, 6, 10, 12, tzinfo=UTC)]
WINDOWS = [[["08:00", "18:00"]], [["00:00", "24:00"]], [["09:00", "12:00"], ["13:30", "17:45"]], [["22:00", "24:00"]],
           [["08:00", "10:00"], ["16:00", "18:00"]], [["02:00", "03:30"]], []]
RULES = ["now", "30m", "2h", "1d", "next_day", "next_day_other_band", "other_number", "never"]
REASONS = [None, "user_hangup", "voicemail_reached", "dial_no_answer", "dial_busy", "marked_as_spam",
           "user_declined", "invalid_destination", "agent_hangup", "inactivity"]


@st.composite
def campaigns(draw) -> CampaignRetry:
    days = draw(st.lists(st.sampled_from(WEEKDAYS), unique=True))
    weekly = {day: draw(st.sampled_from(WINDOWS)) for day in days}
    start = draw(st.sampled_from([date(2026, 1, 1), date(2026, 4, 6)]))
    end = draw(st.sampled_from([None, date(2026, 3, 9), date(2026, 4, 8), date(2026, 11, 2)]))
    overrides = draw(st.dictionaries(st.sampled_from([k for k in POLICY_KEYS if k != "invalid_destination"]),
                                     st.sampled_from(RULES), max_size=6))
    schedule = Schedule.from_row(draw(st.sampled_from(ZONES)), days, weekly, start, end)
    return CampaignRetry(schedule, effective_policy(overrides), draw(st.sampled_from([1, 2])))


@st.composite
def batches(draw) -> tuple[dict[int, CampaignRetry], pl.DataFrame, datetime]:
    by_id = dict(enumerate(draw(st.lists(campaigns(), min_size=1, max_size=3)), start=1))
    base = draw(st.sampled_from(AROUND))
    calls = draw(st.lists(st.tuples(
        st.sampled_from(sorted(by_id)), st.sampled_from(REASONS), st.one_of(st.none(), st.floats(0, 30)),
        st.integers(0, 3 * 24 * 60),  # queued, minutes after base
        st.one_of(st.none(), st.integers(0, 120)),  # ended, minutes after queued (None: not ended yet)
        st.one_of(st.none(), st.booleans()),  # in_voicemail
    ), min_size=1, max_size=60))
    released = pl.DataFrame({
        "call_id": range(1, len(calls) + 1),
        "campaign_id": [c[0] for c in calls],
        "disconnect_reason": [c[1] for c in calls],
        "duration_seconds": [c[2] for c in calls],
        "queued_at": [base + timedelta(minutes=c[3]) for c in calls],
        "ended_at": [None if c[4] is None else base + timedelta(minutes=c[3] + c[4]) for c in calls],
        "from_number": [f"+1602555010{i % 2}" for i in range(len(calls))],
        "in_voicemail": [c[5] for c in calls],
    }, schema_overrides={"in_voicemail": pl.Boolean, "queued_at": pl.Datetime("us", "UTC"), "ended_at": pl.Datetime("us", "UTC"),
                         "duration_seconds": pl.Float64, "disconnect_reason": pl.String})
    return by_id, released, base + timedelta(days=3, hours=3)


def per_call(by_id: dict[int, CampaignRetry], released: pl.DataFrame, now: datetime) -> list[tuple]:
    """The reference: each call through rule_for and next_call_at."""
    decided = []
    for call in released.iter_rows(named=True):
        campaign = by_id[call["campaign_id"]]
        rule = rule_for(campaign.policy, call["disconnect_reason"], call["duration_seconds"], call["in_voicemail"])
        kind = rule.kind if rule else None
        retry_at = next_call_at(rule, campaign.schedule, call["queued_at"], call["ended_at"] or now, campaign.numbers)
        avoid = call["from_number"] if kind == "other_number" and campaign.numbers > 1 else None
        decided.append((call["call_id"], retry_at, avoid, kind == "never"))
    return decided


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_batch_decisions_equal_the_per_call_path(batch):
    by_id, released, now = batch
    decided = retry_decisions(by_id, released, now)
    assert decided.schema == pl.Schema(RETRY_SCHEMA)
    assert decided.rows() == per_call(by_id, released, now)


def test_an_empty_batch_has_the_schema():
    assert retry_decisions({}, pl.DataFrame(), datetime(2026, 4, 28, tzinfo=UTC)).schema == pl.Schema(RETRY_SCHEMA)
