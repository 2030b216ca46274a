"""The Settings tab: Basic Data, Schedule & Attempts, the Campaign summary card with the forecast, and
Advanced Settings with the outbound numbers' health.

Widgets only edit session state (see `dashboards.state`); the page header's Save Changes validates
the whole form and writes it through `tasks.campaigns.update_campaign`. The forecast and "Put back in
rotation" act at once, through the same functions as `campaigns forecast` and `campaigns numbers restore`.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from datetime import date
from functools import lru_cache

import polars as pl
import streamlit as st
from pydantic import ValidationError as PydanticValidationError

from dashboards import state
from dashboards.components import NO_VALUE, format_credits, format_local, markdown_text
from dashboards.queries import smart
from dashboards.queries.campaigns import agent_choices, number_choices
from schemas.campaign import SETTING_FIELDS, CampaignSettings
from schemas.enums import WEEKDAY_NAMES, WEEKDAYS
# check_name_free: the rule create_campaign and update_campaign enforce, asked here in the same pass as the others
from tasks.campaigns import (
    check_name_free, get_campaign, long_date, start_line, summary_lines, update_campaign, validate_campaign,
)
from tasks.errors import NotFoundError, StoreLockedError, UserError, ValidationError
from tasks.number_health import restore_number
from tasks.store import db_path
from tasks.timezones import countries_for_zone, zone_needs_country

_log = logging.getLogger("dashboards")
DAY_NAMES = dict(zip(WEEKDAYS, WEEKDAY_NAMES))
# The fields the Schedule & Attempts section shows errors for (the hours boxes' own too).
SCHEDULE_FIELDS = frozenset({"start_date", "end_date", "calling_days", "weekly_schedule", "same_hours",
                             *(f"hours_{d}" for d in WEEKDAYS), "time_zone", "country", "max_attempts",
                             "attempts_per_day"})
# What the form calls each field an error can be about: its messages say these, not the field names the
# settings model uses (which YAML files and the CLI keep: the task-level messages stay as they are).
FIELD_LABELS = {
    "name": "Campaign Name", "objective": "Campaign Objective", "agent_id": "Agent", "start_date": "Start Date",
    "end_date": "End Date", "calling_days": "Calling Days", "weekly_schedule": "Weekly Schedule",
    "same_hours": "Calling hours", **{f"hours_{d}": f"{DAY_NAMES[d]} hours" for d in WEEKDAYS},
    "time_zone": "Time Zone", "country": "Country", "max_attempts": "Max Attempts",
    "attempts_per_day": "Attempts per Day", "batch_size": "Batch Size", "rotation_enabled": "Phone Number Rotation",
    "outbound_number_ids": "Outbound Numbers", "active": "Active",
}
# Setting names inside a message (those with an underscore: a plain word such as "name" is a word of the text too).
_NAMES_IN_TEXT = re.compile(r"(?<![\w-])(" + "|".join(sorted(
    (re.escape(f) for f in FIELD_LABELS if "_" in f and f in SETTING_FIELDS), key=len, reverse=True)) + r")(?!\w)")
# The settings model's weekly-schedule messages (schemas/campaign.py), to say them of the hours box typed in.
_DAY_PROBLEM = re.compile(r"(?P<day>" + "|".join(WEEKDAYS) + r"): (?:window )?(?P<text>.*)", re.DOTALL)
_NOT_A_WINDOW = re.compile(r'a window is a pair \["HH:MM", "HH:MM"\], got (?P<quote>[\'"])(?P<value>.*)(?P=quote)',
                           re.DOTALL)
_DAYS_WITHOUT_HOURS = re.compile(r"calling day\(s\) (?P<days>.*) have no calling window")
NO_HOURS = "enter at least one window, e.g. 09:00-17:00"
# Settings the summary does not tell, set to valid values while checking the ones it does.
SUMMARY_NEUTRAL = {"name": "summary", "objective": None, "agent_id": 0, "batch_size": 100, "rotation_enabled": False,
                   "outbound_number_ids": [], "active": False}
HOURS_HELP = "One or more windows, comma-separated, e.g. 08:00-12:00, 13:00-18:00 (24:00 = midnight)."


@lru_cache(maxsize=1)
def time_zones() -> list[str]:
    """Every IANA zone name, sorted (the searchable time zone selectbox)."""
    return sorted(zoneinfo.available_timezones())


def form_errors(conn, campaign_id: int, stored: dict) -> dict[str, str]:
    """{field: message} for every rule the form's settings break (empty when they can be saved), in the form's
    words (`form_messages`); `field_error` puts the field's label in front."""
    form = state.current_form(st.session_state, campaign_id)
    data = state.settings_from_form(form, stored)
    return form_messages(settings_problems(conn, data, campaign_id, stored["name"]), form["hours_mode"])


def settings_problems(conn, data: dict, campaign_id: int | None = None,
                      saved_name: str | None = None) -> list[ValidationError]:
    """Every rule `data` breaks, the store's included: the model's and references' (`validate_campaign`) and a
    name another campaign has, which create_campaign and update_campaign refuse only after the others hold (so a
    form would learn of it one Save later, as a banner). A name left as saved (`saved_name`) is not asked about,
    as update_campaign does not; `campaign_id` is the campaign edited (None for a new one)."""
    problems = validate_campaign(conn, data)
    name = (data.get("name") or "").strip()
    if name and name != saved_name and not any(p.field.split(".")[0] == "name" for p in problems):
        try:
            check_name_free(conn, name, campaign_id)
        except ValidationError as taken:
            problems.append(taken)
    return problems


def form_messages(problems: list[ValidationError], hours_mode: str) -> dict[str, str]:
    """{form field: message} for the problems the settings model found, the first per field, in the form's words.

    Field names become the labels ("9 per day is more than Max Attempts (2)"). A weekly-schedule problem goes to
    the hours box it was typed in: with the same hours every day, to "Calling hours", without the day the model
    happened to check first ("18:00-08:00 ends before it starts", not "mon: window 18:00-08:00 ..."); with hours
    per day, to that day's box.
    """
    errors: dict[str, str] = {}
    for problem in problems:
        field = problem.field.split(".")[0]
        rule = _NAMES_IN_TEXT.sub(lambda match: FIELD_LABELS[match.group(1)], problem.rule)
        found = _hours_messages(rule, hours_mode) if field == "weekly_schedule" else [(field, rule)]
        for form_field, message in found:
            errors.setdefault(form_field, message)
    return errors


def _hours_messages(rule: str, hours_mode: str) -> list[tuple[str, str]]:
    """[(hours box, message)] for a weekly-schedule problem (the box is weekly_schedule when it names none)."""
    same = hours_mode == state.SAME
    day_problem = _DAY_PROBLEM.fullmatch(rule)
    if day_problem:
        text = day_problem["text"]
        not_a_window = _NOT_A_WINDOW.fullmatch(text)
        if not_a_window:
            text = f'"{not_a_window["value"]}" is not a window such as 09:00-17:00'
        return [("same_hours" if same else f"hours_{day_problem['day']}", text)]
    without_hours = _DAYS_WITHOUT_HOURS.fullmatch(rule)
    if without_hours:
        days = [d.strip() for d in without_hours["days"].split(",")]
        return [("same_hours", NO_HOURS)] if same else [(f"hours_{d}", NO_HOURS) for d in days if d in WEEKDAYS]
    return [("weekly_schedule", rule)]


def save_form(campaign_id: int) -> dict[str, str]:
    """Save the form's settings when every rule holds (then forget the edits); else keep and return the errors."""
    with state.writing() as conn:
        stored = get_campaign(conn, campaign_id)
        state.load_form(st.session_state, campaign_id, stored)  # the fields not drawn (`forget_hidden`) come back
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


def field_error(errors: dict[str, str], *fields: str) -> None:
    """Show each field's error under its widget, led by the form's label ("Attempts per Day: ...")."""
    for field in fields:
        if field in errors:
            label = FIELD_LABELS.get(field)
            st.error(f"{label}: {errors[field]}" if label else errors[field], icon=":material/error:")


def forget_hidden(campaign_id: int, drawn: list[str]) -> None:
    """Drop the form values whose widgets this run did not draw; `load_form` brings them back from the
    `state.remember_form` copy (call it after that).

    A value put into session state before its widget first appears (by `load_form`: the per-day hours
    while "same hours" is chosen, the rotation numbers while rotation is off, the wizard's hidden
    fields) outlives that widget: once the widget is no longer drawn (Back in the wizard, another page)
    Streamlit shows that first value again, which `load_form` would keep as if it were the user's edit.
    """
    for field in set(state.FORM_FIELDS) - set(drawn):
        st.session_state.pop(state.key(campaign_id, field), None)


def basic_section(campaign_id: int, agents: dict[int, str], errors: dict[str, str]) -> list[str]:
    """Campaign Name, Campaign Objective and Agent; returns the form fields drawn."""
    k = lambda f: state.key(campaign_id, f)  # noqa: E731
    st.text_input("Campaign Name", key=k("name"), max_chars=200)
    field_error(errors, "name")
    st.text_area("Campaign Objective", key=k("objective"), height=80, placeholder="Optional: what the agent should achieve")
    field_error(errors, "objective")
    options = list(agents)
    if st.session_state.get(k("agent_id")) not in options:
        st.session_state[k("agent_id")] = options[0] if options else None
    st.selectbox("Agent", options, key=k("agent_id"), format_func=lambda a: agents.get(a, f"agent {a}"))
    field_error(errors, "agent_id")
    return ["name", "objective", "agent_id"]


def _form_value(campaign_id: int, field: str):
    """A form field's value in a widget callback: its widget's, else (a widget not drawn last run, whose value
    `forget_hidden` dropped and `load_form` has not brought back yet) the `state.remember_form` copy's."""
    name = state.key(campaign_id, field)
    if name in st.session_state:
        return st.session_state[name]
    return (st.session_state.get(state.key(campaign_id, state.EDITS)) or {}).get(field)


def valid_hours(text: str | None) -> bool:
    """Whether an hours box holds windows the settings model accepts ("09:00-12:00, 13:00-18:00")."""
    windows = state.windows_from_text(text)
    if not windows:
        return False
    try:
        CampaignSettings.model_validate(SUMMARY_NEUTRAL | {"time_zone": "UTC", "calling_days": ["mon"],
                                                           "weekly_schedule": {"mon": windows}})
    except PydanticValidationError:
        return False
    return True


def hours_mode_changed(campaign_id: int) -> None:
    """Switching the Weekly Schedule carries over the hours typed (the radio's callback, before the page is drawn).

    To "Different hours per day": hours typed in "Calling hours (every calling day)" since it was last chosen
    (or since the form was loaded) become every day's, if they are valid windows; else each day keeps its own
    hours and a note says why. Not typed over, the days keep their own hours (those of a visit before).
    To "Same hours": when the calling days all have the same hours, the box starts from them.
    """
    k = lambda f: state.key(campaign_id, f)  # noqa: E731
    base = k("_same_hours_base")  # what the same-hours box held when chosen
    same = _form_value(campaign_id, "same_hours")
    days = [d for d in WEEKDAYS if d in (_form_value(campaign_id, "calling_days") or [])]
    if st.session_state.get(k("hours_mode")) == state.SAME:
        shared = {_form_value(campaign_id, f"hours_{d}") or "" for d in days}
        if len(shared) == 1 and valid_hours(next(iter(shared))):
            same = next(iter(shared))
            st.session_state[k("same_hours")] = same
        st.session_state[base] = same
        return
    if base in st.session_state and same == st.session_state[base]:
        return  # not typed over: the days' own hours stay
    st.session_state[base] = same  # the days now have these (or keep theirs): a later visit compares with them
    if valid_hours(same):
        for day in WEEKDAYS:
            st.session_state[k(f"hours_{day}")] = same
    elif (same or "").strip():
        st.session_state[k("_hours_note")] = same  # said once, under the radio


def past_start_warning(campaign_id: int, saved_start: date | None) -> None:
    """Under Start Date: a date chosen before the campaign-local today is accepted (dates of a running campaign can
    be edited), but calls start only once the campaign is saved and Active, not on that date. A saved start
    date is not warned of again (every running campaign's start date has passed)."""
    start = st.session_state.get(state.key(campaign_id, "start_date"))
    zone = st.session_state.get(state.key(campaign_id, "time_zone")) or "UTC"
    today = local_today(zone)
    if start is None or start == saved_start or start >= today:
        return
    st.warning(f"{long_date(start)} has already passed (today is {long_date(today)} in {zone}): the campaign starts "
               "calling as soon as it is saved and Active, not on that date.", icon=":material/event_busy:")


def local_today(zone: str) -> date:
    """Today in a time zone (UTC for one this machine does not know)."""
    try:
        return state.now().astimezone(zoneinfo.ZoneInfo(zone)).date()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return state.now().date()


def schedule_section(campaign_id: int, errors: dict[str, str], saved_start: date | None = None) -> list[str]:
    """Start/end dates, calling days, weekly schedule, time zone (+ country when shared), attempts;
    returns the form fields drawn. `saved_start`: the stored start date (a past one is not warned of)."""
    k = lambda f: state.key(campaign_id, f)  # noqa: E731
    drawn = ["start_date", "end_date", "calling_days", "hours_mode", "time_zone", "max_attempts", "attempts_per_day"]
    left, right = st.columns(2)
    with left:
        st.date_input("Start Date", key=k("start_date"), format="YYYY-MM-DD")
        field_error(errors, "start_date")
        past_start_warning(campaign_id, saved_start)
    with right:
        st.date_input("End Date (optional)", key=k("end_date"), format="YYYY-MM-DD")
        field_error(errors, "end_date")

    st.multiselect("Calling Days", list(WEEKDAYS), key=k("calling_days"), format_func=DAY_NAMES.get,
                   placeholder="Choose the days to call")
    field_error(errors, "calling_days")

    st.radio("Weekly Schedule", list(state.HOURS_MODES), key=k("hours_mode"),
             format_func=state.HOURS_MODES.get, horizontal=True, on_change=hours_mode_changed, args=(campaign_id,))
    typed = st.session_state.pop(k("_hours_note"), None)
    if typed:
        st.caption(f':orange[The hours typed for every day ("{markdown_text(typed)}") are not valid windows, so each '
                   "day keeps its own hours.]")
    days = [d for d in WEEKDAYS if d in (st.session_state.get(k("calling_days")) or [])]
    if st.session_state.get(k("hours_mode")) == state.SAME:
        st.text_input("Calling hours (every calling day)", key=k("same_hours"), help=HOURS_HELP)
        field_error(errors, "same_hours")
        drawn.append("same_hours")
    else:
        if not days:
            st.caption("Choose calling days to set their hours.")
        for day in days:
            st.text_input(f"{DAY_NAMES[day]} hours", key=k(f"hours_{day}"), help=HOURS_HELP)
            field_error(errors, f"hours_{day}")
            drawn.append(f"hours_{day}")
    field_error(errors, "weekly_schedule")

    zones = time_zones()
    zone_left, zone_right = st.columns(2)
    with zone_left:
        st.selectbox("Time Zone", zones, key=k("time_zone"), help="Type to search, e.g. Phoenix")
        field_error(errors, "time_zone")
    zone = st.session_state.get(k("time_zone"))
    with zone_right:
        if zone and zone_needs_country(zone):
            countries = countries_for_zone(zone)
            if st.session_state.get(k("country")) not in countries:
                st.session_state[k("country")] = None
            st.selectbox("Country", countries, key=k("country"), placeholder="Which country does it call?",
                         help=f"{zone} is used by {', '.join(countries)}")
            field_error(errors, "country")
            drawn.append("country")

    # No widget bounds on the numbers: the browser silently kept an out-of-range value (0, 501) to itself, so the
    # page said "nothing to save" while the field showed it; the settings model's range shows under the field.
    attempts_left, attempts_right = st.columns(2)
    with attempts_left:
        st.number_input("Max Attempts", step=1, key=k("max_attempts"),
                        help="Calls per contact in total, 1 to 20")
        field_error(errors, "max_attempts")
    with attempts_right:
        st.number_input("Attempts per Day", step=1, key=k("attempts_per_day"),
                        help="Calls per contact per campaign-local day")
        field_error(errors, "attempts_per_day")
    return drawn


def summary_card(campaign_id: int, stored: dict) -> None:
    """The Campaign summary: the CLI's plain-language lines for the settings being edited."""
    data = state.settings_from_form(state.current_form(st.session_state, campaign_id), stored)
    try:
        # the card restates the schedule: a blank name or an unfinished number choice must not hide it
        settings = CampaignSettings.model_validate(data | SUMMARY_NEUTRAL)
    except PydanticValidationError:
        st.caption("The Campaign summary appears once the schedule is valid.")
        return
    if settings.start_date is None:
        st.caption("Set a start date to see the Campaign summary.")
        return
    lines = summary_lines(settings)
    lines[0] = start_line(lines[0], settings, local_today(settings.time_zone), stored["start_date"],
                          bool(stored["active"]))
    st.info("**Campaign summary**  \n" + "  \n".join(summary_markdown(lines)), icon=":material/info:")


def summary_markdown(lines: list[str]) -> list[str]:
    """The summary's lines with the product's emphasis: the days, their hours and the total calls in bold
    ("It will call **Monday to Friday** between **08:00 AM - 06:00 PM** (America/Phoenix)")."""
    start, calls, attempts = lines
    prefix = "It will call "
    if calls.startswith(prefix) and calls.endswith(")") and " (" in calls:
        body, zone = calls[len(prefix):].rsplit(" (", 1)
        parts = []
        for part in body.split("; "):
            if " between " in part:
                days, hours = part.split(" between ", 1)
                parts.append(f"**{days}** between **{hours}**")
            elif part.endswith(" around the clock"):
                parts.append(f"**{part.removesuffix(' around the clock')}** around the clock")
            else:
                parts.append(part)
        calls = f"{prefix}{'; '.join(parts)} ({zone}"
    attempts = re.sub(r"up to (\d+ calls?) in total", r"up to **\1** in total", attempts)
    return [start, calls, attempts]


def advanced_section(campaign_id: int, numbers: dict[int, str], errors: dict[str, str], health: list[dict]) -> list[str]:
    """Batch size, phone number rotation, the outbound number(s) and their health; returns the form fields drawn."""
    k = lambda f: state.key(campaign_id, f)  # noqa: E731
    # a number the dialer does not use (out of rotation, or its SIP trunk not active) opens the section
    idle = any(not n["in_rotation"] or n["sip_trunk_status"] != "active" for n in health)
    expanded = idle or bool({"batch_size", "outbound_number_ids", "rotation_enabled"} & set(errors))
    with st.expander("Advanced Settings", expanded=expanded):
        st.number_input("Batch Size", step=1, key=k("batch_size"),
                        help="Contacts dialled per batch, 1 to 500 (default 100)")
        field_error(errors, "batch_size")
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
        field_error(errors, "outbound_number_ids", "rotation_enabled")
        number_health_panel(campaign_id, health)
    return ["batch_size", "rotation_enabled", "numbers" if st.session_state.get(k("rotation_enabled")) else "number"]


# ------------------------------------------------------------------ outbound number health

def _flash_key(campaign_id: int) -> str:
    return f"numbers_flash_{campaign_id}"


def restore(campaign_id: int, number_id: int, label: str) -> None:
    """Put back in rotation: the same write as `campaigns numbers restore NUMBER_ID`."""
    try:
        with state.writing() as conn:
            restored = restore_number(conn, number_id, state.now())
    except StoreLockedError:
        message = ("error", "The database is busy (a flow is writing); nothing was changed. Try again in a moment.")
    except NotFoundError as error:
        message = ("error", str(error))
    else:
        message = ("success", f"{label} is back in rotation." if restored else f"{label} was already in rotation.")
    st.session_state[_flash_key(campaign_id)] = message


def health_frame(days: pl.DataFrame) -> pl.DataFrame:
    """The per-number, per-day health rows as the table shows them (rates as percentages)."""
    return days.select(
        pl.format("{} · {}", pl.col("nickname").fill_null("No nickname"), pl.col("e164")).alias("Number"),
        pl.col("day").dt.strftime("%a %b %d").alias("Day"),
        pl.col("calls").alias("Calls"),
        (pl.col("connection_rate") * 100).round(1).alias("Connection rate %"),
        (pl.col("short_share") * 100).round(1).alias("Short calls %"),
        pl.col("spam_marks").alias("Spam marks"),
        (pl.col("cap_use") * 100).round(0).alias("Daily cap used %"),
    )


def trunk_skipped(status: str) -> str:
    """Why the dialer skips a number whose SIP trunk is not active ("SIP trunk inactive: skipped when dialing")."""
    return f"SIP trunk {markdown_text(status)}: skipped when dialing"


def number_health_panel(campaign_id: int, health: list[dict]) -> None:
    """Outbound number health: each number's rotation state (with Put back in rotation) and its last 7 days."""
    st.markdown("**Outbound number health**")
    flash = st.session_state.pop(_flash_key(campaign_id), None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    if not health:
        st.caption("This campaign has no outbound number yet.")
        return
    with state.reading() as conn:
        days = smart.number_health_days(conn, campaign_id, state.now())
        time_zone = smart.campaign_zone(conn, campaign_id)
        cap = smart.number_daily_cap(conn, campaign_id)
    for number in health:
        # nicknames and reasons are shown literally (a nickname is free text)
        label = markdown_text(f"{number['nickname'] or 'No nickname'} · {number['e164']}")
        rate = number["connection_rate_24h"]
        last_day = ("no finished calls in 24 h" if rate is None else
                    f"{number['calls_24h']:,} finished calls in 24 h, {rate:.0%} connected, "
                    f"{number['spam_marks_24h']} spam marks")
        row = st.columns([5, 2], vertical_alignment="center")
        if number["in_rotation"] and number["sip_trunk_status"] != "active":
            # healthy, but the dialer uses only numbers whose SIP trunk is active (tasks.dialing.usable_numbers)
            row[0].markdown(f":orange-badge[Not used] **{label}** · {trunk_skipped(number['sip_trunk_status'])} · "
                            f"{last_day}")
        elif number["in_rotation"]:
            row[0].markdown(f":green-badge[In rotation] **{label}** · {last_day}")
        else:
            row[0].markdown(f":red-badge[Out of rotation] **{label}** since "
                            f"{format_local(number['paused_at'], time_zone)} · {markdown_text(number['paused_reason'])}")
            row[1].button("Put back in rotation", key=f"restore_{campaign_id}_{number['number_id']}",
                          icon=":material/settings_backup_restore:", on_click=restore,
                          args=(campaign_id, number["number_id"], label))
    if days.is_empty():
        st.caption("No calls from these numbers in the last 7 days.")
    else:
        st.dataframe(health_frame(days), hide_index=True, width="stretch", key=f"number_health_{campaign_id}",
                     placeholder=NO_VALUE)
    st.caption(("No daily cap per number." if cap is None else f"Daily cap: {cap:,} calls per number per campaign-local day.")
               + " Days are the campaign's; calls from every campaign using a number count. A number whose spam marks"
                 " or connection rate cross the thresholds is taken out of rotation automatically.")


# ------------------------------------------------------------------ forecast


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def cached_forecast(db: str, campaign_id: int, version: tuple, _now) -> dict:
    """The forecast of a campaign's data version (shared by every session; `_now` is not part of the key)."""
    from tasks.forecast import forecast

    return forecast(db, campaign_id, _now).as_dict()


def _forecast_key(campaign_id: int) -> str:
    return f"forecast_{campaign_id}"


FORECAST_TOP_ROW = [1.6, 1, 1.2]


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def forecast_caption(result: dict, time_zone: str) -> str:
    """The forecast's note: what was simulated, and its connection rates named per call and per contact.

    The simulation's rates count calls (connected calls ÷ calls); the Metrics tab's Connection Rate card counts
    contacts (connected contacts ÷ contacts). Both are said, each with its unit, so the two are not confused.
    """
    observed = result["observed_connection_rate"]
    per_contact = result["connected_contacts"] / result["contacts"] if result["contacts"] else None
    return (
        f"Simulated from {format_local(result['start'], time_zone)} (seed {result['seed']}): {result['contacts']:,} "
        f"contacts, {result['remaining_contacts']:,} not finished, {result['held_back_contacts']:,} expected never to "
        f"finish (do-not-call, legal windows, or past the horizon). Connection rate per contact (connected contacts "
        f"÷ contacts, as the Metrics tab's Connection Rate card counts): {_pct(per_contact)} expected by the end. "
        f"Connection rate per call (connected calls ÷ calls, the simulation's rate): "
        f"{_pct(result['forecast_connection_rate'])} in the simulated calls, "
        f"{'no calls yet' if observed is None else _pct(observed)} in the calls so far; rates used: "
        f"{result.get('rates_used', 'default')}. Totals include calls already made."
        + (f" Dialing was held when the simulation stopped: {result['held_by']}." if result.get("held_by") else ""))


def completion_card(result: dict, time_zone: str) -> str:
    """The forecast's Expected completion: the campaign-local date, "Not within N days", or "None while held" when
    a hold (a paused number) stopped the simulation with contacts left: its last call so far is no completion."""
    if not result["completion"]:
        return f"Not within {result['horizon_days']:g} days"
    if result.get("held_by") and result["held_back_contacts"]:
        return "None while held"
    return format_local(result["completion"], time_zone, with_time=False)


def forecast_panel(campaign_id: int, time_zone: str, dirty: bool) -> None:
    """The Forecast button and, once pressed, the expected completion, calls, contacts and credits."""
    with state.reading() as conn:
        version = smart.forecast_version(conn, campaign_id)
    shown = st.session_state.get(_forecast_key(campaign_id))
    left, right = st.columns([1, 4], vertical_alignment="center")
    pressed = left.button("Forecast", key=f"forecast_button_{campaign_id}", icon=":material/query_stats:",
                          help="Simulate the rest of the campaign on a copy (takes a few seconds)")
    right.caption("Expected completion date, calls, connected and successful contacts and credits, by simulating the "
                  "rest of the campaign from its saved settings, its contacts' time zones and its observed outcome "
                  "rates (default rates until it has enough calls).")
    if pressed:
        try:
            with st.spinner("Simulating the campaign on a copy…"):
                result = cached_forecast(str(db_path()), campaign_id, version, state.now())
        except (UserError, NotFoundError) as error:
            st.error(f"No forecast: {error}")
            return
        except StoreLockedError:
            st.error("The database is busy (a flow is writing): press Forecast again in a moment.")
            return
        except Exception as error:  # a failed simulation must not take the Settings tab down; the log keeps it
            _log.exception("forecast of campaign %s failed", campaign_id)
            st.error(f"The forecast failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
                     "The details are in the dashboard's log.")
            return
        shown = (version, result)
        st.session_state[_forecast_key(campaign_id)] = shown
    if shown is None:
        return
    made_for, result = shown
    completion = completion_card(result, time_zone)
    # two rows: five cards in one row of the bordered section cut "1,263" to "1,…" and "191,658" to "191…" at 1280 px
    top = st.columns(FORECAST_TOP_ROW)  # the date needs the room
    top[0].metric("Expected completion", completion, border=True)
    top[1].metric("Calls", f"{result['calls']:,}", border=True)
    top[2].metric("Credits", format_credits(result["credits"]), border=True)
    bottom = st.columns(2)
    bottom[0].metric("Connected contacts", f"{result['connected_contacts']:,}", border=True)
    bottom[1].metric("Successful contacts", f"{result['successful_contacts']:,}", border=True)
    st.caption(forecast_caption(result, time_zone))
    if made_for != version:
        st.caption(":orange[The campaign has changed since this forecast: press Forecast for a new one.]")
    elif dirty:
        st.caption(":orange[The forecast uses the saved settings: save your changes, then press Forecast again.]")


def has_unsaved_edits(campaign_id: int) -> bool:
    """Whether the form describes settings other than the stored ones (its undrawn fields restored first).

    The form's values are copied aside here too (`state.remember_form`), at the start of the run an edit caused: a
    click in the sidebar during that run ends it before the tab's own copy at its end, and the list page then had no
    copy to remind of (the edits were lost with no word, on a busy server).
    """
    with state.reading() as conn:
        stored = get_campaign(conn, campaign_id)
    state.load_form(st.session_state, campaign_id, stored)
    state.remember_form(st.session_state, campaign_id)
    return state.is_dirty(st.session_state, campaign_id, stored)


def render(campaign_id: int) -> bool:
    """The Settings tab of a campaign; returns whether the form now holds unsaved edits (the page header's state)."""
    with state.reading() as conn:
        stored = get_campaign(conn, campaign_id)
        agents = agent_choices(conn)
        numbers = number_choices(conn)
        health = smart.campaign_numbers(conn, campaign_id, state.now())
        paused = smart.paused_numbers(conn)
        state.load_form(st.session_state, campaign_id, stored)
        if shown_errors(campaign_id):
            # errors of a refused save stay beside their fields until each is fixed
            st.session_state[state.key(campaign_id, "_errors")] = form_errors(conn, campaign_id, stored)
    # the pickers say which numbers are out of rotation, so a paused one is not chosen unknowingly
    numbers = {n: f"{label} · out of rotation" if n in paused else label for n, label in numbers.items()}
    errors = shown_errors(campaign_id)
    if errors:
        st.error("Some settings need fixing before they can be saved; see the messages below.", icon=":material/error:")
        field_error(errors, "settings", "active")
    for number in health:
        if not number["in_rotation"]:
            name = markdown_text(f"{number['nickname'] or number['e164']} ({number['e164']})")
            st.warning(f"Outbound number {name} is out of rotation: {markdown_text(number['paused_reason'])}. "
                       "See Advanced Settings to put it back.", icon=":material/phone_disabled:")

    with st.container(border=True):
        st.subheader("Basic Data")
        drawn = basic_section(campaign_id, agents, errors)
    with st.container(border=True):
        st.subheader("Schedule & Attempts")
        drawn += schedule_section(campaign_id, errors, stored["start_date"])
        summary_card(campaign_id, stored)
        forecast_panel(campaign_id, stored["time_zone"], state.is_dirty(st.session_state, campaign_id, stored))
    drawn += advanced_section(campaign_id, numbers, errors, health)
    state.remember_form(st.session_state, campaign_id)
    dirty = state.is_dirty(st.session_state, campaign_id, stored)
    forget_hidden(campaign_id, drawn)
    return dirty
