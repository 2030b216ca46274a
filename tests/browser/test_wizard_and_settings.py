"""In a real browser: create a campaign through the wizard with a CSV upload, then save a settings change."""

from __future__ import annotations

import pytest

from tasks.campaigns import get_campaign
from tasks.store import connect
from tests.factories import make_campaign_db

pytestmark = pytest.mark.browser

CSV = ("Full Name,Phone Number,E-mail,Plan\n"
       "Ana Ruiz,+16025550111,ana@example.com,gold\n"
       "Bo Chen,(602) 555-0112,bo@example.com,silver\n"
       "Cy Park,call me,cy@example.com,gold\n")


def _button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def _dimmed(page, name: str) -> bool:
    """Whether a header button is drawn inactive (Save Changes and Discard with nothing unsaved: never disabled)."""
    button = _button(page, name)
    return button.is_enabled() and float(button.evaluate("e => getComputedStyle(e).opacity")) < 0.6


def _open_row_menu(page) -> None:
    """Open the first row's ⋮ menu (a click landing during a rerun can be lost on a busy machine: retry)."""
    for _ in range(3):
        page.locator("[data-testid='stPopover'] button").first.click()
        try:
            _button(page, "Delete").wait_for(timeout=5_000)
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; try the click again
            page.wait_ready()
    _button(page, "Delete").wait_for()


def test_wizard_with_csv_upload_then_a_settings_change(dashboard, page, tmp_path):
    make_campaign_db(dashboard["db"])  # the agent Ava and two outbound numbers
    shots = dashboard["artifacts"]
    upload = tmp_path / "contacts.csv"
    upload.write_text(CSV, encoding="utf-8")

    page.goto(dashboard["url"])
    page.wait_ready()
    page.screenshot(path=shots / "01-campaign-list.png", full_page=True)
    _button(page, "New campaign").click()
    page.wait_ready()

    # Step 1: basic data, then contacts
    page.get_by_label("Campaign Name").fill("Browser push")
    page.get_by_label("Campaign Name").press("Enter")
    page.wait_ready()
    _button(page, "Create campaign and continue").click()
    page.wait_ready()
    page.get_by_text("Draft Browser push created").wait_for()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(upload))
    page.get_by_text("Check how each column is imported").wait_for()
    page.wait_ready()
    page.screenshot(path=shots / "02-wizard-mapping.png", full_page=True)
    _button(page, "Import contacts").click()
    page.get_by_text("Imported 2 contacts from 3 rows: 2 newly enrolled in this campaign, 0 already in it.").wait_for(
        timeout=60_000)
    page.wait_ready()
    page.get_by_text("Rejected rows", exact=True).last.scroll_into_view_if_needed()
    page.screenshot(path=shots / "03-wizard-import-report.png", full_page=True)

    # Step 2: schedule & attempts
    _button(page, "Next: Schedule & attempts").click()
    page.wait_ready()
    # the date field is three spin buttons that move on by themselves as digits are typed
    page.get_by_role("spinbutton", name="year, Start Date").click()
    page.keyboard.type("20300601", delay=50)  # ahead: a past date reads "started", with a note
    page.keyboard.press("Escape")
    page.get_by_text("Campaign:").click()  # leaving the field commits the date
    page.wait_ready()
    page.get_by_text("Your campaign will start on: June 1, 2030").wait_for()
    page.screenshot(path=shots / "04-wizard-schedule.png", full_page=True)
    _button(page, "Finish").click()
    page.wait_ready()
    page.get_by_role("tab", name="Settings").wait_for()

    with connect(dashboard["db"]) as conn:
        cid = conn.execute("select campaign_id from campaigns where name = 'Browser push'").fetchone()[0]
        created = get_campaign(conn, cid)
        enrolled = conn.execute("select count(*) from campaign_contacts where campaign_id = ?", [cid]).fetchone()[0]
    assert (str(created["start_date"]), enrolled) == ("2030-06-01", 2)

    # A settings change: Save Changes is shown active by the edit and writes it
    assert _dimmed(page, "Save Changes") and _dimmed(page, "Discard")
    attempts = page.get_by_role("spinbutton", name="Max Attempts")
    attempts.fill("4")
    attempts.press("Enter")
    page.wait_ready()
    page.get_by_text("You have unsaved changes").wait_for()
    _button(page, "Save Changes").scroll_into_view_if_needed()
    page.screenshot(path=shots / "05-settings-unsaved.png", full_page=True)
    _button(page, "Save Changes").click()
    page.get_by_text("Changes saved.").wait_for()
    page.wait_ready()
    _button(page, "Save Changes").scroll_into_view_if_needed()
    page.screenshot(path=shots / "06-settings-saved.png", full_page=True)
    with connect(dashboard["db"]) as conn:
        assert get_campaign(conn, cid)["max_attempts"] == 4
    assert _dimmed(page, "Save Changes")

    # Typed, then Save Changes at once (no Enter, no wait): the field commits its value as it loses focus, and the
    # click is not lost on a button the last run had drawn inactive; the header says so
    page.goto(f"{dashboard['url']}/campaign?campaign={cid}")
    page.wait_ready()
    page.get_by_role("spinbutton", name="Max Attempts").fill("3")
    _button(page, "Save Changes").click()
    page.wait_ready()
    page.get_by_text("Changes saved.").wait_for()
    with connect(dashboard["db"]) as conn:
        assert get_campaign(conn, cid)["max_attempts"] == 3
    assert _dimmed(page, "Save Changes") and page.get_by_text("You have unsaved changes").count() == 0


def test_list_search_and_delete_with_the_confirmation_dialog(dashboard, page):
    make_campaign_db(dashboard["db"])
    with connect(dashboard["db"]) as conn:
        conn.execute("insert into campaigns select * replace (campaign_id + 100 as campaign_id, 'Autumn calls' as name)"
                     " from campaigns")
    shots = dashboard["artifacts"]
    page.goto(dashboard["url"])
    page.wait_ready()
    page.get_by_placeholder("Search campaigns by name").fill("autumn")
    page.get_by_placeholder("Search campaigns by name").press("Enter")
    page.wait_ready()
    assert _button(page, "Spring outreach").count() == 0
    _open_row_menu(page)
    _button(page, "Delete").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Delete Autumn calls permanently?").wait_for()
    dialog.get_by_text("call logs and contact associations are deleted").wait_for()
    page.screenshot(path=shots / "07-delete-dialog.png")
    dialog.get_by_role("button", name="Delete campaign").click()
    page.get_by_text('Deleted "Autumn calls".').wait_for()
    page.wait_ready()
    assert page.get_by_role("dialog").count() == 0
    with connect(dashboard["db"]) as conn:
        assert [r[0] for r in conn.execute("select name from campaigns").fetchall()] == ["Spring outreach"]


def test_a_campaign_address_opened_first_shows_the_page_inside_the_app(dashboard, page):
    # the first request to a fresh server is a bookmarked campaign page, not the list
    make_campaign_db(dashboard["db"])
    page.goto(f"{dashboard['url']}/campaign?campaign=1")
    page.wait_ready()
    page.get_by_role("tab", name="Settings").wait_for()
    page.locator("h2", has_text="Spring outreach").wait_for()
    assert page.get_by_test_id("stSidebarNav").get_by_text("Campaigns", exact=True).count() == 1
    page.get_by_role("spinbutton", name="Max Attempts").wait_for()  # widgets drawn, not placeholders
    page.screenshot(path=dashboard["artifacts"] / "08-campaign-by-address.png")
