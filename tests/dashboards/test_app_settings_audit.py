"""The Settings tab after an audit against the product spec (AppTest): hours typed for every day carried into
"Different hours per day", a taken campaign name refused with the other errors under its field, a start date
already passed said so (under the field and in the Campaign summary)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dashboards import state
from dashboards.state import PER_DAY, SAME
from tasks.campaigns import create_campaign, get_campaign
from tasks.store import transaction
from tests.dashboards.test_app_settings import campaign_page, errors_shown, k, stored

WORKDAYS = ["mon", "tue", "wed", "thu", "fri"]
NOW = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)  # a Sunday; 08:00 in America/Phoenix


@pytest.fixture
def page(campaign_db, db_kept_open):
    cid = campaign_db["campaign_id"]
    return campaign_page(cid), cid, db_kept_open


def day_hours(at, cid: int) -> dict[str, str]:
    return {d: at.text_input(key=k(cid, f"hours_{d}")).value for d in WORKDAYS}


@pytest.mark.parametrize("one_run", [False, True])
def test_per_day_hours_start_from_the_hours_just_typed(page, one_run):
    # the saved hours are 08:00-18:00 every day; typed over, then "Different hours per day" (in one run: the
    # box commits as the radio is clicked)
    at, cid, _ = page
    at.text_input(key=k(cid, "same_hours")).set_value("09:00-15:00")
    if not one_run:
        at.run()
    at.radio(key=k(cid, "hours_mode")).set_value(PER_DAY).run()
    assert not at.exception, at.exception
    assert day_hours(at, cid) == dict.fromkeys(WORKDAYS, "09:00-15:00")
    assert "between **09:00 AM - 03:00 PM**" in at.info[0].value  # the summary says what was typed


def test_switching_back_and_forth_keeps_the_per_day_edits(page):
    at, cid, db = page
    at.radio(key=k(cid, "hours_mode")).set_value(PER_DAY).run()
    at.text_input(key=k(cid, "hours_tue")).set_value("10:00-12:00").run()
    at.radio(key=k(cid, "hours_mode")).set_value(SAME).run()
    assert at.text_input(key=k(cid, "same_hours")).value == "08:00-18:00"
    at.radio(key=k(cid, "hours_mode")).set_value(PER_DAY).run()  # nothing typed for every day meanwhile
    assert day_hours(at, cid) == dict.fromkeys(WORKDAYS, "08:00-18:00") | {"tue": "10:00-12:00"}
    # every day given the same hours by hand: "Same hours" starts from them
    at.text_input(key=k(cid, "hours_tue")).set_value("08:00-18:00").run()
    for day in WORKDAYS:
        at.text_input(key=k(cid, f"hours_{day}")).set_value("07:00-11:00")
    at.radio(key=k(cid, "hours_mode")).set_value(SAME).run()
    assert at.text_input(key=k(cid, "same_hours")).value == "07:00-11:00"
    at.button(key=f"save_{cid}").click().run()
    assert stored(db, cid)["weekly_schedule"] == dict.fromkeys(WORKDAYS, [["07:00", "11:00"]])


def test_hours_typed_that_are_not_windows_leave_the_days_theirs_and_say_so(page):
    at, cid, _ = page
    at.text_input(key=k(cid, "same_hours")).set_value("9 to 5")
    at.radio(key=k(cid, "hours_mode")).set_value(PER_DAY).run()
    assert day_hours(at, cid) == dict.fromkeys(WORKDAYS, "08:00-18:00")
    assert [c.value for c in at.caption if "not valid windows" in c.value] == [
        ':orange[The hours typed for every day ("9 to 5") are not valid windows, so each day keeps its own hours.]']
    at.run()
    assert not [c for c in at.caption if "not valid windows" in c.value]  # said once


def test_a_taken_name_is_refused_in_the_same_pass_under_the_name_field(page):
    at, cid, db = page
    with transaction(db) as conn:
        base = get_campaign(conn, cid)
        data = {f: base[f] for f in ("agent_id", "time_zone", "country", "calling_days", "weekly_schedule")}
        other = create_campaign(conn, data | {"name": "Autumn draft"}, NOW)
    at.text_input(key=k(cid, "name")).set_value("Autumn draft")
    at.text_input(key=k(cid, "same_hours")).set_value("18:00-08:00")
    at.number_input(key=k(cid, "batch_size")).set_value(0).run()
    at.button(key=f"save_{cid}").click().run()
    taken = f'Campaign Name: campaign {other} is already named "Autumn draft"; choose another name'
    # the banner, then each field's error under it in the page's order: the name's first, in the form's words
    assert errors_shown(at) == [
        "Some settings need fixing before they can be saved; see the messages below.", taken,
        "Calling hours: 18:00-08:00 ends before it starts (start must be before end)",
        "Batch Size: must be between 1 and 500, got 0"]
    assert stored(db, cid)["name"] == "Spring outreach"
    # the other fields fixed: the name's error stays, not a "name: campaign ..." banner at the top
    at.text_input(key=k(cid, "same_hours")).set_value("08:00-18:00")
    at.number_input(key=k(cid, "batch_size")).set_value(100).run()
    at.button(key=f"save_{cid}").click().run()
    assert errors_shown(at) == ["Some settings need fixing before they can be saved; see the messages below.", taken]
    at.text_input(key=k(cid, "name")).set_value("Spring outreach 2").run()
    assert errors_shown(at) == []
    at.button(key=f"save_{cid}").click().run()
    assert stored(db, cid)["name"] == "Spring outreach 2"


def test_keeping_the_saved_name_is_not_a_taken_name(page):
    at, cid, db = page
    at.number_input(key=k(cid, "max_attempts")).set_value(6).run()
    at.button(key=f"save_{cid}").click().run()
    assert errors_shown(at) == []
    assert stored(db, cid)["max_attempts"] == 6


@pytest.fixture
def page_on_sunday(campaign_db, db_kept_open, monkeypatch):
    monkeypatch.setattr(state, "now", lambda: NOW)
    cid = campaign_db["campaign_id"]
    return campaign_page(cid), cid, db_kept_open


def summary_first_line(at) -> str:
    return next(i.value for i in at.info if "Campaign summary" in i.value).split("  \n")[1]


def past_start_warnings(at) -> list[str]:
    return [w.value for w in at.warning if "has already passed" in w.value]


def test_a_past_start_date_is_said_under_the_field_and_in_the_summary_and_can_be_saved(page_on_sunday):
    at, cid, db = page_on_sunday
    # the saved start date of this active campaign has passed: it started; nothing to warn of
    assert summary_first_line(at) == "Your campaign started on: April 27, 2026"
    assert past_start_warnings(at) == []
    at.date_input(key=k(cid, "start_date")).set_value(date(2026, 11, 10)).run()
    assert past_start_warnings(at) == [
        "November 10, 2026 has already passed (today is December 6, 2026 in America/Phoenix): the campaign starts "
        "calling as soon as it is saved and Active, not on that date."]
    assert summary_first_line(at) == ("Your campaign will start calling as soon as it is saved and Active: its start "
                                      "date, November 10, 2026, has passed")
    at.button(key=f"save_{cid}").click().run()  # allowed: dates of a running campaign may be edited
    assert errors_shown(at) == []
    assert stored(db, cid)["start_date"] == date(2026, 11, 10)
    assert past_start_warnings(at) == []
    assert summary_first_line(at) == "Your campaign started on: November 10, 2026"


def test_a_future_start_date_and_a_past_end_date_read_as_they_are(page_on_sunday):
    at, cid, _ = page_on_sunday
    at.date_input(key=k(cid, "start_date")).set_value(date(2027, 1, 4)).run()
    assert (summary_first_line(at), past_start_warnings(at)) == ("Your campaign will start on: January 4, 2027", [])
    at.date_input(key=k(cid, "start_date")).set_value(date(2026, 4, 27))
    at.date_input(key=k(cid, "end_date")).set_value(date(2026, 11, 30)).run()
    assert summary_first_line(at) == ("Your campaign's dates have passed (April 27, 2026 to November 30, 2026): "
                                      "it makes no calls")
    at.date_input(key=k(cid, "end_date")).set_value(date(2027, 3, 31)).run()
    assert summary_first_line(at) == "Your campaign started on: April 27, 2026 and will end on: March 31, 2027"


def test_a_saved_past_start_date_of_a_campaign_not_active_waits_for_active(page_on_sunday):
    at, cid, _ = page_on_sunday
    at.toggle(key=f"active_{cid}").set_value(False).run()  # Paused: no call until Active again
    assert summary_first_line(at) == ("Your campaign will start calling as soon as it is Active: its start date, "
                                      "April 27, 2026, has passed")
    assert past_start_warnings(at) == []
