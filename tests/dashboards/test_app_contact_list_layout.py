"""The Contact List table at the window widths the dashboard is made for: the columns a manager reads, through Last Call
Date, are in view without scrolling sideways.

At a 1280 px window (sidebar open) the table showed "May 05, 20" of Last Call Date (in the spec's order it was the ninth
of thirteen columns, its right edge 871 px into a 786 px table on the demo's first page).
tests/browser/test_table_layouts.py checks the same in Chromium.
"""

from __future__ import annotations

import pytest

from tests.dashboards.test_app_call_logs_layout import ROOM_PX, drawn_table, right_edge
from tests.dashboards.test_app_review import PADDING

# The spec's columns (docs campaign-management.md, "Contact List Tab"), in its order.
SPEC_COLUMNS = ["Phone Number", "Attempts", "Connected", "Successful", "Credits", "Duration", "Last Disconnection",
                "Last Call Date", "Created At"]
# What a manager reads a contact by, in the spec's order (Name, which the table adds, after the phone).
READ_COLUMNS = ["Phone Number", "Name", "Attempts", "Connected", "Successful", "Last Disconnection", "Last Call Date"]
SMART_COLUMNS = ["Next Allowed", "Next Allowed Reason", "Suppression"]
# Widths in px of the widest texts of the demo store's 307 contacts (and their headers), measured in Chromium (canvas
# measureText, 14px "Source Sans").
TEXT_PX = {"Phone Number": ("+525552701072", 91), "Name": ("Valentina Johnson", 109), "Attempts": ("Attempts", 53),
           "Connected": ("Connected", 64), "Successful": ("Successful", 62), "Credits": ("Credits", 42),
           "Duration": ("11 min, 40 sec", 82), "Last Disconnection": ("Error No Audio Received", 141),
           "Last Call Date": ("May 10, 2026 10:00 PM", 130), "Created At": ("May 10, 2026 10:00 PM", 130),
           "Next Allowed": ("May 10, 2026 10:00 PM", 130),
           "Next Allowed Reason": ("Finished: max attempts reached", 187)}


@pytest.fixture
def drawn(db_kept_open) -> tuple[list[str], dict]:
    """The Contact List table as the tab draws it: its column order and each column's config."""
    return drawn_table("contact_list", db_kept_open)


@pytest.mark.parametrize("window", sorted(ROOM_PX))
def test_the_columns_a_manager_reads_are_in_view_without_scrolling_sideways(drawn, window):
    order, config = drawn
    for column in READ_COLUMNS:
        assert right_edge(order, config, column) <= ROOM_PX[window], f"{column} runs past the table at {window} px"


def test_created_at_is_in_view_too_at_1440_px(drawn):
    order, config = drawn
    assert right_edge(order, config, "Created At") <= ROOM_PX[1440]


def test_the_spec_columns_come_first_in_its_order_but_credits_and_duration_after_its_dates(drawn):
    order, _ = drawn
    assert order == [*READ_COLUMNS, "Created At", "Credits", "Duration", *SMART_COLUMNS]
    # the spec's own order holds among its columns once Credits and Duration are set aside, and between those two
    spec = [name for name in SPEC_COLUMNS if name not in ("Credits", "Duration")]
    assert [name for name in order if name in spec] == spec
    assert order.index("Credits") + 1 == order.index("Duration")


@pytest.mark.parametrize("column", sorted(TEXT_PX))
def test_the_widest_values_of_the_demo_fit_their_column(drawn, column):
    _, config = drawn
    text, width = TEXT_PX[column]
    assert config[column].get("width", 0) >= width + PADDING, f"{text!r} is cut at {config[column].get('width')} px"


def test_the_date_columns_keep_their_format_and_time_zone_help_with_their_width(drawn):
    _, config = drawn
    for column in ("Last Call Date", "Created At"):
        assert config[column]["width"] == 146
        assert config[column]["type_config"]["format"] == "MMM DD, YYYY hh:mm A"
        assert config[column]["help"] == "In America/Phoenix, the campaign's time zone"
    assert config["Credits"]["type_config"]["format"] == config["Duration"]["type_config"]["format"] == "localized"
