"""Password mode's session end through AppTest: the sidebar's Sign out, and the idle expiry (clock injected)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from streamlit.testing.v1 import AppTest

from dashboards import auth
from dashboards.auth import forget_failures
from tasks.settings import Settings, reset_settings
from tests.factories import make_campaign_db

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
PASSWORD = "correct horse battery staple"
SECRET = "Secret spring outreach"
HOUR = 3600.0


@pytest.fixture
def protected(db, monkeypatch):
    make_campaign_db(db, name=SECRET)
    monkeypatch.setenv("CAMPAIGNS_DASHBOARD_PASSWORD", PASSWORD)
    monkeypatch.delenv("CAMPAIGNS_DASHBOARD_IDLE_HOURS", raising=False)
    reset_settings()
    forget_failures()  # wrong passwords are counted for the whole process: each test starts afresh
    yield db
    forget_failures()
    reset_settings()


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """The time the sign-in reads (time.monotonic, in seconds); a test moves it forward instead of sleeping."""
    now = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    return now


def page_text(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.title, *at.caption, *at.info, *at.error)]
    return "\n".join(str(p) for p in [*parts, *(b.label for b in at.button)])


def asks_for_the_password(at: AppTest) -> bool:
    return [t.label for t in at.text_input] == ["Dashboard password"] and SECRET not in page_text(at)


def sign_in(at: AppTest) -> AppTest:
    at.text_input(key="dashboard_password").input(PASSWORD)
    at.button[0].click().run()  # the form's submit button, the only one before sign-in
    assert not at.exception, at.exception
    assert SECRET in page_text(at)
    return at


def signed_in() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert asks_for_the_password(at)
    return sign_in(at)


def test_sign_out_in_the_sidebar_returns_to_the_password_prompt(protected, clock):
    at = signed_in()
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    at.session_state["wizard_campaign"] = 7  # work of the session, e.g. a wizard half-way
    at.sidebar.button(key="sign_out").click().run()
    assert asks_for_the_password(at)
    assert not at.info  # signed out by the user: no expiry notice
    # nothing the signed-in session held is left for whoever uses this browser next
    assert "wizard_campaign" not in at.session_state and "signed_in" not in at.session_state
    at.run()
    assert asks_for_the_password(at)
    sign_in(at)


def test_a_session_idle_longer_than_12_hours_asks_for_the_password_again(protected, clock):
    at = signed_in()
    for _ in range(2):  # each page run is activity: 22 hours after the sign-in, 11 of them idle
        clock[0] += 11 * HOUR
        at.run()
        assert SECRET in page_text(at)
    at.session_state["wizard_campaign"] = 7
    clock[0] += 12 * HOUR + 1
    at.run()
    assert asks_for_the_password(at)
    assert [i.value for i in at.info] == ["Signed out after 12 hours without activity."]
    # the same password brings the session's work back (Sign out is the way to forget it)
    sign_in(at)
    assert at.session_state["wizard_campaign"] == 7


def test_the_idle_limit_is_set_by_campaigns_dashboard_idle_hours(protected, clock, monkeypatch):
    monkeypatch.setenv("CAMPAIGNS_DASHBOARD_IDLE_HOURS", "0.5")
    reset_settings()
    at = signed_in()
    clock[0] += 0.5 * HOUR  # exactly the limit: not over it yet
    at.run()
    assert SECRET in page_text(at)
    clock[0] += 0.5 * HOUR + 1
    at.run()
    assert asks_for_the_password(at)
    assert [i.value for i in at.info] == ["Signed out after 0.5 hours without activity."]


def test_wrong_passwords_after_an_expiry_are_still_slowed_down(protected, clock):
    at = signed_in()
    clock[0] += 13 * HOUR
    at.run()
    for _ in range(auth.FREE_TRIES):
        at.text_input(key="dashboard_password").input("guess")
        at.button[0].click().run()
        assert "That password is not right." in page_text(at)
    at.text_input(key="dashboard_password").input(PASSWORD)
    at.button[0].click().run()
    assert "Too many wrong passwords: try again in 2 s." in page_text(at)
    assert asks_for_the_password(at)


@pytest.mark.parametrize("value", ["0", "-1", "twelve"])
def test_an_idle_limit_that_is_not_a_positive_number_is_refused(value, monkeypatch):
    monkeypatch.setenv("CAMPAIGNS_DASHBOARD_IDLE_HOURS", value)
    with pytest.raises(ValidationError):
        Settings()


def test_without_a_password_there_is_nothing_to_sign_out_of(db):
    make_campaign_db(db, name="Open outreach")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert "Open outreach" in page_text(at)
    assert "sign_out" not in [b.key for b in at.button]


def _lapsed_probe() -> None:
    import streamlit as st

    from dashboards import auth as probe_auth

    st.write(f"lapsed={probe_auth.sign_in_lapsed()}")


def test_a_live_titles_timed_refresh_sees_the_expiry_without_counting_as_activity(protected, clock):
    # the campaign page's title refreshes itself every few seconds (a fragment that skips require_login):
    # it asks sign_in_lapsed, which must say True once the sign-in is idle too long, and never renew it
    at = AppTest.from_function(_lapsed_probe, default_timeout=30)
    at.session_state["signed_in"] = clock[0]
    at.run()
    assert at.markdown[0].value == "lapsed=False"
    clock[0] += 11 * HOUR
    at.run()  # checking is no activity: the last page run stays the one 11 hours ago
    assert at.session_state["signed_in"] == clock[0] - 11 * HOUR
    clock[0] += 2 * HOUR
    at.run()
    assert at.markdown[0].value == "lapsed=True"
    del at.session_state["signed_in"]  # signed out
    at.run()
    assert at.markdown[0].value == "lapsed=True"
