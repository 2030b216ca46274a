"""In a real browser: the pages' addresses open their pages (bookmarks and shared links)."""

from __future__ import annotations

import pytest

from tests.factories import make_campaign_db

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", ["/", "/campaigns"])
def test_the_campaign_list_opens_at_the_root_and_at_campaigns(dashboard, page, path):
    make_campaign_db(dashboard["db"])
    page.goto(dashboard["url"] + path)
    page.wait_ready()
    page.get_by_role("button", name="Spring outreach", exact=True).wait_for()
    page.wait_for_timeout(500)  # a "Page not found" dialog appears after the run
    assert page.get_by_text("Page not found").count() == 0
    assert page.get_by_role("heading", name="Campaigns").count() >= 1
    page.screenshot(path=dashboard["artifacts"] / f"urls-campaigns{path.replace('/', '-')}.png", full_page=True)
