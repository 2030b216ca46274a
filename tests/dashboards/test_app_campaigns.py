"""The app shell, the campaign list (search, sort, edit, duplicate, delete) and the wizard, through AppTest."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tasks.campaigns import create_campaign, get_campaign
from tasks.store import connect, transaction
from tests.factories import add_contacts, make_campaign_db

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


def run_app(page: str | None = None, **session) -> AppTest:
    """The app after one run (optionally switched to a page with session values set first)."""
    at = AppTest.from_file(APP, default_timeout=30)
    for name, value in session.items():
        at.session_state[name] = value
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def row_names(at: AppTest) -> list[str]:
    # a label is Markdown with the name's markup characters escaped (Spring outreach \(Copy\)): read as shown
    return [re.sub(r"\\(.)", r"\1", b.label) for b in at.button if b.key and b.key.startswith("open_")]


def spring_and_autumn(db: Path) -> dict:
    """Spring outreach (with a start date, 3 contacts) and a later draft "Autumn draft"."""
    ids = make_campaign_db(db, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    add_contacts(db, ids["campaign_id"], 3)
    with transaction(db) as conn:
        base = get_campaign(conn, ids["campaign_id"])
        data = {k: base[k] for k in ("agent_id", "time_zone", "country", "calling_days", "weekly_schedule")}
        ids["draft_id"] = create_campaign(conn, data | {"name": "Autumn draft"}, datetime(2026, 2, 1, tzinfo=UTC))
    return ids


@pytest.fixture
def listed(db_kept_open) -> dict:
    return spring_and_autumn(db_kept_open)


def test_list_rows_newest_first_with_status_capsules(listed):
    at = run_app()
    assert at.title[0].value == "Campaigns"
    assert row_names(at) == ["Autumn draft", "Spring outreach"]
    capsules = [m.value for m in at.markdown if "vc-capsule" in m.value and "<style>" not in m.value]
    assert ["Draft" in capsules[0], "Paused" in capsules[1] or "Waiting" in capsules[1]] == [True, True]
    # the contacts column counts enrollments
    assert "3" in [m.value for m in at.markdown]


@pytest.mark.usefixtures("db_kept_open")
@pytest.mark.parametrize(("browser", "zone", "dates"), [
    ({}, "UTC", ["Dec 6, 2026", "Dec 5, 2026"]),  # a browser that sends no time zone
    ({"timezone": "Europe/Madrid"}, "Europe/Madrid", ["Dec 6, 2026", "Dec 5, 2026"]),  # the viewer's zone
])
def test_created_dates_are_in_one_zone_so_newest_first_reads_in_order(db, browser, zone, dates):
    # each campaign's own zone showed the newer one (Dec 5, 9 PM in Los Angeles) above the older (Dec 6, 5 AM
    # in Tokyo): newest first looked wrong
    ids = make_campaign_db(db, time_zone="America/Los_Angeles", created_at=datetime(2026, 12, 6, 5, 0, tzinfo=UTC))
    with transaction(db) as conn:
        base = get_campaign(conn, ids["campaign_id"])
        data = {k: base[k] for k in ("agent_id", "calling_days", "weekly_schedule")}
        create_campaign(conn, data | {"name": "Tokyo", "time_zone": "Asia/Tokyo", "country": "JP"},
                        datetime(2026, 12, 5, 20, 0, tzinfo=UTC))
    at = AppTest.from_file(APP, default_timeout=30)
    at.context = browser
    at.run()
    assert not at.exception, at.exception
    assert row_names(at) == ["Spring outreach", "Tokyo"]
    assert any(f">Created ({zone})<" in m.value for m in at.markdown)
    assert [m.value for m in at.markdown if re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}", m.value)] == dates


def test_search_filters_by_name(listed):
    at = run_app()
    at.text_input(key="list_search").set_value("spring").run()
    assert row_names(at) == ["Spring outreach"]
    at.text_input(key="list_search").set_value("nothing like it").run()
    assert row_names(at) == []
    assert at.info[0].value == "No campaign matches your search."


def test_sort_by_name(listed):
    with transaction(listed["db"]) as conn:
        conn.execute("update campaigns set name = 'zebra' where campaign_id = ?", [listed["draft_id"]])
    at = run_app()
    assert row_names(at) == ["zebra", "Spring outreach"]  # default: creation date, newest first
    at.selectbox(key="list_sort").set_value("name").run()
    assert row_names(at) == ["Spring outreach", "zebra"]  # alphabetical, case-insensitive


def test_duplicate_adds_an_inactive_copy_without_contacts(listed):
    at = run_app()
    at.button(key=f"duplicate_{listed['campaign_id']}").click().run()
    assert row_names(at)[0] == "Spring outreach (Copy)"
    assert at.success[0].value == 'Created "Spring outreach \\(Copy\\)" (inactive, no contacts).'
    with connect(listed["db"]) as conn:
        active, contacts = conn.execute(
            "select c.active, (select count(*) from campaign_contacts e where e.campaign_id = c.campaign_id)"
            " from campaigns c where name = 'Spring outreach (Copy)'").fetchone()
    assert (active, contacts) == (False, 0)


def test_delete_asks_for_confirmation_naming_the_campaign(listed):
    cid = listed["campaign_id"]
    at = run_app()
    at.button(key=f"delete_{cid}").click().run()
    dialog_text = " ".join(m.value for m in at.markdown) + " ".join(w.value for w in at.warning)
    assert "Delete **Spring outreach** permanently?" in dialog_text
    assert "call logs and contact associations are deleted" in dialog_text
    # Cancel keeps it
    at.button(key="cancel_delete").click().run()
    assert "Spring outreach" in row_names(at)
    assert not [b for b in at.button if b.key == "confirm_delete"]
    # Confirm deletes it and its enrollments; the CRM contacts stay
    at.button(key=f"delete_{cid}").click().run()
    at.button(key="confirm_delete").click().run()
    assert row_names(at) == ["Autumn draft"]
    assert at.success[0].value == 'Deleted "Spring outreach".'
    with connect(listed["db"]) as conn:
        assert conn.execute("select count(*) from campaign_contacts").fetchone()[0] == 0
        assert conn.execute("select count(*) from contacts").fetchone()[0] == 3


def test_edit_without_start_date_opens_the_wizard_at_scheduling(listed):
    at = run_app()
    at.button(key=f"edit_{listed['draft_id']}").click().run()
    assert at.title[0].value == "New campaign"
    assert at.session_state["wizard_step"] == 2
    assert "Start Date" in [d.label for d in at.date_input]
    assert at.markdown[[m.value for m in at.markdown].index("Campaign: **Autumn draft**")]


def test_edit_with_start_date_opens_the_campaign_page(listed):
    at = run_app()
    at.button(key=f"edit_{listed['campaign_id']}").click().run()
    assert any("Spring outreach" in m.value and "vc-capsule" in m.value for m in at.markdown)
    assert [t.label for t in at.tabs] == ["Settings", "Call Logs", "Contact List", "Metrics"]


@pytest.mark.usefixtures("db_kept_open")
def test_empty_list_invites_to_create(db):
    at = run_app()
    assert at.info[0].value == "No campaigns yet. Create one with New campaign."


def start_wizard(name: str = "Summer push") -> tuple[AppTest, int]:
    """The app's New campaign wizard past its first step (a draft named `name`): (app, campaign id)."""
    at = run_app()
    at.button(key="new_campaign").click().run()
    at.text_input(key="wiz_name").set_value(name)
    at.button(key="wiz_create").click().run()
    assert not at.exception
    return at, at.session_state["wizard_campaign"]


@pytest.mark.usefixtures("db_kept_open")
def test_wizard_creates_a_draft_imports_a_csv_and_sets_the_schedule(db):
    make_campaign_db(db)
    at, cid = start_wizard()
    csv = b"Full Name,Phone Number,Plan\nAna,+16025550111,gold\nBo,not a phone,silver\nCy,(602) 555-0112,gold\n"
    at.file_uploader(key="wiz_upload_0").set_value(("people.csv", csv, "text/csv")).run()
    mapping = at.data_editor[0].value
    assert mapping["Maps to"].tolist() == ["contact_name", "contact_phone", "custom:plan"]
    preview = at.dataframe[1].value  # [0] is the mapping editor
    assert preview.columns.tolist() == ["Row", "Result", "Problem", "Phone number", "Phone (international)", "Name",
                                        "plan"]
    assert preview["Phone number"].tolist() == ["+16025550111", "not a phone", "(602) 555-0112"]
    assert preview["Result"].tolist() == ["Will be imported", "Rejected", "Will be imported"]
    at.button(key="wiz_import").click().run()
    assert at.success[-1].value == "Imported 2 contacts from 3 rows: 2 newly enrolled in this campaign, 0 already in it."
    # the report names its file: it stays below the preview of the next file uploaded
    assert "**Import of people\\.csv**" in [m.value for m in at.markdown]  # the dot escaped for Markdown
    # rows read, blank, rejected, valid, duplicates merged; new, updated, unchanged, newly enrolled, already enrolled
    assert [m.value for m in at.metric] == ["3", "0", "1", "2", "0", "2", "0", "0", "2", "0"]
    assert at.dataframe[-1].value["Row"].tolist() == [3]
    at.button(key="wiz_next").click().run()
    at.date_input(key=f"c{cid}:start_date").set_value(datetime(2026, 6, 1).date())
    at.selectbox(key=f"c{cid}:time_zone").set_value("Europe/Madrid")
    at.text_input(key=f"c{cid}:same_hours").set_value("09:00-12:00, 14:00-18:00").run()
    at.button(key="wiz_finish").click().run()
    assert not at.exception
    with connect(db) as conn:
        stored = get_campaign(conn, cid)
        enrolled = conn.execute("select count(*) from campaign_contacts where campaign_id = ?", [cid]).fetchone()[0]
    assert (stored["name"], str(stored["start_date"]), stored["time_zone"], stored["country"]) == (
        "Summer push", "2026-06-01", "Europe/Madrid", "ES")
    assert stored["weekly_schedule"]["mon"] == [["09:00", "12:00"], ["14:00", "18:00"]]
    assert enrolled == 2
    assert [t.label for t in at.tabs] == ["Settings", "Call Logs", "Contact List", "Metrics"]


def _wizard_at_schedule(db, browser: dict) -> tuple[AppTest, int]:
    """The wizard on its schedule step for a new draft, in a browser sending `browser` (time zone, locale)."""
    make_campaign_db(db)
    at = AppTest.from_file(APP, default_timeout=30)
    at.context = browser
    at.switch_page("pages/wizard.py")
    at.run()
    at.text_input(key="wiz_name").set_value("Summer push")
    at.button(key="wiz_create").click().run()
    cid = at.session_state["wizard_campaign"]
    at.button(key="wiz_next").click().run()
    assert not at.exception, at.exception
    return at, cid


@pytest.mark.usefixtures("db_kept_open")
@pytest.mark.parametrize(("browser", "zone", "country"), [
    ({"timezone": "America/Chicago"}, "America/Chicago", "US"),  # a US manager calls in Central time, not 02:00
    # a zone several countries share: the browser's language region says which (else the manager chooses)
    ({"timezone": "America/Phoenix", "locale": "en-US"}, "America/Phoenix", "US"),
    ({}, "UTC", None),  # a browser that sends no time zone
    ({"timezone": "Mars/Olympus_Mons"}, "UTC", None),  # a zone this machine does not know
])
def test_wizard_schedule_starts_in_the_browsers_time_zone(db, browser, zone, country):
    at, cid = _wizard_at_schedule(db, browser)
    assert at.selectbox(key=f"c{cid}:time_zone").value == zone
    at.date_input(key=f"c{cid}:start_date").set_value(datetime(2026, 6, 1).date()).run()
    at.button(key="wiz_finish").click().run()
    assert not at.exception, at.exception
    with connect(db) as conn:
        stored = get_campaign(conn, cid)
    assert (stored["time_zone"], stored["country"]) == (zone, country)


@pytest.mark.usefixtures("db_kept_open")
def test_wizard_browser_time_zone_stays_editable(db):
    at, cid = _wizard_at_schedule(db, {"timezone": "America/Chicago"})
    at.selectbox(key=f"c{cid}:time_zone").set_value("UTC").run()
    # the manager's choice is kept across Back and Next: the browser's zone is only the first proposal
    at.button(key="wiz_back").click().run()
    at.button(key="wiz_next").click().run()
    assert at.selectbox(key=f"c{cid}:time_zone").value == "UTC"


def test_database_held_by_another_process_shows_the_banner(db, monkeypatch):
    import subprocess
    import sys

    from tasks.settings import reset_settings

    listed = spring_and_autumn(db)  # not the fixture: the other process must be able to take the file

    monkeypatch.setenv("CAMPAIGNS_DASHBOARD_LOCK_TIMEOUT_SECONDS", "0.2")
    reset_settings()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " time.sleep(30)", str(listed["db"])], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        at = run_app()
        assert at.warning[0].value == "The database is busy (a flow is writing); retrying…"
    finally:
        holder.kill()
        holder.wait()
    at.button(key="store_retry").click().run()
    assert row_names(at) == ["Autumn draft", "Spring outreach"]


def test_dashboard_command_serves_the_chosen_database(tmp_path, monkeypatch):
    import subprocess

    from flows.cli import main

    from tasks.store import init_db

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda args, env, cwd: calls.append((args, env["CAMPAIGNS_DB"])) or 0)
    init_db(tmp_path / "x.duckdb")  # a store that does not exist is refused (tests/flows/test_cli_missing_store.py)
    assert main(["--db", str(tmp_path / "x.duckdb"), "dashboard", "--port", "8600"]) == 0
    args, db = calls[0]
    assert args[1:4] == ["-m", "streamlit", "run"] and args[4].endswith("dashboards/app.py")
    assert args[args.index("--server.port") + 1] == "8600"
    assert db == str((tmp_path / "x.duckdb").resolve())


@pytest.mark.parametrize(("status", "background"), [
    ("Draft", "#e5e7eb"),  # grey
    ("Scheduled", "#dbeafe"),  # blue
    ("Running", "#dcfce7"),  # green
    ("Waiting", "#fef3c7"),  # amber
    ("Paused", "#e2e8f0"),  # grey-blue
    ("Manual Running", "#ede9fe"),  # purple
    ("Completed", "#d1fae5"),  # dark green text on mint
    ("Failed", "#fee2e2"),  # red
    ("<b>odd</b>", "#e5e7eb"),  # unknown text is escaped and grey
])
def test_status_capsule_colours(status, background):
    from dashboards.components import capsule_html

    html = capsule_html(status)
    assert f"background:{background}" in html
    assert "<b>" not in html


# the tables' format (NumberColumn(format="localized") of a duration: Intl.DurationFormat, short, English)
@pytest.mark.parametrize(("seconds", "text"), [(None, ""), (0, "0 sec"), (45, "45 sec"), (120, "2 min"),
                                               (125, "2 min, 5 sec"), (3723, "1 hr, 2 min, 3 sec")])
def test_duration_format(seconds, text):
    from dashboards.components import format_duration

    assert format_duration(seconds) == text


@pytest.mark.usefixtures("db_kept_open")
def test_wizard_refuses_a_campaign_without_a_name(db):
    make_campaign_db(db)
    at = run_app("pages/wizard.py")
    at.button(key="wiz_create").click().run()
    assert at.error[0].value == "Campaign Name: is required"  # the field's label on the form, not its name
    assert "wizard_campaign" not in at.session_state
    with connect(db) as conn:
        assert conn.execute("select count(*) from campaigns").fetchone()[0] == 1


@pytest.mark.usefixtures("db_kept_open")
def test_wizard_names_a_field_outside_the_schedule_by_its_settings_label(db):
    make_campaign_db(db)
    at, cid = start_wizard()
    with transaction(db) as conn:  # the draft's outbound number is deleted while the wizard is open
        number_id = get_campaign(conn, cid)["outbound_number_ids"][0]
        conn.execute("delete from phone_numbers where number_id = ?", [number_id])
    at.button(key="wiz_next").click().run()
    at.date_input(key=f"c{cid}:start_date").set_value(datetime(2026, 6, 1).date()).run()
    at.button(key="wiz_finish").click().run()
    assert not at.exception, at.exception
    # the Settings tab's label for the field (its Advanced Settings), not "Outbound number ids"
    assert [e.value for e in at.error] == [f"Outbound Numbers: number(s) {number_id} do not exist"]
    assert at.session_state["wizard_campaign"] == cid  # still in the wizard, nothing saved


def test_an_unexpected_error_is_a_message_not_a_traceback(listed, monkeypatch):
    import dashboards.queries.campaigns

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(dashboards.queries.campaigns, "campaign_page", broken)
    at = run_app()
    assert at.error[0].value == ("Something went wrong while showing this page (RuntimeError: boom). "
                                 "The details are in the dashboard's log.")
