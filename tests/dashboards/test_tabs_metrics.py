"""The Metrics tab's look: the Avg. Call Duration card fits a fifth of a 1280 px row, the funnel's text reads."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dashboards.queries.metrics import funnel_frame
from dashboards.tabs.metrics import funnel_chart, format_card_duration, not_charted_note
from tasks.store import transaction
from tests.dashboards.tabs_fixture import make_tabs_db
from tests.dashboards.test_app_tabs import rerun, run_tab

# The page's background in the light theme the dashboard uses.
PAGE_BACKGROUND = "#ffffff"
# WCAG 2's minimum contrast for normal-size text.
MIN_TEXT_CONTRAST = 4.5


@pytest.fixture
def tabs(db_kept_open) -> dict:
    return make_tabs_db(db_kept_open)


@pytest.mark.parametrize(("seconds", "text"), [
    (None, ""),
    (0, "0s"),  # a range without connected calls
    (45, "45s"),
    (59.6, "1m 00s"),  # rounded to the second first, as format_duration does
    (82.5, "1m 22s"),  # round half to even, as format_duration ("1 min, 22 sec")
    (102, "1m 42s"),
    (125, "2m 05s"),
    (3599, "59m 59s"),
    (3600, "1h 00m"),
    (3723, "1h 02m"),  # from an hour on, to the nearest minute: 62 min 3 s
    (3929, "1h 05m"),  # 65 min 29 s
    (3930, "1h 06m"),  # 65 min 30 s rounds up
    (90061, "25h 01m"),  # no days: hours go on counting
])
def test_card_duration_format(seconds, text):
    assert format_card_duration(seconds) == text


def test_avg_call_duration_card_is_short_and_its_help_reads_as_the_tables_do(tabs):
    at = run_tab("metrics", tabs["campaign_id"])
    card = {m.label: m for m in at.metric}["Avg. Call Duration"]
    # (120 + 45) / 2 = 82.5 s
    assert card.value == "1m 22s"
    assert card.proto.help == "Average length of connected calls: 1 min, 22 sec"


def test_avg_call_duration_card_of_one_day(tabs):
    at = run_tab("metrics", tabs["campaign_id"])
    at.date_input(key=f"metrics_{tabs['campaign_id']}_dates").set_value((date(2026, 4, 28), date(2026, 4, 28)))
    rerun(at)
    card = {m.label: m for m in at.metric}["Avg. Call Duration"]
    assert (card.value, card.proto.help) == ("45s", "Average length of connected calls: 45 sec")


AGGREGATED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)  # 05:00 AM in Phoenix


@pytest.mark.parametrize(("missing", "aggregated_at", "now", "note"), [
    (0, AGGREGATED, AGGREGATED, None),  # the chart has every call the cards count
    (-1, AGGREGATED, AGGREGATED, None),  # more in the chart (a call no longer an attempt): nothing to wait for
    # aggregated earlier the same local day: the time alone
    (25, AGGREGATED, datetime(2026, 5, 1, 12, 7, tzinfo=UTC),
     "25 calls since the last aggregation (05:00 AM) are not in the chart yet: it shows the calls as of each "
     "aggregation run, the cards above count every call now."),
    # on another day: with the date
    (1, AGGREGATED, datetime(2026, 5, 3, 12, 0, tzinfo=UTC),
     "1 call since the last aggregation (May 1, 2026 05:00 AM) is not in the chart yet: it shows the calls as of "
     "each aggregation run, the cards above count every call now."),
    (3, None, AGGREGATED,
     "3 calls are not in the chart yet: it shows the calls as of the metrics aggregation, which has not run over "
     "this campaign yet (the cards above count every call now)."),
])
def test_not_charted_note(missing, aggregated_at, now, note):
    assert not_charted_note(missing, aggregated_at, "America/Phoenix", now) == note


def _run_placed_after_the_aggregation(tabs: dict) -> None:
    """Three calls of a Run on Apr 30 still ringing, stored after the fixture's aggregation (none since)."""
    with transaction(tabs["db"]) as conn:
        for n, who in enumerate("CDC"):
            conn.execute(
                "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt,"
                " phone_e164, status, provider, queued_at, updated_at)"
                " values (?, ?, ?, ?, true, '+16025550002', 'registered', 'simulator', ?, ?)",
                [tabs["campaign_id"], tabs[who], f"run{n}", n + 1, datetime(2026, 4, 30, 17, n, tzinfo=UTC),
                 datetime(2026, 4, 30, 17, n, tzinfo=UTC)])


def test_calls_not_aggregated_yet_are_named_instead_of_no_calls(tabs):
    # the cards count the Run's 3 calls at once; the chart (as of the aggregation) has none of that day yet
    _run_placed_after_the_aggregation(tabs)
    at = run_tab("metrics", tabs["campaign_id"])
    at.date_input(key=f"metrics_{tabs['campaign_id']}_dates").set_value((date(2026, 4, 30), date(2026, 4, 30)))
    rerun(at)
    assert {m.label: m.value for m in at.metric}["Total Calls"] == "3"
    assert at.info[0].value == (  # not "No calls in this date range."
        "3 calls since the last aggregation (May 1, 2026 05:00 AM) are not in the chart yet: it shows the calls as "
        "of each aggregation run, the cards above count every call now.")
    # none connected, but every call is still ringing: no "calling at suboptimal times" hint yet
    assert [w.value for w in at.warning] == []


def test_calls_not_aggregated_yet_are_counted_under_the_chart(tabs):
    _run_placed_after_the_aggregation(tabs)
    at = run_tab("metrics", tabs["campaign_id"])
    at.date_input(key=f"metrics_{tabs['campaign_id']}_dates").set_value((date(2026, 4, 27), date(2026, 4, 30)))
    rerun(at)
    assert {m.label: m.value for m in at.metric}["Total Calls"] == "7"  # the chart's 4 and the Run's 3
    assert len(at.get("vega_lite_chart")) == 2  # Calls Made and the funnel
    assert any(c.value.startswith("3 calls since the last aggregation (May 1, 2026 05:00 AM) are not in the chart")
               for c in at.caption)


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    red, green, blue = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(text: str, background: str) -> float:
    """WCAG 2 contrast ratio of two "#rrggbb" colours (1 to 21)."""
    lighter, darker = sorted((_luminance(text), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize(("text", "background", "ratio"), [
    ("#000000", "#ffffff", 21.0), ("#ffffff", "#ffffff", 1.0), ("#808495", "#ffffff", 3.72)])
def test_contrast_ratio(text, background, ratio):
    assert contrast(text, background) == pytest.approx(ratio, abs=0.01)


def test_funnel_labels_are_readable_on_every_bar_and_on_the_page():
    frame = funnel_frame({"total_contacts": 1200, "connected": 300, "connected_pct": 25.0, "successful": 12,
                          "successful_pct": 1.0})
    bars, labels = funnel_chart(frame).to_dict()["layer"]
    label_colour = labels["mark"]["color"]
    # the label is centred on the bar; on a narrow bar (1 % here) it runs past it onto the page
    for background in [*bars["encoding"]["color"]["scale"]["range"], PAGE_BACKGROUND]:
        assert contrast(label_colour, background) >= MIN_TEXT_CONTRAST, background
    # the stage names beside the bars (the theme's grey, #808495, is 3.72:1)
    stage_colour = bars["encoding"]["y"]["axis"]["labelColor"]
    assert contrast(stage_colour, PAGE_BACKGROUND) >= MIN_TEXT_CONTRAST
