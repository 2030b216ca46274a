"""The voice-campaigns dashboard (`streamlit run dashboards/app.py`, or `campaigns dashboard`)."""

from __future__ import annotations

import logging
import time

import streamlit as st

from dashboards.auth import require_login
from dashboards.components import CSS, markdown_text
from tasks.errors import StoreError, StoreLockedError

_log = logging.getLogger("dashboards")

st.set_page_config(page_title="voice-campaigns", page_icon=":material/campaign:", layout="wide")
st.markdown(CSS, unsafe_allow_html=True)
# Before any page reads data: the shared password or single sign-on, when configured (docs/operations.md).
require_login()

# Streamlit serves the default page at the root only (its url_path is ignored), so the list is also a
# hidden page at /campaigns: links and bookmarks to /campaigns open it instead of "Page not found".
PAGES = [
    st.Page("pages/campaigns.py", title="Campaigns", icon=":material/list:", url_path="", default=True),
    st.Page("pages/campaigns.py", title="Campaigns", icon=":material/list:", url_path="campaigns", visibility="hidden"),
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


def unsaved_reminder(page_path: str) -> None:
    """In the sidebar, beside the navigation: the campaigns with unsaved settings edits, each a link back.

    Each names the button that saves them on the page shown (`page_path`): Finish for the wizard's own
    campaign while in the wizard, Save Changes (the campaign page's, where the link leads) otherwise.
    """
    from dashboards import state

    if not any(isinstance(k, str) and k.endswith(":" + state.EDITS) for k in st.session_state):
        return
    try:
        with state.reading() as conn:
            unsaved = state.unsaved_campaigns(st.session_state, conn)
    except (StoreError, StoreLockedError):
        return  # the page says why the store cannot be read
    in_wizard = st.session_state.get("wizard_campaign") if page_path == "wizard" else None
    for campaign_id, name in unsaved:
        name = markdown_text(name)
        button = "Finish" if campaign_id == in_wizard else "Save Changes"
        st.sidebar.warning(f"Unsaved changes in **{name}**: nothing is saved until you click {button}.",
                           icon=":material/edit_note:")
        st.sidebar.page_link("pages/campaign.py", label=f"Back to {name}", icon=":material/arrow_back:",
                             query_params={"campaign": str(campaign_id), "tab": "Settings"})


page = st.navigation(PAGES, position="sidebar")
try:
    from dashboards.state import check_store

    check_store()  # a missing or empty store file: the one error below instead of the page; nothing created
    page.run()
    unsaved_reminder(page.url_path)
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
