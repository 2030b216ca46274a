"""The campaign header (status, Active, Run, Save Changes/Discard) and the Settings tab, through AppTest."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from streamlit.testing.v1 import AppTest

from dashboards.components import dimmed_buttons
from dashboards.tabs.settings import summary_markdown
from tasks.campaigns import get_campaign, get_campaign_settings, summary_lines
from tasks.store import connect
from tests.factories import make_campaign_db

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


def campaign_page(campaign_id: int) -> AppTest:
    """The app on a campaign's page after one run."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["campaign_id"] = campaign_id
    at.switch_page("pages/campaign.py")
    at.run()
    assert not at.exception, at.exception
    return at


def k(campaign_id: int, field: str) -> str:
    return f"c{campaign_id}:{field}"


def stored(db: Path, campaign_id: int) -> dict:
    with connect(db) as conn:
        return get_campaign(conn, campaign_id)


def save_state(at: AppTest, cid: int) -> tuple[bool, bool, bool]:
    """(Save Changes shown active, Discard shown active, unsaved-changes warning shown).

    Both buttons are always clickable (a click right after typing must not meet a disabled button); while nothing
    is unsaved they are dimmed."""
    warned = any("unsaved changes" in w.value for w in at.warning)
    assert not at.button(key=f"save_{cid}").disabled and not at.button(key=f"discard_{cid}").disabled
    active = not any(h.value == dimmed_buttons(f"save_{cid}", f"discard_{cid}") for h in at.html)
    return (active, active, warned)


def errors_shown(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


@pytest.fixture
def page(campaign_db, db_kept_open) -> tuple[AppTest, int, Path]:
    cid = campaign_db["campaign_id"]
    return campaign_page(cid), cid, campaign_db["db"]


def test_header_shows_name_status_and_tabs(page):
    at, cid, _ = page
    title = at.markdown[[i for i, m in enumerate(at.markdown) if m.value.startswith("## ")][0]].value
    assert "Spring outreach" in title and "vc-capsule" in title
    assert [t.label for t in at.tabs] == ["Settings", "Call Logs", "Contact List", "Metrics"]
    assert at.toggle(key=f"active_{cid}").value is True
    assert not at.toggle(key=f"active_{cid}").disabled


@pytest.mark.usefixtures("db_kept_open")
def test_active_is_disabled_without_a_start_date(db):
    cid = make_campaign_db(db, start_date=None, active=False)["campaign_id"]
    at = campaign_page(cid)
    assert at.toggle(key=f"active_{cid}").disabled
    assert "until the campaign has a Start Date" in at.caption[0].value
    assert "Draft" in [m.value for m in at.markdown if m.value.startswith("## ")][0]


def test_active_toggle_pauses_the_campaign(page):
    at, cid, db = page
    at.toggle(key=f"active_{cid}").set_value(False).run()
    assert stored(db, cid)["active"] is False
    assert at.success[0].value == "Scheduled dialing is off (Paused)."
    assert "Paused" in [m.value for m in at.markdown if m.value.startswith("## ")][0]


@pytest.mark.usefixtures("campaign_db", "db_kept_open")
@pytest.mark.parametrize("address", [None, "abc"])
def test_the_page_without_a_campaign_asks_to_choose_one_and_warns_of_nothing(address):
    # a fresh session: no campaign chosen, no edit; a missing confirmation was taken for this (missing) campaign's
    at = AppTest.from_file(APP, default_timeout=30)
    if address is not None:
        at.query_params["campaign"] = address
    at.switch_page("pages/campaign.py")
    at.run()
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == []
    assert not [b for b in at.button if b.key == "leave_anyway"]
    assert [i.value for i in at.info] == ["Choose a campaign on the Campaigns page."]


@pytest.mark.usefixtures("db_kept_open")
@pytest.mark.parametrize(("end_date", "message", "status"), [
    (None, "Scheduled dialing is off (Paused).", "Paused"),
    # past its end date the campaign stays Completed: the message must not promise Paused
    (date(2020, 1, 31), "Scheduled dialing is off.", "Completed"),
])
def test_active_off_says_what_the_status_becomes(db, end_date, message, status):
    cid = make_campaign_db(db, start_date=date(2020, 1, 6), end_date=end_date)["campaign_id"]
    at = campaign_page(cid)
    at.toggle(key=f"active_{cid}").set_value(False).run()
    assert stored(db, cid)["active"] is False
    assert [s.value for s in at.success] == [message]
    assert status in [m.value for m in at.markdown if m.value.startswith("## ")][0]


def test_save_changes_is_shown_active_only_after_an_edit_and_saves_it(page):
    at, cid, db = page
    assert save_state(at, cid) == (False, False, False)
    at.text_input(key=k(cid, "name")).set_value("Spring outreach 2").run()
    assert save_state(at, cid) == (True, True, True)
    assert stored(db, cid)["name"] == "Spring outreach"  # nothing is saved automatically
    at.button(key=f"save_{cid}").click().run()
    assert stored(db, cid)["name"] == "Spring outreach 2"
    assert save_state(at, cid) == (False, False, False)
    assert at.success[0].value == "Changes saved."


def test_save_changes_with_nothing_unsaved_says_so_and_writes_nothing(page):
    at, cid, db = page
    before = stored(db, cid)
    at.button(key=f"save_{cid}").click().run()
    assert [i.value for i in at.info if "Nothing to save" in i.value] == [
        "Nothing to save: the settings shown are the saved ones."]
    assert not at.success
    assert stored(db, cid) == before  # not even updated_at moved
    assert save_state(at, cid) == (False, False, False)


def test_an_edit_undone_by_hand_is_not_dirty(page):
    at, cid, _ = page
    at.text_input(key=k(cid, "same_hours")).set_value("08:00 - 18:00").run()  # same windows, other spacing
    assert save_state(at, cid) == (False, False, False)


def test_discard_brings_back_the_stored_settings(page):
    at, cid, db = page
    at.number_input(key=k(cid, "max_attempts")).set_value(7).run()
    at.button(key=f"discard_{cid}").click().run()
    assert at.number_input(key=k(cid, "max_attempts")).value == 5
    assert save_state(at, cid) == (False, False, False)
    assert stored(db, cid)["max_attempts"] == 5


@pytest.mark.parametrize(("field", "value", "message"), [
    # per day above the total is refused by the model
    ("attempts_per_day", 6, "Attempts per Day: 6 per day is more than Max Attempts (5)"),
    ("same_hours", "18:00-08:00", "ends before it starts"),
    ("name", "   ", "is required"),
    ("end_date", date(2026, 4, 1), "end date 2026-04-01 is before the start date 2026-04-27"),
])
def test_validation_errors_appear_and_nothing_is_saved(page, field, value, message):
    at, cid, db = page
    before = stored(db, cid)
    widget = {"attempts_per_day": at.number_input, "same_hours": at.text_input, "name": at.text_input,
              "end_date": at.date_input}[field]
    widget(key=k(cid, field)).set_value(value).run()
    at.button(key=f"save_{cid}").click().run()
    assert any(message in e for e in errors_shown(at)), errors_shown(at)
    assert stored(db, cid)["updated_at"] == before["updated_at"]
    assert save_state(at, cid)[0]  # still unsaved


def test_errors_go_away_once_fixed(page):
    at, cid, db = page
    at.number_input(key=k(cid, "attempts_per_day")).set_value(6).run()
    at.button(key=f"save_{cid}").click().run()
    assert errors_shown(at)
    at.number_input(key=k(cid, "attempts_per_day")).set_value(2).run()
    assert errors_shown(at) == []
    at.button(key=f"save_{cid}").click().run()
    assert stored(db, cid)["attempts_per_day"] == 2


def test_summary_card_matches_the_cli_and_follows_edits(page):
    at, cid, db = page
    with connect(db) as conn:
        lines = summary_lines(get_campaign_settings(conn, cid))
    # the CLI's lines, with the product's bold on the days, hours and total calls; the start of this active
    # campaign has passed: it "started", it "will" not start on that date (the CLI's first line says it will)
    assert lines[0] == "Your campaign will start on: April 27, 2026"
    lines[0] = "Your campaign started on: April 27, 2026"
    assert at.info[0].value == "**Campaign summary**  \n" + "  \n".join(summary_markdown(lines))
    assert lines[1] == "It will call Monday to Friday between 08:00 AM - 06:00 PM (America/Phoenix)"
    at.multiselect(key=k(cid, "calling_days")).set_value(["mon", "wed", "fri"]).run()
    assert "It will call **Monday, Wednesday and Friday** between **08:00 AM - 06:00 PM**" in at.info[0].value


@pytest.mark.parametrize(("field", "value"), [("name", "   "), ("rotation_enabled", True)])
def test_summary_card_stays_while_a_setting_it_does_not_tell_is_invalid(page, field, value):
    # a blank name, or rotation on before the second number is chosen, leaves the schedule valid
    at, cid, _ = page
    widget = at.text_input if field == "name" else at.toggle
    widget(key=k(cid, field)).set_value(value).run()
    assert [c.value for c in at.caption if "Campaign summary" in c.value] == []
    assert "It will call **Monday to Friday** between **08:00 AM - 06:00 PM** (America/Phoenix)" in at.info[0].value
    at.text_input(key=k(cid, "same_hours")).set_value("18:00-08:00").run()  # the schedule itself broken: no card
    assert "The Campaign summary appears once the schedule is valid." in [c.value for c in at.caption]
    assert not [i for i in at.info if "Campaign summary" in i.value]


@pytest.mark.parametrize(("zone", "country_shown"), [
    ("America/Phoenix", True),  # US and CA (Creston) share it
    ("Europe/Madrid", False),  # one country: it is implied
    ("Europe/Paris", True),  # tzdata's zone1970.tab: FR and MC share it
    ("UTC", False),
])
def test_country_appears_only_for_shared_time_zones(page, zone, country_shown):
    at, cid, _ = page
    at.selectbox(key=k(cid, "time_zone")).set_value(zone).run()
    assert ("Country" in [s.label for s in at.selectbox]) is country_shown


def test_changing_to_a_shared_zone_requires_choosing_the_country(page):
    at, cid, db = page
    at.selectbox(key=k(cid, "time_zone")).set_value("Europe/Paris").run()
    assert at.selectbox(key=k(cid, "country")).options == ["FR", "MC"]
    at.button(key=f"save_{cid}").click().run()
    assert any("Europe/Paris is used by FR, MC" in e for e in errors_shown(at))
    at.selectbox(key=k(cid, "country")).set_value("FR").run()
    at.button(key=f"save_{cid}").click().run()
    assert (stored(db, cid)["time_zone"], stored(db, cid)["country"]) == ("Europe/Paris", "FR")


def test_rotation_shows_numbers_with_nickname_and_trunk_status(page):
    at, cid, db = page
    assert at.selectbox(key=k(cid, "number")).options == [
        "Phoenix main · +16025550100 · active", "Phoenix backup · +16025550101 · active"]
    at.toggle(key=k(cid, "rotation_enabled")).set_value(True).run()
    numbers = at.multiselect(key=k(cid, "numbers"))
    assert numbers.options == ["Phoenix main · +16025550100 · active", "Phoenix backup · +16025550101 · active"]
    # rotation with one number is refused next to the field
    at.button(key=f"save_{cid}").click().run()
    assert any("rotation is on: choose two or more numbers" in e for e in errors_shown(at))
    at.multiselect(key=k(cid, "numbers")).set_value([1, 2]).run()
    at.button(key=f"save_{cid}").click().run()
    assert (stored(db, cid)["rotation_enabled"], stored(db, cid)["outbound_number_ids"]) == (True, [1, 2])


def test_batch_size_and_per_day_hours_are_saved(page):
    at, cid, db = page
    at.number_input(key=k(cid, "batch_size")).set_value(250)
    at.radio(key=k(cid, "hours_mode")).set_value("per_day").run()
    at.text_input(key=k(cid, "hours_mon")).set_value("08:00-12:00, 13:00-18:00").run()
    at.button(key=f"save_{cid}").click().run()
    after = stored(db, cid)
    assert after["batch_size"] == 250
    assert after["weekly_schedule"]["mon"] == [["08:00", "12:00"], ["13:00", "18:00"]]
    assert after["weekly_schedule"]["tue"] == [["08:00", "18:00"]]


def test_edits_survive_switching_pages(page):
    at, cid, _ = page
    at.text_input(key=k(cid, "name")).set_value("Renamed").run()
    at.switch_page("pages/campaigns.py").run()
    at.switch_page("pages/campaign.py").run()
    assert at.text_input(key=k(cid, "name")).value == "Renamed"
    assert save_state(at, cid) == (True, True, True)


def test_per_day_hours_and_rotation_numbers_survive_switching_pages(page):
    # these widgets are first drawn after their values were loaded (same hours shown, rotation off)
    at, cid, db = page
    at.radio(key=k(cid, "hours_mode")).set_value("per_day").run()
    at.text_input(key=k(cid, "hours_tue")).set_value("10:00-11:00").run()
    at.toggle(key=k(cid, "rotation_enabled")).set_value(True).run()
    at.multiselect(key=k(cid, "numbers")).set_value([1, 2]).run()
    at.switch_page("pages/campaigns.py").run()
    at.switch_page("pages/campaign.py").run()
    assert at.text_input(key=k(cid, "hours_tue")).value == "10:00-11:00"
    assert at.multiselect(key=k(cid, "numbers")).value == [1, 2]
    at.button(key=f"save_{cid}").click().run()
    after = stored(db, cid)
    assert after["weekly_schedule"]["tue"] == [["10:00", "11:00"]]
    assert after["weekly_schedule"]["mon"] == [["08:00", "18:00"]]
    assert (after["rotation_enabled"], after["outbound_number_ids"]) == (True, [1, 2])


# Tuesday 2026-04-28 11:00 in Phoenix (inside the reference campaign's Mon-Fri 08:00-18:00), and Saturday 22:02
INSIDE_SCHEDULE = datetime(2026, 4, 28, 18, 0, tzinfo=UTC)
SATURDAY_NIGHT = datetime(2026, 5, 2, 5, 2, tzinfo=UTC)  # Friday May 1, 22:02 in Phoenix: after hours


@pytest.fixture
def launches(monkeypatch) -> list[int]:
    """The campaigns Run launched (no process started)."""
    import dashboards.state

    started: list[int] = []
    monkeypatch.setattr(dashboards.state, "start_manual_run",
                        lambda campaign_id: started.append(campaign_id) or "a batch is starting (process 7)")
    return started


def test_run_starts_a_background_batch(page, monkeypatch, launches):
    import dashboards.state

    monkeypatch.setattr(dashboards.state, "now", lambda: INSIDE_SCHEDULE)
    at, cid, _ = page
    at.run()
    at.button(key=f"run_{cid}").click().run()
    assert launches == [cid]
    assert at.success[0].value.startswith("Run: a batch is starting (process 7). Its result shows here")


@pytest.mark.parametrize("now, settings, expected", [
    (INSIDE_SCHEDULE, {}, None),
    (SATURDAY_NIGHT, {}, "It is Fri May 01, 10:02 PM in America/Phoenix: 10:02 PM on Friday is outside its calling hours."),
    (datetime(2026, 5, 2, 18, 0, tzinfo=UTC), {},
     "It is Sat May 02, 11:00 AM in America/Phoenix: Saturday is not one of its calling days."),
    (INSIDE_SCHEDULE, {"start_date": date(2026, 5, 4)},
     "It is Tue Apr 28, 11:00 AM in America/Phoenix: the campaign starts on May 04, 2026."),
    (INSIDE_SCHEDULE, {"start_date": date(2026, 4, 1), "end_date": date(2026, 4, 27)},
     "It is Tue Apr 28, 11:00 AM in America/Phoenix: the campaign ended on Apr 27, 2026."),
    (INSIDE_SCHEDULE, {"start_date": None}, "It is Tue Apr 28, 11:00 AM in America/Phoenix: the campaign has no start date."),
])
def test_outside_schedule_says_why_the_schedule_would_not_call(campaign_db, now, settings, expected):
    from dashboards.pages.campaign import outside_schedule

    assert outside_schedule(stored(campaign_db["db"], campaign_db["campaign_id"]) | settings, now) == expected


def test_run_outside_the_schedule_asks_before_dialing(page, monkeypatch, launches):
    # Run placed 25 real calls at 22:02 on a Saturday with no question asked (the schedule is skipped by design)
    import dashboards.state

    monkeypatch.setattr(dashboards.state, "now", lambda: SATURDAY_NIGHT)
    at, cid, _ = page
    at.run()
    at.button(key=f"run_{cid}").click().run()
    assert launches == []
    assert any("outside its calling hours" in w.value and "real contacts get called" in w.value for w in at.warning)
    at.button(key=f"run_cancel_{cid}").click().run()
    assert launches == [] and not any("real contacts get called" in w.value for w in at.warning)
    at.button(key=f"run_{cid}").click().run()
    at.button(key=f"run_confirm_{cid}").click().run()
    assert launches == [cid]
    assert at.success[0].value.startswith("Run: a batch is starting (process 7).")
    assert not any("real contacts get called" in w.value for w in at.warning)


@pytest.mark.usefixtures("db_kept_open")
def test_missing_campaign_is_a_message(db):
    at = campaign_page(42)
    assert errors_shown(at) == ["Campaign 42 does not exist (it may have been deleted)."]


def test_leaving_with_unsaved_edits_warns_first(page):
    at, cid, _ = page
    at.text_input(key=k(cid, "name")).set_value("Renamed").run()
    at.button(key="back_to_list").click().run()
    assert any("nothing is saved until you click Save Changes" in w.value for w in at.warning)
    at.button(key="leave_anyway").click().run()
    assert at.title[0].value == "Campaigns"


def test_leaving_without_edits_goes_straight_to_the_list(page):
    at, _, _ = page
    at.button(key="back_to_list").click().run()
    assert at.title[0].value == "Campaigns"


def test_run_launcher_dials_one_manual_batch_in_the_background(campaign_db):
    import time

    from dashboards.state import start_manual_run
    from tests.factories import add_contacts, open_the_us_rule_all_day

    cid = campaign_db["campaign_id"]
    add_contacts(campaign_db["db"], cid, 2)
    open_the_us_rule_all_day(campaign_db["db"])  # the batch dials on the wall clock; Run skips the schedule, not the law
    assert start_manual_run(cid).startswith("a batch is starting (process ")
    deadline = time.monotonic() + 60
    runs = []
    while time.monotonic() < deadline and not any(state == "completed" for _, state in runs):
        time.sleep(0.5)
        with connect(campaign_db["db"], timeout=10) as conn:
            runs = conn.execute("select kind, state from dial_runs where campaign_id = ?", [cid]).fetchall()
    assert runs == [("manual", "completed")]


@pytest.mark.usefixtures("db_kept_open")
def test_header_shows_manual_running_and_disables_run_while_a_batch_dials(campaign_db):
    import os
    from datetime import UTC, datetime

    from tasks.dialing import HOST
    from tasks.store import transaction

    cid = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        conn.execute("insert into dial_runs (campaign_id, kind, state, started_at, owner_host, owner_pid, heartbeat_at)"
                     " values (?, 'manual', 'running', ?, ?, ?, ?)", [cid, datetime.now(UTC), HOST, os.getpid(), datetime.now(UTC)])
    at = campaign_page(cid)
    assert "Manual Running" in [m.value for m in at.markdown if m.value.startswith("## ")][0]
    assert at.button(key=f"run_{cid}").disabled


def test_saving_while_the_database_is_busy_keeps_the_edits(page, monkeypatch):
    import dashboards.state
    from tasks.errors import StoreLockedError

    at, cid, db = page
    at.text_input(key=k(cid, "name")).set_value("Renamed").run()

    def busy():
        raise StoreLockedError("locked")

    monkeypatch.setattr(dashboards.state, "writing", busy)
    at.button(key=f"save_{cid}").click().run()
    assert not at.exception
    assert errors_shown(at)[0].startswith("The database is busy (a flow is writing); nothing was saved.")
    assert at.text_input(key=k(cid, "name")).value == "Renamed"
    assert stored(db, cid)["name"] == "Spring outreach"


@pytest.mark.usefixtures("db_kept_open")
def test_saving_keeps_the_settings_this_form_does_not_show(db):
    # smart dialing options are set in YAML/CLI; a save from the Settings tab must not reset them
    cid = make_campaign_db(db, smart_ordering=True, number_daily_cap=40, exploration_share=0.5)["campaign_id"]
    at = campaign_page(cid)
    at.text_input(key=k(cid, "name")).set_value("Renamed").run()
    at.button(key=f"save_{cid}").click().run()
    after = stored(db, cid)
    assert (after["name"], after["smart_ordering"], after["number_daily_cap"], after["exploration_share"], after["active"]) == (
        "Renamed", True, 40, 0.5, True)


def _wait_for_the_run(cid: int, seconds: float = 60) -> None:
    import time

    from dashboards.state import run_in_progress

    deadline = time.monotonic() + seconds
    while run_in_progress(cid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not run_in_progress(cid)


def test_run_that_claims_nobody_says_so_once_its_process_has_ended(campaign_db, monkeypatch):
    # no contacts: the run claims nothing; the click must not read as a batch dialing, and the
    # page shows the run's own result line (from its log) once the process is over
    import dashboards.state
    from dashboards.state import manual_run

    monkeypatch.setattr(dashboards.state, "now", lambda: INSIDE_SCHEDULE)  # no question asked before dialing
    cid = campaign_db["campaign_id"]
    at = campaign_page(cid)
    at.button(key=f"run_{cid}").click().run()
    assert "a batch is starting (process " in at.success[0].value
    assert at.button(key=f"run_{cid}").disabled  # from the click until the process ends
    log = manual_run(cid).log
    assert log.parent == campaign_db["db"].parent / "logs" / "runs"
    _wait_for_the_run(cid)
    at.run()
    shown = [m.value for m in at.info if "has ended" in m.value]
    assert len(shown) == 1 and shown[0].endswith(f"has ended: campaign {cid}: claimed 0, placed 0 (no eligible contacts)")
    zone = stored(campaign_db["db"], cid)["time_zone"]
    local = manual_run(cid).started_at.astimezone(ZoneInfo(zone))
    assert zone != "UTC" and local.utcoffset()
    assert shown[0].startswith(f"The Run started at {local:%I:%M:%S %p} ({zone}) has ended")  # the page's zone, not UTC
    assert not at.button(key=f"run_{cid}").disabled
    assert log.read_text().strip() == f"campaign {cid}: claimed 0, placed 0 (no eligible contacts)"
    at.run()
    assert not [m.value for m in at.info if "has ended" in m.value]  # shown once


def test_a_failed_run_reads_as_its_error_line(campaign_db):
    from dashboards import state

    missing = campaign_db["campaign_id"] + 100
    state.start_manual_run(missing)
    _wait_for_the_run(missing)
    assert state.manual_run(missing).outcome() == (False, f"error: campaign {missing} does not exist")


def test_a_second_click_while_the_run_goes_starts_nothing(campaign_db, monkeypatch):
    import subprocess

    from dashboards import state
    from tasks.errors import UserError

    cid = campaign_db["campaign_id"]
    still_dialing = subprocess.Popen(["sleep", "30"])  # stands in for the first click's run
    try:
        monkeypatch.setitem(state._RUNS, (state.db_path(), cid),
                            state.ManualRun(still_dialing, campaign_db["db"].parent / "run.log", state.now()))
        assert campaign_page(cid).button(key=f"run_{cid}").disabled
        with pytest.raises(UserError, match=f"the last run \\(process {still_dialing.pid}\\) is still going"):
            state.start_manual_run(cid)  # a click that reached the server before the button was disabled
    finally:
        still_dialing.kill()
        still_dialing.wait()


def test_run_is_judged_at_the_click_not_at_the_page_drawn_before_it(page, monkeypatch, launches):
    # the header is drawn by the page's last whole run; working inside a tab (each reruns alone) can last past the
    # end of the calling hours, and Run then dialed at night without asking
    import dashboards.state

    monkeypatch.setattr(dashboards.state, "now", lambda: INSIDE_SCHEDULE)
    at, cid, _ = page
    at.run()
    monkeypatch.setattr(dashboards.state, "now", lambda: SATURDAY_NIGHT)
    at.button(key=f"run_{cid}").click().run()
    assert launches == []
    assert any("outside its calling hours" in w.value and "real contacts get called" in w.value for w in at.warning)


def tabs_place(at: AppTest) -> int:
    """Where the tab bar stands among the page's top-level elements (Streamlit names each tab's fragment by it)."""
    places = [i for i, node in at.main.children.items() if getattr(node, "type", None) == "tab_container"]
    assert len(places) == 1, places
    return places[0]


def test_the_tabs_keep_their_place_whatever_the_header_shows(page):
    # the unsaved-changes warning and one-off messages came and went above the tab bar, moving it: a tab's fragment
    # then had another name on the next page run, and an edit sent meanwhile (a quick undo) was dropped
    at, cid, _ = page
    place = tabs_place(at)
    at.text_input(key=k(cid, "name")).set_value("Renamed").run()
    assert save_state(at, cid)[2] and tabs_place(at) == place
    at.button(key="back_to_list").click().run()  # the leave confirmation shows too
    assert tabs_place(at) == place
    at.button(key=f"save_{cid}").click().run()
    assert at.success[0].value == "Changes saved." and tabs_place(at) == place


def test_the_leave_confirmation_ends_once_the_edits_are_saved(page):
    at, cid, _ = page
    at.text_input(key=k(cid, "name")).set_value("Renamed").run()
    at.button(key="back_to_list").click().run()
    assert [b for b in at.button if b.key == "leave_anyway"]
    at.button(key=f"save_{cid}").click().run()
    assert not [b for b in at.button if b.key == "leave_anyway"]
    assert not any("nothing is saved until you click Save Changes" in w.value for w in at.warning)
