"""Dashboard access: a shared password (CAMPAIGNS_DASHBOARD_PASSWORD) or single sign-on (OIDC).

`require_login()` runs at the top of the app, before any page: until the session is signed in it
shows only the sign-in form and stops the script, so no data is read or shown. With an `[auth]`
section in `.streamlit/secrets.toml` Streamlit's own OIDC login (`st.login`) is used instead
(docs/operations.md has the set-up and the reverse-proxy notes).
"""

from __future__ import annotations

import hashlib
import hmac

import streamlit as st

from tasks.settings import get_settings

SESSION_KEY = "signed_in"


def password_matches(typed: str, expected: str) -> bool:
    """Whether the typed password is the configured one, in constant time (lengths not leaked)."""
    return hmac.compare_digest(hashlib.sha256(typed.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def oidc_configured() -> bool:
    """Whether `.streamlit/secrets.toml` has an `[auth]` section for Streamlit's OIDC login."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def _password_form(expected: str) -> None:
    st.title("voice-campaigns")
    with st.form("sign_in_password"):
        typed = st.text_input("Dashboard password", type="password", key="dashboard_password")
        if st.form_submit_button("Sign in", type="primary"):
            if password_matches(typed, expected):
                st.session_state[SESSION_KEY] = True
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
    if secret is None or st.session_state.get(SESSION_KEY):
        return
    _password_form(secret.get_secret_value())
    st.stop()
