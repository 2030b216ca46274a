"""What a manager saw wrong in the real browser (1280 and 1920 px), pinned down without one: labels the spec
names, column widths that fit their text, empty states that say why, and the Calls Made legend."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from dashboards.components import format_duration
from dashboards.tabs import call_logs, metrics, settings
from schemas.enums import CallStatus, DisconnectReason
from tasks.campaigns import duplicate_campaign
from tasks.store import transaction
from tests.dashboards.tabs_fixture import make_tabs_db
from tests.dashboards.test_app_tabs import rerun, run_tab, select_row

# Streamlit's named column widths in pixels; a cell pads 8 px each side.
NAMED_WIDTHS = {"small": 75, "medium": 200, "large": 400}
PADDING = 16
# Widths in px of texts the Call Logs table shows, measured in Chromium (canvas measureText, 14px "Source Sans",
# the dashboard's font): the header of each column and its widest usual value.
TEXT_PX = {
    "Phone Number": 88, "+525552701072": 90, "Contact": 50, "Daniel Anderson": 96, "Disconnect Reason": 110,
    "Voicemail Reached": 110, "Max Duration Reached": 131, "Status": 40, "not_connected": 88, "failed_rate_limit": 96,
    "Call Successful": 86,
    "Duration": 51, "2 min, 57 sec": 75, "Credits": 41, "1,332": 30, "Feedback": 56, "Good · Great call": 96,
    "Tools": 31, "Date": 28, "May 06, 2026 11:00 AM": 129, "View": 30, "History ↗": 54,
}
WIDEST = {
    "Phone Number": ["Phone Number", "+525552701072"],
    "Contact": ["Contact", "Daniel Anderson"],
    "Disconnect Reason": ["Disconnect Reason", "Voicemail Reached", "Max Duration Reached"],  # labels, not codes
    "Status": ["Status", "not_connected", "failed_rate_limit"],
    "Call Successful": ["Call Successful"],
    "Duration": ["Duration", "2 min, 57 sec"],
    "Credits": ["Credits", "1,332"],
    "Feedback": ["Feedback", "Good · Great call"],
    "Tools": ["Tools"],
    "Date": ["Date", "May 06, 2026 11:00 AM"],
    "View": ["View", "History ↗"],
}


@pytest.fixture
def tabs(db_kept_open) -> dict:
    return make_tabs_db(db_kept_open)


def _empty_copy(tabs: dict) -> int:
    """A campaign with the same settings and no contacts nor calls (Duplicate)."""
    with transaction() as conn:
        return duplicate_campaign(conn, tabs["campaign_id"], datetime(2026, 5, 1, tzinfo=UTC))


# ----------------------------------------------------------------------------- Call Logs

@pytest.mark.parametrize("column", list(WIDEST))
def test_call_logs_columns_are_wide_enough_for_their_header_and_values(column):
    config = call_logs.COLUMN_WIDTHS[column]
    width = NAMED_WIDTHS.get(config.get("width"), config.get("width"))
    assert width is not None, f"{column}: no width (Streamlit sizes it to the first rows only)"
    for text in WIDEST[column]:
        assert width >= TEXT_PX[text] + PADDING, f"{column}: {text!r} is cut at {width} px"


def test_call_logs_header_says_call_successful_as_the_spec(tabs):
    at = run_tab("call_logs", tabs["campaign_id"])
    labels = {name: config.get("label") for name, config in json.loads(at.dataframe[0].proto.columns).items()}
    assert labels["Call Successful"] == "Call Successful"


def test_call_logs_of_a_campaign_without_calls_say_so_not_that_filters_match_nothing(tabs):
    at = run_tab("call_logs", _empty_copy(tabs))
    assert [i.value for i in at.info] == [
        "No calls yet: the campaign's calls appear here once it has dialed (Run, or Active on schedule)."]


def test_call_logs_filtered_to_nothing_still_name_the_filters(tabs):
    at = run_tab("call_logs", _empty_copy(tabs))
    at.text_input(key=f"calllogs_{at.session_state['harness_campaign']}_search").set_value("nobody")
    rerun(at)
    assert [i.value for i in at.info] == ["No calls match these filters yet."]


# ----------------------------------------------------------------------------- Disconnect reasons as the spec writes them
# "Why the call ended (e.g., User Hangup, Voicemail Reached)": shown as labels; stored, filtered and exported as codes.

def test_call_logs_reason_filter_shows_labels_and_still_filters_by_code(tabs):
    cid = tabs["campaign_id"]
    at = run_tab("call_logs", cid)
    box = at.multiselect(key=f"calllogs_{cid}_reasons")
    assert "User Hangup" in box.options and "Voicemail Reached" in box.options
    assert not [o for o in box.options if "_" in o]
    box.select("user_hangup")  # the widget's values are the codes the query filters on
    rerun(at)
    assert at.multiselect(key=f"calllogs_{cid}_reasons").value == ["user_hangup"]
    assert at.dataframe[0].value["Disconnect Reason"].tolist() == ["User Hangup"]


def test_call_detail_and_its_history_show_reason_labels(tabs):
    at = run_tab("call_logs", tabs["campaign_id"])
    select_row(at, f"calllogs_{tabs['campaign_id']}_table", 4)  # c1, agent_hangup
    assert at.caption[0].value.endswith("· ended · Agent Hangup")
    assert at.dataframe[1].value["Disconnect Reason"].tolist() == ["Agent Hangup", "Voicemail Reached"]


def test_a_calls_status_and_reason_say_what_they_mean(tabs):
    # the spec's reference tables had no place in the app: "error_dapta" or "not_connected" meant nothing to a manager
    at = run_tab("call_logs", tabs["campaign_id"])
    select_row(at, f"calllogs_{tabs['campaign_id']}_table", 4)  # c1, agent_hangup
    assert at.caption[0].help == ("**ended**: Call completed normally.\n\n**Agent Hangup**: The agent ended the call "
                                  "(typically when its objective was met).")
    columns = json.loads(at.dataframe[0].proto.columns)
    assert "- **not_connected**: Call was placed but did not connect to the contact." in columns["Status"]["help"]
    assert columns["Status"]["help"].count("\n- **") == len(CallStatus) - 1


def test_calls_made_legend_and_tooltip_name_reasons_by_label():
    chart = metrics.calls_made_chart(_every_reason_series()).to_dict()
    data = next(iter(chart["datasets"].values()))
    assert {"User Hangup", "Voicemail Reached", "Error ASR", "Marked as Spam"} <= {row["reason"] for row in data}
    assert not [row["reason"] for row in data if "_" in row["reason"]]
    titles = [t["title"] for t in chart["layer"][1]["encoding"]["tooltip"]][1:]
    assert "User Hangup" in titles and "user_hangup" not in titles


# ----------------------------------------------------------------------------- Durations: one format everywhere
# The tables draw typed durations as "37 sec" / "1 min, 44 sec"; the call detail does too, the KPI card in its help.

def test_call_detail_duration_reads_as_the_tables_do(tabs):
    at = run_tab("call_logs", tabs["campaign_id"])
    select_row(at, f"calllogs_{tabs['campaign_id']}_table", 0)  # c4: 45 seconds
    assert {m.label: m.value for m in at.metric}["Duration"] == "45 sec" == format_duration(45)


def test_avg_call_duration_card_gives_the_tables_text_in_its_help(tabs):
    # the card's value is short to fit a fifth of a 1280 px row ("1m 22s"); its help reads as the tables do
    at = run_tab("metrics", tabs["campaign_id"])
    card = {m.label: m for m in at.metric}["Avg. Call Duration"]
    assert card.value == "1m 22s"
    assert format_duration(82) in card.help


# ----------------------------------------------------------------------------- Metrics

def test_metrics_funnel_of_a_campaign_without_contacts_says_why_instead_of_empty_bars(tabs):
    at = run_tab("metrics", _empty_copy(tabs))
    assert "No contacts in this campaign yet: import contacts in the Contact List tab to see the funnel." in [
        i.value for i in at.info]
    assert len(at.get("vega_lite_chart")) == 0  # no empty funnel (and no Calls Made chart: no calls)


def test_metrics_funnel_still_drawn_when_the_campaign_has_contacts(tabs):
    at = run_tab("metrics", tabs["campaign_id"])
    assert len(at.get("vega_lite_chart")) == 2  # Calls Made and the funnel


def _every_reason_series() -> pl.DataFrame:
    return pl.DataFrame({"day": [datetime(2026, 4, 27).date()] * len(DisconnectReason),
                         "reason": [r.value for r in DisconnectReason],
                         "calls": list(range(1, len(DisconnectReason) + 1))})


def test_calls_made_days_are_read_and_drawn_as_calendar_days_in_any_browser_zone():
    # the days reach Vega as "2026-04-27" (UTC midnight): a local time unit drew them in the browser's zone, so in
    # Phoenix every point sat one day early (Apr 26..Apr 30 for calls made Mon Apr 27..Fri May 1)
    chart = metrics.calls_made_chart(_every_reason_series()).to_dict()
    day_units = [spec.get("timeUnit") for layer in chart["layer"] for channel, spec in layer["encoding"].items()
                 if channel in ("x", "tooltip") for spec in (spec if isinstance(spec, list) else [spec])
                 if spec.get("field") == "day" and spec.get("type") == "temporal"]
    assert day_units and all(str(unit).startswith("utc") for unit in day_units), day_units


def test_a_click_on_a_calls_made_legend_entry_hides_its_line_and_another_shows_it():
    # the spec: "Click any label in the legend to show or hide that line". A plain legend selection kept only the
    # line clicked (the other 18 faded) and a second click changed nothing
    chart = metrics.calls_made_chart(_every_reason_series()).to_dict()
    [param] = [p for p in chart["params"] if p.get("bind") == "legend"]  # Altair lifts a layer's params to the top
    assert param["select"]["fields"] == ["reason"] and param["select"]["toggle"] == "true"  # each click toggles
    assert param["select"]["clear"] is False  # a double click on the plot hid every line
    # the selection is the lines shown: every reason at first, each click takes its entry out or puts it back
    data = next(iter(chart["datasets"].values()))
    assert sorted(v["reason"] for v in param["value"]) == sorted({row["reason"] for row in data})
    opacity = chart["layer"][0]["encoding"]["opacity"]
    assert opacity["condition"] == {"param": param["name"], "value": 1.0, "empty": False}
    assert opacity["value"] == 0.0  # a reason taken out of the selection is hidden


def test_calls_made_legend_lists_every_reason_below_the_plot_in_distinct_colours():
    chart = metrics.calls_made_chart(_every_reason_series()).to_dict()
    color = chart["layer"][0]["encoding"]["color"]
    # beside the plot the legend was cut off after about 11 of the 19 reasons (those lines could not be toggled)
    assert color["legend"]["orient"] == "bottom"
    assert color["legend"]["columns"] == metrics.LEGEND_COLUMNS
    assert color["legend"]["symbolLimit"] == 0  # no "…and N more"
    assert color["scale"]["scheme"] == "tableau20"  # 20 colours: the default 10 repeat across 19 reasons
    # the legend's rows are added to the height, so the plot keeps its size
    rows = -(-len(DisconnectReason) // metrics.LEGEND_COLUMNS)
    assert chart["height"] >= 340 + 21 * rows


# ----------------------------------------------------------------------------- Settings: forecast cards

FORECAST = {"completion": datetime(2026, 12, 5, 17, tzinfo=UTC), "horizon_days": 60, "calls": 1_263_000,
            "connected_contacts": 201_000, "successful_contacts": 83_000, "credits": 191_658_000,
            "forecast_connection_rate": 0.2, "observed_connection_rate": 0.203, "start": datetime(2026, 5, 4, tzinfo=UTC),
            "seed": 42, "contacts": 302, "remaining_contacts": 7, "held_back_contacts": 7, "rates_used": "observed"}


def _rows_of_cards(node) -> list[list[str]]:
    """The metric labels of each row of columns, in page order."""
    rows = []
    if getattr(node, "type", None) == "flex_container":
        row = [m.label for column in node.children.values() for m in getattr(column, "children", {}).values()
               if getattr(m, "type", None) == "metric"]
        if row:
            rows.append(row)
    for child in getattr(node, "children", {}).values():
        rows += _rows_of_cards(child)
    return rows


def test_forecast_cards_sit_in_rows_of_at_most_three_so_their_figures_are_not_cut(tabs):
    cid = tabs["campaign_id"]
    at = run_tab("settings", cid, **{f"forecast_{cid}": (None, FORECAST)})
    rows = [r for r in _rows_of_cards(at.main) if "Calls" in r or "Successful contacts" in r]
    # five cards in one row of the bordered Schedule section left ~120 px each at 1280 px: "1,…", "191…"
    assert rows == [["Expected completion", "Calls", "Credits"], ["Connected contacts", "Successful contacts"]]
    assert {m.label: m.value for m in at.metric}["Credits"] == "191,658,000"


def test_forecast_caption_names_its_rates_per_call_and_per_contact():
    """The Metrics card's Connection Rate counts contacts; the simulation's rate counts calls: both are named."""
    result = FORECAST | {"contacts": 300, "connected_contacts": 200, "forecast_connection_rate": 0.2,
                         "observed_connection_rate": 0.203}
    caption = settings.forecast_caption(result, "America/Phoenix")
    assert "Connection rate per contact (connected contacts ÷ contacts, as the Metrics tab's Connection Rate card " \
           "counts): 66.7% expected by the end" in caption
    assert "Connection rate per call (connected calls ÷ calls, the simulation's rate): 20.0% in the simulated calls, " \
           "20.3% in the calls so far" in caption
    # before any call: no observed rate, and a campaign without contacts has no per-contact rate
    empty = settings.forecast_caption(result | {"contacts": 0, "observed_connection_rate": None}, "America/Phoenix")
    assert "per contact (connected contacts ÷ contacts, as the Metrics tab's Connection Rate card counts): n/a" in empty
    assert "no calls yet in the calls so far" in empty


def test_forecast_panel_shows_that_caption(tabs):
    cid = tabs["campaign_id"]
    at = run_tab("settings", cid, **{f"forecast_{cid}": (None, FORECAST)})
    assert any("Connection rate per contact" in c.value and "Connection rate per call" in c.value for c in at.caption)


# ----------------------------------------------------------------------------- Settings: Campaign summary

@pytest.mark.parametrize(("lines", "expected"), [
    (["Your campaign will start on: April 27, 2026",
      "It will call Monday to Friday between 08:00 AM - 06:00 PM (America/Phoenix)",
      "Each contact will receive up to 5 calls in total, max 1 per day."],
     ["Your campaign will start on: April 27, 2026",
      "It will call **Monday to Friday** between **08:00 AM - 06:00 PM** (America/Phoenix)",
      "Each contact will receive up to **5 calls** in total, max 1 per day."]),
    (["Your campaign will start on: May 4, 2026",
      "It will call Monday, Wednesday between 08:00 AM - 12:00 PM, 01:00 PM - 05:00 PM; Saturday around the clock "
      "(America/New_York)",
      "Each contact will receive up to 1 call in total, max 1 per day."],
     ["Your campaign will start on: May 4, 2026",
      "It will call **Monday, Wednesday** between **08:00 AM - 12:00 PM, 01:00 PM - 05:00 PM**; **Saturday** around "
      "the clock (America/New_York)",
      "Each contact will receive up to **1 call** in total, max 1 per day."]),
])
def test_campaign_summary_puts_days_hours_and_total_calls_in_bold_as_the_spec(lines, expected):
    from dashboards.tabs.settings import summary_markdown

    assert summary_markdown(lines) == expected


def test_campaign_summary_card_in_the_settings_tab_is_bold_where_the_spec_is(tabs):
    at = run_tab("settings", tabs["campaign_id"])
    card = next(i.value for i in at.info if i.value.startswith("**Campaign summary**"))
    assert "It will call **Monday to Friday** between **" in card
    assert "up to **" in card


# ----------------------------------------------------------------------------- The detail says why it has no summary
# "No summary yet." promised a summary to calls that never connected, which never get one.

@pytest.mark.parametrize("status, duration, analyzed, expected", [
    ("not_connected", 0.0, None, "No summary: the call did not connect."),
    ("error", 0.0, None, "No summary: the call did not connect."),  # also a batch stopped before placing it
    ("failed_rate_limit", None, None, "No summary: the call did not connect."),
    ("registered", None, None, "No summary yet: the call is not over."),
    ("in_progress", None, None, "No summary yet: the call is not over."),
    ("ended", 42.0, None, "No summary yet: the call's analysis has not arrived."),
    ("error", 42.0, None, "No summary yet: the call's analysis has not arrived."),  # dropped mid-call
    ("ended", 42.0, datetime(2026, 4, 28, tzinfo=UTC), "No summary: the provider's analysis has none for this call."),
])
def test_call_detail_says_why_there_is_no_summary(status, duration, analyzed, expected):
    call = {"summary": None, "status": status, "duration_seconds": duration, "analyzed_at": analyzed}
    assert call_logs.analysis_note(call) == expected
    assert call_logs.analysis_note(call | {"summary": "Booked a demo."}) is None
    assert call_logs.never_connected(call) == expected.endswith("did not connect.")


def test_call_detail_of_an_unanswered_call_shows_no_sentiment_and_says_no_summary_will_come(tabs):
    with transaction(tabs["db"]) as conn:  # as a real unanswered call: no summary (the fixture gives it one)
        call_id, summary = conn.execute(
            "select call_id, summary from calls where status = 'not_connected' order by call_id limit 1").fetchone()
        conn.execute("update calls set summary = null where call_id = ?", [call_id])
    try:
        at = run_tab("call_logs", tabs["campaign_id"])
        row = at.dataframe[0].value["Status"].to_list().index("not_connected")
        select_row(at, f"calllogs_{tabs['campaign_id']}_table", row)
        assert {m.label: m.value for m in at.metric}["Sentiment"] == "–"
        assert "No summary: the call did not connect." in [m.value for m in at.markdown]
    finally:
        with transaction(tabs["db"]) as conn:
            conn.execute("update calls set summary = ? where call_id = ?", [summary, call_id])
