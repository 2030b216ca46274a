"""The Contact List tab: a server-side paged table of enrolled contacts, row actions and bulk import/export."""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import streamlit as st

from dashboards import state
from dashboards.components import (NO_VALUE, TABLE_DATE_FORMAT, markdown_text, reason_labels, record_table,
                                   seconds_as_duration, zoned_columns)
from dashboards.queries import calls as call_queries
from dashboards.queries import contacts as q
from dashboards.queries import smart
from dashboards.tabs.call_logs import history_table, show_contact
from flows.import_contacts import PLAIN_STEPS, run_import
from schemas.contact_import import COMPANY, CUSTOM_PREFIX, EMAIL, FIELD_TARGETS, IGNORE, NAME, PHONE
from tasks import contacts_import as ci
from tasks.errors import StoreLockedError, UserError, ValidationError
from tasks.metrics import aggregate
from tasks.phones import check_region

# Streamlit's own header click sorts the rows it was sent: this page only.
SORT_HELP = "Orders every matching contact, across pages (a column header click sorts only this page)."
SORT_LABELS = {
    "Created At": "created", "Phone Number": "phone", "Name": "name", "Attempts": "attempts",
    "Connected": "connected", "Successful": "successful", "Credits": "credits", "Duration": "duration",
    "Last Call Date": "last_call",
}
# Numbers and times stay typed (a header click sorts them by value); the config only formats them.
# Widths in pixels: a cell pads 8 px each side of its text, so each is 16 px more than the widest of its header and its
# usual values, measured in Chromium in the grid's font (14 px Source Sans) over the demo store's 307 contacts:
# "+525552701072" 91, "Valentina Johnson" 109, the headers "Attempts" 53, "Connected" 64, "Successful" 62 and
# "Credits" 42, "11 min, 40 sec" 82 (a contact's total; "10 min, 38 sec" as wide), "Error No Audio Received" 141 (the
# demo's longest reason label; the rarer "Concurrency Limit Reached" and "Telephony Provider ..." are cut), "May 10,
# 2026 10:00 PM" 130 (the widest month, day and hour), "Finished: max attempts reached" 187. Suppression keeps
# Streamlit's own width: its rare do-not-call texts run to 326 px and most of its cells are empty.
# Auto-sized, a column was as wide as the widest value on the page shown, so the table's width changed with the page.
COLUMN_WIDTHS = {
    "Phone Number": st.column_config.TextColumn(width=107),
    "Name": st.column_config.TextColumn(width=125),
    "Attempts": st.column_config.NumberColumn(width=69),
    "Connected": st.column_config.NumberColumn(width=80),
    "Successful": st.column_config.NumberColumn(width=78),
    "Credits": st.column_config.NumberColumn(width=58, format="localized"),
    "Duration": st.column_config.NumberColumn(width=98, format="localized"),
    "Last Disconnection": st.column_config.TextColumn(width=157),
    "Last Call Date": st.column_config.DatetimeColumn(width=146, format=TABLE_DATE_FORMAT),
    "Created At": st.column_config.DatetimeColumn(width=146, format=TABLE_DATE_FORMAT),
    "Next Allowed": st.column_config.TextColumn(
        "Next Allowed", width=146,
        help="The next time this contact may be called (campaign time zone): the retry policy, the attempts per day, "
             "the campaign's hours and the contact's legal calling window"),
    "Next Allowed Reason": st.column_config.TextColumn("Next Allowed Reason", width=203,
                                                       help="What sets the next allowed time"),
    "Suppression": st.column_config.TextColumn(
        "Suppression", help="On a do-not-call list (never called), or a time zone that could not be told from the "
                            "contact's data (called in the campaign's time zone)"),
}
# The spec's columns, then the smart-dialing ones (Created At was after them, off-screen at 1400 px); of the spec's, the
# two a manager reads least, Credits and Duration, come after its dates. With the sidebar open the table has 786 px for
# its columns at a 1280 px window and 946 px at 1440 (after its 32 px selection column). In the spec's order Last Call
# Date ended 918 px in with these widths (auto-sized, 871 px on the demo's first page: "May 05, 20" showed at 1280
# px), and the spec's nine and Name need 1,064 px, so no widths that keep the values whole showed it at 1280 px.
# Without Credits and Duration before them, the columns a manager reads (phone, name, attempts, connected, successful,
# last disconnection, last call date) end 762 px in: all in view at 1280 px, and Created At too at 1440 (908 px),
# Credits and Duration a sideways scroll away. Created At stays right after Last Call Date (the two dates together).
TABLE_COLUMNS = ["Phone Number", "Name", "Attempts", "Connected", "Successful", "Last Disconnection", "Last Call Date",
                 "Created At", "Credits", "Duration", "Next Allowed", "Next Allowed Reason", "Suppression"]
# Session key of the removal waiting for confirmation: (campaign_id, contact_id).
REMOVE_KEY = "contacts_confirm_remove"
# The row actions' widths: "Remove from Campaign" is the longest label (whole at 1280 px).
ROW_ACTION_COLUMNS = [1, 1.45, 1.25, 1.1]
EDIT_FIELDS = {"name": "Name", "company": "Company", "email": "E-mail", "phone": "Phone"}


def _key(campaign_id: int, name: str) -> str:
    return f"contacts_{campaign_id}_{name}"


def with_next_allowed(page: pl.DataFrame, allowed: pl.DataFrame, time_zone: str) -> pl.DataFrame:
    """The page with its Next Allowed (local time, "Now", blank when never again), Next Allowed Reason and Suppression."""
    shown = allowed.select(
        "contact_id",
        # "Now" rather than a clock time that is already past on the next rerun
        pl.when(pl.col("next_allowed_note") == "Now").then(pl.lit("Now"))
        .otherwise(pl.col("next_allowed_at").dt.convert_time_zone(time_zone).dt.strftime("%b %d, %Y %I:%M %p"))
        .fill_null("").alias("Next Allowed"),
        pl.col("next_allowed_note").alias("Next Allowed Reason"),
        pl.col("suppression").fill_null("").alias("Suppression"),
    )
    return page.join(shown, on="contact_id", how="left", maintain_order="left")


def display_frame(page: pl.DataFrame) -> pl.DataFrame:
    """The page as the table shows it: durations as durations, reasons as labels; numbers and local dates stay typed."""
    return page.with_columns(
        seconds_as_duration("Duration"),
        reason_labels("Last Disconnection").fill_null(""),
    )


def bring_stats_up_to_date(campaign_id: int) -> bool:
    """Aggregate the campaign's calls (incrementally, `tasks.metrics.aggregate`) when its Contact List figures miss
    some; False when the store was too busy to (the figures are then as of the last aggregation).

    The tab reads `contact_stats`, which only an aggregation run writes: under `campaigns dashboard` alone none ever
    ran, and Attempts, Credits and Last Call Date stayed 0 and empty while Call Logs listed the calls, Refresh or not.
    """
    with state.reading() as conn:
        if not q.stats_behind(conn, campaign_id):
            return True
    try:
        with state.writing() as conn:
            aggregate(conn, state.now(), campaign_id=campaign_id)
    except StoreLockedError:
        return False
    return True


def render(campaign_id: int) -> None:
    """Draw the Contact List tab of one campaign."""
    flash = st.session_state.pop(_key(campaign_id, "flash"), None)
    if flash:
        st.success(flash)
    if not bring_stats_up_to_date(campaign_id):
        st.caption("The figures are as of the last metrics aggregation: the database is busy. Refresh to update them.")
    top = st.columns([4, 2, 1.2], vertical_alignment="bottom")
    search = top[0].text_input("Search", key=_key(campaign_id, "search"),
                               placeholder="Phone, name, company or e-mail", max_chars=call_queries.MAX_SEARCH_CHARS)
    sort_label = top[1].selectbox("Sort by", list(SORT_LABELS), key=_key(campaign_id, "sort"),
                                  help=SORT_HELP)
    descending = top[2].toggle("Descending", value=True, key=_key(campaign_id, "desc"))

    with state.reading() as conn:
        total = q.count_contacts(conn, campaign_id, search or None)
        pages = max(1, math.ceil(total / q.PAGE_SIZE))
        page_key = _key(campaign_id, "page")
        if st.session_state.get(page_key, 1) > pages:
            st.session_state[page_key] = pages
        page = st.session_state.get(page_key, 1)
        rows = q.contact_page(conn, campaign_id, search or None, page=page, sort=SORT_LABELS[sort_label],
                              descending=descending)
        # smart dialing: when each contact on this page may be called next, and why not sooner
        allowed = smart.next_allowed_times(conn, campaign_id, rows["contact_id"].to_list(), state.now())
        zone = smart.campaign_zone(conn, campaign_id)
        rows = with_next_allowed(rows, allowed, zone)

    bar = st.columns([3.6, 1.6, 1.6, 1], vertical_alignment="center")
    first = (page - 1) * q.PAGE_SIZE + 1 if total else 0
    bar[0].markdown(f"**{total:,}** {'contact' if total == 1 else 'contacts'} · showing {first:,}–{first + rows.height - 1 if total else 0:,}"
                    f" · page {page:,} of {pages:,}", help=f"Times are in {zone}, the campaign's time zone.")
    bar[1].number_input("Page", min_value=1, max_value=pages, step=1, key=page_key,
                        label_visibility="collapsed", help=f"Page of {pages:,}")
    bar[2].download_button(
        "Download as Excel", data=lambda: _export_bytes(campaign_id), key=_key(campaign_id, "download"),
        file_name=f"campaign-{campaign_id}-contacts.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    if bar[3].button("Refresh", key=_key(campaign_id, "refresh")):
        st.rerun()

    if rows.is_empty():
        st.info("No contacts match." if search else "No contacts in this campaign yet: import a CSV or XLSX below.")
    else:
        ids = rows["contact_id"].to_list()
        contact_id = record_table(display_frame(rows), ids, _key(campaign_id, "table"), column_order=TABLE_COLUMNS,
                                  column_config=zoned_columns(COLUMN_WIDTHS, zone, "Last Call Date", "Created At"))
        if contact_id is not None:
            _row_actions(campaign_id, rows.row(ids.index(contact_id), named=True))
        else:
            st.caption("Select a contact to edit it, copy its ID, remove it or see its calls.")
    _import_section(campaign_id)


def _export_bytes(campaign_id: int) -> bytes:
    with tempfile.TemporaryDirectory(prefix="vc-contacts-") as folder:
        out = Path(folder) / "contacts.xlsx"
        with state.reading() as conn:
            ci.export_contacts(conn, campaign_id, out)
        return out.read_bytes()


def _row_actions(campaign_id: int, row: dict) -> None:
    contact_id = row["contact_id"]
    label = row["Name"] or row["Phone Number"]
    with st.container(border=True):
        st.subheader(markdown_text(label))
        st.caption(f"{row['Phone Number']} · Contact ID {contact_id}")
        buttons = st.columns(ROW_ACTION_COLUMNS, vertical_alignment="center")
        if buttons[0].button("Edit Contact", key=_key(campaign_id, f"edit_{contact_id}"), width="stretch",
                             icon=":material/edit:"):
            st.session_state[_key(campaign_id, "editing")] = contact_id
        if buttons[1].button("Remove from Campaign", key=_key(campaign_id, f"remove_{contact_id}"), width="stretch",
                             icon=":material/person_remove:"):
            st.session_state[REMOVE_KEY] = (campaign_id, contact_id)
        # The dialog stays open across reruns until it is answered or dismissed.
        if st.session_state.get(REMOVE_KEY) == (campaign_id, contact_id):
            _confirm_remove(campaign_id, contact_id, label)
        buttons[2].button("Show in Call Logs", key=_key(campaign_id, f"logs_{contact_id}"), width="stretch",
                          icon=":material/call_log:", on_click=_show_in_call_logs, args=(campaign_id, contact_id, label))
        with buttons[3]:
            _copy_button(contact_id)
        id_column, _ = st.columns([1, 3])
        id_column.code(str(contact_id), language=None)
        if st.session_state.get(_key(campaign_id, "editing")) == contact_id:
            _edit_form(campaign_id, contact_id)
        with state.reading() as conn:
            history = call_queries.contact_history(conn, campaign_id, contact_id)
        st.markdown(f"**Calls of this contact** ({history.height})")
        if history.is_empty():
            st.caption("Not called yet.")
        else:
            history_table(history)


def _show_in_call_logs(campaign_id: int, contact_id: int, label: str) -> None:
    """Jump to the Call Logs tab showing only this contact's calls (a callback: it runs before the tabs are drawn)."""
    show_contact(campaign_id, contact_id, label)
    st.session_state[state.TAB_KEY] = "Call Logs"


# The Copy Contact ID button lives in an iframe (the clipboard needs the browser), which does not inherit the
# app's font (it drew "Source Sans Pro", absent there, so the browser's fallback): it loads Streamlit's own font
# faces from the page's style sheets and takes the font of the label of the page's buttons (st.button) and their
# colour and corners, so it reads like the row's other buttons. The fixed values are st.button's look (its label
# is 14 px Source Sans, regular), used until (or if) the page's button cannot be read.
COPY_BUTTON_STYLE = ("width:100%;height:40px;font-family:'Source Sans',sans-serif;font-size:14px;font-weight:400;"
                     "line-height:22.4px;color:#31333f;border:1px solid rgba(49,51,63,0.2);border-radius:8px;"
                     "background:#fff;cursor:pointer;padding:4px 12px")
_COPY_BUTTON_SCRIPT = """<script>
(() => {
  const button = document.getElementById("copy");
  try {
    const top = window.parent.document;
    const faces = [];
    for (const sheet of top.styleSheets) {
      let rules;
      try { rules = sheet.cssRules; } catch (error) { continue; }
      for (const rule of rules) {
        if (rule.type !== CSSRule.FONT_FACE_RULE) continue;
        faces.push(rule.cssText.replace(/url\\((['"]?)([^'")]+)\\1\\)/g,
          (all, quote, url) => `url("${new URL(url, sheet.href || top.baseURI).href}")`));
      }
    }
    const style = document.createElement("style");
    style.textContent = faces.join("\\n");
    document.head.appendChild(style);
    const model = top.querySelector('[data-testid="stBaseButton-secondary"]');
    if (model) {
      const label = window.parent.getComputedStyle(model.querySelector('[data-testid="stMarkdownContainer"]') || model);
      for (const name of ["font-family", "font-size", "font-weight", "line-height"]) {
        button.style.setProperty(name, label.getPropertyValue(name));
      }
      const look = window.parent.getComputedStyle(model);
      for (const name of ["color", "border-radius"]) button.style.setProperty(name, look.getPropertyValue(name));
    }
  } catch (error) { /* another origin: the fixed look stays */ }
})();
</script>"""


def _copy_button(contact_id: int) -> None:
    """A Copy Contact ID button that writes the id to the clipboard in the browser, in st.button's font."""
    value = html.escape(json.dumps(str(contact_id)))
    st.iframe(
        f"""<body style="margin:0;padding:1px"><button id="copy" style="{COPY_BUTTON_STYLE}"
        onclick="navigator.clipboard.writeText({value}).then(()=>{{this.innerText='Copied ✓'}},
        ()=>{{this.innerText='Copy failed: use the box below'}})">Copy Contact ID</button>{_COPY_BUTTON_SCRIPT}</body>""",
        height=42,
    )


def _forget_remove() -> None:
    st.session_state.pop(REMOVE_KEY, None)


@st.dialog("Remove from campaign?", on_dismiss=_forget_remove)
def _confirm_remove(campaign_id: int, contact_id: int, label: str) -> None:
    st.write(f"**{markdown_text(label)}** will no longer be called by this campaign. The contact stays in the CRM and "
             "its past calls stay in the Call Logs.")
    left, right = st.columns(2)
    if left.button("Remove", type="primary", key=_key(campaign_id, f"confirm_remove_{contact_id}")):
        try:
            with state.writing() as conn:
                ci.remove_contact_from_campaign(conn, campaign_id, contact_id)
        except UserError as error:
            _forget_remove()
            st.error(str(error))
            return
        _forget_remove()
        st.session_state[_key(campaign_id, "flash")] = f"{markdown_text(label)} was removed from the campaign."
        st.rerun()
    if right.button("Cancel", key=_key(campaign_id, f"cancel_remove_{contact_id}")):
        _forget_remove()
        st.rerun()


def _edit_form(campaign_id: int, contact_id: int) -> None:
    with state.reading() as conn:
        contact = ci.get_contact(conn, contact_id)
    current = {"name": contact["name"], "company": contact["company"], "email": contact["email"],
               "phone": contact["phone_e164"]}
    # custom properties are CRM fields too: one box each ("custom:<key>" is what edit_contact takes)
    labels = dict(EDIT_FIELDS)
    for name, value in sorted(contact["properties"].items()):
        current[CUSTOM_PREFIX + name] = None if value is None else str(value)
        labels[CUSTOM_PREFIX + name] = name.replace("_", " ").capitalize()
    errors: dict = st.session_state.get(_key(campaign_id, f"edit_errors_{contact_id}"), {})
    with st.form(_key(campaign_id, f"edit_form_{contact_id}")):
        st.markdown("**Edit contact**")
        values = {}
        for field, label in labels.items():
            values[field] = st.text_input(label, value=current[field] or "",
                                          key=_key(campaign_id, f"edit_{field}_{contact_id}"))
            if field in errors:
                st.error(errors[field])
        save = st.form_submit_button("Save contact", type="primary")
    if save:
        changes = {f: v for f, v in values.items() if (v or None) != (current[f] or None)}
        try:
            with state.writing() as conn:
                if changes:
                    # a national number is read in the campaign's country, as the import does
                    ci.edit_contact(conn, contact_id, changes, state.now(),
                                    default_country=ci.campaign_country(conn, campaign_id))
        except ValidationError as error:
            st.session_state[_key(campaign_id, f"edit_errors_{contact_id}")] = {error.field: error.rule}
            st.rerun()
        except UserError as error:
            # several bad values come together (edit_contact names them all): each under its own box
            problems = getattr(error, "errors", None)
            st.session_state[_key(campaign_id, f"edit_errors_{contact_id}")] = (
                {p.field: p.rule for p in problems} if problems else {"name": str(error)})
            st.rerun()
        st.session_state.pop(_key(campaign_id, f"edit_errors_{contact_id}"), None)
        st.session_state.pop(_key(campaign_id, "editing"), None)
        st.session_state[_key(campaign_id, "flash")] = "Contact saved." if changes else "Nothing changed."
        st.rerun()


TARGET_LABELS = {PHONE: "Phone number", NAME: "Name", COMPANY: "Company", EMAIL: "Email",
                 IGNORE: "Ignore this column"}


def target_label(target: str) -> str:
    """How a mapping target reads in the mapping table."""
    if target.startswith(CUSTOM_PREFIX):
        return f"Custom property: {target.removeprefix(CUSTOM_PREFIX)}"
    return TARGET_LABELS.get(target, target)


def mapping_table(headers: list[str], sample: dict) -> tuple[pl.DataFrame, list[str]]:
    """The editable mapping (column in file, example value, suggested target) and the targets offered."""
    suggestion = ci.suggest_mapping(headers)
    table = pl.DataFrame(
        {"Column in file": headers, "Example": [str(sample.get(h) or "") for h in headers],
         "Maps to": [suggestion[h] for h in headers]},
        schema={"Column in file": pl.String, "Example": pl.String, "Maps to": pl.String},
    )
    custom = sorted({t for t in suggestion.values() if t.startswith(CUSTOM_PREFIX)})
    return table, [*FIELD_TARGETS, IGNORE, *custom]


def _import_section(campaign_id: int) -> None:
    """Upload → suggested mapping (editable, as in the wizard) → preview → import → report."""
    last = st.session_state.get(_key(campaign_id, "import_result"))
    with st.expander("Import contacts (CSV or XLSX)", expanded=bool(last)):
        import_report(last)
        upload = st.file_uploader("Contacts file", type=["csv", "xlsx"], key=uploader_key(_key(campaign_id, "upload")))
        if upload is None:
            st.caption("One contact per row with a header row; a phone number column is required. "
                       "Contacts already in the CRM are updated, not duplicated.")
            return
        # the user's own file name: errors and the report name it (staged_upload's folder is this run's alone)
        name = Path(upload.name).name
        try:
            with staged_upload(upload.getvalue(), name) as path:
                frame = ci.read_contacts_file(path)
        except UserError as error:
            st.error(str(error))
            return
        headers = frame.columns
        table, options = mapping_table(headers, frame.head(1).to_dicts()[0] if frame.height else {})
        st.markdown(f"**{frame.height:,} rows** found in {markdown_text(upload.name)}. Check how each column is imported:")
        edited = st.data_editor(
            table.to_pandas(), key=_key(campaign_id, f"mapping_{upload.file_id}"), hide_index=True, width="stretch",
            num_rows="fixed", disabled=["Column in file", "Example"],
            column_config={"Maps to": st.column_config.SelectboxColumn(
                "Maps to", options=options, required=True, format_func=target_label)},
        )
        try:
            mapping = ci.map_columns(frame, dict(zip(edited["Column in file"], edited["Maps to"])))
        except UserError as error:
            st.error(str(error))
            return
        if not import_preview(campaign_id, frame, mapping):
            return
        if st.button("Import contacts", type="primary", key=_key(campaign_id, "import"), icon=":material/upload:"):
            with st.spinner("Importing…"), staged_upload(upload.getvalue(), name) as path:
                result = import_upload(campaign_id, path, mapping)
            st.session_state[_key(campaign_id, "import_result")] = result
            if "error" not in result:
                empty_uploader(_key(campaign_id, "upload"))
            st.rerun()


def uploader_key(name: str) -> str:
    """The widget key of file uploader `name` (the Contact List's, the wizard's) until its next import."""
    return f"{name}_{st.session_state.get(f'{name}_round', 0)}"


def empty_uploader(name: str) -> None:
    """After a committed import: the next run draws uploader `name` under a new key, so it is empty (a file
    uploader's value cannot be set) and the same file is not imported twice by a second click; the report stays."""
    st.session_state[f"{name}_round"] = st.session_state.get(f"{name}_round", 0) + 1


# The import's preview: how many rows with content it shows, and the labels of the columns it adds.
PREVIEW_ROWS = 5
PREVIEW_LABELS = {"phone_raw": "Phone number", "phone_e164": "Phone (international)", NAME: "Name",
                  COMPANY: "Company", EMAIL: "Email"}


def import_region(campaign_id: int, default_country: str | None) -> str | None:
    """The country national numbers are read in, as `run_import` chooses it: the campaign's, else `default_country`
    (a code phonenumbers does not know is refused, as the import refuses it)."""
    with state.reading() as conn:
        country = ci.campaign_country(conn, campaign_id)
    return check_region(country) or check_region(default_country)


def preview_rows(frame: pl.DataFrame, mapping: Mapping[str, str], region: str | None) -> tuple[pl.DataFrame, int]:
    """(table, rows with content): the file's first PREVIEW_ROWS rows with content, each led by what the import will
    do with it and why (Row, Result, Problem, then the row's values), and how many rows of the file have content
    (the import skips blank ones).

    The rows go through the import's own steps (`apply_mapping`, `normalise`, `validate`, `merge_duplicates`), so a
    row shown as imported is imported, without the values it names, and a rejected one is rejected for
    the reason shown. Only a phone repeated among the previewed rows shows as merged (a later repeat is merged too,
    without being shown).
    """
    mapped = ci.apply_mapping(frame, mapping)
    first = ci.normalise(mapped.head(PREVIEW_ROWS), region)
    valid, rejects, warnings = ci.validate(first, mapping)
    merged, _ = ci.merge_duplicates(valid)
    problems = pl.concat([rejects, warnings]).sort("row", maintain_order=True).group_by("row", maintain_order=True).agg(
        pl.format("{}: {}", "column", "reason").str.join("; ").alias("Problem"))
    emptied = warnings.group_by("row", maintain_order=True).agg(
        pl.format(", without its {}", pl.col("column").unique(maintain_order=True).str.join(", ")).alias("emptied"))
    # fields no column maps to would only show empty columns
    fields = [c for c in (NAME, COMPANY, EMAIL) if c in mapping.values()] + ci.custom_columns(mapping)
    # the row a repeated phone is merged into shows what is imported: each field's value from the last of its rows
    # that has one (merge_duplicates), so a later row's name shows where it wins
    kept = merged.select("phone_e164", pl.col("row").alias("kept_row"), *[pl.col(f).alias(f"merged {f}") for f in fields])
    merged_in = (valid.join(kept.select("phone_e164", "kept_row"), on="phone_e164").filter(pl.col("row") != pl.col("kept_row"))
                 .group_by("kept_row", maintain_order=True)
                 .agg(pl.col("row").cast(pl.String).str.join(", ").alias("merged_rows"))
                 .rename({"kept_row": "row"}))
    is_kept = pl.col("kept_row") == pl.col("row")
    outcome = (
        pl.when(pl.col("row").is_in(rejects["row"].implode())).then(pl.lit("Rejected"))
        .when(is_kept & pl.col("merged_rows").is_not_null())
        .then(pl.format("Will be imported, merged with row {} (later values win)", "merged_rows"))
        .when(is_kept).then(pl.lit("Will be imported"))
        .otherwise(pl.format("Merged into row {} (same phone)", "kept_row"))
        + pl.col("emptied").fill_null("")
    )
    table = (
        first.join(problems, on="row", how="left", maintain_order="left")
        .join(emptied, on="row", how="left", maintain_order="left")
        .join(kept, on="phone_e164", how="left", maintain_order="left")
        .join(merged_in, on="row", how="left", maintain_order="left")
        .with_columns(pl.when(is_kept).then(pl.coalesce(f"merged {f}", f)).otherwise(pl.col(f)).alias(f) for f in fields)
        .sort("row")
        .select(
            pl.col("row").alias("Row"),
            # the outcome first: a file's columns after it would push it off-screen, and a rejected row look fine
            outcome.alias("Result"),
            pl.col("Problem").fill_null(""),
            *[pl.col(c).alias(PREVIEW_LABELS.get(c) or c.removeprefix(CUSTOM_PREFIX))
              for c in ("phone_raw", "phone_e164", *fields)],
        )
    )
    return table, mapped.height


def import_preview(campaign_id: int, frame: pl.DataFrame, mapping: Mapping[str, str],
                   default_country: str | None = None) -> bool:
    """Draw the preview of an import into the campaign (`preview_rows`); False, with the error shown, when the
    import would stop on its country."""
    try:
        table, rows = preview_rows(frame, mapping, import_region(campaign_id, default_country))
    except UserError as error:
        message = str(error)
        st.error(message[:1].upper() + message[1:])
        return False
    blank = frame.height - rows
    skipped = f" ({_count(blank, 'blank row')} {'is' if blank == 1 else 'are'} skipped)" if blank else ""
    shown = (f"the first {table.height:,} of {_count(rows, 'row')}" if rows > table.height
             else f"{'the' if rows == 1 else 'all'} {_count(rows, 'row')}")
    st.markdown(f"**Preview**: {shown} with content{skipped}, checked as the import will check them")
    st.dataframe(table.to_pandas(), hide_index=True, width="stretch", placeholder=NO_VALUE)
    return True


def import_upload(campaign_id: int, path: Path, mapping: Mapping[str, str], default_country: str | None = None,
                  steps: Mapping | None = None) -> dict:
    """Import a staged upload into the campaign (`run_import`, with `steps` if given): its result as a dict, plus
    `rows_read`, the file's rows as the import read them, blank ones included (the rows the page says it found);
    a refused import as {"error": ...}."""
    steps = dict(steps or PLAIN_STEPS)
    read_step, heights = steps["read"], []

    def read(*args, **kwargs):
        frame = read_step(*args, **kwargs)
        heights.append(frame.height)
        return frame

    try:
        result = run_import(campaign_id, path, mapping=dict(mapping), default_country=default_country,
                            steps={**steps, "read": read}).to_dict()
    except UserError as error:
        return {"error": str(error)}
    return result | ({"rows_read": heights[-1]} if heights else {})


# Uploaded contact lists (personal data) are on disk only while one script run reads or imports them: the
# bytes stay in the upload widget's memory between runs, so a finished, failed, replaced or abandoned
# upload leaves no file behind. A folder older than this was left by a run that died (a killed process).
UPLOAD_PREFIX = "vc-upload-"
STALE_UPLOAD_SECONDS = 3600.0


@contextmanager
def staged_upload(data: bytes, name: str) -> Iterator[Path]:
    """The uploaded bytes as file `name` in a new folder only this dashboard's user can open (mode 0700),
    removed with the folder on leaving the block; leftovers of dead runs are removed first."""
    remove_stale_uploads(time.time())
    folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX))
    try:
        path = folder / name
        path.write_bytes(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_uploads(now: float, max_age_seconds: float = STALE_UPLOAD_SECONDS) -> None:
    """Delete this user's upload folders in the temporary folder last changed more than `max_age_seconds`
    before `now` (epoch seconds), also those of older dashboards that kept a folder per session."""
    with os.scandir(tempfile.gettempdir()) as entries:
        for entry in entries:
            if not entry.name.startswith(UPLOAD_PREFIX):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:  # removed meanwhile
                continue
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and now - info.st_mtime > max_age_seconds:
                shutil.rmtree(entry.path, ignore_errors=True)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def import_figures(result: Mapping) -> dict[str, int]:
    """An import result's figures, each part of the one before: rows read = blank + rejected + valid rows; valid
    rows = duplicates merged + contacts; contacts = new + updated + unchanged = newly enrolled + already in it. (A
    valid row may have a field left empty: `warned` of them, not a figure of its own.)

    `rows` counts the rows with content, `rows_read` every row (without it, as in a result kept from before it
    was added, no blank row is counted); a contact is one phone number, several valid rows with it merge into one.
    """
    rows, rejected, duplicates = result["rows"], result["invalid"], result["duplicates_merged"]
    read = result.get("rows_read", rows)
    contacts = rows - rejected - duplicates
    return {
        "Rows read": read, "Blank rows skipped": read - rows, "Rejected rows": rejected, "Valid rows": rows - rejected,
        "Duplicates merged": duplicates, "New contacts": result["imported"], "Updated contacts": result["updated"],
        "Unchanged contacts": contacts - result["imported"] - result["updated"],
        "Newly enrolled": result["enrolled"], "Already enrolled": contacts - result["enrolled"],
    }


FIGURE_HELP = {
    "Blank rows skipped": "Rows with no value in any column",
    "Rejected rows": "Rows not imported: the reasons are in the table below",
    "Valid rows": "Rows with a phone number that can be called; a bad value in another column (an e-mail, say) "
                  "is not imported (a contact already in the CRM keeps its own), and listed below",
    "Duplicates merged": "Valid rows with the phone number of an earlier row: merged into that row's contact",
    "New contacts": "Phone numbers the CRM did not have",
    "Updated contacts": "Contacts already in the CRM whose details this file changed",
    "Unchanged contacts": "Contacts already in the CRM with the same details",
    "Newly enrolled": "Contacts this import added to the campaign",
    # "Already in this campaign" ran under its help icon in a fifth of a 1280 px row: the label pairs with "Newly
    # enrolled", the help says the rest
    "Already enrolled": "Contacts of the file already in this campaign before this import (not enrolled twice)",
}


def import_report(result: dict | None) -> None:
    """What an import did (the wizard's and the Contact List's): its figures (`import_figures`), how they add up,
    then the rejected rows with their reasons and the fields left empty in rows imported."""
    if not result:
        return
    if "error" in result:
        st.error(f"Nothing was imported: {result['error']}")
        return
    if result.get("file"):  # named: it stays on the page while another file is uploaded and previewed above it
        st.markdown(f"**Import of {markdown_text(Path(result['file']).name)}**")
    figures = import_figures(result)
    valid, duplicates = figures["Valid rows"], figures["Duplicates merged"]
    contacts, enrolled, already = valid - duplicates, figures["Newly enrolled"], figures["Already enrolled"]
    warned = result.get("warned", 0)  # a result kept from before fields were left empty has none
    emptied = f" ({warned:,} of them without a value that failed its check)" if warned else ""
    if not valid:
        st.warning("Nothing was imported: " + ("every row of the file was rejected." if figures["Rejected rows"]
                                               else "the file has no rows with values."))
    else:
        st.success(f"Imported {_count(contacts, 'contact')} from {_count(figures['Rows read'], 'row')}: "
                   f"{enrolled:,} newly enrolled in this campaign, {already:,} already in it.")
    labels = list(figures)
    for line in (labels[:5], labels[5:]):
        for cell, label in zip(st.columns(5), line):
            cell.metric(label, f"{figures[label]:,}", help=FIGURE_HELP.get(label))
    st.caption(
        f"{_count(figures['Rows read'], 'row')} read = {figures['Blank rows skipped']:,} blank + "
        f"{figures['Rejected rows']:,} rejected + {valid:,} valid{emptied}.  \n"
        f"{_count(valid, 'valid row')} = {_count(duplicates, 'duplicate')} (an earlier row's phone, merged into it) + "
        f"{_count(contacts, 'contact')}.  \n"
        f"{_count(contacts, 'contact')} = {figures['New contacts']:,} new + {figures['Updated contacts']:,} updated + "
        f"{figures['Unchanged contacts']:,} unchanged (in the CRM already, with the same details) = "
        f"{enrolled:,} newly enrolled in this campaign + {already:,} already in it."
    )
    for key, heading in (("rejected", "**Rejected rows**"), ("warnings", "**Imported without these values**")):
        if result.get(key):
            st.markdown(heading)
            st.dataframe(pl.DataFrame(result[key]).rename(
                {"row": "Row", "column": "Column", "value": "Value", "reason": "Reason"}), hide_index=True, width="stretch",
                placeholder=NO_VALUE)
