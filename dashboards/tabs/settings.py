"""The Settings tab: Basic Data, Schedule & Attempts, the Campaign summary card and Advanced Settings.

Widgets only edit session state (see `dashboards.state`); the page header's Save Changes validates
the whole form and writes it through `tasks.campaigns.update_campaign`.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

import streamlit as st
from pydantic import ValidationError as PydanticValidationError

from dashboards import state
from dashboards.queries.campaigns import agent_choices, number_choices
from schemas.campaign import CampaignSettings
from schemas.enums import WEEKDAY_NAMES, WEEKDAYS
from tasks.campaigns import get_campaign, summary_lines, update_campaign, validate_campaign
from tasks.timezones import countries_for_zone, zone_needs_country

DAY_NAMES = dict(zip(WEEKDAYS, WEEKDAY_NAMES))
# The fields the Schedule & Attempts section shows errors for.
SCHEDULE_FIELDS = frozenset({"start_date", "end_date", "calling_days", "weekly_schedule", "time_zone", "country",
                             "max_attempts", "attempts_per_day"})
HOURS_HELP = "One or more windows, comma-separated, e.g. 08:00-12:00, 13:00-18:00 (24:00 = midnight)."


@lru_cache(maxsize=1)
def time_zones() -> list[str]:
    """Every IANA zone name, sorted (the searchable time zone selectbox)."""
    return sorted(zoneinfo.available_timezones())


def form_errors(conn, campaign_id: int, stored: dict) -> dict[str, str]:
    """{field: message} for every rule the form's settings break (empty when they can be saved)."""
    data = state.settings_from_form(state.current_form(st.session_state, campaign_id), stored)
    errors: dict[str, str] = {}
    for error in validate_campaign(conn, data):
        errors.setdefault(error.field.split(".")[0], error.rule)
    return errors


def save_form(campaign_id: int) -> dict[str, str]:
    """Save the form's settings when every rule holds (then forget the edits); else keep and return the errors."""
    with state.writing() as conn:
        stored = get_campaign(conn, campaign_id)
        errors = form_errors(conn, campaign_id, stored)
        if not errors:
            data = state.settings_from_form(state.current_form(st.session_state, campaign_id), stored)
            update_campaign(conn, campaign_id, data, state.now())
    if errors:
        st.session_state[state.key(campaign_id, "_errors")] = errors
    else:
        state.clear_form(st.session_state, campaign_id)
    return errors


def shown_errors(campaign_id: int) -> dict[str, str]:
    """The errors of the last refused save, recomputed by the page on each rerun until fixed."""
    return st.session_state.get(state.key(campaign_id, "_errors")) or {}


def _field_error(errors: dict[str, str], *fields: str) -> None:
    for field in fields:
        if field in errors:
            st.error(errors[field], icon=":material/error:")


def basic_section(campaign_id: int, agents: dict[int, str], errors: dict[str, str]) -> None:
    """Campaign Name, Campaign Objective and Agent."""
    k = lambda f: state.key(campaign_id, f)  # noqa: E731
    st.text_input("Campaign Name", key=k("name"), max_chars=200)
    _field_error(errors, "name")
    st.text_area("Campaign Objective", key=k("objective"), height=80, placeholder="Optional: what the agent should achieve")
    _field_error(errors, "objective")
    options = list(agents)
    if st.session_state.get(k("agent_id")) not in options:
        st.session_state[k("agent_id")] = options[0] if options else None
    st.selectbox("Agent", options, key=k("agent_id"), format_func=lambda a: agents.get(a, f"agent {a}"))
    _field_error(errors, "agent_id")


def schedule_section(campaign_id: int, errors: dict[str, str]) -> None:
    """Start/end dates, calling days, weekly schedule, time zone (+ country when shared), attempts."""
    k = lambda f: state.key(campaign_id, f)  # noqa: E731
    left, right = st.columns(2)
    with left:
        st.date_input("Start Date", key=k("start_date"), format="YYYY-MM-DD")
        _field_error(errors, "start_date")
    with right:
        st.date_input("End Date (optional)", key=k("end_date"), format="YYYY-MM-DD")
        _field_error(errors, "end_date")

    st.multiselect("Calling Days", list(WEEKDAYS), key=k("calling_days"), format_func=DAY_NAMES.get,
                   placeholder="Choose the days to call")
    _field_error(errors, "calling_days")

    st.radio("Weekly Schedule", list(state.HOURS_MODES), key=k("hours_mode"),
             format_func=state.HOURS_MODES.get, horizontal=True)
    days = [d for d in WEEKDAYS if d in (st.session_state.get(k("calling_days")) or [])]
    if st.session_state.get(k("hours_mode")) == state.SAME:
        st.text_input("Calling hours (every calling day)", key=k("same_hours"), help=HOURS_HELP)
    else:
        if not days:
            st.caption("Choose calling days to set their hours.")
        for day in days:
            st.text_input(f"{DAY_NAMES[day]} hours", key=k(f"hours_{day}"), help=HOURS_HELP)
    _field_error(errors, "weekly_schedule")

    zones = time_zones()
    zone_left, zone_right = st.columns(2)
    with zone_left:
        st.selectbox("Time Zone", zones, key=k("time_zone"), help="Type to search, e.g. Phoenix")
        _field_error(errors, "time_zone")
    zone = st.session_state.get(k("time_zone"))
    with zone_right:
        if zone and zone_needs_country(zone):
            countries = countries_for_zone(zone)
            if st.session_state.get(k("country")) not in countries:
                st.session_state[k("country")] = None
            st.selectbox("Country", countries, key=k("country"), placeholder="Which country does it call?",
                         help=f"{zone} is used by {', '.join(countries)}")
            _field_error(errors, "country")

    attempts_left, attempts_right = st.columns(2)
    with attempts_left:
        st.number_input("Max Attempts", min_value=1, max_value=20, step=1, key=k("max_attempts"),
                        help="Calls per contact in total, 1 to 20")
        _field_error(errors, "max_attempts")
    with attempts_right:
        st.number_input("Attempts per Day", min_value=1, max_value=20, step=1, key=k("attempts_per_day"),
                        help="Calls per contact per campaign-local day")
        _field_error(errors, "attempts_per_day")


def summary_card(campaign_id: int, stored: dict) -> None:
    """The Campaign summary: the CLI's plain-language lines for the settings being edited."""
    data = state.settings_from_form(state.current_form(st.session_state, campaign_id), stored)
    try:
        settings = CampaignSettings.model_validate(data)
    except PydanticValidationError:
        st.caption("The Campaign summary appears once the schedule is valid.")
        return
    if settings.start_date is None:
        st.caption("Set a start date to see the Campaign summary.")
        return
    st.info("**Campaign summary**  \n" + "  \n".join(summary_lines(settings)), icon=":material/info:")


def advanced_section(campaign_id: int, numbers: dict[int, str], errors: dict[str, str]) -> None:
    """Batch size, phone number rotation and the outbound number(s)."""
    k = lambda f: state.key(campaign_id, f)  # noqa: E731
    with st.expander("Advanced Settings", expanded=bool({"batch_size", "outbound_number_ids", "rotation_enabled"} & set(errors))):
        st.number_input("Batch Size", min_value=1, max_value=500, step=1, key=k("batch_size"),
                        help="Contacts dialled per batch, 1 to 500 (default 100)")
        _field_error(errors, "batch_size")
        st.toggle("Phone Number Rotation", key=k("rotation_enabled"),
                  help="Rotate between several outbound numbers")
        options = list(numbers)
        if st.session_state.get(k("rotation_enabled")):
            chosen = [n for n in st.session_state.get(k("numbers")) or [] if n in options]
            if chosen != st.session_state.get(k("numbers")):
                st.session_state[k("numbers")] = chosen
            st.multiselect("Outbound Numbers", options, key=k("numbers"), format_func=lambda n: numbers.get(n, str(n)),
                           placeholder="Choose two or more numbers")
        else:
            if st.session_state.get(k("number")) not in options:
                st.session_state[k("number")] = None
            st.selectbox("Outbound Number", options, key=k("number"), format_func=lambda n: numbers.get(n, str(n)),
                         placeholder="Choose a number")
        _field_error(errors, "outbound_number_ids", "rotation_enabled")


def render(campaign_id: int) -> None:
    """The Settings tab of a campaign."""
    with state.reading() as conn:
        stored = get_campaign(conn, campaign_id)
        agents = agent_choices(conn)
        numbers = number_choices(conn)
    state.load_form(st.session_state, campaign_id, stored)
    errors = shown_errors(campaign_id)
    if errors:
        st.error("Some settings need fixing before they can be saved; see the messages below.", icon=":material/error:")
        _field_error(errors, "settings", "active")

    with st.container(border=True):
        st.subheader("Basic Data")
        basic_section(campaign_id, agents, errors)
    with st.container(border=True):
        st.subheader("Schedule & Attempts")
        schedule_section(campaign_id, errors)
        summary_card(campaign_id, stored)
    advanced_section(campaign_id, numbers, errors)
    state.remember_form(st.session_state, campaign_id)
