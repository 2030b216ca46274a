"""Campaign list paging after a delete, and the wizard keeping what was typed across Back/Next (AppTest)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tasks.campaigns import create_campaign, get_campaign
from tasks.store import connect, transaction
from tests.dashboards.test_app_campaigns import row_names, run_app, start_wizard
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


def test_editing_a_draft_does_not_show_the_import_report_of_another_campaign(db_kept_open):
    ids = make_campaign_db(db_kept_open)
    with transaction(db_kept_open) as conn:
        base = get_campaign(conn, ids["campaign_id"])
        data = {k: base[k] for k in ("agent_id", "time_zone", "country", "calling_days", "weekly_schedule")}
        draft_id = create_campaign(conn, data | {"name": "Autumn draft"}, datetime(2026, 2, 1, tzinfo=UTC))
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
