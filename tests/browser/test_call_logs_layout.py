"""In a real browser at 1280 and 1440 px: the Call Logs table shows its Date column without scrolling sideways.

At 1440 px Date had to be scrolled to (it was the tenth of eleven columns, its right edge 1,142 px into a 978 px table).
The glide data grid draws on a canvas; beside it, it keeps an accessible table of the header cells in view, which says
which columns are drawn, and its scroller's widths say how wide the columns are against the room the table has.
"""

from __future__ import annotations

import pytest

from dashboards.tabs import call_logs
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, READY, clipped_texts
from tests.dashboards.tabs_fixture import make_tabs_db

pytestmark = pytest.mark.browser

# The grid's scroller at the start: the header cells in view (partly shown ones included), its visible width, its
# content width (the row-selection column and every data column) and how far it is scrolled.
_GRID_JS = """grid => { const scroller = grid.querySelector('.dvn-scroller');
    return {headers: [...grid.querySelectorAll('[role=columnheader]')].map(h => h.innerText.trim()),
            room: scroller.clientWidth, content: scroller.scrollWidth, scrolled: scroller.scrollLeft}; }"""


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
def test_the_call_logs_date_column_is_in_view_at_1280_and_1440_px(dashboard, browser, window):
    ids = make_tabs_db(dashboard["db"])
    # a browser in another zone than the campaign's (America/Phoenix) and UTC: the dates are the campaign's all the same
    context = browser.new_context(viewport={"width": window, "height": 1000}, timezone_id="Europe/Madrid")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{dashboard['url']}/campaign?campaign={ids['campaign_id']}&tab=Call+Logs")
    page.wait_for_timeout(300)
    page.wait_for_selector(READY, timeout=30_000)
    grid = page.locator("[data-testid='stDataFrame']:visible").first
    grid.locator("canvas").first.wait_for()
    page.get_by_text("calls · showing 1–5").wait_for()
    page.wait_for_timeout(500)  # the grid lays out its accessible header after the first paint
    page.screenshot(path=dashboard["artifacts"] / f"call-logs-{window}.png", full_page=True)
    shown = grid.evaluate(_GRID_JS)

    assert shown["scrolled"] == 0
    # Date is drawn, and not as the last, partly shown column: a column after it is in view too
    headers = shown["headers"]
    assert "Date" in headers[:-1], f"at {window} px the table shows {headers} before scrolling"
    # and all of it: the selection column (content width less the data columns' widths) and the columns up to Date fit
    widths = {name: call_logs.COLUMN_WIDTHS[name]["width"] for name in call_logs.TABLE_COLUMNS}
    assert shown["content"] == pytest.approx(sum(widths.values()) + 32, abs=2)  # the config is what the grid draws
    selection = shown["content"] - sum(widths.values())
    date_end = selection + sum(widths[name] for name in call_logs.TABLE_COLUMNS[:call_logs.TABLE_COLUMNS.index("Date") + 1])
    assert date_end <= shown["room"], f"Date ends at {date_end} px in a {shown['room']} px table"
    assert clipped_texts(page) == []
    context.close()
