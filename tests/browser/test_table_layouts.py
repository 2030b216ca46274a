"""In a real browser at 1280 and 1440 px: the Call Logs table shows its Date column, and the Contact List the columns a
manager reads through Last Call Date, without scrolling sideways.

Before: at 1440 px the Call Logs' Date had to be scrolled to (the tenth of eleven columns, its right edge 1,142 px
into a 978 px table); at 1280 px only "May 05, 20" of the Contact List's Last Call Date showed (the ninth of thirteen
columns, 871 px into a 786 px table on the demo's first page). The glide data grid draws on a canvas; beside it, it
keeps an accessible table of the header cells in view (partly shown ones included), which says which columns are
drawn: a column followed by another one in view is whole. Its scroller's widths say how wide the columns are against
the room. One served app and one browser per window width: both tabs are opened in the same test.
"""

from __future__ import annotations

import pytest

from dashboards.tabs import call_logs, contact_list
from tasks.store import transaction
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, READY, clipped_texts
from tests.dashboards.tabs_fixture import make_tabs_db
from tests.dashboards.test_app_contact_list_layout import READ_COLUMNS

pytestmark = pytest.mark.browser

# The grid's scroller at the start: the header cells in view (partly shown ones included), its visible width, its
# content width (the row-selection column and every data column) and how far it is scrolled.
_GRID_JS = """grid => { const scroller = grid.querySelector('.dvn-scroller');
    return {headers: [...grid.querySelectorAll('[role=columnheader]')].map(h => h.innerText.trim()),
            room: scroller.clientWidth, content: scroller.scrollWidth, scrolled: scroller.scrollLeft}; }"""
SELECTION = 32  # the row-selection column's width


def _grid(page, url: str, shown_text: str, screenshot) -> dict:
    """Open a tab's address, wait for its table, save a screenshot and return what its grid draws (`_GRID_JS`)."""
    page.goto(url)
    page.wait_for_timeout(300)
    page.wait_for_selector(READY, timeout=30_000)
    grid = page.locator("[data-testid='stDataFrame']:visible").first
    grid.locator("canvas").first.wait_for()
    page.get_by_text(shown_text).wait_for()
    page.wait_for_timeout(500)  # the grid lays out its accessible header after the first paint
    page.screenshot(path=screenshot, full_page=True)
    return grid.evaluate(_GRID_JS)


@pytest.mark.parametrize("window", [1280, 1440])
def test_the_dates_are_in_view_at_1280_and_1440_px(dashboard, window):
    from playwright.sync_api import sync_playwright

    ids = make_tabs_db(dashboard["db"])
    with transaction(dashboard["db"]) as conn:  # the demo's widest name (auto-sized, Name widened to it)
        conn.execute("update contacts set name = 'Valentina Johnson' where contact_id = ?", [ids["A"]])
    campaign_url = f"{dashboard['url']}/campaign?campaign={ids['campaign_id']}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # a browser in another zone than the campaign's (America/Phoenix) and UTC
            page = browser.new_context(viewport={"width": window, "height": 1000},
                                       timezone_id="Europe/Madrid").new_page()
            page.set_default_timeout(20_000)

            shown = _grid(page, f"{campaign_url}&tab=Call+Logs", "calls · showing 1–5",
                          dashboard["artifacts"] / f"call-logs-{window}.png")
            assert shown["scrolled"] == 0
            # Date is drawn, and not as the last, partly shown column: a column after it is in view too
            assert "Date" in shown["headers"][:-1], f"at {window} px the Call Logs show {shown['headers']}"
            widths = {name: call_logs.COLUMN_WIDTHS[name]["width"] for name in call_logs.TABLE_COLUMNS}
            assert shown["content"] == pytest.approx(sum(widths.values()) + SELECTION, abs=2)  # the config is drawn
            up_to_date = call_logs.TABLE_COLUMNS[:call_logs.TABLE_COLUMNS.index("Date") + 1]
            date_end = SELECTION + sum(widths[name] for name in up_to_date)
            assert date_end <= shown["room"], f"Date ends at {date_end} px in a {shown['room']} px table"
            assert clipped_texts(page) == []

            shown = _grid(page, f"{campaign_url}&tab=Contact+List", "contacts · showing 1–4",
                          dashboard["artifacts"] / f"contact-list-{window}.png")
            assert shown["scrolled"] == 0
            headers = shown["headers"]
            # every column a manager reads is drawn, and Last Call Date is not the last, partly shown column
            assert headers[:len(READ_COLUMNS)] == READ_COLUMNS, f"at {window} px the Contact List shows {headers}"
            assert "Last Call Date" in headers[:-1], f"at {window} px the Contact List shows {headers}"
            if window == 1440:
                assert "Created At" in headers[:-1], f"at 1440 px the Contact List shows {headers}"
            widths = {name: contact_list.COLUMN_WIDTHS[name].get("width") for name in contact_list.TABLE_COLUMNS}
            read = sum(widths[name] for name in READ_COLUMNS)
            assert SELECTION + read <= shown["room"], f"Last Call Date ends at {SELECTION + read} px in {shown['room']}"
            assert shown["content"] >= SELECTION + sum(width for width in widths.values() if width)
            assert clipped_texts(page) == []
        finally:
            browser.close()
