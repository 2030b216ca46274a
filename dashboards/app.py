"""The voice-campaigns dashboard (`streamlit run dashboards/app.py`, or `campaigns dashboard`)."""

from __future__ import annotations

import hmac
import logging
import time

import streamlit as st

from dashboards.components import CSS
from tasks.errors import StoreError, StoreLockedError
from tasks.settings import get_settings

_log = logging.getLogger("dashboards")

st.set_page_config(page_title="voice-campaigns", page_icon=":material/campaign:", layout="wide")
st.markdown(CSS, unsafe_allow_html=True)

PAGES = [
    st.Page("pages/campaigns.py", title="Campaigns", icon=":material/list:", url_path="campaigns", default=True),
    st.Page("pages/wizard.py", title="New campaign", icon=":material/add_circle:", url_path="wizard"),
    st.Page("pages/campaign.py", title="Campaign", icon=":material/campaign:", url_path="campaign", visibility="hidden"),
]


@st.fragment(run_every="3s")
def _retry_soon() -> None:
    """While the database is busy, try the whole page again every few seconds."""
    if time.monotonic() - st.session_state.get("store_locked_since", 0.0) >= 2.5:
        st.rerun(scope="app")


def locked_banner() -> None:
    """The banner shown instead of a traceback when a flow holds the database too long."""
    st.warning("The database is busy (a flow is writing); retrying…", icon=":material/hourglass_top:")
    st.caption("The page reloads by itself in a few seconds. If this lasts, a long job may be holding the file.")
    if st.button("Retry now", key="store_retry"):
        st.rerun()
    st.session_state["store_locked_since"] = time.monotonic()
    _retry_soon()


def needs_sign_in() -> bool:
    """Whether this session must first type the dashboard password (CAMPAIGNS_DASHBOARD_PASSWORD)."""
    return get_settings().dashboard_password is not None and not st.session_state.get("signed_in")


def sign_in_form() -> None:
    """The password form shown instead of any page until the right password is typed."""
    st.title("voice-campaigns")
    with st.form("sign_in"):
        typed = st.text_input("Dashboard password", type="password", key="password")
        if st.form_submit_button("Sign in", type="primary"):
            expected = get_settings().dashboard_password.get_secret_value()
            if hmac.compare_digest(typed.encode(), expected.encode()):
                st.session_state["signed_in"] = True
                st.rerun()
            st.error("That password is not right.")


if needs_sign_in():
    st.navigation([st.Page(sign_in_form, title="Sign in", url_path="sign-in")], position="hidden").run()
    st.stop()
page = st.navigation(PAGES, position="sidebar")
try:
    page.run()
except StoreLockedError:
    locked_banner()
except StoreError as error:
    st.error(f"The database cannot be used: {error}", icon=":material/error:")
except Exception as error:  # a bug must not show users a traceback; the log keeps it
    _log.exception("dashboard page failed")
    first_line = (str(error).strip().splitlines() or [""])[0]
    st.error(f"Something went wrong while showing this page ({type(error).__name__}: {first_line}). "
             "The details are in the dashboard's log.", icon=":material/error:")
    if st.button("Try again", key="page_retry"):
        st.rerun()
