"""In a real browser: the pages' addresses open their pages (bookmarks and shared links)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import clipped_texts
from tests.factories import make_campaign_db

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", ["/", "/campaigns"])
def test_the_campaign_list_opens_at_the_root_and_at_campaigns(dashboard, page, path):
    make_campaign_db(dashboard["db"])
    page.set_viewport_size({"width": 1280, "height": 1000})  # the narrowest width the dashboard is made for
    page.goto(dashboard["url"] + path)
    page.wait_ready()
    page.get_by_role("button", name="Spring outreach", exact=True).wait_for()
    page.wait_for_timeout(500)  # a "Page not found" dialog appears after the run
    assert page.get_by_text("Page not found").count() == 0
    assert clipped_texts(page) == []  # "New campaign" was cut to "New camp…" at 1280 px
    assert page.get_by_role("heading", name="Campaigns").count() >= 1
    page.screenshot(path=dashboard["artifacts"] / f"urls-campaigns{path.replace('/', '-')}.png", full_page=True)


def test_unsaved_edits_are_reminded_in_the_sidebar_after_leaving_by_it(dashboard, page):
    make_campaign_db(dashboard["db"])
    page.goto(f"{dashboard['url']}/campaign?campaign=1")
    page.wait_ready()
    attempts = page.get_by_role("spinbutton", name="Max Attempts")
    attempts.fill("4")
    attempts.press("Enter")
    page.wait_ready()
    page.get_by_text("You have unsaved changes").wait_for()
    # the sidebar's own navigation cannot be stopped: the list page carries the reminder and a way back
    page.get_by_test_id("stSidebarNav").get_by_text("Campaigns", exact=True).click()
    page.wait_ready()
    page.get_by_role("button", name="Spring outreach", exact=True).wait_for()
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Unsaved changes in Spring outreach").wait_for()
    page.screenshot(path=dashboard["artifacts"] / "urls-unsaved-reminder.png", full_page=True)
    sidebar.get_by_text("Back to Spring outreach").click()
    page.wait_ready()
    page.get_by_text("You have unsaved changes").wait_for()
    assert page.get_by_role("spinbutton", name="Max Attempts").input_value() == "4"
