"""Smart dialing in the dashboard through AppTest: the best-time heatmap, number health with Put back in
rotation, the Forecast button and the Contact List's Next Allowed and Suppression columns."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dashboards import state
from dashboards.components import format_local, markdown_text
from tasks.best_time import refresh_best_time_stats
from tasks.campaigns import set_number_status
from tasks.compliance import add_dnc
from tasks.number_health import pause_number
from tasks.store import connect, transaction
from tests.dashboards.tabs_fixture import NOW, make_tabs_db
from tests.dashboards.test_app_tabs import rerun, run_tab


@pytest.fixture
def tabs(db_kept_open) -> dict:
    return make_tabs_db(db_kept_open)


# ----------------------------------------------------------------------------- Metrics: best time to call

def test_heatmap_renders_every_cell_with_counts(tabs):
    with transaction(tabs["db"]) as conn:
        refresh_best_time_stats(conn, NOW, tabs["campaign_id"])
    at = run_tab("metrics", tabs["campaign_id"])
    assert [s.value for s in at.subheader] == ["Calls Made", "Contact Funnel", "Best Time to Call"]
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3
    spec = json.loads(charts[2].proto.spec)
    assert spec["layer"][1]["encoding"]["color"]["field"] == "rate_pct"
    assert [t["title"] for t in spec["layer"][0]["encoding"]["tooltip"]] == [
        "Day", "Hour", "Calls", "Connected", "Connection rate %", "Note"]
    # one call in each of four hours: all four are flagged as too few to trust
    assert any(c.value.startswith("4 of 4 hours with calls have fewer than 10 calls") for c in at.caption)
    assert not any(c.value.startswith("Best hours") for c in at.caption)  # none has enough calls


def test_heatmap_names_the_best_hours(tabs):
    with transaction(tabs["db"]) as conn:
        conn.executemany("insert into best_time_stats values (?, ?, ?, ?, ?, ?)",
                         [[tabs["campaign_id"], 1, 10, 20, 12, NOW], [tabs["campaign_id"], 3, 17, 40, 8, NOW]])
    at = run_tab("metrics", tabs["campaign_id"])
    assert "Best hours so far: Tue 10:00 (60% of 20 calls); Thu 17:00 (20% of 40 calls)" in [c.value for c in at.caption]
    # the aggregation's moment names its clock (the campaign's), as the page's other times do
    assert any(" (America/Phoenix). Hover a cell" in c.value for c in at.caption), [c.value for c in at.caption]


def test_heatmap_without_calls_says_so(tabs):
    at = run_tab("metrics", tabs["campaign_id"])  # best_time_stats never rebuilt
    assert "Best Time to Call" in [s.value for s in at.subheader]
    assert len(at.get("vega_lite_chart")) == 2
    assert any(i.value.startswith("No finished calls yet") for i in at.info)


# ----------------------------------------------------------------------------- Settings: number health

def test_put_back_in_rotation_restores_the_number(tabs):
    with transaction(tabs["db"]) as conn:
        number_id = conn.execute("select outbound_number_ids[1] from campaigns").fetchone()[0]
        pause_number(conn, number_id, NOW, "connection rate 2.0% over 50 calls in 24 h (minimum 5%)")
    at = run_tab("settings", tabs["campaign_id"])
    reason = markdown_text("connection rate 2.0% over 50 calls in 24 h (minimum 5%)")
    assert any(f"is out of rotation: {reason}" in w.value for w in at.warning)
    assert any("Out of rotation" in m.value and reason in m.value for m in at.markdown)
    picker = at.selectbox(key=f"c{tabs['campaign_id']}:number")
    assert picker.options == ["Phoenix main · +16025550100 · active · out of rotation",
                              "Phoenix backup · +16025550101 · active"]
    at.button(key=f"restore_{tabs['campaign_id']}_{number_id}").click()
    rerun(at)
    with connect(tabs["db"]) as conn:
        paused = conn.execute("select rotation_paused_at from phone_numbers where number_id = ?", [number_id]).fetchone()
        actions = conn.execute("select action from number_status_changes order by changed_at").fetchall()
    assert paused == (None,) and actions == [("paused",), ("restored",)]
    assert [s.value for s in at.success] == [markdown_text("Phoenix main · +16025550100") + " is back in rotation."]
    assert not any("out of rotation" in w.value for w in at.warning)
    assert f"restore_{tabs['campaign_id']}_{number_id}" not in [b.key for b in at.button]
    # no calls from the number in 7 days: the cap is still stated
    assert any(c.value.startswith("No calls from these numbers") for c in at.caption)
    assert any(c.value.startswith("Daily cap: 100 calls per number") for c in at.caption)


def test_a_number_whose_trunk_is_not_active_is_shown_as_not_used(tabs):
    # healthy (never paused) but its SIP trunk is down: the dialer skips it, so no green "In rotation"
    with transaction(tabs["db"]) as conn:
        number_id = conn.execute("select outbound_number_ids[1] from campaigns").fetchone()[0]
        set_number_status(conn, number_id, "inactive")
    at = run_tab("settings", tabs["campaign_id"])
    [row] = [m.value for m in at.markdown if markdown_text("Phoenix main · +16025550100") in m.value]
    assert row.startswith(":orange-badge[Not used] ") and "SIP trunk inactive: skipped when dialing" in row
    assert "In rotation" not in row
    assert f"restore_{tabs['campaign_id']}_{number_id}" not in [b.key for b in at.button]  # nothing to restore
    [advanced] = [e for e in at.expander if e.label == "Advanced Settings"]
    assert advanced.proto.expanded  # it opens, as for a number out of rotation


def test_number_health_table_per_day(tabs):
    with transaction(tabs["db"]) as conn:
        conn.execute("update calls set from_number = '+16025550100', queued_at = ? + (queued_at - ?)",
                     [state.now(), NOW])  # the fixture's calls moved to the last days
    at = run_tab("settings", tabs["campaign_id"])
    table = at.dataframe[0].value  # the only table of the Settings tab
    assert list(table.columns) == ["Number", "Day", "Calls", "Connection rate %", "Short calls %", "Spam marks",
                                   "Daily cap used %"]
    assert table["Calls"].sum() == 5 and set(table["Number"]) == {"Phoenix main · +16025550100"}
    assert table["Day"].str.fullmatch(r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2}").all()  # "Wed Dec 02"


# ----------------------------------------------------------------------------- Settings: forecast

def test_forecast_button_shows_the_figures(tabs, monkeypatch):
    fixed = datetime(2026, 5, 4, 16, 0, tzinfo=UTC)  # Monday 09:00 Phoenix
    monkeypatch.setattr(state, "now", lambda: fixed)
    at = run_tab("settings", tabs["campaign_id"])
    assert not [m for m in at.metric if m.label == "Calls"]  # nothing is simulated before the button
    at.button(key=f"forecast_button_{tabs['campaign_id']}").click()
    at.run(timeout=120)
    assert not at.exception, at.exception
    # what tasks.forecast.forecast returned for the fixed time (one simulation: the session keeps it)
    _version, expected = at.session_state[f"forecast_{tabs['campaign_id']}"]
    assert (expected["campaign_id"], expected["start"]) == (tabs["campaign_id"], fixed)
    values = {m.label: m.value for m in at.metric}
    assert values == {
        "Expected completion": format_local(expected["completion"], "America/Phoenix", with_time=False),
        "Calls": f"{expected['calls']:,}", "Connected contacts": f"{expected['connected_contacts']:,}",
        "Successful contacts": f"{expected['successful_contacts']:,}", "Credits": f"{expected['credits']:,}",
    }
    assert expected["calls"] > 4 and expected["completion"] > fixed  # the 4 attempts made, and simulated ones
    # a rerun shows the same forecast without simulating again; a change to the data marks it stale
    rerun(at)
    assert {m.label: m.value for m in at.metric} == values
    with transaction(tabs["db"]) as conn:
        conn.execute("update campaign_contacts set attempts = attempts + 1")
    rerun(at)
    assert any("changed since this forecast" in c.value for c in at.caption)


def test_a_forecast_stopped_by_a_hold_has_no_completion_date():
    # a paused number stopped the simulation with 275 contacts left: the card gave the last call so far as the date
    from dashboards.tabs.settings import completion_card, forecast_caption

    result = {"completion": datetime(2026, 5, 7, 15, 6, tzinfo=UTC), "horizon_days": 120, "held_back_contacts": 275,
              "held_by": "outbound number 3 is out of rotation: 3 spam marks in 81 calls in 24 h"}
    assert completion_card(result, "America/Phoenix") == "None while held"
    assert completion_card({**result, "held_by": None}, "America/Phoenix") == format_local(
        result["completion"], "America/Phoenix", with_time=False)
    assert completion_card({**result, "completion": None}, "America/Phoenix") == "Not within 120 days"
    caption = forecast_caption({**result, "start": result["completion"], "seed": 1, "contacts": 300,
                                "remaining_contacts": 275, "connected_contacts": 10, "forecast_connection_rate": None,
                                "observed_connection_rate": 0.2}, "America/Phoenix")
    assert caption.endswith("Dialing was held when the simulation stopped: outbound number 3 is out of rotation: 3 spam "
                            "marks in 81 calls in 24 h.")


# ----------------------------------------------------------------------------- Contact List: next allowed

def test_contact_list_next_allowed_and_suppression(tabs):
    retry_at = datetime(2030, 1, 7, 17, 0, tzinfo=UTC)  # a Monday, 10:00 in Phoenix: inside every window
    with transaction(tabs["db"]) as conn:
        conn.execute("update campaign_contacts set next_call_at = ? where contact_id = ?", [retry_at, tabs["B"]])
        conn.execute("update campaign_contacts set finished_at = ?, finished_reason = 'successful'"
                     " where contact_id = ?", [NOW, tabs["A"]])
        add_dnc(conn, ["+16025550003"], NOW, reason="asked not to be called")
    at = run_tab("contact_list", tabs["campaign_id"])
    table = at.dataframe[0].value.set_index("Name")
    assert table.loc["Person 1", ["Next Allowed", "Next Allowed Reason", "Suppression"]].tolist() == [
        "Jan 07, 2030 10:00 AM", "Retry policy", ""]
    assert table.loc["Person 0", ["Next Allowed", "Next Allowed Reason"]].tolist() == ["", "Finished: successful"]
    assert table.loc["Person 3", ["Next Allowed", "Suppression"]].tolist() == [
        "", "Do not call (global list: asked not to be called)"]
    # never called: now inside the hours, else the next opening
    assert table.loc["Person 2", "Next Allowed"] == "Now" or table.loc["Person 2", "Next Allowed Reason"] == "Campaign hours"


def test_number_nickname_and_reason_are_shown_literally(tabs):
    with transaction(tabs["db"]) as conn:
        number_id = conn.execute("select outbound_number_ids[1] from campaigns").fetchone()[0]
        conn.execute("update phone_numbers set nickname = '**Main** [x](javascript:alert(1)) :red[y]' where number_id = ?",
                     [number_id])
        pause_number(conn, number_id, NOW, "<b>spam</b> _marks_")
    at = run_tab("settings", tabs["campaign_id"])
    row = next(m.value for m in at.markdown if "Out of rotation" in m.value)
    assert r"\*\*Main\*\* \[x\]\(javascript\:alert\(1\)\) \:red\[y\]" in row
    assert r"\<b\>spam\</b\> \_marks\_" in row
