"""Dashboard password protection through AppTest: nothing before sign-in, wrong refused, right in."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards import auth
from dashboards.auth import FREE_TRIES, forget_failures, password_matches, record_try, seconds_to_wait
from tasks.settings import reset_settings
from tests.factories import make_campaign_db

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def protected(db, monkeypatch):
    make_campaign_db(db, name="Secret spring outreach")
    monkeypatch.setenv("CAMPAIGNS_DASHBOARD_PASSWORD", PASSWORD)
    reset_settings()
    forget_failures()  # wrong passwords are counted for the whole process: each test starts afresh
    yield db
    forget_failures()
    reset_settings()


def page_text(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.title, *at.header, *at.subheader, *at.caption, *at.error)]
    parts += [b.label for b in at.button]
    return "\n".join(str(p) for p in parts)


def sign_in(typed: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    at.text_input[0].input(typed)
    at.button[0].click().run()  # the form's submit button
    return at


def test_nothing_is_shown_before_sign_in(protected):
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Dashboard password"]
    assert "Secret spring outreach" not in page_text(at)
    assert len(at.dataframe) == 0 and not any(b.key and b.key.startswith("open_") for b in at.button)


def test_a_wrong_password_is_refused(protected):
    at = sign_in("wrong")
    assert "not right" in page_text(at)
    assert "Secret spring outreach" not in page_text(at)


def test_the_right_password_shows_the_app(protected):
    at = sign_in(PASSWORD)
    assert not at.exception
    assert "Secret spring outreach" in page_text(at)
    assert not at.text_input or "Dashboard password" not in [t.label for t in at.text_input]


def test_without_a_password_the_app_is_open(db):
    make_campaign_db(db, name="Open outreach")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert "Open outreach" in page_text(at)


@pytest.mark.parametrize("typed, ok", [(PASSWORD, True), ("", False), (PASSWORD + " ", False), (PASSWORD[:-1], False)])
def test_password_compare(typed, ok):
    assert password_matches(typed, PASSWORD) is ok


def test_the_compare_is_constant_time(monkeypatch):
    import hmac

    seen = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: seen.append((len(a), len(b))) or real(a, b))
    password_matches("short", "a much longer password")
    assert seen == [(32, 32)]  # digests of equal length: neither content nor length leaks by timing


def test_guessing_is_slowed_for_every_session_after_a_few_wrong_passwords(protected, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    for _ in range(FREE_TRIES):  # each guess from a new session, as a script would
        assert "not right" in page_text(sign_in("guess"))
    # now even the right password waits: a guess made meanwhile is not compared at all
    at = sign_in(PASSWORD)
    assert "Too many wrong passwords: try again in 2 s." in page_text(at)
    assert "Secret spring outreach" not in page_text(at)
    clock[0] += 2
    at = sign_in(PASSWORD)
    assert "Secret spring outreach" in page_text(at)
    assert seconds_to_wait(clock[0]) == 0  # and the count starts again


def test_the_wait_doubles_up_to_five_minutes():
    forget_failures()
    try:
        waits = []
        for _ in range(FREE_TRIES + 10):
            record_try(False, 0.0)
            waits.append(seconds_to_wait(0.0))
        assert waits[:FREE_TRIES + 3] == [0, 0, 0, 0, 2, 4, 8, 16]
        assert waits[-1] == 300
        record_try(True, 0.0)
        assert seconds_to_wait(0.0) == 0
    finally:
        forget_failures()
