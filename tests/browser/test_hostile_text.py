"""In a real browser: text a user or the provider set is shown as text, never run as HTML or script."""

from __future__ import annotations

import pytest

from tests.factories import make_campaign_db

pytestmark = pytest.mark.browser

XSS_NAME = '<img src=x onerror="window.__xss=1">Spring'


def test_a_campaign_name_with_html_is_shown_as_text_on_its_page(dashboard, page):
    make_campaign_db(dashboard["db"], name=XSS_NAME)
    page.goto(f"{dashboard['url']}/campaign?campaign=1")
    page.wait_ready()
    page.get_by_role("tab", name="Settings").wait_for()
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__xss") is None  # the onerror handler never ran
    assert page.locator("[data-testid=stMain] img[src=x]").count() == 0
    assert page.get_by_role("heading", name=XSS_NAME).count() >= 1  # the name, as typed


def test_a_campaign_name_with_an_image_loads_nothing_on_the_list(dashboard, page):
    make_campaign_db(dashboard["db"], name="![seen](http://127.0.0.1:9/pixel.png) Spring")
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(dashboard["url"])
    page.wait_ready()
    page.get_by_role("button", name="![seen](http://127.0.0.1:9/pixel.png) Spring", exact=True).wait_for()
    assert page.locator("[data-testid=stMain] img").count() == 0
    assert not [url for url in requested if "pixel.png" in url]  # no request to whoever owns that server
