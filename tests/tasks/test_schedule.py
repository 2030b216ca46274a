"""The campaign schedule on the clock: date range, calling days, [start, end) windows, DST."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tasks.schedule import Schedule

UTC = timezone.utc
WEEKDAYS_8_TO_18 = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def schedule(tz="America/Phoenix", days=("mon", "tue", "wed", "thu", "fri"), windows=None, start=date(2026, 1, 1), end=None):
    return Schedule.from_row(tz, list(days), windows or WEEKDAYS_8_TO_18, start, end)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (datetime(2026, 4, 27, 15, 0, tzinfo=UTC), True),  # Mon 08:00 Phoenix (UTC-7): window start is inside
        (datetime(2026, 4, 27, 14, 59, tzinfo=UTC), False),  # Mon 07:59 Phoenix
        (datetime(2026, 4, 28, 0, 59, tzinfo=UTC), True),  # Mon 17:59 Phoenix
        (datetime(2026, 4, 28, 1, 0, tzinfo=UTC), False),  # Mon 18:00 Phoenix: the end is excluded
        (datetime(2026, 5, 2, 18, 0, tzinfo=UTC), False),  # Saturday 11:00: not a calling day
        (datetime(2025, 12, 31, 18, 0, tzinfo=UTC), False),  # before the start date
    ],
)
def test_is_open_in_the_campaign_time_zone(instant, expected):
    assert schedule().is_open(instant) is expected


def test_end_date_is_inclusive_in_local_dates():
    s = schedule(end=date(2026, 4, 28))
    assert s.is_open(datetime(2026, 4, 29, 0, 30, tzinfo=UTC))  # Tue 28th 17:30 Phoenix, UTC already the 29th
    assert not s.is_open(datetime(2026, 4, 29, 16, 0, tzinfo=UTC))  # Wed 29th 09:00 Phoenix


def test_several_windows_a_day():
    s = schedule(days=("mon",), windows={"mon": [["09:00", "12:00"], ["14:00", "17:00"]]}, tz="UTC")
    assert s.is_open(datetime(2026, 4, 27, 11, 59, tzinfo=UTC))
    assert not s.is_open(datetime(2026, 4, 27, 13, 0, tzinfo=UTC))  # lunch gap
    assert s.is_open(datetime(2026, 4, 27, 14, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # New York springs forward on Sun 2026-03-08 at 02:00 → 03:00. Window 01:00-04:00 on Sunday.
        (datetime(2026, 3, 8, 6, 30, tzinfo=UTC), True),  # 01:30 EST
        (datetime(2026, 3, 8, 7, 30, tzinfo=UTC), True),  # 03:30 EDT (02:xx does not exist)
        (datetime(2026, 3, 8, 8, 0, tzinfo=UTC), False),  # 04:00 EDT: closed
        # Falls back on Sun 2026-11-01 at 02:00 → 01:00: 01:30 happens twice, both inside.
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), True),  # first 01:30 (EDT)
        (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), True),  # second 01:30 (EST)
        (datetime(2026, 11, 1, 9, 0, tzinfo=UTC), False),  # 04:00 EST
    ],
)
def test_windows_follow_local_wall_time_across_dst(instant, expected):
    s = schedule(tz="America/New_York", days=("sun",), windows={"sun": [["01:00", "04:00"]]})
    assert s.is_open(instant) is expected


def test_next_open_skips_weekend_and_night():
    s = schedule()
    friday_evening = datetime(2026, 5, 2, 2, 0, tzinfo=UTC)  # Fri 19:00 Phoenix
    assert s.next_open(friday_evening) == datetime(2026, 5, 4, 15, 0, tzinfo=UTC)  # Mon 08:00 Phoenix
    assert s.next_open(datetime(2026, 4, 27, 16, 0, tzinfo=UTC)) == datetime(2026, 4, 27, 16, 0, tzinfo=UTC)


EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_a_window_starting_inside_the_spring_forward_gap_opens_at_the_jump():
    # Madrid, Sun 2027-03-28: 02:00 CET jumps to 03:00 CEST (01:00 UTC). A 02:30-03:30 window is open from the jump
    # (the dialer dials at 01:00 UTC), but the next opening was read as the next day: 03:30 was taken for the start
    s = schedule("Europe/Madrid", EVERY_DAY, {d: [["02:30", "03:30"]] for d in EVERY_DAY})
    jump = datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    assert s.is_open(jump)
    assert s.next_open(datetime(2027, 3, 28, 0, 45, tzinfo=UTC)) == jump


def test_a_window_in_the_repeated_hour_opens_again_on_its_second_pass():
    # New York, Sun 2027-11-07: 01:00-02:00 EDT is followed by 01:00-02:00 EST. A 01:00-01:30 window is open on both
    # passes (05:00 and 06:00 UTC); after the first, the next opening was read as the next day
    s = schedule("America/New_York", EVERY_DAY, {d: [["01:00", "01:30"]] for d in EVERY_DAY})
    first, second = datetime(2027, 11, 7, 5, 0, tzinfo=UTC), datetime(2027, 11, 7, 6, 0, tzinfo=UTC)
    assert s.next_open(datetime(2027, 11, 7, 4, 0, tzinfo=UTC)) == first
    assert s.next_open(datetime(2027, 11, 7, 5, 30, tzinfo=UTC)) == second and s.is_open(second)
    assert s.next_open(datetime(2027, 11, 7, 6, 30, tzinfo=UTC)) == datetime(2027, 11, 8, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(("zone", "fall_back"), [
    ("America/New_York", datetime(2027, 11, 7, 6, 0, tzinfo=UTC)),  # 02:00 EDT -> 01:00 EST
    ("Europe/Paris", datetime(2027, 10, 31, 1, 0, tzinfo=UTC)),  # 03:00 CEST -> 02:00 CET
    ("Australia/Lord_Howe", datetime(2027, 4, 3, 15, 0, tzinfo=UTC)),  # 02:00 +11 -> 01:30 +10:30
])
def test_a_window_open_when_the_clock_goes_back_reopens_then(zone, fall_back):
    # A window starting before the repeated hour and running into it (00:30-01:15 on a 02:00 -> 01:00 day) is open
    # again from the moment the clock goes back, which is no start of its own: the next opening after its first
    # pass was read as the next day (`simulate` skipped the calling time; `dial` named the wrong opening).
    local = fall_back.astimezone(ZoneInfo(zone))
    s = schedule(zone, EVERY_DAY, {d: [["00:30", (local + timedelta(minutes=15)).strftime("%H:%M")]] for d in EVERY_DAY})
    assert s.is_open(fall_back) and not s.is_open(fall_back - timedelta(seconds=1))
    assert s.next_open(fall_back - timedelta(minutes=10)) == fall_back
    assert s.next_open(fall_back + timedelta(minutes=15)) > fall_back + timedelta(hours=12)  # closed again: tomorrow


def test_next_open_is_none_after_the_end_date():
    assert schedule(end=date(2026, 4, 27)).next_open(datetime(2026, 4, 28, 3, 0, tzinfo=UTC)) is None


def test_a_draft_campaign_is_never_open():
    s = schedule(start=None)
    assert not s.is_open(datetime(2026, 4, 27, 16, 0, tzinfo=UTC))


def test_open_until_joins_touching_windows_and_stops_at_a_gap():
    split = {"mon": [["08:00", "12:00"], ["12:00", "13:00"], ["14:00", "18:00"]]}
    plan = schedule(tz="America/New_York", days=("mon",), windows=split)
    monday_9 = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # Mon 09:00 New York (EDT since Sunday)
    assert plan.open_until(monday_9) == datetime(2026, 3, 9, 17, 0, tzinfo=UTC)  # 13:00 local
    assert plan.open_until(datetime(2026, 3, 9, 18, 30, tzinfo=UTC)) == datetime(2026, 3, 9, 22, 0, tzinfo=UTC)
    assert plan.open_until(datetime(2026, 3, 9, 17, 30, tzinfo=UTC)) is None  # 13:30: in the gap


@pytest.mark.parametrize("tz", ["America/New_York", "America/Phoenix", "Europe/London"])
def test_open_prefix_of_a_paced_batch_matches_checking_every_call(tz):
    import random
    from datetime import timedelta

    from tasks.dialing import _open_prefix

    rng = random.Random(7)
    windows = {"mon": [["08:00", "12:00"], ["12:00", "12:30"], ["13:00", "23:59"]], "tue": [["00:00", "09:00"]],
               "sun": [["01:00", "04:00"]]}
    plan = schedule(tz=tz, days=("sun", "mon", "tue"), windows=windows)
    checked = 0
    for _ in range(300):
        start = datetime(2026, 3, 8, 0, 0, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        if not plan.is_open(start):
            continue
        pace = rng.choice([3, 30, 120])
        times = [start + timedelta(seconds=i * pace) for i in range(rng.randrange(1, 500))]
        linear = next((i for i, t in enumerate(times) if not plan.is_open(t)), len(times))
        assert _open_prefix(plan, times) == linear
        checked += 1
    assert checked > 50  # the US spring-forward Sunday 01:00-04:00 window and the midnight crossing included


@pytest.mark.parametrize("start, end, at, expected", [
    (date(2026, 4, 27), None, datetime(2026, 4, 28, 18, 0, tzinfo=timezone.utc), None),  # Tue 11:00 Phoenix: open
    (None, None, datetime(2026, 4, 28, 18, 0, tzinfo=timezone.utc), ("no_start_date", None)),
    (date(2026, 5, 4), None, datetime(2026, 4, 28, 18, 0, tzinfo=timezone.utc), ("before_start", date(2026, 5, 4))),
    (date(2026, 4, 1), date(2026, 4, 27), datetime(2026, 4, 28, 18, 0, tzinfo=timezone.utc),
     ("after_end", date(2026, 4, 27))),
    (date(2026, 4, 27), None, datetime(2026, 5, 2, 18, 0, tzinfo=timezone.utc), ("not_calling_day", date(2026, 5, 2))),
    # 22:02 on Friday May 1 in Phoenix is Saturday in UTC: the campaign's own day counts
    (date(2026, 4, 27), None, datetime(2026, 5, 2, 5, 2, tzinfo=timezone.utc), ("outside_hours", date(2026, 5, 1))),
])
def test_closed_because_names_the_first_rule_that_closes_the_schedule(start, end, at, expected):
    assert schedule(start=start, end=end).closed_because(at) == expected
