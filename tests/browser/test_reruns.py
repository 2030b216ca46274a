"""In a real browser: an interaction inside a campaign-page tab runs that tab alone; what the header, the tab bar or
the sidebar show runs the whole page (docs/dashboard.md, "What an interaction reruns").

The dashboard is served with one query of each tab counted (tests/browser/counted_dashboard.py): the tabs whose
queries ran are the tabs that were drawn. AppTest cannot show this: its every interaction runs the whole page.
"""

from __future__ import annotations

import sys

import duckdb
import pytest

from tests.browser.conftest import serving
from tests.browser.counted_dashboard import TAB_QUERIES
from tests.dashboards.tabs_fixture import make_tabs_db

pytestmark = pytest.mark.browser

EVERY_TAB = set(TAB_QUERIES)
ROW_HEIGHT = 35  # the glide data grid's header and rows


@pytest.fixture
def dashboard(db, artifacts_dir, tmp_path):
    """The dashboard (as conftest's), each tab's query writing the tab's name to dashboard["queries"] when called."""
    log = tmp_path / "queries.log"
    log.touch()
    launcher = [sys.executable, "-m", "tests.browser.counted_dashboard"]
    # a read waits 1 s for a lock (5 s by default): the busy-database test is quicker
    env = {"COUNTED_QUERIES_LOG": str(log), "CAMPAIGNS_DASHBOARD_LOCK_TIMEOUT_SECONDS": "1"}
    with serving(db, artifacts_dir, launcher, env) as served:
        yield served | {"queries": log}


def tabs_drawn(dashboard) -> set[str]:
    """The tabs whose query ran since the last call (the log is emptied)."""
    log = dashboard["queries"]
    drawn = set(log.read_text().splitlines())
    log.write_text("")
    return drawn


def open_campaign(dashboard, page, tab: str) -> dict:
    """The tabs fixture's campaign page with `tab` open; returns the fixture's ids."""
    ids = make_tabs_db(dashboard["db"])
    page.goto(f"{dashboard['url']}/campaign?campaign={ids['campaign_id']}&tab={tab.replace(' ', '+')}")
    page.wait_ready()
    page.get_by_role("tab", name=tab).wait_for()
    assert tabs_drawn(dashboard) == EVERY_TAB  # opening the page draws every tab
    return ids


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_ready()


def panel(page):
    """The open tab's content."""
    return page.locator("[role='tabpanel']:visible")


def commit(field, text: str) -> None:
    field.fill(text)
    field.press("Enter")


def test_an_interaction_in_a_tab_draws_that_tab_alone_and_show_in_call_logs_the_whole_page(dashboard, page):
    open_campaign(dashboard, page, "Call Logs")

    # Call Logs: a filter, then the call detail
    commit(panel(page).get_by_role("textbox", name="Search"), "person 1")
    page.wait_ready()
    page.get_by_text("calls · showing 1–2").wait_for()
    assert tabs_drawn(dashboard) == {"Call Logs"}
    commit(panel(page).get_by_role("textbox", name="Search"), "")
    page.wait_ready()
    page.get_by_text("calls · showing 1–5").wait_for()
    assert tabs_drawn(dashboard) == {"Call Logs"}

    # switching tabs runs the whole page (the tab bar is bound to the address); then a search and a row selection
    open_tab(page, "Contact List")
    assert tabs_drawn(dashboard) == EVERY_TAB
    commit(panel(page).get_by_role("textbox", name="Search"), "Person 1")
    page.wait_ready()
    page.get_by_text("contact · showing 1–1").wait_for()
    assert tabs_drawn(dashboard) == {"Contact List"}
    table = panel(page).locator("[data-testid='stDataFrame']").first.bounding_box()
    page.mouse.click(table["x"] + 18, table["y"] + ROW_HEIGHT * 1.5)
    page.wait_ready()
    page.get_by_role("heading", name="Person 1").wait_for()
    assert tabs_drawn(dashboard) == {"Contact List"}

    # Show in Call Logs opens another tab: the whole page runs, the Call Logs show that contact's calls only
    page.get_by_role("button", name="Show in Call Logs", exact=True).click()
    page.wait_ready()
    page.get_by_text("Showing the calls of Person 1 only.").wait_for()
    assert page.get_by_role("tab", name="Call Logs").get_attribute("aria-selected") == "true"
    assert "tab=Call+Logs" in page.url
    page.get_by_text("calls · showing 1–2").wait_for()
    assert tabs_drawn(dashboard) == EVERY_TAB
    page.get_by_role("button", name="Show all calls", exact=True).click()
    page.wait_ready()
    page.get_by_text("calls · showing 1–5").wait_for()
    assert tabs_drawn(dashboard) == {"Call Logs"}

    # Metrics: the date range (three spin buttons a date, committed by leaving the field)
    open_tab(page, "Metrics")
    assert tabs_drawn(dashboard) == EVERY_TAB
    for end in ("start", "end"):
        page.get_by_role("spinbutton", name=f"year, Date range {end} date").last.click()
        page.keyboard.type("20260428", delay=50)
    page.keyboard.press("Escape")
    page.get_by_role("heading", name="Contact Funnel").click()
    page.wait_ready()
    page.get_by_text("A large gap between Total Contacts and Connected").wait_for()
    assert tabs_drawn(dashboard) == {"Metrics"}


def _unsaved(page) -> tuple[bool, bool, bool]:
    """(the header's unsaved warning shown, Save Changes shown active, the sidebar's reminder shown)."""
    save = page.get_by_role("button", name="Save Changes", exact=True)
    return (page.get_by_text("You have unsaved changes. Click Save Changes").count() == 1,
            float(save.evaluate("e => getComputedStyle(e).opacity")) > 0.9,  # dimmed, never disabled, when clean
            page.get_by_text("Unsaved changes in Spring outreach").count() == 1)


def test_a_settings_edit_draws_the_header_when_the_form_becomes_saved_or_unsaved(dashboard, page):
    open_campaign(dashboard, page, "Settings")
    assert _unsaved(page) == (False, False, False)
    objective = page.get_by_label("Campaign Objective")

    # the first edit makes the form unsaved: the whole page runs (header, sidebar reminder)
    objective.fill("Book a demo this week")
    objective.press("Control+Enter")
    page.get_by_text("You have unsaved changes").wait_for()
    page.wait_ready()
    assert _unsaved(page) == (True, True, True)
    assert tabs_drawn(dashboard) == EVERY_TAB
    # a further edit leaves it unsaved: the Settings tab alone runs, the header stays as it is
    objective.fill("Book a demo this month")
    objective.press("Control+Enter")
    page.wait_ready()
    assert tabs_drawn(dashboard) == {"Settings"}
    assert _unsaved(page) == (True, True, True)
    # back to the stored text: saved again, the whole page runs and the header says so
    objective.fill("Book a demo")
    objective.press("Control+Enter")
    page.get_by_text("You have unsaved changes").wait_for(state="detached")
    page.wait_ready()
    assert _unsaved(page) == (False, False, False)
    assert tabs_drawn(dashboard) == EVERY_TAB


def test_errors_of_a_refused_save_go_once_fixed_within_the_settings_tab(dashboard, page):
    open_campaign(dashboard, page, "Settings")
    commit(page.get_by_role("spinbutton", name="Attempts per Day"), "9")  # more than Max Attempts (5)
    page.get_by_text("You have unsaved changes").wait_for()
    page.wait_ready()
    page.get_by_role("button", name="Save Changes", exact=True).click()
    page.wait_ready()
    page.get_by_text("Some settings need fixing").wait_for()
    page.get_by_text("Attempts per Day:").wait_for()
    tabs_drawn(dashboard)
    # fixed, still unsaved: the Settings tab alone runs and checks the form again
    commit(page.get_by_role("spinbutton", name="Attempts per Day"), "2")
    page.wait_ready()
    page.get_by_text("Some settings need fixing").wait_for(state="detached")
    assert page.get_by_text("Attempts per Day:").count() == 0
    assert tabs_drawn(dashboard) == {"Settings"}
    assert _unsaved(page)[:2] == (True, True)


def test_a_busy_database_during_an_interaction_in_a_tab_shows_the_banner_then_the_page(dashboard, page):
    """app.py's handlers (the busy-database banner and its retries, a bug's message instead of a traceback) wrap
    whole-page runs: a problem in a tab's own run runs the whole page, which says so as before."""
    open_campaign(dashboard, page, "Call Logs")
    held = duckdb.connect(str(dashboard["db"]))  # a flow writing: the dashboard cannot open the file
    try:
        commit(panel(page).get_by_role("textbox", name="Search"), "person 1")
        page.get_by_text("The database is busy (a flow is writing); retrying…").wait_for()
        assert page.get_by_test_id("stException").count() == 0
    finally:
        held.close()
    # the banner retries the whole page every few seconds (the run it stopped drew no tab: as before, the tabs'
    # widgets start afresh)
    page.get_by_text("calls · showing 1–5").wait_for()
    assert page.get_by_text("The database is busy").count() == 0
