"""A tiny Streamlit script that draws one of the Dashboard II tabs, for AppTest (session keys pick it)."""

import importlib

import streamlit as st

st.set_page_config(page_title="voice-campaigns", layout="wide")
tab = st.session_state.get("harness_tab", "call_logs")
campaign_id = st.session_state.get("harness_campaign", 1)
importlib.import_module(f"dashboards.tabs.{tab}").render(campaign_id)
