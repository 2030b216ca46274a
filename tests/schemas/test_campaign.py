"""The campaign settings model: every rule names its field; valid input is normalised."""

from __future__ import annotations

from datetime import date

import pytest

from schemas.campaign import CampaignSettings, parse_settings, validate_settings
from tasks.errors import UserError, ValidationError

REFERENCE = {
    "name": "Spring outreach",
    "agent_id": 1,
    "start_date": "2026-04-27",
    "time_zone": "America/Phoenix",
    "country": "US",
    "calling_days": ["mon", "tue", "wed", "thu", "fri"],
    "same_hours": [["08:00", "18:00"]],
    "max_attempts": 5,
    "attempts_per_day": 1,
    "batch_size": 100,
    "outbound_number_ids": [1],
    "active": True,
}


def settings(**changes) -> dict:
    data = dict(REFERENCE)
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def errors_of(data: dict) -> list[tuple[str, str]]:
    return [(e.field, e.rule) for e in validate_settings(data)]


def test_reference_example_is_valid_and_the_shorthand_expands_to_every_calling_day():
    parsed = parse_settings(settings())
    assert parsed.start_date == date(2026, 4, 27)
    assert parsed.weekly_schedule == {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    assert parsed.same_hours() == [["08:00", "18:00"]]


def test_defaults_match_the_product():
    parsed = parse_settings({"name": "x", "agent_id": 1, "time_zone": "Europe/Madrid", "hours": ["09:00-17:00"]})
    assert (parsed.max_attempts, parsed.attempts_per_day, parsed.batch_size) == (3, 1, 100)
    assert (parsed.rotation_enabled, parsed.active, parsed.calling_days) == (False, False, ["mon", "tue", "wed", "thu", "fri"])
    assert parsed.country == "ES"  # derived: Europe/Madrid is Spain's alone


@pytest.mark.parametrize(
    "changes, field, rule",
    [
        ({"name": "  "}, "name", "is required"),
        ({"name": ...}, "name", "is required"),
        ({"agent_id": ...}, "agent_id", "is required"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", 'unknown time zone "Mars/Olympus" (use an IANA name such as America/Phoenix)'),
        ({"end_date": "2026-04-26"}, "end_date", "end date 2026-04-26 is before the start date 2026-04-27"),
        # America/Phoenix is shared by the US and Canada: the country must be said
        ({"country": None}, "country", "is required: America/Phoenix is used by US, CA; say which one"),
        ({"country": "MX"}, "country", "MX does not use America/Phoenix (it is used by US, CA)"),
        ({"country": "usa"}, "country", '"USA" is not an ISO 3166 alpha-2 code such as US'),
        # UTC belongs to no country, so only the code can be checked: XX was saved and every import failed
        ({"time_zone": "UTC", "country": "XX"}, "country", '"XX" is not a known ISO 3166 alpha-2 country code (e.g. US)'),
        ({"calling_days": []}, "calling_days", "choose at least one calling day"),
        ({"calling_days": ["mon", "funday"]}, "calling_days", 'unknown day "funday" (use mon, tue, wed, thu, fri, sat, sun)'),
        ({"same_hours": [["18:00", "08:00"]]}, "weekly_schedule",
         "mon: window 18:00-08:00 ends before it starts (start must be before end)"),
        ({"same_hours": [["08:00", "08:00"]]}, "weekly_schedule",
         "mon: window 08:00-08:00 ends before it starts (start must be before end)"),
        ({"same_hours": [["08:00", "12:00"], ["11:30", "14:00"]]}, "weekly_schedule",
         "mon: windows 08:00-12:00 and 11:30-14:00 overlap"),
        ({"same_hours": [["8am", "12:00"]]}, "weekly_schedule", 'mon: "8am" is not a time in HH:MM (00:00..23:59)'),
        # YAML 1.1 reads an unquoted 18:00 as 1080 (sexagesimal)
        ({"same_hours": [["08:00", 1080]]}, "weekly_schedule",
         'mon: times must be quoted text like "18:00", got the number 1080'),
        ({"same_hours": ..., "weekly_schedule": {"mon": [["08:00", "18:00"]]}}, "weekly_schedule",
         "calling day(s) tue, wed, thu, fri have no calling window"),
        ({"same_hours": ..., "calling_days": ["mon"], "weekly_schedule": {"mon": [["08:00", "18:00"]], "sat": [["09:00", "10:00"]]}},
         "weekly_schedule", "sat has windows but is not a calling day"),
        ({"same_hours": ..., "calling_days": ["mon"],
          "weekly_schedule": {"mon": [["08:00", "12:00"]], "Monday": [["13:00", "18:00"]]}},
         "weekly_schedule", 'mon is given twice ("mon" and "Monday"); put all its windows under one'),
        ({"weekly_schedule": {"mon": [["08:00", "18:00"]]}}, "weekly_schedule",
         "give either weekly_schedule or same_hours (hours), not both"),
        ({"max_attempts": 0}, "max_attempts", "must be between 1 and 20, got 0"),
        ({"max_attempts": 21}, "max_attempts", "must be between 1 and 20, got 21"),
        ({"attempts_per_day": 6}, "attempts_per_day", "6 per day is more than max_attempts (5)"),
        ({"batch_size": 0}, "batch_size", "must be between 1 and 500, got 0"),
        ({"batch_size": 501}, "batch_size", "must be between 1 and 500, got 501"),
        ({"rotation_enabled": True}, "outbound_number_ids", "rotation is on: choose two or more numbers (got 1)"),
        ({"outbound_number_ids": [1, 2]}, "outbound_number_ids",
         "rotation is off: choose exactly one number (got 2); turn rotation on to use several"),
        ({"rotation_enabled": True, "outbound_number_ids": [1, 1]}, "outbound_number_ids", "a number is listed twice"),
        ({"start_date": None}, "active", "an active campaign needs a start date: set one, or turn Active off"),
        ({"outbound_number_ids": []}, "active", "an active campaign needs an outbound number: choose one, or turn Active off"),
        ({"batch_size": "many"}, "batch_size", "Input should be a valid integer, unable to parse string as an integer"),
        ({"colour": "blue"}, "colour", "unknown setting"),
        # a boolean is not a number (pydantic alone reads True as 1)
        ({"batch_size": True}, "batch_size", "expected a number, got the yes/no value true"),
        ({"max_attempts": True, "attempts_per_day": 1}, "max_attempts", "expected a number, got the yes/no value true"),
        ({"attempts_per_day": True}, "attempts_per_day", "expected a number, got the yes/no value true"),
        ({"agent_id": True}, "agent_id", "expected a number, got the yes/no value true"),
        ({"outbound_number_ids": [True]}, "outbound_number_ids", "expected a number, got the yes/no value true"),
    ],
)
def test_each_rule_is_one_error_naming_its_field(changes, field, rule):
    assert errors_of(settings(**changes)) == [(field, rule)]


def test_every_broken_rule_is_reported_at_once_for_forms():
    found = errors_of(settings(batch_size=0, max_attempts=2, attempts_per_day=3, time_zone="Nowhere/Land"))
    assert [f for f, _ in found] == ["time_zone", "attempts_per_day", "batch_size"]


def test_parse_raises_the_single_error_itself_and_joins_several_on_one_line():
    with pytest.raises(ValidationError) as single:
        parse_settings(settings(batch_size=0))
    assert (single.value.field, str(single.value)) == ("batch_size", "batch_size: must be between 1 and 500, got 0")
    with pytest.raises(UserError) as several:
        parse_settings(settings(batch_size=0, max_attempts=0))
    assert str(several.value) == "max_attempts: must be between 1 and 20, got 0; batch_size: must be between 1 and 500, got 0"
    assert "\n" not in str(several.value)


@pytest.mark.parametrize(
    "changes, expected_schedule",
    [
        # windows are sorted; touching windows are fine because they are [start, end)
        ({"same_hours": [["13:00", "18:00"], ["08:00", "13:00"]], "calling_days": ["mon"]},
         {"mon": [["08:00", "13:00"], ["13:00", "18:00"]]}),
        # day names in any case, days put in week order; "HH:MM-HH:MM" text accepted
        ({"same_hours": ["09:00-17:00"], "calling_days": ["Friday", "MON"]},
         {"mon": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]]}),
        # until midnight
        ({"same_hours": [["20:00", "24:00"]], "calling_days": ["sat"]}, {"sat": [["20:00", "24:00"]]}),
        ({"same_hours": ..., "calling_days": ["sun", "sat"],
          "weekly_schedule": {"Sunday": [["10:00", "12:00"]], "sat": [["09:00", "13:00"]]}},
         {"sat": [["09:00", "13:00"]], "sun": [["10:00", "12:00"]]}),
    ],
)
def test_schedule_is_normalised(changes, expected_schedule):
    parsed = parse_settings(settings(**changes))
    assert parsed.weekly_schedule == expected_schedule
    assert parsed.calling_days == list(expected_schedule)


@pytest.mark.parametrize(
    "zone, country, expected",
    [
        ("America/Bogota", None, "CO"),  # one country: derived
        ("America/Phoenix", "ca", "CA"),  # shared: given, upper-cased
        ("UTC", None, None),  # no country uses UTC alone: none needed
        ("Europe/Oslo", None, "NO"),  # merged away in zone1970.tab, still Norway's in zone.tab
    ],
)
def test_country_is_derived_or_checked_against_the_zone(zone, country, expected):
    assert parse_settings(settings(time_zone=zone, country=country)).country == expected


def test_model_is_the_single_place_of_validation():
    with pytest.raises(Exception):
        CampaignSettings(**settings(batch_size=0))
