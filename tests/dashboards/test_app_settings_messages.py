"""The Settings tab's and the wizard's error messages name what the form shows ("Max Attempts", "Calling hours"),
not the settings model's field names, which YAML files and the CLI keep ("max_attempts", "mon: window ...")."""

from __future__ import annotations

from datetime import date

import pytest

from dashboards.state import PER_DAY, SAME
from dashboards.tabs.settings import NO_HOURS, form_messages
from schemas.campaign import validate_settings
from tests.dashboards.test_app_campaigns import start_wizard
from tests.dashboards.test_app_settings import campaign_page, errors_shown, k
from tests.factories import make_campaign_db

MON_TO_WED = ["mon", "tue", "wed"]
SETTINGS = {"name": "Spring", "agent_id": 1, "time_zone": "America/Phoenix", "country": "US",
            "calling_days": MON_TO_WED, "weekly_schedule": {d: [["09:00", "17:00"]] for d in MON_TO_WED},
            "max_attempts": 2, "attempts_per_day": 1}


def hours(mon: list[str], tue: list[str], wed: list[str]) -> dict:
    return {"weekly_schedule": {"mon": mon, "tue": tue, "wed": wed}}


@pytest.mark.parametrize(("changes", "mode", "expected"), [
    ({"attempts_per_day": 9}, SAME, {"attempts_per_day": "9 per day is more than Max Attempts (2)"}),
    ({"attempts_per_day": 0}, SAME, {"attempts_per_day": "must be between 1 and Max Attempts, got 0"}),
    # one range typed for every day: said once, of the box it was typed in, not of Monday (checked first)
    (hours(["18:00-08:00"], ["18:00-08:00"], ["18:00-08:00"]), SAME,
     {"same_hours": "18:00-08:00 ends before it starts (start must be before end)"}),
    # hours per day: said of the day's own box
    (hours(["09:00-17:00"], ["18:00-08:00"], ["09:00-17:00"]), PER_DAY,
     {"hours_tue": "18:00-08:00 ends before it starts (start must be before end)"}),
    (hours(["0800"], ["0800"], ["0800"]), SAME, {"same_hours": '"0800" is not a window such as 09:00-17:00'}),
    (hours(["8am-5pm"], ["8am-5pm"], ["8am-5pm"]), SAME,
     {"same_hours": '"8am" is not a time in HH:MM (00:00..23:59)'}),
    (hours(["09:00-12:00", "11:00-13:00"], ["09:00-17:00"], ["09:00-17:00"]), PER_DAY,
     {"hours_mon": "windows 09:00-12:00 and 11:00-13:00 overlap"}),
    # a blank hours box
    (hours([], [], []), SAME, {"same_hours": NO_HOURS}),
    (hours([], ["09:00-17:00"], []), PER_DAY, {"hours_mon": NO_HOURS, "hours_wed": NO_HOURS}),
    # messages without a field name stay as they are
    ({"name": " "}, SAME, {"name": "is required"}),
    ({"end_date": date(2026, 1, 1), "start_date": date(2026, 2, 1)}, SAME,
     {"end_date": "end date 2026-01-01 is before the start date 2026-02-01"}),
])
def test_form_messages_say_the_forms_words(changes, mode, expected):
    assert form_messages(validate_settings(SETTINGS | changes), mode) == expected


def test_the_first_problem_of_a_field_is_kept():
    from tasks.errors import ValidationError

    problems = [ValidationError("weekly_schedule", "mon: window 18:00-08:00 ends before it starts"),
                ValidationError("weekly_schedule", "tue: window 19:00-08:00 ends before it starts")]
    assert form_messages(problems, SAME) == {"same_hours": "18:00-08:00 ends before it starts"}


@pytest.fixture
def page(campaign_db, db_kept_open):
    cid = campaign_db["campaign_id"]
    return campaign_page(cid), cid


def test_settings_tab_names_the_labels(page):
    at, cid = page
    at.number_input(key=k(cid, "max_attempts")).set_value(2)
    at.number_input(key=k(cid, "attempts_per_day")).set_value(9)
    at.text_input(key=k(cid, "same_hours")).set_value("18:00-08:00").run()
    at.button(key=f"save_{cid}").click().run()
    shown = errors_shown(at)
    assert "Attempts per Day: 9 per day is more than Max Attempts (2)" in shown
    assert "Calling hours: 18:00-08:00 ends before it starts (start must be before end)" in shown
    assert not [e for e in shown if "max_attempts" in e or "mon" in e], shown


@pytest.mark.parametrize(("field", "value", "message"), [
    ("batch_size", 0, "Batch Size: must be between 1 and 500, got 0"),
    ("batch_size", 501, "Batch Size: must be between 1 and 500, got 501"),
    ("max_attempts", 0, "Max Attempts: must be between 1 and 20, got 0"),
])
def test_a_number_out_of_its_range_is_unsaved_and_refused_under_its_field(page, field, value, message):
    # the widget's own bounds kept 0 or 501 in the browser: "Nothing to save" while the field showed it
    at, cid = page
    at.number_input(key=k(cid, field)).set_value(value).run()
    assert not at.exception, at.exception
    at.button(key=f"save_{cid}").click().run()
    assert message in errors_shown(at), errors_shown(at)
    assert not [m.value for m in at.info if "Nothing to save" in m.value]


def test_settings_tab_names_the_day_when_hours_differ(page):
    at, cid = page
    at.radio(key=k(cid, "hours_mode")).set_value(PER_DAY).run()
    at.text_input(key=k(cid, "hours_tue")).set_value("18:00-08:00").run()
    at.button(key=f"save_{cid}").click().run()
    assert "Tuesday hours: 18:00-08:00 ends before it starts (start must be before end)" in errors_shown(at)


@pytest.mark.usefixtures("db_kept_open")
def test_the_wizard_names_the_labels_too(db):
    # the wizard's scheduling step draws the Settings tab's section and checks with its form_errors
    make_campaign_db(db)
    at, cid = start_wizard()
    at.button(key="wiz_next").click().run()
    at.date_input(key=f"c{cid}:start_date").set_value(date(2026, 6, 1))
    at.number_input(key=f"c{cid}:max_attempts").set_value(2)
    at.number_input(key=f"c{cid}:attempts_per_day").set_value(9)
    at.text_input(key=f"c{cid}:same_hours").set_value("18:00-08:00").run()
    at.button(key="wiz_finish").click().run()
    assert not at.exception, at.exception
    assert sorted(errors_shown(at)) == [
        "Attempts per Day: 9 per day is more than Max Attempts (2)",
        "Calling hours: 18:00-08:00 ends before it starts (start must be before end)",
    ]
