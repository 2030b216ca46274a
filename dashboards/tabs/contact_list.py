"""Placeholder: replaced by the Dashboard II engineer."""

import streamlit as st


def render(campaign_id: int) -> None:
    st.caption("Coming soon.")
