"""Unsaved settings edits are reminded of in the sidebar on every page (sidebar navigation cannot be stopped), and the
campaign page has the browser ask before a reload or closing the tab (tests/browser/test_leave_guard.py)."""

from __future__ import annotations

import json

import pytest

from tests.dashboards.test_app_settings import campaign_page, k


def sidebar_warnings(at) -> list[str]:
    return [w.value for w in at.sidebar.warning]


def browser_asks_before_leaving(at) -> bool:
    """What the page tells its leave guard (the component the browser runs; AppTest only records it)."""
    (guard,) = at.get("bidi_component")
    return json.loads(guard.proto.json)["unsaved"]


@pytest.mark.usefixtures("db_kept_open")
def test_unsaved_edits_are_reminded_on_other_pages_until_saved_or_discarded(campaign_db):
    cid = campaign_db["campaign_id"]
    at = campaign_page(cid)
    assert sidebar_warnings(at) == []  # the form loaded, nothing edited
    assert not browser_asks_before_leaving(at)
    at.text_input(key=k(cid, "name")).set_value("Summer outreach").run()
    assert sidebar_warnings(at) == [
        "Unsaved changes in **Spring outreach**: nothing is saved until you click Save Changes."]
    assert browser_asks_before_leaving(at)  # a reload or closing the tab would lose the edit
    # leaving by the sidebar: the list page keeps the reminder, with a link back to the campaign
    at.switch_page("pages/campaigns.py").run()
    assert not at.exception, at.exception
    assert len(sidebar_warnings(at)) == 1
    assert at.get("bidi_component") == []  # the guard is the campaign page's: gone with it
    # back on the campaign, the edit is still there; Discard ends the reminder
    at.switch_page("pages/campaign.py").run()
    assert at.text_input(key=k(cid, "name")).value == "Summer outreach"
    at.button(key=f"discard_{cid}").click().run()
    assert sidebar_warnings(at) == []
    assert not browser_asks_before_leaving(at)
    at.switch_page("pages/campaigns.py").run()
    assert sidebar_warnings(at) == []


@pytest.mark.usefixtures("db_kept_open")
def test_in_the_wizard_the_reminder_names_finish_and_finish_without_a_start_date_says_draft(campaign_db):
    spring = campaign_db["campaign_id"]
    at = campaign_page(spring)
    at.text_input(key=k(spring, "name")).set_value("Summer outreach").run()  # unsaved edits on a campaign page
    at.switch_page("pages/wizard.py").run()
    at.text_input(key="wiz_name").set_value("Fall push")
    at.button(key="wiz_create").click().run()
    at.button(key="wiz_next").click().run()
    draft = at.session_state["wizard_campaign"]
    at.text_input(key=k(draft, "same_hours")).set_value("10:00-16:00").run()
    # each reminder names the button that saves it from here: the wizard's Finish, the campaign page's Save Changes
    assert sidebar_warnings(at) == [
        "Unsaved changes in **Spring outreach**: nothing is saved until you click Save Changes.",
        "Unsaved changes in **Fall push**: nothing is saved until you click Finish."]
    # Finish without a Start Date saves a Draft, and says so on the campaign page it opens
    at.button(key="wiz_finish").click().run()
    assert not at.exception, at.exception
    assert [w.value for w in at.warning if w.value.startswith("Saved as Draft")] == [
        "Saved as Draft: set a Start Date in Settings and save to schedule it."]
    assert sidebar_warnings(at) == [
        "Unsaved changes in **Spring outreach**: nothing is saved until you click Save Changes."]
    at.run()
    assert not [w for w in at.warning if w.value.startswith("Saved as Draft")]  # said once
