"""The browser's own "Leave site?" prompt while the campaign page shows unsaved edits.

A reload, closing the tab or typing another address starts a new Streamlit session, so the session's unsaved
settings were lost without a word; the in-app links (All campaigns) ask in the page instead (pages/campaign.py).
An `st.components.v2` component runs its JavaScript in the app's own document (not an iframe) and is told at each
whole-page run whether the page shows unsaved edits: it keeps at most one `beforeunload` listener on the window,
registered while unsaved and removed when saved or discarded, and when the page stops drawing it (another page).
The listener is kept under one window property, so a rerun or a remount replaces it rather than adding another.
Browsers show their own text and ask only after the user has interacted with the page (typing an edit does).
AppTest draws no component: there it is an element without effect.
"""

from __future__ import annotations

import streamlit as st

KEY = "leave_guard"

# Called by Streamlit when the component mounts and again whenever its data changes (without the previous call's
# cleanup, which it keeps only for the unmount): each call sets the listener from scratch.
_JS = """
const SLOT = "__voiceCampaignsBeforeUnload";

function drop() {
    if (window[SLOT]) {
        window.removeEventListener("beforeunload", window[SLOT]);
        delete window[SLOT];
    }
}

export default function ({ data }) {
    drop();
    if (!(data && data.unsaved)) {
        return undefined;
    }
    const ask = (event) => {
        event.preventDefault();
        event.returnValue = "";  // older Chromium asks only when returnValue is set
        return "";
    };
    window.addEventListener("beforeunload", ask);
    window[SLOT] = ask;
    return () => {
        if (window[SLOT] === ask) {
            drop();
        }
    };
}
"""

_guard = st.components.v2.component("voice_campaigns_leave_guard", js=_JS)

# The component draws nothing, but its element box would still add the page's 1rem gap between elements
# (a style-only st.html goes to Streamlit's event container and takes no room).
_HIDE = f"<style>.st-key-{KEY} {{display: none}}</style>"


def leave_guard(unsaved: bool) -> None:
    """Have the browser ask before leaving the page (reload, close, another address) while `unsaved`."""
    st.html(_HIDE)
    _guard(key=KEY, data={"unsaved": bool(unsaved)})
