"""In a real browser at 1280 and 1440 px: the Contact List table shows the columns a manager reads, through Last Call
Date, without scrolling sideways.

At 1280 px only "May 05, 20" of Last Call Date showed (in the spec's order it was the ninth of thirteen columns, its right
edge 871 px into a 786 px table on the demo's first page). The glide data grid draws on a canvas; beside it, it keeps an
accessible table of the header cells in view (partly shown ones included), which says which columns are drawn: a column
followed by another one in view is whole.
"""

from __future__ import annotations

import pytest

from dashboards.tabs import contact_list
from tasks.store import transaction
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, READY, clipped_texts
from tests.browser.test_call_logs_layout import _GRID_JS
from tests.dashboards.tabs_fixture import make_tabs_db
from tests.dashboards.test_app_contact_list_layout import READ_COLUMNS

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.parametrize("window", [1280, 1440])
def test_the_contact_list_columns_a_manager_reads_are_in_view_at_1280_and_1440_px(dashboard, browser, window):
    ids = make_tabs_db(dashboard["db"])
    with transaction(dashboard["db"]) as conn:  # the demo's widest name (auto-sized, Name widened to it)
        conn.execute("update contacts set name = 'Valentina Johnson' where contact_id = ?", [ids["A"]])
    # a browser in another zone than the campaign's (America/Phoenix) and UTC
    context = browser.new_context(viewport={"width": window, "height": 1000}, timezone_id="Europe/Madrid")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{dashboard['url']}/campaign?campaign={ids['campaign_id']}&tab=Contact+List")
    page.wait_for_timeout(300)
    page.wait_for_selector(READY, timeout=30_000)
    grid = page.locator("[data-testid='stDataFrame']:visible").first
    grid.locator("canvas").first.wait_for()
    page.get_by_text("contacts · showing 1–4").wait_for()
    page.wait_for_timeout(500)  # the grid lays out its accessible header after the first paint
    page.screenshot(path=dashboard["artifacts"] / f"contact-list-{window}.png", full_page=True)
    shown = grid.evaluate(_GRID_JS)

    assert shown["scrolled"] == 0
    headers = shown["headers"]
    # every column a manager reads is drawn, and Last Call Date is not the last, partly shown column: one follows it
    assert headers[:len(READ_COLUMNS)] == READ_COLUMNS, f"at {window} px the table shows {headers} before scrolling"
    assert "Last Call Date" in headers[:-1], f"at {window} px the table shows {headers} before scrolling"
    if window == 1440:
        assert "Created At" in headers[:-1], f"at 1440 px the table shows {headers} before scrolling"
    # the config is what the grid draws: the selection column (32 px) and the columns up to Last Call Date fit
    widths = {name: contact_list.COLUMN_WIDTHS[name].get("width") for name in contact_list.TABLE_COLUMNS}
    read = sum(widths[name] for name in READ_COLUMNS)
    assert 32 + read <= shown["room"], f"Last Call Date ends at {32 + read} px in a {shown['room']} px table"
    assert shown["content"] >= 32 + sum(width for width in widths.values() if width)
    assert clipped_texts(page) == []
    context.close()
