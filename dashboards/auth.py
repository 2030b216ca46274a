"""Dashboard access: a shared password (CAMPAIGNS_DASHBOARD_PASSWORD) or single sign-on (OIDC).

`require_login()` runs at the top of the app, before any page: until the session is signed in it
shows only the sign-in form and stops the script, so no data is read or shown. A password sign-in ends
with the sidebar's Sign out or after CAMPAIGNS_DASHBOARD_IDLE_HOURS without a page run. With an `[auth]`
section in `.streamlit/secrets.toml` Streamlit's own OIDC login (`st.login`) is used instead
(docs/operations.md has the set-up and the reverse-proxy notes).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time

import streamlit as st

from tasks.settings import get_settings

# This session's password sign-in: the time.monotonic() of its last page run; absent when signed out.
SESSION_KEY = "signed_in"
# Guessing: after this many wrong passwords in a row, from any session, each further try waits 2, 4, 8, ...
# seconds (at most MAX_WAIT_SECONDS) after the last wrong one. Counted for the whole dashboard process: a
# script opening many sessions is slowed as much as one. A right password ends the wait and the count.
FREE_TRIES = 5
MAX_WAIT_SECONDS = 300.0


class _Failures:
    """Wrong passwords in a row across the dashboard process, and when the next try is allowed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.next_try_at = 0.0


_failures = _Failures()


def idle_expired(last_run: float, now: float, idle_hours: float) -> bool:
    """Whether a sign-in whose last page run was at `last_run` has been idle too long at `now` (seconds)."""
    return now - last_run > idle_hours * 3600


def forget_failures() -> None:
    """Start counting wrong passwords afresh (tests)."""
    with _failures.lock:
        _failures.count, _failures.next_try_at = 0, 0.0


def seconds_to_wait(now: float) -> float:
    """How long until the next password may be tried (0: now)."""
    with _failures.lock:
        return max(0.0, _failures.next_try_at - now)


def record_try(matched: bool, now: float) -> None:
    """Count a wrong password (and set the wait after FREE_TRIES of them), or forget them after a right one."""
    with _failures.lock:
        if matched:
            _failures.count, _failures.next_try_at = 0, 0.0
            return
        _failures.count += 1
        if _failures.count >= FREE_TRIES:
            wait = min(MAX_WAIT_SECONDS, 2.0 ** (_failures.count - FREE_TRIES + 1))
            _failures.next_try_at = now + wait


def password_matches(typed: str, expected: str) -> bool:
    """Whether the typed password is the configured one, in constant time (lengths not leaked)."""
    return hmac.compare_digest(hashlib.sha256(typed.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def oidc_configured() -> bool:
    """Whether `.streamlit/secrets.toml` has an `[auth]` section for Streamlit's OIDC login."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def sign_in_lapsed() -> bool:
    """Whether a password sign-in this session had has ended (signed out or idle too long), without
    counting this check as activity: for timed fragment reruns, which do not pass `require_login`."""
    if oidc_configured() or get_settings().dashboard_password is None:
        return False
    last_run = st.session_state.get(SESSION_KEY)
    return last_run is None or idle_expired(last_run, time.monotonic(), get_settings().dashboard_idle_hours)


def sign_out() -> None:
    """End this session's sign-in and forget everything it held (unsaved edits, the wizard, uploads)."""
    st.session_state.clear()


def _password_form(expected: str, notice: str | None = None) -> None:
    st.title("voice-campaigns")
    if notice:
        st.info(notice)
    with st.form("sign_in_password"):
        typed = st.text_input("Dashboard password", type="password", key="dashboard_password")
        if st.form_submit_button("Sign in", type="primary"):
            now = time.monotonic()
            wait = seconds_to_wait(now)
            if wait > 0:  # not even compared: a guess made now tells nothing
                st.error(f"Too many wrong passwords: try again in {math.ceil(wait)} s.")
                return
            matched = password_matches(typed, expected)
            record_try(matched, now)
            if matched:
                st.session_state[SESSION_KEY] = now
                st.rerun()
            st.error("That password is not right.")


def require_login() -> None:
    """Stop the page here until this session has signed in (no-op when no protection is configured)."""
    if oidc_configured():
        if not st.user.is_logged_in:
            st.title("voice-campaigns")
            st.button("Sign in", type="primary", on_click=st.login)
            st.stop()
        return
    secret = get_settings().dashboard_password
    if secret is None:
        return
    now, last_run = time.monotonic(), st.session_state.get(SESSION_KEY)
    idle_hours = get_settings().dashboard_idle_hours
    if last_run is not None and not idle_expired(last_run, now, idle_hours):
        st.session_state[SESSION_KEY] = now  # a page run is activity: the idle time starts again
        st.sidebar.button("Sign out", key="sign_out", icon=":material/logout:", on_click=sign_out)
        return
    # an expired sign-in keeps the session's other state: the same password brings the work back
    st.session_state.pop(SESSION_KEY, None)
    notice = f"Signed out after {idle_hours:g} hours without activity." if last_run is not None else None
    _password_form(secret.get_secret_value(), notice)
    st.stop()
