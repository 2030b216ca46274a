"""The creation wizard: 1. basic data and contacts (upload, mapping, preview, import); 2. schedule & attempts.

Once its Draft exists the wizard keeps it in the address (/wizard?campaign=ID&step=2), so a reload or a bookmark
resumes that draft at that step (`wizard_from_address`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from dashboards import state
from dashboards.leave_guard import leave_guard
from dashboards.components import markdown_text, require_app_shell
from dashboards.queries.campaigns import agent_choices, number_choices
from dashboards.tabs import contact_list
from dashboards.tabs import settings as settings_tab
from dashboards.tabs.contact_list import staged_upload
from flows.import_contacts import PLAIN_STEPS
from schemas.contact_import import CUSTOM_PREFIX, FIELD_TARGETS, IGNORE
from tasks.campaigns import create_campaign, get_campaign
from tasks.contacts_import import map_columns, read_contacts_file, suggest_mapping
from tasks.errors import NotFoundError, UserError, ValidationError
from tasks.timezones import countries_for_zone, is_known_zone, zone_needs_country

# A new campaign starts as a Draft with these until step 2 sets the real schedule (step 2 proposes the browser's
# time zone in place of UTC: propose_browser_zone).
DRAFT_DEFAULTS = {"time_zone": "UTC", "calling_days": ["mon", "tue", "wed", "thu", "fri"], "same_hours": [["09:00", "17:00"]]}
STEP_LABELS = {
    "read": "Reading the file", "map": "Mapping columns", "apply": "Applying the mapping",
    "normalise": "Normalising phone numbers", "validate": "Validating rows", "merge": "Merging duplicates",
    "upsert": "Saving contacts", "enroll": "Enrolling in the campaign",
}
# What Finish says when the schedule has no Start Date: the campaign is saved as a Draft, which never calls.
NO_START_SAVED = "Saved as Draft: set a Start Date in Settings and save to schedule it."
TARGET_LABELS = {"contact_phone": "Phone number", "contact_name": "Name", "company_name": "Company",
                 "email": "Email", IGNORE: "Ignore this column"}


def _steps_bar() -> None:
    step = st.session_state.get("wizard_step", 1)
    first, second = st.columns(2)
    first.markdown(f"{'**' if step == 1 else ''}1 · Basic data & contacts{'**' if step == 1 else ''}")
    second.markdown(f"{'**' if step == 2 else ''}2 · Schedule & attempts{'**' if step == 2 else ''}")
    st.progress(0.5 if step == 1 else 1.0)


BASIC_ERRORS = "wizard_basic_errors"  # the errors of a refused Create, beside their fields until fixed
BASIC_FIELDS = ("name", "objective", "agent_id")  # the fields step 1 draws


def _draft_data(numbers: dict[int, str]) -> dict:
    """The settings Create would give the new Draft."""
    return {"name": (st.session_state.get("wiz_name") or "").strip(),
            "objective": st.session_state.get("wiz_objective"), "agent_id": st.session_state.get("wiz_agent"),
            **DRAFT_DEFAULTS, "outbound_number_ids": list(numbers)[:1]}


def _draft_errors(conn, numbers: dict[int, str]) -> dict[str, str]:
    """{field: message} for every rule the new Draft would break, a name another campaign has included, in the
    form's words (one pass: the Settings tab's `settings_problems`)."""
    return settings_tab.form_messages(settings_tab.settings_problems(conn, _draft_data(numbers)), state.SAME)


def basic_step() -> None:
    """Name, objective and agent; creates the campaign as a Draft. A refused Create shows each problem under its
    field ("Campaign Name: campaign 4 is already named ..."), rechecked on each rerun until fixed."""
    with state.reading() as conn:
        agents = agent_choices(conn)
        numbers = number_choices(conn)
        errors = _draft_errors(conn, numbers) if st.session_state.get(BASIC_ERRORS) else {}
    st.session_state[BASIC_ERRORS] = errors
    if not agents:
        st.warning("Add a voice agent first: `campaigns agents add NAME`.")
        return
    with st.container(border=True):
        st.subheader("Basic Data")
        st.text_input("Campaign Name", key="wiz_name", max_chars=200, placeholder="e.g. Spring outreach")
        settings_tab.field_error(errors, "name")
        st.text_area("Campaign Objective", key="wiz_objective", height=80, placeholder="Optional: what the agent should achieve")
        settings_tab.field_error(errors, "objective")
        st.selectbox("Agent", list(agents), key="wiz_agent", format_func=agents.get)
        settings_tab.field_error(errors, "agent_id")
        for field in [f for f in errors if f not in BASIC_FIELDS]:  # the Draft's defaults (its outbound number)
            st.error(_labelled(field, errors[field]))
        if st.button("Create campaign and continue", key="wiz_create", type="primary"):
            try:
                with state.writing() as conn:
                    errors = _draft_errors(conn, numbers)
                    if not errors:
                        st.session_state["wizard_campaign"] = create_campaign(conn, _draft_data(numbers), state.now())
            except UserError as error:  # a rule broken meanwhile (another session took the name)
                errors = _error_messages(error)
            st.session_state[BASIC_ERRORS] = errors
            if not errors:
                st.session_state["wizard_step"] = 1
            st.rerun()


def _error_messages(error: UserError) -> dict[str, str]:
    """{field: message} of an error, in the form's words: "name: is required" → {"name": "is required"}."""
    problems = getattr(error, "errors", None) or ([error] if isinstance(error, ValidationError) else [])
    if not problems:
        return {"": str(error)}
    return settings_tab.form_messages(problems, state.SAME)  # field names in the text become labels too


def _labelled(field: str, message: str) -> str:
    """A field's error led by the label the Settings tab shows for it ("Outbound Numbers: ..."); a field the
    form has no widget for keeps its name; an error of no field is said alone."""
    label = settings_tab.FIELD_LABELS.get(field, field)
    return f"{label}: {message}" if label else message


def _mapping_frame(headers: list[str], sample: dict[str, str | None]) -> pl.DataFrame:
    suggestion = suggest_mapping(headers)
    return pl.DataFrame({"Column in file": headers, "Example": [sample.get(h) or "" for h in headers],
                         "Maps to": [suggestion[h] for h in headers]}, schema={"Column in file": pl.String,
                         "Example": pl.String, "Maps to": pl.String})


def _target_label(target: str) -> str:
    if target.startswith(CUSTOM_PREFIX):
        return f"Custom property: {target.removeprefix(CUSTOM_PREFIX)}"
    return TARGET_LABELS.get(target, target)


def contacts_step(campaign_id: int) -> None:
    """Upload CSV/XLSX → suggested mapping (editable) → preview → import with progress and report."""
    with st.container(border=True):
        st.subheader("Contacts")
        st.caption("Upload a CSV or XLSX file with one contact per row and a phone number column.")
        upload = st.file_uploader("Contacts file", type=["csv", "xlsx"], key=contact_list.uploader_key("wiz_upload"))
        st.text_input("Country for numbers without a country code", key="wiz_default_country", value="US",
                      max_chars=2, help="ISO code such as US; numbers written with + and a country code need none")
        if upload is not None:
            _mapping_and_import(campaign_id, upload)
    result = st.session_state.get("wizard_import")
    if result:
        contact_list.import_report(result)


def _mapping_and_import(campaign_id: int, upload: UploadedFile) -> None:
    """The uploaded file's mapping, preview and Import button; after a committed import the uploader is emptied."""
    name = Path(upload.name).name
    try:  # the file is on disk only while it is read, here and at the import (contact_list.staged_upload)
        with staged_upload(upload.getvalue(), name) as path:
            frame = read_contacts_file(path)
    except UserError as error:
        st.error(str(error))
        return
    headers = frame.columns
    sample = frame.head(1).to_dicts()[0] if frame.height else {}
    st.markdown(f"**{frame.height:,} rows** found in {markdown_text(upload.name)}. Check how each column is imported:")
    base = _mapping_frame(headers, sample)
    options = [*FIELD_TARGETS, IGNORE, *sorted({t for t in suggest_mapping(headers).values() if t.startswith(CUSTOM_PREFIX)})]
    edited = st.data_editor(
        base.to_pandas(), key=f"wiz_mapping_{upload.file_id}", hide_index=True, width="stretch", num_rows="fixed",
        disabled=["Column in file", "Example"],
        column_config={"Maps to": st.column_config.SelectboxColumn("Maps to", options=options, required=True,
                                                                   format_func=_target_label)},
    )
    overrides = dict(zip(edited["Column in file"], edited["Maps to"]))
    try:
        mapping = map_columns(frame, overrides)  # a title above the header: names the header's row
    except UserError as error:
        st.error(str(error))
        return
    country = st.session_state.get("wiz_default_country") or None
    if not contact_list.import_preview(campaign_id, frame, mapping, country):
        return
    if st.button("Import contacts", key="wiz_import", type="primary", icon=":material/upload:"):
        with staged_upload(upload.getvalue(), name) as path:
            result = import_with_progress(campaign_id, path, mapping, country)
        st.session_state["wizard_import"] = result
        if "error" not in result:
            contact_list.empty_uploader("wiz_upload")
            st.rerun()


def import_with_progress(campaign_id: int, path: Path, mapping: dict[str, str], country: str | None) -> dict:
    """Run the import flow's steps with a progress bar; the result as a dict (contact_list.import_upload)."""
    bar = st.progress(0.0, text="Starting the import…")
    names = list(PLAIN_STEPS)

    def tracked(name: str):
        def step(*args, **kwargs):
            bar.progress(names.index(name) / len(names), text=f"{STEP_LABELS[name]}…")
            return PLAIN_STEPS[name](*args, **kwargs)
        return step

    result = contact_list.import_upload(campaign_id, path, mapping, country,
                                        steps={name: tracked(name) for name in names})
    if "error" in result:
        bar.empty()
    else:
        bar.progress(1.0, text="Import finished")
    return result


def browser_region(locale: str | None) -> str | None:
    """The country of a browser language tag ("en-US" → "US"), if it names one."""
    parts = (locale or "").replace("_", "-").split("-")[1:]
    return next((part.upper() for part in parts if len(part) == 2 and part.isalpha()), None)


def propose_browser_zone(campaign_id: int, stored: dict) -> None:
    """Put the browser's time zone in the form of a draft still on the placeholder zone (UTC), once per session.

    A manager who did not look at Time Zone would otherwise call in UTC (02:00 in Chicago). It is only the
    form's first value: another choice is kept, and nothing is saved before Finish. A zone several countries
    share takes the browser language's country when it is one of them (en-US in America/Phoenix), else the
    Country box asks. A browser that sends no zone, or one this machine does not know, leaves UTC.
    """
    offered = state.key(campaign_id, "_browser_zone_offered")
    if (st.session_state.get(offered) or stored["start_date"] is not None
            or stored["time_zone"] != DRAFT_DEFAULTS["time_zone"]):
        return
    zone = st.context.timezone
    if not zone:  # not sent (yet): a later run may have it
        return
    st.session_state[offered] = True
    form_zone = state.key(campaign_id, "time_zone")
    if not is_known_zone(zone) or st.session_state.get(form_zone) != stored["time_zone"]:
        return  # unknown here, or the manager chose a zone already
    st.session_state[form_zone] = zone
    region = browser_region(st.context.locale)
    if zone_needs_country(zone) and region in countries_for_zone(zone):
        st.session_state[state.key(campaign_id, "country")] = region


def schedule_step(campaign_id: int) -> None:
    """Schedule & Attempts, the same widgets as the Settings tab; Finish saves and opens the campaign."""
    with state.reading() as conn:
        stored = get_campaign(conn, campaign_id)
    state.load_form(st.session_state, campaign_id, stored)
    propose_browser_zone(campaign_id, stored)
    errors = settings_tab.shown_errors(campaign_id)
    if errors:
        with state.reading() as conn:
            errors = settings_tab.form_errors(conn, campaign_id, stored)
        st.session_state[state.key(campaign_id, "_errors")] = errors
    st.markdown(f"Campaign: **{markdown_text(stored['name'])}**")
    with st.container(border=True):
        st.subheader("Schedule & Attempts")
        drawn = settings_tab.schedule_section(campaign_id, errors, stored["start_date"])
        settings_tab.summary_card(campaign_id, stored)
    state.remember_form(st.session_state, campaign_id)
    settings_tab.forget_hidden(campaign_id, drawn)
    # a reload keeps the draft (the address names it) but not the schedule typed and not yet saved by Finish
    # step 2 draws the schedule only: the fields it does not draw are the stored ones
    form = {field: value for field, value in state.current_form(st.session_state, campaign_id).items() if value is not None}
    leave_guard(state.form_differs(state.form_from_settings(stored) | form, stored))
    for field in sorted(set(errors) - settings_tab.SCHEDULE_FIELDS):
        st.error(_labelled(field, errors[field]))
    back, finish = st.columns([1, 1])
    if back.button("Back", key="wiz_back", icon=":material/arrow_back:"):
        st.session_state["wizard_step"] = 1
        st.rerun()
    if finish.button("Finish", key="wiz_finish", type="primary", icon=":material/check:"):
        no_start = st.session_state.get(state.key(campaign_id, "start_date")) is None
        try:
            failed = settings_tab.save_form(campaign_id)
        except UserError as error:
            st.error(str(error))
            return
        if failed:
            st.rerun()
        for name in ("wizard_campaign", "wizard_step", "wizard_import"):
            st.session_state.pop(name, None)
        if no_start:  # saved, but nothing will call: the campaign page says so once (after save_form's clear_form)
            st.session_state[state.key(campaign_id, "_flash")] = ("warning", NO_START_SAVED)
        st.session_state["campaign_id"] = campaign_id
        st.switch_page("pages/campaign.py", query_params={"campaign": str(campaign_id)})


def wizard_from_address() -> str | None:
    """The wizard's campaign and step from ?campaign=ID&step=N (a reload, a bookmark), as the campaign page reads
    ?campaign=; a note when the address names no campaign that exists (the wizard starts afresh then).

    The address names the campaign; the step it names counts only when the session is not already in that
    campaign's wizard (Next and Back change the session's step first, the address follows: `_keep_in_address`).
    """
    raw = st.query_params.get("campaign")
    if raw is not None:
        try:
            campaign_id = int(raw)
        except ValueError:
            _forget_wizard()
            return (f"The address names campaign {markdown_text(repr(raw))}, which is not a campaign ID: "
                    "starting a new campaign.")
        if st.session_state.get("wizard_campaign") != campaign_id:
            st.session_state.pop("wizard_import", None)  # an import report belongs to its campaign
            st.session_state["wizard_campaign"] = campaign_id
            st.session_state["wizard_step"] = 2 if st.query_params.get("step") == "2" else 1
    campaign_id = st.session_state.get("wizard_campaign")
    if campaign_id is None:
        return None
    try:
        with state.reading() as conn:
            get_campaign(conn, campaign_id)
    except NotFoundError:
        _forget_wizard()
        return f"Campaign {campaign_id} no longer exists (it may have been deleted): starting a new campaign."
    return None


def _forget_wizard() -> None:
    for name in ("wizard_campaign", "wizard_step", "wizard_import"):
        st.session_state.pop(name, None)


def _keep_in_address() -> None:
    """Write the wizard's campaign and step into the address (none before its Draft exists)."""
    campaign_id = st.session_state.get("wizard_campaign")
    wanted = ({} if campaign_id is None else
              {"campaign": str(campaign_id), "step": str(st.session_state.get("wizard_step", 1))})
    for name in ("campaign", "step"):
        if name not in wanted and name in st.query_params:
            del st.query_params[name]
        elif name in wanted and st.query_params.get(name) != wanted[name]:
            st.query_params[name] = wanted[name]


def render() -> None:
    """The wizard page."""
    if st.button("All campaigns", key="wiz_to_list", icon=":material/arrow_back:", type="tertiary"):
        st.switch_page("pages/campaigns.py")
    st.title("New campaign")
    note = wizard_from_address()
    _keep_in_address()
    if note:
        st.info(note, icon=":material/info:")
    _steps_bar()
    campaign_id = st.session_state.get("wizard_campaign")
    if st.session_state.get("wizard_step", 1) == 2 and campaign_id is not None:
        schedule_step(campaign_id)
        return
    if campaign_id is None:
        basic_step()
        return
    with state.reading() as conn:
        stored = get_campaign(conn, campaign_id)
    st.success(f"Draft **{markdown_text(stored['name'])}** created (agent {markdown_text(stored['agent_name'])}). "
               "Add contacts now or later.")
    contacts_step(campaign_id)
    if st.button("Next: Schedule & attempts", key="wiz_next", type="primary", icon=":material/arrow_forward:"):
        st.session_state["wizard_step"] = 2
        st.rerun()


require_app_shell()
render()
