"""The Call Logs, Contact List and Metrics tabs through AppTest, on the hand-computed campaign of tabs_fixture."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboards.queries import contacts as q_contacts
from dashboards.state import TAB_KEY
from dashboards.tabs.call_logs import COLUMN_WIDTHS, CONTACT_FILTER_KEY
from tasks.feedback import get_feedback
from tasks.contacts_import import remove_contact_from_campaign
from tasks.store import connect, transaction
from tests.conftest import main_module_kept
from tests.dashboards.tabs_fixture import make_tabs_db
from tests.factories import add_contacts

HERE = Path(__file__).resolve().parent
HARNESS = str(HERE / "tab_harness.py")
APP = str(HERE.parents[1] / "dashboards" / "app.py")


@pytest.fixture
def tabs(db_kept_open) -> dict:
    return make_tabs_db(db_kept_open)


def run_tab(tab: str, campaign_id: int, **session) -> AppTest:
    """One tab drawn by the harness after one run."""
    at = AppTest.from_file(HARNESS, default_timeout=30)
    at.session_state["harness_tab"] = tab
    at.session_state["harness_campaign"] = campaign_id
    for name, value in session.items():
        at.session_state[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def phones(at: AppTest, index: int = 0) -> list[str]:
    return at.dataframe[index].value["Phone Number"].tolist()


def table_key(at: AppTest, name: str) -> str:
    """The widget key of table `name` as drawn now (components.record_table adds a digest of the rows shown)."""
    return next(d.key for d in at.dataframe if d.key and d.key.startswith(f"{name}_"))


def select_row(at: AppTest, name: str, row: int) -> AppTest:
    """Select row `row` of table `name` as a click in the browser does."""
    at.session_state[table_key(at, name)] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return rerun(at)


def test_a_script_run_does_not_stay_main_for_later_processes(tabs):
    # Streamlit leaves the harness as __main__, which a later test's "spawn" child would run first
    # (the call-logs tab of campaign 1 on that test's database): every test puts it back.
    real_main = sys.modules["__main__"]
    with main_module_kept():
        run_tab("call_logs", tabs["campaign_id"])
        assert sys.modules["__main__"].__file__ == HARNESS
    assert sys.modules["__main__"] is real_main


A, B = "+16025550000", "+16025550001"
D = "+16025550003"


# ----------------------------------------------------------------------------- Call Logs

def test_call_logs_table_columns_and_order(tabs):
    at = run_tab("call_logs", tabs["campaign_id"])
    table = at.dataframe[0].value
    assert phones(at) == [B, D, A, B, A]  # newest first: c4, c5, c2, c3, c1
    assert table.iloc[0][["Disconnect Reason", "Status", "Call Successful", "Duration", "Credits", "Tools"]].tolist() == [
        "User Hangup", "ended", "No", pd.Timedelta(seconds=45), 30, 1]  # the reason's label, not its code
    assert table.iloc[4]["Date"] == pd.Timestamp(2026, 4, 27, 9, 0)  # Phoenix time
    assert "**5** calls" in at.markdown[0].value
    # the eye of each row: its contact's whole history, on this page's Call Logs tab (a link opens a new tab)
    cid = tabs["campaign_id"]
    assert table["View"].tolist() == [f"campaign?campaign={cid}&tab=Call+Logs&contact={tabs[x]}" for x in "BDABA"]
    assert _column_config(at)["View"]["type"] == "link"


def _column_config(at: AppTest, index: int = 0) -> dict:
    return {name: config["type_config"] for name, config in json.loads(at.dataframe[index].proto.columns).items()
            if "type_config" in config}


def test_call_logs_numbers_and_dates_stay_typed_so_a_header_click_sorts_by_value(tabs):
    with transaction() as conn:  # credits whose text order is not their numeric order
        for call, credits in (("c1", 999), ("c2", 75), ("c4", 1332)):
            conn.execute("update calls set credits = ? where call_id = ?", [credits, tabs[call]])
    at = run_tab("call_logs", tabs["campaign_id"])
    table = at.dataframe[0].value
    # what the grid sorts on a header click: 0, 0, 75, 999, 1332 (as text: "0", "1,332", "75", "999")
    assert table["Credits"].sort_values().tolist() == [0, 0, 75, 999, 1332]
    assert table["Duration"].sort_values().dropna().tolist() == [pd.Timedelta(seconds=s) for s in (0, 20, 45, 120)]
    assert table["Date"].sort_values().iloc[0] == pd.Timestamp(2026, 4, 27, 9, 0)
    config = _column_config(at)
    assert config["Credits"]["format"] == "localized"  # 1,332
    assert config["Duration"]["format"] == "localized"  # "2 min", as format_duration(120)
    assert config["Date"]["format"] == "MMM DD, YYYY hh:mm A"


def test_call_logs_date_is_when_the_call_was_placed_not_the_batch_claim(tabs):
    # c1 and c3 were claimed in one batch at 16:00; c1 was registered with the provider 7 minutes later,
    # c3 only has a start time (17:00 claim, started 17:02)
    with transaction() as conn:
        conn.execute("update calls set registered_at = queued_at + interval 7 minutes, started_at = queued_at"
                     " + interval 8 minutes where call_id = ?", [tabs["c1"]])
        conn.execute("update calls set started_at = queued_at + interval 2 minutes where call_id = ?", [tabs["c3"]])
    at = run_tab("call_logs", tabs["campaign_id"])
    table = at.dataframe[0].value
    assert phones(at) == [B, D, A, B, A]  # still in queue order
    assert table["Date"].tolist()[3:] == [pd.Timestamp(2026, 4, 27, 10, 2), pd.Timestamp(2026, 4, 27, 9, 7)]
    select_row(at, f"calllogs_{tabs['campaign_id']}_table", 4)  # c1
    assert "Apr 27, 2026 09:07 AM" in at.caption[0].value
    assert at.dataframe[1].value["Date"].tolist()[0] == pd.Timestamp(2026, 4, 27, 9, 7)  # the contact's history


@pytest.mark.parametrize(
    ("widget", "key", "value", "expected"),
    [
        ("text_input", "search", "person 1", [B, B]),
        ("text_input", "search", "'; drop table calls; --", []),
        ("multiselect", "reasons", ["agent_hangup", "voicemail_reached"], [A, A]),
        ("selectbox", "successful", "Yes", [A]),
        ("select_slider", "duration", (30, 1800), [B, A]),
        ("select_slider", "duration", (0, 60), [B, D, A, B]),  # not A's 2-minute call
        ("date_input", "dates", (date(2026, 4, 28), date(2026, 4, 28)), [B, D, A]),
        ("selectbox", "sort", "Duration", [A, B, A, B, D]),
    ],
)
def test_call_logs_filters(tabs, widget, key, value, expected):
    at = run_tab("call_logs", tabs["campaign_id"])
    getattr(at, widget)(key=f"calllogs_{tabs['campaign_id']}_{key}").set_value(value)
    rerun(at)
    if expected:
        assert phones(at) == expected
    else:
        assert len(at.dataframe) == 0
        assert at.info[0].value == "No calls match these filters yet."


def test_call_logs_duration_filter_reads_as_durations(tabs):
    at = run_tab("call_logs", tabs["campaign_id"])
    duration = at.select_slider(key=f"calllogs_{tabs['campaign_id']}_duration")
    assert duration.label == "Duration"
    # the stops read as the table's durations; the top one means "and longer"
    assert [duration.options[i] for i in (0, 6, 10, -1)] == ["0 sec", "1 min", "1 min, 40 sec", "30 min+"]


def test_call_logs_ascending_toggle(tabs):
    at = run_tab("call_logs", tabs["campaign_id"])
    at.toggle(key=f"calllogs_{tabs['campaign_id']}_desc").set_value(False)
    assert phones(rerun(at)) == [A, B, A, D, B]


def test_call_logs_page_selector(tabs, db):
    # 60 more calls for A: 65 in all, two pages of 50
    with transaction() as conn:
        conn.execute(
            """
            insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status, provider,
                               queued_at, updated_at)
            select ?, ?, 'extra' || i, 1, '+16025550000', 'ended', 'simulator',
                   timestamptz '2026-04-20 16:00:00+00' + to_minutes(i), now()
            from range(60) t(i)
            """,
            [tabs["campaign_id"], tabs["A"]],
        )
    at = run_tab("call_logs", tabs["campaign_id"])
    assert len(at.dataframe[0].value) == 50
    at.number_input(key=f"calllogs_{tabs['campaign_id']}_page").set_value(2)
    rerun(at)
    assert len(at.dataframe[0].value) == 15
    assert "showing 51–65" in at.markdown[0].value


def test_selecting_a_call_opens_its_detail_and_feedback_shows_in_the_table(tabs):
    at = run_tab("call_logs", tabs["campaign_id"])
    select_row(at, f"calllogs_{tabs['campaign_id']}_table", 4)  # c1, the oldest
    assert at.subheader[0].value == f"Call {tabs['c1']} · Person 0"
    # the date in the campaign's zone, named (it had no zone, while the list's header help named it)
    assert at.caption[0].value.startswith("+16025550000 · Apr 27, 2026 09:00 AM (America/Phoenix) · attempt 1")
    assert [m.value for m in at.metric] == ["Yes", "Positive", "No", "2 min"]
    assert "Summary of c1" in [m.value for m in at.markdown]
    assert at.json[0].value == '{"plan": "gold"}'
    assert at.json[1].value == '{"interested": true}'
    assert at.expander[0].label == "Transcript"
    assert at.dataframe[1].value["Disconnect Reason"].tolist() == ["Agent Hangup", "Voicemail Reached"]  # history, labels

    at.feedback(key=f"feedback_rating_{tabs['c1']}").set_value(1)  # thumbs up
    at.text_input(key=f"feedback_comment_{tabs['c1']}").set_value("Great close")
    at.button(key=f"feedback_save_{tabs['c1']}").click()
    rerun(at)
    with connect() as conn:
        assert get_feedback(conn, tabs["c1"])["rating"] == "up"
    assert at.dataframe[0].value["Feedback"].tolist()[4] == "Good · Great close"
    assert at.feedback(key=f"feedback_rating_{tabs['c1']}").value == 1  # the stored rating shows again


def test_a_row_never_placed_reads_not_placed_not_a_platform_error(tabs, db):
    # a campaign paused mid-batch: the contacts claimed but never dialed read "Error Dapta" ("a Dapta-side error
    # interrupted the call") and "No summary: the call did not connect", as if 13 calls had failed
    from tasks.dialing import PAUSED_MID_BATCH, mark_not_placed

    queued = datetime(2026, 4, 30, 17, 0, tzinfo=UTC)  # the newest call: the table's first row
    with transaction(db) as conn:
        [call_id] = conn.execute(
            "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status, provider,"
            " queued_at, updated_at) values (?, ?, 'k_paused', 1, '+16025550002', 'queued', 'simulator', ?, ?)"
            " returning call_id", [tabs["campaign_id"], tabs["C"], queued, queued]).fetchone()
        mark_not_placed(conn, [call_id], queued, PAUSED_MID_BATCH)
    with connect(db) as conn:  # the store keeps the product's code
        assert conn.execute("select disconnect_reason from calls where call_id = ?", [call_id]).fetchone() == (
            "error_dapta",)
    at = run_tab("call_logs", tabs["campaign_id"])
    table = at.dataframe[0].value
    assert table["Disconnect Reason"].tolist()[0] == "Not Placed"
    assert "Error Dapta" not in table["Disconnect Reason"].tolist()
    select_row(at, f"calllogs_{tabs['campaign_id']}_table", 0)
    assert at.subheader[0].value == f"Call {call_id} · Person 2"
    assert f"No summary: the call was never placed ({PAUSED_MID_BATCH})." in [m.value for m in at.markdown]
    assert at.dataframe[1].value["Disconnect Reason"].tolist() == ["Not Placed"]  # the contact's history


def test_clearing_the_thumb_and_saving_removes_the_rating(tabs):
    at = run_tab("call_logs", tabs["campaign_id"])
    select_row(at, f"calllogs_{tabs['campaign_id']}_table", 4)  # c1
    at.feedback(key=f"feedback_rating_{tabs['c1']}").set_value(1)
    at.text_input(key=f"feedback_comment_{tabs['c1']}").set_value("Great close")
    at.button(key=f"feedback_save_{tabs['c1']}").click()
    rerun(at)
    at.feedback(key=f"feedback_rating_{tabs['c1']}").set_value(None)  # the thumb unselected
    at.button(key=f"feedback_save_{tabs['c1']}").click()
    rerun(at)
    with connect() as conn:
        assert (get_feedback(conn, tabs["c1"])["rating"], get_feedback(conn, tabs["c1"])["comment"]) == (
            None, "Great close")  # the comment stays
    assert at.dataframe[0].value["Feedback"].tolist()[4] == "Great close"
    assert at.feedback(key=f"feedback_rating_{tabs['c1']}").value is None


def test_a_selected_call_stays_that_call_whatever_the_rows_shown(tabs):
    # Streamlit keeps a selection as a row position: the audit selected a call, searched, and the detail and its
    # feedback form showed the call that then sat at the same position
    cid = tabs["campaign_id"]
    at = run_tab("call_logs", cid)
    select_row(at, f"calllogs_{cid}_table", 0)  # c4, Person 1's newest call
    assert at.subheader[0].value == f"Call {tabs['c4']} · Person 1"
    at.toggle(key=f"calllogs_{cid}_desc").set_value(False)  # oldest first: c4 is still shown, now last
    rerun(at)
    assert phones(at) == [A, B, A, D, B]
    assert at.subheader[0].value == f"Call {tabs['c4']} · Person 1"
    assert at.session_state[table_key(at, f"calllogs_{cid}_table")]["selection"]["rows"] == [4]  # drawn selected
    at.text_input(key=f"calllogs_{cid}_search").set_value("Person 0")  # c4 is not shown: c1 is at its old row 0
    rerun(at)
    assert not at.subheader and not at.get("feedback")
    assert "Select a row to see the call's analysis" in at.caption[-1].value
    at.text_input(key=f"calllogs_{cid}_search").set_value("")  # the selection went with the rows it was made in
    rerun(at)
    assert not at.subheader


def test_call_logs_download_and_refresh(tabs):
    at = run_tab("call_logs", tabs["campaign_id"])
    assert at.get("download_button")[0].proto.label == "Download as Excel"
    at.button(key=f"calllogs_{tabs['campaign_id']}_refresh").click()
    assert phones(rerun(at)) == [B, D, A, B, A]


def test_contact_filter_from_the_contact_list_and_clearing_it(tabs):
    at = run_tab("call_logs", tabs["campaign_id"], **{CONTACT_FILTER_KEY: {
        "campaign_id": tabs["campaign_id"], "contact_id": tabs["B"], "label": "Person 1"}})
    assert phones(at) == [B, B]
    assert "Person 1" in at.info[0].value
    at.button(key=f"calllogs_{tabs['campaign_id']}_clear_contact").click()
    assert phones(rerun(at)) == [B, D, A, B, A]


# ----------------------------------------------------------------------------- Contact List

def test_contact_list_table(tabs):
    at = run_tab("contact_list", tabs["campaign_id"])
    table = at.dataframe[0].value
    assert table["Name"].tolist() == ["Person 3", "Person 2", "Person 1", "Person 0"]
    first = table[table["Name"] == "Person 0"].iloc[0]
    assert first[["Attempts", "Connected", "Successful", "Credits", "Duration", "Last Disconnection"]].tolist() == [
        2, 1, 1, 110, pd.Timedelta(seconds=140), "Voicemail Reached"]
    assert first["Last Call Date"] == pd.Timestamp(2026, 4, 28, 9, 0)
    never = table[table["Name"] == "Person 2"].iloc[0]
    assert never["Attempts"] == 0 and pd.isna(never["Last Call Date"])


def test_the_contact_list_counts_calls_made_since_the_last_aggregation(tabs, db):
    # it read contact_stats, which only an aggregation run writes: under `campaigns dashboard` alone none ever ran, and
    # a contact called since showed Attempts 0 and no Last Call Date while Call Logs listed the call, Refresh or not
    called = datetime(2026, 5, 1, 16, 0, tzinfo=UTC)  # after the fixture's aggregation
    with connect(db) as conn:
        conn.execute(
            "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt, phone_e164,"
            " status, disconnect_reason, duration_seconds, credits, provider, queued_at, updated_at)"
            " values (?, ?, 'k_new', 1, true, '+16025550002', 'not_connected', 'dial_busy', 0, 0, 'simulator', ?, ?)",
            [tabs["campaign_id"], tabs["C"], called, called])
        assert q_contacts.stats_behind(conn, tabs["campaign_id"])
    contacts = run_tab("contact_list", tabs["campaign_id"]).dataframe[0].value
    person = contacts[contacts["Name"] == "Person 2"].iloc[0]
    assert (person["Attempts"], person["Last Disconnection"], person["Last Call Date"]) == (
        1, "Dial Busy", pd.Timestamp(2026, 5, 1, 9, 0))
    with connect(db) as conn:
        assert not q_contacts.stats_behind(conn, tabs["campaign_id"])  # brought up to date once, not at every rerun


def test_a_missing_text_is_an_empty_cell_not_none(tabs, db):
    with connect(db) as conn:
        conn.execute("update contacts set name = null where contact_id = ?", [tabs["B"]])
    calls = run_tab("call_logs", tabs["campaign_id"]).dataframe[0].value
    assert calls[calls["Phone Number"] == B]["Contact"].tolist() == ["", ""]
    assert calls[calls["Phone Number"] == A]["Contact"].tolist() == ["Person 0", "Person 0"]
    contacts = run_tab("contact_list", tabs["campaign_id"]).dataframe[0].value
    assert contacts[contacts["Phone Number"] == B]["Name"].tolist() == [""]
    never = contacts[contacts["Name"] == "Person 2"].iloc[0]
    assert never["Last Disconnection"] == "" and pd.isna(never["Last Call Date"])  # a time stays a (missing) time


def test_the_tables_say_which_time_zone_their_times_are_in(tabs):
    # the times are the campaign's (Phoenix), which nothing said: a manager in Bogota read them as Bogota times
    calls = run_tab("call_logs", tabs["campaign_id"])
    columns = json.loads(calls.dataframe[0].proto.columns)
    assert columns["Date"]["help"] == "In America/Phoenix, the campaign's time zone"
    # its own width and format kept (zoned_columns once rebuilt the column and lost them)
    assert columns["Date"]["width"] == COLUMN_WIDTHS["Date"]["width"] == 146
    assert columns["Date"]["type_config"]["format"] == "MMM DD, YYYY hh:mm A"
    assert calls.markdown[0].help == "Times are in America/Phoenix, the campaign's time zone."
    contacts = run_tab("contact_list", tabs["campaign_id"])
    columns = json.loads(contacts.dataframe[0].proto.columns)
    assert columns["Last Call Date"]["help"] == columns["Created At"]["help"] == "In America/Phoenix, the campaign's time zone"
    assert contacts.markdown[0].help == "Times are in America/Phoenix, the campaign's time zone."
    # the spec's columns come first, Created At included: it was last, after the three smart-dialing columns
    order = list(contacts.dataframe[0].proto.column_order)
    assert order[order.index("Last Call Date") + 1] == "Created At" and order[-1] == "Suppression"


def test_contact_list_numbers_stay_typed_so_a_header_click_sorts_by_value(tabs):
    with transaction() as conn:  # the audit's case: 999 and 75 sorted before 1,332 as text
        for contact, credits in (("A", 1332), ("B", 999), ("D", 75)):
            conn.execute("update contact_stats set credits = ? where contact_id = ?", [credits, tabs[contact]])
    at = run_tab("contact_list", tabs["campaign_id"])
    table = at.dataframe[0].value
    assert table["Credits"].sort_values().tolist() == [0, 75, 999, 1332]
    assert table["Duration"].sort_values().tolist() == [pd.Timedelta(seconds=s) for s in (0, 0, 45, 140)]
    config = _column_config(at)
    assert (config["Credits"]["format"], config["Duration"]["format"]) == ("localized", "localized")
    assert config["Last Call Date"]["format"] == config["Created At"]["format"] == "MMM DD, YYYY hh:mm A"


@pytest.mark.parametrize(
    ("widget", "key", "value", "expected"),
    [
        ("text_input", "search", "0001", ["Person 1"]),
        ("text_input", "search", "x" * 200, []),
        ("selectbox", "sort", "Credits", ["Person 0", "Person 1", "Person 3", "Person 2"]),
    ],
)
def test_contact_list_search_and_sort(tabs, widget, key, value, expected):
    at = run_tab("contact_list", tabs["campaign_id"])
    getattr(at, widget)(key=f"contacts_{tabs['campaign_id']}_{key}").set_value(value)
    rerun(at)
    if expected:
        assert at.dataframe[0].value["Name"].tolist() == expected
    else:
        assert at.info[0].value == "No contacts match."


def test_one_call_or_contact_is_counted_in_the_singular(tabs):
    cid = tabs["campaign_id"]
    calls = run_tab("call_logs", cid)
    calls.text_input(key=f"calllogs_{cid}_search").set_value("person 3")  # D: one call
    assert rerun(calls).markdown[0].value.startswith("**1** call · showing 1–1 · page 1 of 1")
    contacts = run_tab("contact_list", cid)
    contacts.text_input(key=f"contacts_{cid}_search").set_value("0001")
    assert rerun(contacts).markdown[0].value.startswith("**1** contact · showing 1–1")


def _page_for_contact(campaign_id: int, contact: int) -> AppTest:
    """The campaign page opened by a History link: ?campaign=ID&tab=Call+Logs&contact=ID."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.switch_page("pages/campaign.py")
    at.query_params.update(campaign=str(campaign_id), tab="Call Logs", contact=str(contact))
    return rerun(at)


def test_a_history_link_shows_the_calls_of_a_contact_removed_since(tabs, db):
    cid = tabs["campaign_id"]
    with transaction(db) as conn:
        remove_contact_from_campaign(conn, cid, tabs["B"])
        outsider = conn.execute("insert into contacts (phone_e164, name) values ('+16025550999', 'Nobody')"
                                " returning contact_id").fetchone()[0]
    at = _page_for_contact(cid, tabs["B"])
    assert not at.error, [e.value for e in at.error]
    calls = next(d.value for d in at.dataframe if "Phone Number" in d.value.columns and "Disconnect Reason" in d.value.columns)
    assert calls["Phone Number"].tolist() == [B, B]  # his past calls stay in the Call Logs, and his link leads to them
    # a contact with neither an enrollment nor a call in this campaign is refused, as before
    assert [e.value for e in _page_for_contact(cid, outsider).error] == [f"Contact {outsider} is not in this campaign."]


def _select_contact(tabs, name: str) -> AppTest:
    at = run_tab("contact_list", tabs["campaign_id"])
    row = at.dataframe[0].value["Name"].tolist().index(name)
    return select_row(at, f"contacts_{tabs['campaign_id']}_table", row)


def test_selected_contact_shows_actions_id_and_calls(tabs):
    at = _select_contact(tabs, "Person 1")
    assert at.subheader[0].value == "Person 1"
    assert [c.value for c in at.code] == [str(tabs["B"])]
    assert {"Edit Contact", "Remove from Campaign", "Show in Call Logs"} <= {b.label for b in at.button}
    assert at.dataframe[1].value["Disconnect Reason"].tolist() == ["Dial No Answer", "User Hangup"]


def test_a_contacts_calls_say_which_are_not_attempts(tabs, db):
    # Attempts read 5 beside six calls, two of them "Attempt 3", with no word of why
    at = _select_contact(tabs, "Person 1")
    assert list(at.dataframe[1].proto.column_order) == ["Attempt", "Date", "Status", "Disconnect Reason",
                                                        "Call Successful", "Duration", "Credits"]
    assert not [c.value for c in at.caption if "not an attempt" in c.value]  # every call counts
    with connect(db) as conn:
        conn.execute("update calls set counts_as_attempt = false where call_id = ?", [tabs["c3"]])
    at = _select_contact(tabs, "Person 1")
    assert [c.value for c in at.caption if "not an attempt" in c.value] == [
        "1 of these 2 calls is not an attempt (Attempts counts 1): a call the provider could not take (Telephony "
        "Provider Unavailable, a rate or concurrency limit) or that was never placed gives its attempt back, so the "
        "next call has the same attempt number."]


def test_show_in_call_logs_sets_the_filter_and_opens_the_tab(tabs):
    at = _select_contact(tabs, "Person 1")
    at.button(key=f"contacts_{tabs['campaign_id']}_logs_{tabs['B']}").click()
    rerun(at)
    assert at.session_state[CONTACT_FILTER_KEY] == {"campaign_id": tabs["campaign_id"], "contact_id": tabs["B"],
                                                    "label": "Person 1"}
    assert at.session_state[TAB_KEY] == "Call Logs"  # the campaign page's tabs are bound to this key


def test_edit_contact_saves_and_refuses_a_bad_phone(tabs):
    cid = tabs["campaign_id"]
    at = _select_contact(tabs, "Person 1")
    at.button(key=f"contacts_{cid}_edit_{tabs['B']}").click()
    rerun(at)
    at.text_input(key=f"contacts_{cid}_edit_phone_{tabs['B']}").set_value("12")
    at.text_input(key=f"contacts_{cid}_edit_email_{tabs['B']}").set_value("nope")
    at.button[-1].click()  # the form's Save contact
    rerun(at)
    # both bad values at once, each under its own box (in the form's order: e-mail, then phone)
    assert [e.value for e in at.error] == ["not a valid e-mail address", "'12': too short"]
    at.text_input(key=f"contacts_{cid}_edit_email_{tabs['B']}").set_value("")
    with connect() as conn:
        assert conn.execute("select phone_e164 from contacts where contact_id = ?", [tabs["B"]]).fetchone()[0] == B
    at.text_input(key=f"contacts_{cid}_edit_phone_{tabs['B']}").set_value("(602) 555-0199")
    at.text_input(key=f"contacts_{cid}_edit_name_{tabs['B']}").set_value("Paula Uno")
    at.text_input(key=f"contacts_{cid}_edit_custom:plan_{tabs['B']}").set_value("platinum")  # a custom property
    at.button[-1].click()
    rerun(at)
    with connect() as conn:
        assert conn.execute("select phone_e164, name, properties->>'plan' from contacts where contact_id = ?",
                            [tabs["B"]]).fetchone() == ("+16025550199", "Paula Uno", "platinum")
    assert at.success[0].value == "Contact saved."


def test_remove_from_campaign_asks_then_removes(tabs):
    cid = tabs["campaign_id"]
    at = _select_contact(tabs, "Person 2")
    at.button(key=f"contacts_{cid}_remove_{tabs['C']}").click()
    rerun(at)
    # the confirmation dialog: nothing is removed until Remove is clicked
    with connect() as conn:
        assert conn.execute("select count(*) from campaign_contacts").fetchone()[0] == 4
    at.button(key=f"contacts_{cid}_confirm_remove_{tabs['C']}").click()
    rerun(at)
    with connect() as conn:
        assert conn.execute("select count(*) from campaign_contacts").fetchone()[0] == 3
        assert conn.execute("select count(*) from contacts").fetchone()[0] == 4  # the CRM keeps it
    assert at.success[0].value == "Person 2 was removed from the campaign."
    assert "Person 2" not in at.dataframe[0].value["Name"].tolist()


def test_a_selected_contact_stays_that_contact_whatever_the_rows_shown(tabs, db):
    # the audit's case: a contact selected on one page became the contact at the same row of the next page, and
    # Remove from Campaign pointed at it
    cid = tabs["campaign_id"]
    add_contacts(db, cid, 60, first=10)  # Person 10..69: 64 contacts, two pages of 50
    at = run_tab("contact_list", cid)
    at.selectbox(key=f"contacts_{cid}_sort").set_value("Name")
    at.toggle(key=f"contacts_{cid}_desc").set_value(False)
    rerun(at)
    assert at.dataframe[0].value["Name"].tolist()[:3] == ["Person 0", "Person 1", "Person 10"]
    select_row(at, f"contacts_{cid}_table", 1)
    assert at.subheader[0].value == "Person 1"
    at.text_input(key=f"contacts_{cid}_search").set_value("Person 1")  # Person 1 still shown, now at row 0
    rerun(at)
    assert at.dataframe[0].value["Name"].tolist()[:2] == ["Person 1", "Person 10"]
    assert at.subheader[0].value == "Person 1"
    at.button(key=f"contacts_{cid}_remove_{tabs['B']}").click()  # the row actions act on Person 1
    rerun(at)
    at.button(key=f"contacts_{cid}_cancel_remove_{tabs['B']}").click()
    at.text_input(key=f"contacts_{cid}_search").set_value("")
    rerun(at)
    assert at.subheader[0].value == "Person 1"
    at.number_input(key=f"contacts_{cid}_page").set_value(2)  # Person 1 is not on page 2: nothing is selected
    rerun(at)
    assert "Person 1" not in at.dataframe[0].value["Name"].tolist() and not at.subheader
    assert not [b for b in at.button if b.key and "_remove_" in b.key]
    assert "Select a contact to edit it" in at.caption[0].value
    with connect() as conn:
        assert conn.execute("select count(*) from campaign_contacts").fetchone()[0] == 64


def test_contact_list_download_button(tabs):
    at = run_tab("contact_list", tabs["campaign_id"])
    assert at.get("download_button")[0].proto.label == "Download as Excel"
    assert at.expander[0].label == "Import contacts (CSV or XLSX)"


# ----------------------------------------------------------------------------- Metrics

def _metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_metrics_cards_chart_and_funnel_for_all_time(tabs):
    at = run_tab("metrics", tabs["campaign_id"])
    start, _ = at.date_input(key=f"metrics_{tabs['campaign_id']}_dates").value
    assert start == date(2026, 4, 27)  # the campaign's start date
    assert _metric_values(at) == {"Credits Used": "140", "Total Calls": "4", "Contacts Called": "2",
                                  "Connection Rate": "50.00%", "Avg. Call Duration": "1m 22s"}
    assert [s.value for s in at.subheader] == ["Calls Made", "Contact Funnel", "Best Time to Call"]
    assert len(at.get("vega_lite_chart")) == 2  # no heatmap before the best-time table is built
    assert len(at.warning) == 0  # 50 % connected, 50 % of them successful: no large gap


def test_metrics_date_range_changes_everything(tabs):
    at = run_tab("metrics", tabs["campaign_id"])
    at.date_input(key=f"metrics_{tabs['campaign_id']}_dates").set_value((date(2026, 4, 28), date(2026, 4, 28)))
    rerun(at)
    assert _metric_values(at) == {"Credits Used": "40", "Total Calls": "2", "Contacts Called": "2",
                                  "Connection Rate": "25.00%", "Avg. Call Duration": "45s"}
    assert len(at.warning) == 2  # both gaps are large that day


def test_metrics_empty_range(tabs):
    at = run_tab("metrics", tabs["campaign_id"])
    at.date_input(key=f"metrics_{tabs['campaign_id']}_dates").set_value((date(2026, 4, 29), date(2026, 4, 29)))
    rerun(at)
    assert at.info[0].value == "No calls in this date range."
    assert _metric_values(at)["Total Calls"] == "0"


# ----------------------------------------------------------------------------- in the real campaign page

def test_tabs_render_in_the_campaign_page(tabs):
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["campaign_id"] = tabs["campaign_id"]
    at.switch_page("pages/campaign.py")
    rerun(at)
    assert [t.label for t in at.tabs] == ["Settings", "Call Logs", "Contact List", "Metrics"]
    assert "Credits Used" in [m.label for m in at.metric]
    assert any(len(d.value) == 5 and "Disconnect Reason" in d.value.columns for d in at.dataframe)


def test_show_in_call_logs_shows_all_the_contacts_calls_whatever_the_call_logs_filters(tabs):
    # the audit's case: with a search left in the Call Logs, the jump showed "0 calls" for a contact with calls
    cid = tabs["campaign_id"]
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["campaign_id"] = cid
    at.switch_page("pages/campaign.py")
    rerun(at)
    at.text_input(key=f"calllogs_{cid}_search").set_value("Person 0")
    at.multiselect(key=f"calllogs_{cid}_reasons").set_value(["agent_hangup"])
    at.selectbox(key=f"calllogs_{cid}_successful").set_value("Yes")
    at.date_input(key=f"calllogs_{cid}_dates").set_value((date(2026, 4, 27), date(2026, 4, 27)))
    rerun(at)
    select_row(at, f"contacts_{cid}_table", 2)  # Person 1 (contacts newest first)
    at.button(key=f"contacts_{cid}_logs_{tabs['B']}").click()
    rerun(at)
    assert at.session_state[TAB_KEY] == "Call Logs"
    assert "No calls match these filters yet." not in [i.value for i in at.info]
    calls = next(d for d in at.dataframe if d.key and d.key.startswith(f"calllogs_{cid}_table_"))
    assert calls.value["Phone Number"].tolist() == [B, B]  # c4 and c3: all of Person 1's calls
    assert (at.text_input(key=f"calllogs_{cid}_search").value, at.multiselect(key=f"calllogs_{cid}_reasons").value,
            at.selectbox(key=f"calllogs_{cid}_successful").value, at.date_input(key=f"calllogs_{cid}_dates").value
            ) == ("", [], "All", ())


def test_import_report_of_the_last_import(tabs):
    # a result kept in the session from before rows_read (the file's rows, blank ones too) was added
    result = {"rows": 3, "imported": 1, "updated": 1, "enrolled": 2, "duplicates_merged": 0, "invalid": 1,
              "rejected": [{"row": 4, "column": "Phone", "value": "call me", "reason": "not a phone number"}]}
    at = run_tab("contact_list", tabs["campaign_id"], **{f"contacts_{tabs['campaign_id']}_import_result": result})
    assert at.success[0].value == "Imported 2 contacts from 3 rows: 2 newly enrolled in this campaign, 0 already in it."
    assert {m.label: m.value for m in at.metric} == {
        "Rows read": "3", "Blank rows skipped": "0", "Rejected rows": "1", "Valid rows": "2", "Duplicates merged": "0",
        "New contacts": "1", "Updated contacts": "1", "Unchanged contacts": "0", "Newly enrolled": "2",
        "Already enrolled": "0"}
    # the short label (the long one ran under its help icon at 1280 px): the help says where they already are
    assert next(m for m in at.metric if m.label == "Already enrolled").help == (
        "Contacts of the file already in this campaign before this import (not enrolled twice)")
    assert at.dataframe[-1].value["Reason"].tolist() == ["not a phone number"]


@pytest.mark.parametrize(
    ("headers", "sample", "maps_to"),
    [
        (["Full Name", "Phone Number", "Plan"], {"Full Name": "Ana", "Phone Number": "+16025550111", "Plan": None},
         ["contact_name", "contact_phone", "custom:plan"]),
        (["Teléfono", "Empresa"], {"Teléfono": 6025550111}, ["contact_phone", "company_name"]),
    ],
)
def test_mapping_table_suggests_targets_like_the_wizard(headers, sample, maps_to):
    from dashboards.tabs.contact_list import mapping_table, target_label

    table, options = mapping_table(headers, sample)
    assert table["Maps to"].to_list() == maps_to
    assert table["Example"].to_list() == [str(sample.get(h) or "") for h in headers]
    assert set(maps_to) <= set(options)
    assert [target_label(t) for t in ("contact_phone", "ignore", "custom:plan")] == [
        "Phone number", "Ignore this column", "Custom property: plan"]


def test_remove_dialog_cancel_keeps_the_contact(tabs):
    cid = tabs["campaign_id"]
    at = _select_contact(tabs, "Person 2")
    at.button(key=f"contacts_{cid}_remove_{tabs['C']}").click()
    rerun(at)
    at.button(key=f"contacts_{cid}_cancel_remove_{tabs['C']}").click()
    rerun(at)
    assert not any(b.key == f"contacts_{cid}_confirm_remove_{tabs['C']}" for b in at.button)  # the dialog closed
    with connect() as conn:
        assert conn.execute("select count(*) from campaign_contacts").fetchone()[0] == 4


def test_downloads_build_the_filtered_workbooks(tabs, tmp_path):
    import polars as pl

    from dashboards.queries.calls import CallFilters
    from dashboards.tabs import call_logs, contact_list

    calls = tmp_path / "calls.xlsx"
    calls.write_bytes(call_logs._export_bytes(tabs["campaign_id"], CallFilters(search="0001")))
    assert pl.read_excel(calls)["Phone Number"].to_list() == [B, B]  # Person 1's two calls only
    contacts = tmp_path / "contacts.xlsx"
    contacts.write_bytes(contact_list._export_bytes(tabs["campaign_id"]))
    sheet = pl.read_excel(contacts)
    assert sorted(sheet["Contact ID"].to_list()) == sorted(tabs[k] for k in "ABCD")
    # the Contact List's own columns, with the figures the tab shows
    person_0 = sheet.filter(pl.col("Contact ID") == tabs["A"]).row(0, named=True)
    assert [person_0[c] for c in ("Attempts", "Connected", "Successful", "Credits", "Duration (s)",
                                  "Last Disconnection")] == [2, 1, 1, 110, 140, "voicemail_reached"]  # codes

