"""In a real browser: a reload with unsaved settings edits asks first (beforeunload); once saved it does not."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tasks.campaigns import get_campaign
from tasks.store import connect
from tests.factories import make_campaign_db

pytestmark = pytest.mark.browser

# Counts the window's beforeunload listeners that ask before leaving (they set the event's returnValue; Streamlit
# adds listeners of its own, which do not): the page keeps at most one.
COUNT_LISTENERS = """
(() => {
    const live = new Set();
    const add = window.addEventListener, remove = window.removeEventListener;
    window.addEventListener = function (type, listener, options) {
        if (type === "beforeunload") live.add(listener);
        return add.call(this, type, listener, options);
    };
    window.removeEventListener = function (type, listener, options) {
        if (type === "beforeunload") live.delete(listener);
        return remove.call(this, type, listener, options);
    };
    window.__askingListeners = () => [...live].filter(f => String(f).includes("returnValue")).length;
})();
"""


def test_a_reload_with_unsaved_edits_asks_first_and_not_once_saved(dashboard, page):
    make_campaign_db(dashboard["db"])
    page.add_init_script(COUNT_LISTENERS)
    dialogs: list[str] = []

    def stay(dialog) -> None:  # "Leave site?" answered Cancel: the page stays as it was
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.goto(f"{dashboard['url']}/campaign?campaign=1")
    page.wait_ready()
    listeners = "window.__askingListeners()"
    assert page.evaluate(listeners) == 0  # nothing unsaved: leaving is not asked about

    # an edit typed by the user (the browser asks only after the user has interacted with the page)
    attempts = page.get_by_role("spinbutton", name="Max Attempts")
    attempts.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type("4")
    page.keyboard.press("Enter")
    page.wait_ready()
    page.get_by_text("You have unsaved changes").wait_for()
    page.wait_for_function(f"{listeners} === 1")
    # the guard's element is hidden: the header's last element (the warning) and the tab bar keep the one 16 px gap
    # between elements (an empty box of its own added a second: 32 px)
    assert page.locator(".st-key-leave_guard").bounding_box() is None
    page.locator("h2", has_text="Spring outreach").scroll_into_view_if_needed()
    warning = page.get_by_test_id("stAlert").filter(has_text="You have unsaved changes").bounding_box()
    tabs = page.get_by_test_id("stTabs").bounding_box()
    assert tabs["y"] - (warning["y"] + warning["height"]) == pytest.approx(16, abs=1)
    page.screenshot(path=dashboard["artifacts"] / "leave-guard-unsaved-header.png")

    # a whole-page rerun with the edit still unsaved (switching tabs) keeps one listener, not two
    page.get_by_role("tab", name="Call Logs").click()
    page.wait_ready()
    page.get_by_role("tab", name="Settings").click()
    page.wait_ready()
    assert page.evaluate(listeners) == 1

    # reload: the browser asks; staying keeps the edit
    with page.expect_event("dialog"):
        page.evaluate("() => location.reload()")
    assert dialogs == ["beforeunload"]
    assert page.get_by_role("spinbutton", name="Max Attempts").input_value() == "4"
    page.get_by_text("You have unsaved changes").wait_for()

    # saved: the listener is gone and a reload goes ahead without asking
    page.get_by_role("button", name="Save Changes", exact=True).click()
    page.get_by_text("Changes saved.").wait_for()
    page.wait_ready()
    page.wait_for_function(f"{listeners} === 0")
    page.reload()
    page.wait_ready()
    expect(page.get_by_role("spinbutton", name="Max Attempts")).to_have_value("4")  # the new session: saved
    assert dialogs == ["beforeunload"]
    with connect(dashboard["db"]) as conn:
        assert get_campaign(conn, 1)["max_attempts"] == 4
