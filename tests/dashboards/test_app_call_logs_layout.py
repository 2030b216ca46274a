"""The Call Logs table at the window widths the dashboard is made for: its Date is read without scrolling sideways.

A manager at a 1440 px window had to scroll the table sideways to read Date (the spec lists it last, and the columns
need more room than the table has at 1280 or 1440 px). tests/browser/test_table_layouts.py checks the same in Chromium.
"""

from __future__ import annotations

import json

import pytest

from tests.dashboards.test_app_review import PADDING
from tests.dashboards.test_app_tabs import run_tab
from tests.dashboards.tabs_fixture import make_tabs_db

# Room for the columns with the sidebar open, measured in Chromium on the campaign page (wide layout, 300 px sidebar,
# 80 px sides): the table is 820 px wide at a 1280 px window and 980 px at 1440, less 2 px of border and the 32 px
# row-selection column.
ROOM_PX = {1280: 820 - 2 - 32, 1440: 980 - 2 - 32}
# The spec's columns (docs campaign-management.md, "Call Logs Tab"), and what this table adds: the contact's name and the
# eye link to the contact's call history.
SPEC_COLUMNS = ["Phone Number", "Disconnect Reason", "Status", "Call Successful", "Duration", "Credits", "Feedback",
                "Tools", "Date"]
# Widths in px of texts the demo's Call Logs show, measured in Chromium (canvas measureText, 14px "Source Sans"): the
# widest date (month, day and hour), duration and name of the demo store's calls.
TEXT_PX = {"Date": ("May 10, 2026 10:00 PM", 130), "Duration": ("10 min, 38 sec", 82),
           "Contact": ("Valentina Johnson", 109)}


def drawn_table(tab: str, db) -> tuple[list[str], dict]:
    """A tab's table as the tab draws it (the tabs' test campaign): its column order and each column's config."""
    at = run_tab(tab, make_tabs_db(db)["campaign_id"])
    table = at.dataframe[0]
    return list(table.proto.column_order), json.loads(table.proto.columns)


@pytest.fixture
def drawn(db_kept_open) -> tuple[list[str], dict]:
    """The Call Logs table as the tab draws it: its column order and each column's config."""
    return drawn_table("call_logs", db_kept_open)


def right_edge(order: list[str], config: dict, column: str) -> int:
    """Where `column` ends, in px from the first data column's left edge (every column before it has a pixel width)."""
    edge = 0
    for name in order:
        width = config[name].get("width")
        assert isinstance(width, int), f"{name}: no pixel width ({width!r}): its place cannot be known"
        edge += width
        if name == column:
            return edge
    raise AssertionError(f"{column} is not shown")


@pytest.mark.parametrize("window", sorted(ROOM_PX))
def test_the_date_column_is_in_view_without_scrolling_sideways(drawn, window):
    order, config = drawn
    assert right_edge(order, config, "Date") <= ROOM_PX[window], f"Date runs past the table at {window} px: {order}"


def test_every_column_of_the_spec_is_shown_in_the_spec_order_but_date(drawn):
    order, _ = drawn
    assert set(SPEC_COLUMNS) <= set(order)
    others = [name for name in order if name in SPEC_COLUMNS and name != "Date"]
    assert others == [name for name in SPEC_COLUMNS if name != "Date"]
    # who, then when: Date follows the phone and the name, as in a contact's call history
    assert order[:3] == ["Phone Number", "Contact", "Date"]
    assert order[-1] == "View"


@pytest.mark.parametrize("column", sorted(TEXT_PX))
def test_the_widest_values_of_the_demo_fit_their_column(drawn, column):
    _, config = drawn
    text, width = TEXT_PX[column]
    assert config[column]["width"] >= width + PADDING, f"{text!r} is cut at {config[column]['width']} px"
