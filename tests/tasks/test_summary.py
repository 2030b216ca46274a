"""The Campaign summary card, in the product's exact words."""

from __future__ import annotations

import pytest

from schemas.campaign import parse_settings
from tasks.campaigns import summary_lines

BASE = {"name": "x", "agent_id": 1, "start_date": "2026-04-27", "time_zone": "America/Phoenix", "country": "US",
        "calling_days": ["mon", "tue", "wed", "thu", "fri"], "same_hours": [["08:00", "18:00"]],
        "max_attempts": 5, "attempts_per_day": 1}
REFERENCE_LINES = [
    "Your campaign will start on: April 27, 2026",
    "It will call Monday to Friday between 08:00 AM - 06:00 PM (America/Phoenix)",
    "Each contact will receive up to 5 calls in total, max 1 per day.",
]


def lines(**changes) -> list[str]:
    data = dict(BASE)
    data.update(changes)
    if "weekly_schedule" in changes:
        data.pop("same_hours")
    return summary_lines(parse_settings(data))


def test_reference_example_reads_exactly_like_the_product():
    assert lines() == REFERENCE_LINES


@pytest.mark.parametrize(
    "changes, index, expected",
    [
        # an end date joins the first line
        ({"end_date": "2026-05-29"}, 0, "Your campaign will start on: April 27, 2026 and end on: May 29, 2026"),
        ({"start_date": None, "active": False}, 0, "Your campaign has no start date yet"),
        ({"start_date": "2027-01-05"}, 0, "Your campaign will start on: January 5, 2027"),
        # non-contiguous days are listed
        ({"calling_days": ["mon", "wed", "fri"]}, 1,
         "It will call Monday, Wednesday and Friday between 08:00 AM - 06:00 PM (America/Phoenix)"),
        # two neighbouring days read better as a pair than as a range
        ({"calling_days": ["sat", "sun"]}, 1, "It will call Saturday and Sunday between 08:00 AM - 06:00 PM (America/Phoenix)"),
        ({"calling_days": ["tue"]}, 1, "It will call Tuesday between 08:00 AM - 06:00 PM (America/Phoenix)"),
        # a run and a lone day
        ({"calling_days": ["mon", "tue", "wed", "fri"]}, 1,
         "It will call Monday to Wednesday and Friday between 08:00 AM - 06:00 PM (America/Phoenix)"),
        ({"calling_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}, 1,
         "It will call every day between 08:00 AM - 06:00 PM (America/Phoenix)"),
        # several windows a day; noon is PM, midnight AM
        ({"same_hours": [["10:00", "12:00"], ["14:00", "20:00"]]}, 1,
         "It will call Monday to Friday between 10:00 AM - 12:00 PM and 02:00 PM - 08:00 PM (America/Phoenix)"),
        ({"same_hours": [["00:00", "06:30"], ["12:15", "13:00"], ["22:00", "24:00"]], "calling_days": ["sun"]}, 1,
         "It will call Sunday between 12:00 AM - 06:30 AM, 12:15 PM - 01:00 PM and 10:00 PM - 12:00 AM (America/Phoenix)"),
        # a whole day reads as such, not as "12:00 AM - 12:00 AM" (zero hours at a glance)
        ({"same_hours": [["00:00", "24:00"]], "calling_days": ["sat", "sun"]}, 1,
         "It will call Saturday and Sunday around the clock (America/Phoenix)"),
        # different windows on different days: one group per set of hours, in week order
        ({"time_zone": "America/Bogota", "country": None, "calling_days": ["mon", "tue", "wed", "thu", "fri", "sat"],
          "weekly_schedule": {**{d: [["07:00", "19:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                              "sat": [["08:00", "15:00"]]}}, 1,
         "It will call Monday to Friday between 07:00 AM - 07:00 PM; Saturday between 08:00 AM - 03:00 PM (America/Bogota)"),
        ({"time_zone": "Europe/Paris", "country": "FR", "calling_days": ["mon", "wed", "fri"],
          "weekly_schedule": {"mon": [["10:00", "13:00"], ["14:00", "20:00"]], "wed": [["10:00", "13:00"]],
                              "fri": [["10:00", "13:00"], ["14:00", "20:00"]]}}, 1,
         "It will call Monday and Friday between 10:00 AM - 01:00 PM and 02:00 PM - 08:00 PM; "
         "Wednesday between 10:00 AM - 01:00 PM (Europe/Paris)"),
        # singular forms
        ({"max_attempts": 1}, 2, "Each contact will receive up to 1 call in total, max 1 per day."),
        ({"max_attempts": 20, "attempts_per_day": 3}, 2, "Each contact will receive up to 20 calls in total, max 3 per day."),
    ],
)
def test_summary_line(changes, index, expected):
    assert lines(**changes)[index] == expected
