"""Campaign list paging after a delete, the wizard keeping what was typed across Back/Next, and the wizard after an
audit against the product spec: hours carried over, a taken name under its field, its draft in the address, a start
date already passed (AppTest)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from dashboards import state
from tasks.campaigns import create_campaign, delete_campaign, get_campaign
from tasks.store import connect, transaction
from tests.dashboards.test_app_campaigns import APP, row_names, run_app, start_wizard
from tests.factories import make_campaign_db


def twenty_one_campaigns(db) -> dict:
    """Spring outreach (the oldest) and 20 newer campaigns: with 20 rows a page, Spring is alone on page 2."""
    ids = make_campaign_db(db, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    with transaction(db) as conn:
        base = get_campaign(conn, ids["campaign_id"])
        data = {k: base[k] for k in ("agent_id", "time_zone", "country", "calling_days", "weekly_schedule")}
        for i in range(20):
            create_campaign(conn, data | {"name": f"Wave {i:02d}"}, datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=i))
    return ids


def test_deleting_the_only_row_of_the_last_page_shows_the_page_before(db_kept_open):
    ids = twenty_one_campaigns(db_kept_open)
    at = run_app()
    at.button(key="list_next").click().run()
    assert row_names(at) == ["Spring outreach"]
    at.button(key=f"delete_{ids['campaign_id']}").click().run()
    at.button(key="confirm_delete").click().run()
    assert at.success[0].value == 'Deleted "Spring outreach".'
    # 20 campaigns are left: the list shows them, not "No campaigns yet"
    assert not [i.value for i in at.info]
    assert row_names(at) == [f"Wave {i:02d}" for i in range(19, -1, -1)]


@pytest.fixture
def wizard_at_scheduling(db_kept_open):
    make_campaign_db(db_kept_open)
    at, cid = start_wizard()
    at.button(key="wiz_next").click().run()
    return at, cid, db_kept_open


def test_wizard_keeps_per_day_hours_across_back_and_next(wizard_at_scheduling):
    at, cid, db = wizard_at_scheduling
    at.date_input(key=f"c{cid}:start_date").set_value(date(2026, 6, 1))
    at.number_input(key=f"c{cid}:max_attempts").set_value(7)
    at.radio(key=f"c{cid}:hours_mode").set_value("per_day").run()
    at.text_input(key=f"c{cid}:hours_tue").set_value("10:00-11:00, 14:00-16:00").run()
    at.button(key="wiz_back").click().run()
    at.button(key="wiz_next").click().run()
    assert at.text_input(key=f"c{cid}:hours_tue").value == "10:00-11:00, 14:00-16:00"
    assert at.number_input(key=f"c{cid}:max_attempts").value == 7
    at.button(key="wiz_finish").click().run()
    assert not at.exception
    with connect(db) as conn:
        stored = get_campaign(conn, cid)
    assert stored["weekly_schedule"]["tue"] == [["10:00", "11:00"], ["14:00", "16:00"]]
    assert (stored["weekly_schedule"]["mon"], stored["max_attempts"]) == ([["09:00", "17:00"]], 7)


def test_wizard_keeps_the_country_of_a_shared_zone_across_back_and_next(wizard_at_scheduling):
    at, cid, _ = wizard_at_scheduling
    at.selectbox(key=f"c{cid}:time_zone").set_value("Europe/Paris").run()
    at.selectbox(key=f"c{cid}:country").set_value("MC").run()
    at.button(key="wiz_back").click().run()
    at.button(key="wiz_next").click().run()
    assert at.selectbox(key=f"c{cid}:country").value == "MC"


def _with_a_draft(db) -> tuple[dict, int]:
    """The reference campaign and a Draft with its schedule settings, named "Autumn draft": (ids, draft id)."""
    ids = make_campaign_db(db)
    with transaction(db) as conn:
        base = get_campaign(conn, ids["campaign_id"])
        data = {k: base[k] for k in ("agent_id", "time_zone", "country", "calling_days", "weekly_schedule")}
        return ids, create_campaign(conn, data | {"name": "Autumn draft"}, datetime(2026, 2, 1, tzinfo=UTC))


def test_editing_a_draft_does_not_show_the_import_report_of_another_campaign(db_kept_open):
    ids, draft_id = _with_a_draft(db_kept_open)
    # a wizard left half-way after importing into another campaign
    report = {"rows": 9, "imported": 9, "updated": 0, "duplicates_merged": 0, "invalid": 0, "enrolled": 9, "rejected": []}
    at = run_app(wizard_campaign=ids["campaign_id"], wizard_step=1, wizard_import=report)
    at.button(key=f"edit_{draft_id}").click().run()
    at.switch_page("pages/wizard.py")  # AppTest's next runs stay on the page the script switched to
    at.button(key="wiz_back").click().run()
    assert at.session_state["wizard_campaign"] == draft_id
    at.file_uploader(key="wiz_upload_0").set_value(("people.csv", b"Name,Phone\nAna,+16025550111\n", "text/csv")).run()
    # the file is read and previewed, not imported yet: no report of any import
    assert [s.value for s in at.success] == ["Draft **Autumn draft** created (agent Ava). Add contacts now or later."]
    assert not at.metric


# ----------------------------------------------------------------------------- the wizard after the spec audit

def page_order(at) -> list[str]:
    """The main area's widget labels and error messages, in the order the page shows them."""
    shown = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            if type(child).__name__ == "Error":
                shown.append(f"error: {child.value}")
            elif getattr(child, "label", None):
                shown.append(child.label)
            walk(child)

    walk(at.main)
    return shown


def test_wizard_per_day_hours_start_from_the_hours_just_typed(wizard_at_scheduling):
    # the draft's hours are 09:00-17:00; 08:00-18:00 typed, then "Different hours per day"
    at, cid, _ = wizard_at_scheduling
    at.date_input(key=f"c{cid}:start_date").set_value(date(2027, 6, 1))
    at.text_input(key=f"c{cid}:same_hours").set_value("08:00-18:00")
    at.radio(key=f"c{cid}:hours_mode").set_value("per_day").run()
    assert [at.text_input(key=f"c{cid}:hours_{d}").value for d in ("mon", "tue", "wed", "thu", "fri")] == [
        "08:00-18:00"] * 5
    assert "It will call **Monday to Friday** between **08:00 AM - 06:00 PM**" in at.info[0].value


@pytest.mark.usefixtures("db_kept_open")
def test_wizard_refuses_a_taken_name_under_the_name_field_until_changed(db):
    ids = make_campaign_db(db)
    at = run_app("pages/wizard.py")
    at.text_input(key="wiz_name").set_value("Spring outreach")
    at.button(key="wiz_create").click().run()
    taken = (f'error: Campaign Name: campaign {ids["campaign_id"]} is already named "Spring outreach"; '
             "choose another name")
    order = page_order(at)
    assert order[order.index("Campaign Name") + 1] == taken  # under the field, before Campaign Objective
    assert "wizard_campaign" not in at.session_state
    at.text_input(key="wiz_name").set_value("Spring outreach 2").run()
    assert not at.error  # fixed: the message goes without another click
    at.button(key="wiz_create").click().run()
    assert at.session_state["wizard_campaign"] != ids["campaign_id"]


@pytest.mark.usefixtures("db_kept_open")
def test_wizard_keeps_its_draft_and_step_in_the_address_and_a_reload_resumes_them(db):
    make_campaign_db(db)
    at, cid = start_wizard()
    assert at.query_params == {"campaign": str(cid), "step": "1"}
    at.button(key="wiz_next").click().run()
    assert at.query_params == {"campaign": str(cid), "step": "2"}
    # a reload: a new session opening the same address
    for step, shown in (("2", "Campaign: **Summer push**"), ("1", "Draft **Summer push** created (agent Ava). "
                                                                 "Add contacts now or later.")):
        again = AppTest.from_file(APP, default_timeout=30)
        again.query_params.update(campaign=str(cid), step=step)
        again.switch_page("pages/wizard.py")
        again.run()
        assert not again.exception, again.exception
        assert again.session_state["wizard_campaign"] == cid
        assert shown in [m.value for m in again.markdown] + [s.value for s in again.success]
        assert again.query_params == {"campaign": str(cid), "step": step}
    # the name is not refused as a duplicate of the draft: there is no second Create
    assert not [t for t in again.text_input if t.key == "wiz_name"]


@pytest.mark.usefixtures("db_kept_open")
def test_editing_a_draft_puts_it_in_the_wizards_address(db):
    _, draft_id = _with_a_draft(db)
    at = run_app()
    at.button(key=f"edit_{draft_id}").click().run()
    assert at.query_params == {"campaign": str(draft_id), "step": "2"}


@pytest.mark.usefixtures("db_kept_open")
@pytest.mark.parametrize(("address", "note"), [
    ("999", "Campaign 999 no longer exists (it may have been deleted): starting a new campaign."),
    ("abc", "The address names campaign 'abc', which is not a campaign ID: starting a new campaign."),
])
def test_a_wizard_address_naming_no_campaign_starts_afresh_with_a_note(db, address, note):
    make_campaign_db(db)
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params.update(campaign=address, step="2")
    at.switch_page("pages/wizard.py")
    at.run()
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == [note]
    assert at.text_input(key="wiz_name").value == ""
    assert at.query_params == {}
    at.text_input(key="wiz_name").set_value("Summer push").run()
    assert not at.info  # said once


@pytest.mark.usefixtures("db_kept_open")
def test_a_draft_deleted_while_its_wizard_is_open_starts_afresh_with_a_note(db):
    make_campaign_db(db)
    at, cid = start_wizard()
    with transaction(db) as conn:
        delete_campaign(conn, cid)
    at.run()
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == [
        f"Campaign {cid} no longer exists (it may have been deleted): starting a new campaign."]
    assert "wizard_campaign" not in at.session_state and at.query_params == {}


def test_wizard_says_a_start_date_already_passed_and_finishes(wizard_at_scheduling, monkeypatch):
    at, cid, db = wizard_at_scheduling
    monkeypatch.setattr(state, "now", lambda: datetime(2026, 12, 6, 15, tzinfo=UTC))
    at.date_input(key=f"c{cid}:start_date").set_value(date(2026, 11, 10)).run()
    assert [w.value for w in at.warning if "already passed" in w.value] == [
        "November 10, 2026 has already passed (today is December 6, 2026 in UTC): the campaign starts calling as soon "
        "as it is saved and Active, not on that date."]
    summary = next(i.value for i in at.info if "Campaign summary" in i.value)
    assert summary.split("  \n")[1] == ("Your campaign will start calling as soon as it is saved and Active: its start "
                                        "date, November 10, 2026, has passed")
    at.date_input(key=f"c{cid}:start_date").set_value(date(2026, 12, 7)).run()  # tomorrow: nothing to warn of
    assert not [w for w in at.warning if "already passed" in w.value]
    assert "Your campaign will start on: December 7, 2026" in next(i.value for i in at.info if "summary" in i.value)
    at.date_input(key=f"c{cid}:start_date").set_value(date(2026, 11, 10)).run()
    at.button(key="wiz_finish").click().run()  # a date passed is allowed
    assert not at.exception, at.exception
    with connect(db) as conn:
        assert get_campaign(conn, cid)["start_date"] == date(2026, 11, 10)


def test_the_wizards_schedule_step_has_the_browser_ask_before_leaving_unsaved(wizard_at_scheduling):
    # a reload resumed the draft (its address) but lost the schedule typed and not saved by Finish, without a word
    from tests.dashboards.test_app_unsaved import browser_asks_before_leaving

    at, cid, _ = wizard_at_scheduling
    at.number_input(key=f"c{cid}:max_attempts").set_value(7).run()
    assert browser_asks_before_leaving(at)
    at.button(key="wiz_finish").click().run()  # saved: the campaign page it opens has nothing to lose
    assert not at.exception and not browser_asks_before_leaving(at)
