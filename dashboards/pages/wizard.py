"""The creation wizard: 1. basic data and contacts (upload, mapping, preview, import); 2. schedule & attempts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import streamlit as st

from dashboards import state
from dashboards.components import markdown_text, require_app_shell
from dashboards.queries.campaigns import agent_choices, number_choices
from dashboards.tabs import settings as settings_tab
from dashboards.tabs.contact_list import staged_upload
from flows.import_contacts import PLAIN_STEPS, run_import
from schemas.contact_import import CUSTOM_PREFIX, FIELD_TARGETS, IGNORE
from tasks.campaigns import create_campaign, get_campaign
from tasks.contacts_import import apply_mapping, read_contacts_file, resolve_mapping, suggest_mapping
from tasks.errors import UserError

# A new campaign starts as a Draft with these until step 2 sets the real schedule.
DRAFT_DEFAULTS = {"time_zone": "UTC", "calling_days": ["mon", "tue", "wed", "thu", "fri"], "same_hours": [["09:00", "17:00"]]}
STEP_LABELS = {
    "read": "Reading the file", "map": "Mapping columns", "apply": "Applying the mapping",
    "normalise": "Normalising phone numbers", "validate": "Validating rows", "merge": "Merging duplicates",
    "upsert": "Saving contacts", "enroll": "Enrolling in the campaign",
}
TARGET_LABELS = {"contact_phone": "Phone number", "contact_name": "Name", "company_name": "Company",
                 "email": "Email", IGNORE: "Ignore this column"}
PREVIEW_LABELS = {"phone_raw": "Phone number", "contact_name": "Name", "company_name": "Company", "email": "Email"}


def _steps_bar() -> None:
    step = st.session_state.get("wizard_step", 1)
    first, second = st.columns(2)
    first.markdown(f"{'**' if step == 1 else ''}1 · Basic data & contacts{'**' if step == 1 else ''}")
    second.markdown(f"{'**' if step == 2 else ''}2 · Schedule & attempts{'**' if step == 2 else ''}")
    st.progress(0.5 if step == 1 else 1.0)


def basic_step() -> None:
    """Name, objective and agent; creates the campaign as a Draft."""
    with state.reading() as conn:
        agents = agent_choices(conn)
        numbers = number_choices(conn)
    if not agents:
        st.warning("Add a voice agent first: `campaigns agents add NAME`.")
        return
    with st.container(border=True):
        st.subheader("Basic Data")
        st.text_input("Campaign Name", key="wiz_name", max_chars=200, placeholder="e.g. Spring outreach")
        st.text_area("Campaign Objective", key="wiz_objective", height=80, placeholder="Optional: what the agent should achieve")
        st.selectbox("Agent", list(agents), key="wiz_agent", format_func=agents.get)
        if st.button("Create campaign and continue", key="wiz_create", type="primary"):
            data = {"name": st.session_state.get("wiz_name") or "", "objective": st.session_state.get("wiz_objective"),
                    "agent_id": st.session_state.get("wiz_agent"), **DRAFT_DEFAULTS,
                    "outbound_number_ids": list(numbers)[:1]}
            try:
                with state.writing() as conn:
                    st.session_state["wizard_campaign"] = create_campaign(conn, data, state.now())
            except UserError as error:
                st.error(_readable(error))
                return
            st.rerun()


def _readable(error: UserError) -> str:
    """ "name: is required" → "Name: is required" (a field error reads like the form's label)."""
    field = getattr(error, "field", None)
    return f"{field.replace('_', ' ').capitalize()}: {error.rule}" if field else str(error)


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
        upload = st.file_uploader("Contacts file", type=["csv", "xlsx"], key="wiz_upload")
        st.text_input("Country for numbers without a country code", key="wiz_default_country", value="US",
                      max_chars=2, help="ISO code such as US; numbers written with + and a country code need none")
        if upload is None:
            return
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
            mapping = resolve_mapping(headers, overrides)
        except UserError as error:
            st.error(str(error))
            return
        st.markdown("**Preview** (first rows, as they will be imported)")
        preview = apply_mapping(frame.head(5), mapping).drop("row")
        # fields no column maps to would only show empty columns
        preview = preview.drop([c for c in ("contact_name", "company_name", "email") if c not in mapping.values()])
        preview = preview.rename({c: PREVIEW_LABELS.get(c, c.removeprefix(CUSTOM_PREFIX)) for c in preview.columns})
        st.dataframe(preview.to_pandas(), hide_index=True, width="stretch")
        if st.button("Import contacts", key="wiz_import", type="primary", icon=":material/upload:"):
            with staged_upload(upload.getvalue(), name) as path:
                st.session_state["wizard_import"] = import_with_progress(
                    campaign_id, path, mapping, st.session_state.get("wiz_default_country") or None)
    result = st.session_state.get("wizard_import")
    if result:
        import_report(result)


def import_with_progress(campaign_id: int, path: Path, mapping: dict[str, str], country: str | None) -> dict:
    """Run the import flow's steps with a progress bar; the result as a dict (an error as {"error": ...})."""
    bar = st.progress(0.0, text="Starting the import…")
    names = list(PLAIN_STEPS)

    def tracked(name: str):
        def step(*args, **kwargs):
            bar.progress(names.index(name) / len(names), text=f"{STEP_LABELS[name]}…")
            return PLAIN_STEPS[name](*args, **kwargs)
        return step

    try:
        result = run_import(campaign_id, path, mapping=mapping, default_country=country,
                            steps={name: tracked(name) for name in names}).to_dict()
    except UserError as error:
        bar.empty()
        return {"error": str(error)}
    bar.progress(1.0, text="Import finished")
    return result


def import_report(result: dict) -> None:
    """The per-row report: counts, then the rejected rows."""
    if "error" in result:
        st.error(f"Nothing was imported: {result['error']}")
        return
    st.success(f"Imported {result['enrolled']:,} contacts into the campaign.")
    cells = st.columns(5)
    for cell, (label, value) in zip(cells, (("Rows in file", result["rows"]), ("New contacts", result["imported"]),
                                            ("Updated contacts", result["updated"]), ("Duplicates merged", result["duplicates_merged"]),
                                            ("Rejected rows", result["invalid"]))):
        cell.metric(label, f"{value:,}")
    if result["rejected"]:
        st.markdown("**Rejected rows**")
        rejected = pl.DataFrame(result["rejected"]).rename({"row": "Row", "column": "Column", "value": "Value", "reason": "Reason"})
        st.dataframe(rejected.to_pandas(), hide_index=True, width="stretch")


def schedule_step(campaign_id: int) -> None:
    """Schedule & Attempts, the same widgets as the Settings tab; Finish saves and opens the campaign."""
    with state.reading() as conn:
        stored = get_campaign(conn, campaign_id)
    state.load_form(st.session_state, campaign_id, stored)
    errors = settings_tab.shown_errors(campaign_id)
    if errors:
        with state.reading() as conn:
            errors = settings_tab.form_errors(conn, campaign_id, stored)
        st.session_state[state.key(campaign_id, "_errors")] = errors
    st.markdown(f"Campaign: **{markdown_text(stored['name'])}**")
    with st.container(border=True):
        st.subheader("Schedule & Attempts")
        drawn = settings_tab.schedule_section(campaign_id, errors)
        settings_tab.summary_card(campaign_id, stored)
    state.remember_form(st.session_state, campaign_id)
    settings_tab.forget_hidden(campaign_id, drawn)
    for field in sorted(set(errors) - settings_tab.SCHEDULE_FIELDS):
        st.error(f"{field.replace('_', ' ').capitalize()}: {errors[field]}")
    back, finish = st.columns([1, 1])
    if back.button("Back", key="wiz_back", icon=":material/arrow_back:"):
        st.session_state["wizard_step"] = 1
        st.rerun()
    if finish.button("Finish", key="wiz_finish", type="primary", icon=":material/check:"):
        try:
            failed = settings_tab.save_form(campaign_id)
        except UserError as error:
            st.error(str(error))
            return
        if failed:
            st.rerun()
        for name in ("wizard_campaign", "wizard_step", "wizard_import"):
            st.session_state.pop(name, None)
        st.session_state["campaign_id"] = campaign_id
        st.switch_page("pages/campaign.py", query_params={"campaign": str(campaign_id)})


def render() -> None:
    """The wizard page."""
    if st.button("All campaigns", key="wiz_to_list", icon=":material/arrow_back:", type="tertiary"):
        st.switch_page("pages/campaigns.py")
    st.title("New campaign")
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
