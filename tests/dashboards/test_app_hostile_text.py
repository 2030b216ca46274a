"""Text others set (campaign and contact names from files, the provider's summary and recording address, the
page address) is shown as text: no HTML, link, image or formatting of its own (tests/browser/test_hostile_text.py
checks the same in a real browser)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards.components import markdown_text, recording_link
from tasks.store import transaction
from tests.dashboards.tabs_fixture import make_tabs_db
from tests.dashboards.test_app_tabs import run_tab, select_row
from tests.factories import make_campaign_db

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
# An image fetched from someone else's server (who looked, and when), a link dressed as the product's, HTML
HOSTILE_NAME = "![seen](http://tracker.invalid/p.png) [Sign in again](http://evil.invalid) <iframe src=x>"
HOSTILE_SUMMARY = "Wants a callback.\n![seen](http://tracker.invalid/s.png)\n<img src=x onerror=alert(1)> **BOLD**"


def unescaped(markdown: str, pattern: str) -> bool:
    """Whether `pattern` (a regex) occurs in Markdown source outside a backslash escape."""
    return re.search(r"(?<!\\)" + pattern, markdown) is not None


def live_markup(markdown: str) -> bool:
    """Whether Markdown source holds an image, a link or an HTML tag that would be drawn."""
    return any(unescaped(markdown, p) for p in (r"!\[", r"\]\(", r"<[a-z]"))


@pytest.fixture
def hostile_tabs(db_kept_open) -> dict:
    ids = make_tabs_db(db_kept_open)
    with transaction(db_kept_open) as conn:
        conn.execute("update contacts set name = ? where contact_id = ?", [HOSTILE_NAME, ids["A"]])
        conn.execute("update calls set summary = ?, recording_url = ? where call_id = ?",
                     [HOSTILE_SUMMARY, "javascript:alert(document.cookie)", ids["c1"]])
    return ids


def test_call_detail_shows_the_contact_name_and_summary_as_text(hostile_tabs):
    at = run_tab("call_logs", hostile_tabs["campaign_id"])
    select_row(at, f"calllogs_{hostile_tabs['campaign_id']}_table", 4)  # c1, contact A
    title = at.subheader[0].value
    assert title == f"Call {hostile_tabs['c1']} · {markdown_text(HOSTILE_NAME)}" and not live_markup(title)
    shown = [m.value for m in at.markdown]
    summary = next(m for m in shown if "Wants a callback" in m)
    assert not live_markup(summary) and "\\*\\*BOLD\\*\\*" in summary
    assert summary.count("  \n") == 2  # its three lines stay three lines
    recording = next(m for m in shown if m.startswith("**Recording:**"))
    assert not live_markup(recording) and "javascript" in recording  # shown, not a link


@pytest.mark.parametrize("url, linked", [
    ("https://example.invalid/c1.wav", True),
    ("javascript:alert(1)", False),
    ("data:text/html,<script>alert(1)</script>", False),
    ("https://example.invalid/a.wav) [x](http://evil.invalid", False),  # would end the link early
])
def test_only_a_plain_web_address_becomes_a_recording_link(url, linked):
    assert unescaped(recording_link(url), r"\]\(") is linked


def test_contact_list_shows_a_hostile_contact_name_as_text(hostile_tabs):
    at = run_tab("contact_list", hostile_tabs["campaign_id"])
    row = at.dataframe[0].value["Name"].tolist().index(HOSTILE_NAME)  # the table shows it as typed
    select_row(at, f"contacts_{hostile_tabs['campaign_id']}_table", row)
    assert [s.value for s in at.subheader] == [markdown_text(HOSTILE_NAME)]
    at.button(key=f"contacts_{hostile_tabs['campaign_id']}_remove_{hostile_tabs['A']}").click()
    at.run()
    confirmation = next(m.value for m in at.markdown if "will no longer be called" in m.value)
    assert not live_markup(confirmation)


def test_campaign_page_title_escapes_html_in_the_name(db):
    make_campaign_db(db, name='<img src=x onerror="alert(1)">Spring')
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["campaign_id"] = 1
    at.switch_page("pages/campaign.py")
    at.query_params["campaign"] = "1"
    at.run()
    assert not at.exception, at.exception
    title = next(m.value for m in at.markdown if m.value.startswith("## "))
    # the capsule is the one HTML element (unsafe_allow_html); the name's tag is escaped
    assert not unescaped(title, "<img") and markdown_text('<img src=x onerror="alert(1)">Spring') in title


def test_a_contact_address_parameter_is_shown_as_text(db):
    make_campaign_db(db)
    at = AppTest.from_file(APP, default_timeout=30)
    at.switch_page("pages/campaign.py")
    at.query_params["campaign"] = "1"
    at.query_params["contact"] = "[Your session expired: sign in](http://evil.invalid)"
    at.run()
    assert not at.exception, at.exception
    error = next(e.value for e in at.error if "names contact" in e.value)
    assert not live_markup(error)


def test_campaign_list_names_are_shown_as_text(db):
    make_campaign_db(db, name="![seen](http://tracker.invalid/p.png) Spring")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception, at.exception
    labels = [b.label for b in at.button if b.key and b.key.startswith("open_")]
    assert labels == [markdown_text("![seen](http://tracker.invalid/p.png) Spring")]
    at.button(key="delete_1").click().run()
    confirmation = next(m.value for m in at.markdown if m.value.startswith("Delete "))
    assert "tracker" in confirmation and not live_markup(confirmation)
