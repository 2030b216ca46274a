"""In a real browser: the Metrics tab's best-time heatmap, then the Settings tab's Forecast."""

from __future__ import annotations

import time

import pytest

from tasks.best_time import refresh_best_time_stats
from tasks.store import transaction
from tests.dashboards.tabs_fixture import NOW, make_tabs_db

pytestmark = pytest.mark.browser


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_ready()


def test_heatmap_then_forecast(dashboard, page):
    ids = make_tabs_db(dashboard["db"])
    with transaction(dashboard["db"]) as conn:
        refresh_best_time_stats(conn, NOW, ids["campaign_id"])
    shots = dashboard["artifacts"]
    page.goto(dashboard["url"])
    page.wait_ready()
    page.get_by_role("button", name="Spring outreach", exact=True).click()
    page.wait_ready()

    _open_tab(page, "Metrics")
    page.get_by_text("Best Time to Call").wait_for()
    heatmap = page.locator("[data-testid='stVegaLiteChart']:visible").nth(2)  # Calls Made, funnel, heatmap
    heatmap.locator("svg, canvas").first.wait_for()
    heatmap.scroll_into_view_if_needed()
    page.get_by_text("4 of 4 hours with calls have fewer than 10 calls").wait_for()
    page.screenshot(path=shots / "smart-01-best-time-heatmap.png", full_page=True)

    _open_tab(page, "Settings")
    page.get_by_role("button", name="Forecast").click()
    started = time.perf_counter()
    page.get_by_text("Expected completion", exact=True).wait_for(timeout=45_000)
    print(f"forecast shown after {time.perf_counter() - started:.1f} s")
    page.wait_ready()
    page.get_by_text("Successful contacts", exact=True).scroll_into_view_if_needed()
    page.screenshot(path=shots / "smart-02-forecast.png", full_page=True)
