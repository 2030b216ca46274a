"""In a real browser: filter the call logs, open a call and leave feedback, remove a contact, change the metrics range."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from dashboards.components import format_duration
from tasks.feedback import get_feedback
from tasks.store import connect
from tests.browser.conftest import clipped_texts
from tests.dashboards.tabs_fixture import make_tabs_db

pytestmark = pytest.mark.browser

# The glide data grid draws on a canvas: rows are clicked by position (header and rows are 35 px).
ROW_HEIGHT = 35


def _button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_ready()


def _table(page, index: int = 0):
    return page.locator("[data-testid='stDataFrame']:visible").nth(index)


def _click_row(page, table, row: int) -> None:
    """Select a row of an st.dataframe with single-row selection (the checkbox column on the left)."""
    box = table.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + ROW_HEIGHT * (row + 1) + ROW_HEIGHT / 2)
    page.wait_ready()


def _campaign_page(page, dashboard, campaign_id: int) -> float:
    """Open the campaign page; returns seconds until the Call Logs table was drawn."""
    started = time.perf_counter()
    page.goto(dashboard["url"])
    page.wait_ready()
    _button(page, "Spring outreach").click()
    page.wait_ready()
    _open_tab(page, "Call Logs")
    _table(page).wait_for()
    return time.perf_counter() - started


def test_filter_call_logs_open_a_call_and_leave_feedback(dashboard, page):
    ids = make_tabs_db(dashboard["db"])
    shots = dashboard["artifacts"]
    seconds = _campaign_page(page, dashboard, ids["campaign_id"])
    print(f"time to first Call Logs table: {seconds:.2f} s")
    page.get_by_text("5", exact=True).first.wait_for()
    page.screenshot(path=shots / "tabs-01-call-logs.png", full_page=True)

    search = page.get_by_label("Search").first
    search.fill("person 1")
    search.press("Enter")
    page.wait_ready()
    page.get_by_text("calls · showing 1–2").wait_for()
    page.screenshot(path=shots / "tabs-02-call-logs-filtered.png", full_page=True)

    _click_row(page, _table(page), 0)  # c4, Person 1's newest call
    page.get_by_text(f"Call {ids['c4']} · Person 1").wait_for()
    page.locator("[data-testid='stFeedbackButton']:visible").nth(1).click()  # st.feedback: up, down
    page.wait_ready()
    comment = page.get_by_label("Comment")
    comment.fill("Hung up on the price")
    comment.press("Enter")
    page.wait_ready()
    _button(page, "Save feedback").click()
    page.wait_ready()
    page.get_by_text(f"Call {ids['c4']} · Person 1").scroll_into_view_if_needed()
    page.screenshot(path=shots / "tabs-03-call-detail-feedback.png", full_page=True)
    with connect(dashboard["db"]) as conn:
        feedback = get_feedback(conn, ids["c4"])
    assert (feedback["rating"], feedback["comment"]) == ("down", "Hung up on the price")


def _select_contact(dashboard, page, name: str) -> tuple[dict, object]:
    """The tabs fixture's campaign, its Contact List, `name` selected; returns (ids, screenshot folder)."""
    ids = make_tabs_db(dashboard["db"])
    _campaign_page(page, dashboard, ids["campaign_id"])
    _open_tab(page, "Contact List")
    page.get_by_text("contacts · showing 1–4").wait_for()
    row = ["Person 3", "Person 2", "Person 1", "Person 0"].index(name)  # newest first
    _click_row(page, _table(page), row)
    page.get_by_role("heading", name=name).wait_for()
    return ids, dashboard["artifacts"]


def test_remove_a_contact(dashboard, page):
    page.set_viewport_size({"width": 1280, "height": 1000})  # the narrowest width the dashboard is made for
    ids, shots = _select_contact(dashboard, page, "Person 2")
    page.screenshot(path=shots / "tabs-04-contact-selected.png", full_page=True)
    # no label cut to "…" (the header's Run and the row's Remove from Campaign were, at 1280 px)
    assert clipped_texts(page) == []
    _button(page, "Remove from Campaign").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("will no longer be called").wait_for()
    page.screenshot(path=shots / "tabs-05-remove-dialog.png")
    dialog.get_by_role("button", name="Remove", exact=True).click()
    page.wait_ready()
    page.get_by_text("Person 2 was removed from the campaign.").wait_for()
    page.screenshot(path=shots / "tabs-06-contact-removed.png", full_page=True)
    with connect(dashboard["db"]) as conn:
        enrolled = conn.execute("select count(*) from campaign_contacts").fetchone()[0]
        crm = conn.execute("select count(*) from contacts").fetchone()[0]
    assert (enrolled, crm) == (3, 4)


def test_a_contact_jumps_to_its_call_logs_and_an_address_opens_a_contacts_history(dashboard, page):
    ids, shots = _select_contact(dashboard, page, "Person 1")
    _button(page, "Show in Call Logs").click()
    page.wait_ready()
    # the Call Logs tab is open, showing Person 1's two calls only (the tab's own run hands over to a whole-page
    # run, which opens the tab: the page can read "not running" in between, so wait for what it shows first)
    page.get_by_text("Showing the calls of Person 1 only.").wait_for()
    page.get_by_text("calls · showing 1–2").wait_for()
    assert page.get_by_role("tab", name="Call Logs").get_attribute("aria-selected") == "true"
    page.screenshot(path=shots / "tabs-07-contact-call-logs.png", full_page=True)

    # what a row's eye opens in a new tab (a new session): the page's address with the tab and the contact
    page.goto(f"{dashboard['url']}/campaign?campaign={ids['campaign_id']}&tab=Call+Logs&contact={ids['A']}")
    page.wait_ready()
    page.get_by_text("Showing the calls of Person 0 only.").wait_for()
    page.get_by_text("calls · showing 1–2").wait_for()
    assert page.get_by_role("tab", name="Call Logs").get_attribute("aria-selected") == "true"
    assert "contact=" not in page.url  # applied once: "Show all calls" then shows every call
    _table(page).wait_for()
    page.screenshot(path=shots / "tabs-08-contact-history-address.png", full_page=True)
    _button(page, "Show all calls").click()
    page.wait_ready()
    page.get_by_text("calls · showing 1–5").wait_for()


def test_import_contacts_from_the_contact_list(dashboard, page, tmp_path):
    ids = make_tabs_db(dashboard["db"])
    shots = dashboard["artifacts"]
    upload = tmp_path / "more.csv"
    upload.write_text("Nombre,Teléfono,Plan\nAna Ruiz,(602) 555-0111,gold\nBo Chen,+16025550112,silver\n"
                      "Cy Park,call me,gold\n", encoding="utf-8")
    _campaign_page(page, dashboard, ids["campaign_id"])
    _open_tab(page, "Contact List")
    page.get_by_text("Import contacts (CSV or XLSX)").click()
    page.locator("[data-testid='stExpander']:visible [data-testid='stFileUploaderDropzoneInput']").set_input_files(str(upload))
    page.get_by_text("Check how each column is imported").wait_for()
    page.wait_ready()
    page.get_by_text("Check how each column is imported").scroll_into_view_if_needed()
    page.screenshot(path=shots / "tabs-10-import-mapping.png", full_page=True)
    _button(page, "Import contacts").click()
    page.get_by_text("Imported 2 contacts from 3 rows: 2 newly enrolled in this campaign, 0 already in it.").wait_for(
        timeout=60_000)
    page.wait_ready()
    page.get_by_text("contacts · showing 1–6").wait_for()
    page.get_by_text("Rejected rows", exact=True).last.scroll_into_view_if_needed()
    page.screenshot(path=shots / "tabs-11-import-report.png", full_page=True)
    with connect(dashboard["db"]) as conn:
        assert conn.execute("select count(*) from campaign_contacts").fetchone()[0] == 6


def test_change_the_metrics_date_range(dashboard, page):
    page.set_viewport_size({"width": 1280, "height": 1000})
    ids = make_tabs_db(dashboard["db"])
    shots = dashboard["artifacts"]
    _campaign_page(page, dashboard, ids["campaign_id"])
    _open_tab(page, "Metrics")
    cards = page.locator("[data-testid='stMetric']:visible")
    cards.first.wait_for()
    assert clipped_texts(page) == []  # five KPI cards in a row: "Avg. Call Duration" was cut to "Avg. Call Dura…"
    # nor a card's value: a long one wraps instead of running out of the card (Avg. Call Duration reads "1m 22s")
    assert cards.evaluate_all("cards => cards.map(c => c.querySelector('[data-testid=stMetricValue]'))"
                              ".filter(v => v.scrollWidth > v.clientWidth + 1).map(v => v.innerText)") == []
    assert "140" in cards.nth(0).inner_text()  # Credits Used, whole campaign
    page.screenshot(path=shots / "tabs-07-metrics.png", full_page=True)
    # hovering a day shows the breakdown tooltip
    chart = page.locator("[data-testid='stVegaLiteChart']:visible").first
    box = chart.bounding_box()
    page.mouse.move(box["x"] + 60, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + 64, box["y"] + box["height"] / 2)
    page.wait_for_timeout(500)
    page.screenshot(path=shots / "tabs-07b-metrics-hover.png")
    # a legend entry hides its line and a second click shows it again (the spec: "show or hide that line"); a click
    # kept only that line and faded the others, and a second one changed nothing
    lines = ("() => [...document.querySelectorAll('[data-testid=stVegaLiteChart] svg .mark-line path')]"
             ".map(p => p.getAttribute('opacity'))")
    shown = page.evaluate(lines)
    assert len(shown) > 1 and set(shown) == {"1"}
    entry = chart.get_by_text("User Hangup", exact=True)
    entry.click()
    page.wait_for_timeout(300)
    assert sorted(page.evaluate(lines)) == ["0"] + ["1"] * (len(shown) - 1)
    entry.click()
    page.wait_for_timeout(300)
    assert page.evaluate(lines) == shown

    # the range is two dates of three spin buttons each, which move on by themselves as digits are typed
    for end in ("start", "end"):
        page.get_by_role("spinbutton", name=f"year, Date range {end} date").last.click()
        page.keyboard.type("20260428", delay=50)
    page.keyboard.press("Escape")
    page.get_by_role("heading", name="Contact Funnel").click()  # leaving the field commits the range
    page.wait_ready()
    page.get_by_text("A large gap between Total Contacts and Connected").wait_for()
    assert "40" in cards.nth(0).inner_text()
    page.screenshot(path=shots / "tabs-08-metrics-one-day.png", full_page=True)
    page.get_by_text("A large gap between Connected and Successful").scroll_into_view_if_needed()
    page.screenshot(path=shots / "tabs-09-metrics-funnel.png")


_FONT = ["font-family", "font-size", "font-weight"]
_FONT_JS = "(e, names) => names.map(n => getComputedStyle(e).getPropertyValue(n))"


def test_copy_contact_id_reads_in_the_font_of_the_other_buttons(dashboard, page):
    """The iframe's Copy Contact ID button has the font of st.button's label (family, size, weight), and that font is
    loaded in the iframe (it named "Source Sans Pro", which the iframe lacks: the browser's fallback drew it larger)."""
    _select_contact(dashboard, page, "Person 2")
    label = _button(page, "Edit Contact").locator("[data-testid='stMarkdownContainer']")
    reference = label.evaluate(_FONT_JS, _FONT)
    frame = page.frame_locator("iframe").first
    copy = frame.get_by_role("button", name="Copy Contact ID")
    copy.wait_for()
    page.wait_for_timeout(500)  # the iframe's script takes the page's font faces once loaded
    assert copy.evaluate(_FONT_JS, _FONT) == reference
    family = reference[0].split(",")[0].strip().strip("'\"")
    # the family is not only named but drawn: the iframe has the app's font face, loaded
    assert copy.evaluate("(e, family) => document.fonts.load(`14px \"${family}\"`).then(f => f.length > 0)", family)
    # and the text is as wide as the same text in the page's font: drawn in it, not in a fallback
    widths = [locator.evaluate("(e, font) => { const c = document.createElement('canvas').getContext('2d');"
                               " c.font = font; return Math.round(c.measureText('Copy Contact ID').width); }",
                               f"{reference[2]} {reference[1]} {reference[0]}") for locator in (label, copy)]
    assert widths[0] == widths[1]



# What the grid does with a typed duration and NumberColumn(format="localized") (Streamlit 1.67's
# arrowFormatUtils): its non-zero days, hours, minutes and seconds through Intl.DurationFormat, style "short".
_GRID_DURATION_JS = """seconds => seconds.map(s => {
    const parts = {days: Math.floor(s / 86400), hours: Math.floor(s % 86400 / 3600), minutes: Math.floor(s % 3600 / 60),
                   seconds: s % 60};
    for (const k in parts) if (!parts[k]) delete parts[k];
    const zero = Object.keys(parts).length === 0;
    if (zero) parts.seconds = 0;
    return new Intl.DurationFormat(navigator.languages, zero ? {style: "short", secondsDisplay: "always"}
                                                              : {style: "short"}).format(parts);
})"""


def test_durations_and_reasons_read_in_the_browser_as_the_tables_draw_them(dashboard, page):
    """The call detail's duration (format_duration) is the text the grid draws for a duration, and the Call Logs
    table holds reason labels (the Avg. Call Duration card is shorter: "1m 22s", the tables' text in its help)."""
    ids = make_tabs_db(dashboard["db"])
    _campaign_page(page, dashboard, ids["campaign_id"])
    seconds = [0, 20, 45, 60, 104, 120, 3600, 3723, 90061]
    assert page.evaluate(_GRID_DURATION_JS, seconds) == [format_duration(s) for s in seconds]
    # the grid's accessible copy of its cells: labels, as the spec writes them ("User Hangup"), not codes
    grid = page.locator("[data-testid='stDataFrame'] table [role='gridcell']")
    grid.filter(has_text="User Hangup").first.wait_for(state="attached")
    cells = grid.all_inner_texts()
    assert {"User Hangup", "Voicemail Reached", "Dial No Answer", "Agent Hangup"} <= set(cells)
    assert "user_hangup" not in cells


def test_a_selected_call_is_a_call_not_a_row_position(dashboard, page):
    # a selection is a row position for Streamlit: the audit's detail and feedback form switched to the call that
    # sat at the same row after a search
    ids = make_tabs_db(dashboard["db"])
    shots = dashboard["artifacts"]
    _campaign_page(page, dashboard, ids["campaign_id"])
    page.get_by_text("calls · showing 1–5").wait_for()
    _click_row(page, _table(page), 0)  # c4, Person 1's newest call
    heading = page.get_by_text(f"Call {ids['c4']} · Person 1")
    heading.wait_for()
    page.get_by_role("tabpanel", name="Call Logs").get_by_text("Descending").click()  # oldest first: c4 is now the last row, still selected
    page.wait_ready()
    heading.wait_for()
    page.screenshot(path=shots / "tabs-09-selection-after-sort.png", full_page=True)
    search = page.get_by_label("Search").first
    search.fill("person 0")  # c4 is not shown; c1 is where c4 was before the sort
    search.press("Enter")
    page.wait_ready()
    page.get_by_text("calls · showing 1–2").wait_for()
    page.get_by_text("Select a row to see the call's analysis").wait_for()
    assert page.get_by_text(" · Person 0").count() == 0  # no detail of another call
    page.screenshot(path=shots / "tabs-10-selection-after-search.png", full_page=True)
    _click_row(page, _table(page), 1)  # the new table selects as any other: c2, Person 0's newest call
    page.get_by_text(f"Call {ids['c2']} · Person 0").wait_for()


def test_show_in_call_logs_clears_the_call_logs_filters(dashboard, page):
    # the audit's case: a search left in the Call Logs hid every call of the contact ("0 calls")
    ids = make_tabs_db(dashboard["db"])
    shots = dashboard["artifacts"]
    _campaign_page(page, dashboard, ids["campaign_id"])
    search = page.get_by_label("Search").first
    search.fill("person 0")
    search.press("Enter")
    page.wait_ready()
    page.get_by_text("calls · showing 1–2").wait_for()
    _open_tab(page, "Contact List")
    page.get_by_text("contacts · showing 1–4").wait_for()
    _click_row(page, _table(page), 2)  # Person 1 (newest first)
    page.get_by_role("heading", name="Person 1").wait_for()
    _button(page, "Show in Call Logs").click()
    page.wait_ready()
    page.get_by_text("Showing the calls of Person 1 only.").wait_for()
    page.get_by_text("calls · showing 1–2").wait_for()
    # the widget's value reaches the browser a moment after the page's text (a loaded CI machine read it first)
    expect(page.get_by_label("Search").first).to_have_value("", timeout=10_000)
    page.screenshot(path=shots / "tabs-11-show-in-call-logs-after-a-search.png", full_page=True)
    page.get_by_role("tabpanel", name="Call Logs").get_by_text("Descending").click()  # another rerun: the browser does not send the old search back
    page.wait_ready()
    page.get_by_text("calls · showing 1–2").wait_for()
    assert page.get_by_label("Search").first.input_value() == ""
    _button(page, "Show all calls").click()
    page.wait_ready()
    page.get_by_text("calls · showing 1–5").wait_for()
