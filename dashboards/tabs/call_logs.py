"""The Call Logs tab: filters, a server-side paged table, the call detail with feedback, Excel download."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import polars as pl
import streamlit as st

from dashboards import state
from dashboards.components import (NO_VALUE, TABLE_DATE_FORMAT, format_duration, markdown_paragraphs, markdown_text,
                                   reason_label, reason_labels, record_table, recording_link, seconds_as_duration,
                                   zoned_columns)
from dashboards.queries import calls as q
from dashboards.queries.smart import campaign_zone
from schemas.enums import IN_FLIGHT_STATUSES, REASON_MEANINGS, STATUS_MEANINGS, CallStatus, DisconnectReason
from tasks.errors import UserError
from tasks.export_calls import export_calls
from tasks.feedback import set_feedback

# Session key the Contact List sets to show one contact's calls here.
CONTACT_FILTER_KEY = "call_logs_contact_filter"
# Streamlit's own header click sorts the rows it was sent: this page only.
SORT_HELP = "Orders every matching call, across pages (a column header click sorts only this page)."
SORT_LABELS = {
    "Date": "date", "Phone Number": "phone", "Disconnect Reason": "disconnect_reason", "Status": "status",
    "Call Successful": "call_successful", "Duration": "duration", "Credits": "credits", "Tools": "tools",
}
# The duration slider's top; at the top it means "and longer".
DURATION_CAP_SECONDS = 1800
DURATION_STEPS = list(range(0, DURATION_CAP_SECONDS + 1, 10))


def duration_step_label(seconds: int) -> str:
    """A duration slider stop as the tables write durations ("1 min, 40 sec"); the top one means "and longer"."""
    return format_duration(seconds) + ("+" if seconds >= DURATION_CAP_SECONDS else "")
# Numbers and times stay typed (a header click sorts them by value); the config only formats them.
# Widths in pixels: a cell pads 8 px each side of its text, so each is 16 px more than the widest of its header and its
# usual values, measured in Chromium in the grid's font (14 px Source Sans): "+525552701072" 91, "Valentina Johnson"
# 109, "May 10, 2026 10:00 PM" 130 (the widest month, day and hour), "Max Duration Reached" 131 (reasons show as
# labels; the rare longer ones, "Telephony Provider Unavailable", are cut), "failed_rate_limit" 97, the header "Call
# Successful" 87, "10 min, 38 sec" 82, the header "Credits" 42, "Good · Great call" 96, the header "Tools" 32 and
# "History ↗" 54 ("small" is 75 px: it cut "not_connected", "1 min, 44 sec", names and "History ↗").
COLUMN_WIDTHS = {
    "Phone Number": st.column_config.TextColumn(width=107),
    "Contact": st.column_config.TextColumn(width=125),
    "Disconnect Reason": st.column_config.TextColumn(width=147, help="Why the call ended; select a call to read "
                                                      "what its reason means"),
    "Status": st.column_config.TextColumn(width=113, help="\n".join(
        f"- **{status}**: {meaning}" for status, meaning in STATUS_MEANINGS.items())),
    "Call Successful": st.column_config.TextColumn("Call Successful", width=103),
    "Duration": st.column_config.NumberColumn(width=98, format="localized"),
    "Credits": st.column_config.NumberColumn(width=58, format="localized"),
    "Feedback": st.column_config.TextColumn(width=112),
    "Tools": st.column_config.NumberColumn(width=48, format="%d"),
    "Date": st.column_config.DatetimeColumn(width=146, format=TABLE_DATE_FORMAT),
}
HISTORY_COLUMNS = {
    "Duration": st.column_config.NumberColumn(format="localized"),
    "Credits": st.column_config.NumberColumn(format="localized"),
    "Date": st.column_config.DatetimeColumn(format=TABLE_DATE_FORMAT),
}
# The spec's columns with the contact's name after its phone, and Date right after them (the spec lists it last; a
# contact's call history here has it second too). With the sidebar open the table is 818 px wide at a 1280 px window and
# 978 px at 1440 (the row-selection column takes 32): the columns need 1,127 px, so the last ones scroll sideways at
# both widths; last, Date did (its right edge was at 1,142 px, 1,089 with these widths). Here it ends at 410 px, and
# the table shows through Call Successful at 1280 px and through Credits at 1440 px, the rest a scroll away.
TABLE_COLUMNS = ["Phone Number", "Contact", "Date", "Disconnect Reason", "Status", "Call Successful", "Duration",
                 "Credits", "Feedback", "Tools", "View"]
# The product's eye icon: the row's contact's whole call history, in a new browser tab (a link column opens
# one). Text, not an emoji: a browser without an emoji font would draw a box.
COLUMN_WIDTHS["View"] = st.column_config.LinkColumn(
    "View", width=70, display_text="History ↗", help="Open this contact's full call history in a new tab")


def _key(campaign_id: int, name: str) -> str:
    return f"calllogs_{campaign_id}_{name}"


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("Yes" if value else "No")


# A contact's call history: the campaign page, the Call Logs tab, only that contact's calls
# (pages/campaign.contact_from_address reads `contact`). Relative, so it works under any base path.
HISTORY_LINK = "campaign?campaign={}&tab=Call+Logs&contact={}"
# The call detail's cards (Call successful, Sentiment, Voicemail, Duration): Duration wider. In four equal columns at
# 1280 px (about 185 px each) a call from 5 minutes on wrapped "sec" onto a line of its own; these keep up to
# "59 min, 59 sec" (210 px) on one line and leave the others room for "Unknown" (145 px).
DETAIL_CARD_COLUMNS = [1, 1, 1, 1.4]


# The filter bar's values that narrow nothing (and page 1): a jump to one contact's calls sets them, so the contact's
# calls all show, not those an earlier search, reason, success, duration or date filter left.
UNFILTERED = {"search": "", "reasons": [], "successful": "All", "duration": (0, DURATION_CAP_SECONDS), "dates": (),
              "page": 1}


def show_contact(campaign_id: int, contact_id: int, label: str) -> None:
    """Make the Call Logs tab show all of one contact's calls and only them (until "Show all calls"): its other
    filters are set to `UNFILTERED`, which the browser's widgets then show too."""
    st.session_state[CONTACT_FILTER_KEY] = {"campaign_id": campaign_id, "contact_id": contact_id, "label": label}
    for name, value in UNFILTERED.items():
        st.session_state[_key(campaign_id, name)] = value


def show_all_calls() -> None:
    """Stop showing one contact's calls only."""
    st.session_state.pop(CONTACT_FILTER_KEY, None)


def display_frame(page: pl.DataFrame, campaign_id: int | None = None) -> pl.DataFrame:
    """The page as the table shows it: Yes/No, reasons as labels, durations as durations; numbers and local dates
    stay typed."""
    if campaign_id is not None and "contact_id" in page.columns:
        page = page.with_columns(
            pl.format(HISTORY_LINK, pl.lit(campaign_id), pl.col("contact_id"))
            .alias("View"))
    return page.with_columns(
        pl.col("Call Successful").map_elements(_yes_no, return_dtype=pl.String, skip_nulls=False),
        reason_labels("Disconnect Reason"),
        seconds_as_duration("Duration"),
    )


def _filters(campaign_id: int) -> tuple[q.CallFilters, st.delta_generator.DeltaGenerator]:
    """Draw the filter bar; returns what it asks for and the free slot beside the date range."""
    contact = st.session_state.get(CONTACT_FILTER_KEY)
    if contact and contact.get("campaign_id") == campaign_id:
        left, right = st.columns([5, 1])
        left.info(f"Showing the calls of **{markdown_text(contact['label'])}** only.")
        # a callback: the click's rerun, of this tab alone (a fragment on the campaign page), shows every call
        right.button("Show all calls", key=_key(campaign_id, "clear_contact"), on_click=show_all_calls)
    else:
        contact = None
    top = st.columns([3, 3, 1.4], vertical_alignment="bottom")
    search = top[0].text_input("Search", key=_key(campaign_id, "search"),
                               placeholder="Phone number or contact name", max_chars=q.MAX_SEARCH_CHARS)
    # the options (and the filter's values) are the codes; only their text is the label
    reasons = top[1].multiselect("Disconnect reason", [r.value for r in DisconnectReason], format_func=reason_label,
                                 key=_key(campaign_id, "reasons"), placeholder="All reasons")
    successful = top[2].selectbox("Call successful", ["All", "Yes", "No"], key=_key(campaign_id, "successful"))
    bottom = st.columns([3, 3, 1.4], vertical_alignment="top")  # the sort column is taller: its toggle hangs below
    low, high = bottom[0].select_slider("Duration", DURATION_STEPS, UNFILTERED["duration"],
                                        format_func=duration_step_label, key=_key(campaign_id, "duration"))
    days = bottom[1].date_input("Date range", value=UNFILTERED["dates"], key=_key(campaign_id, "dates"),
                                format="YYYY-MM-DD")
    date_from = days[0] if len(days) >= 1 else None
    date_to = days[1] if len(days) == 2 else date_from
    return q.CallFilters(
        search=search or None,
        disconnect_reasons=tuple(reasons),
        call_successful={"All": None, "Yes": True, "No": False}[successful],
        min_duration_seconds=float(low) if low > 0 else None,
        max_duration_seconds=float(high) if high < DURATION_CAP_SECONDS else None,
        date_from=date_from,
        date_to=date_to,
        contact_id=contact["contact_id"] if contact else None,
    ), bottom[2]


def filtered(filters: q.CallFilters) -> bool:
    """Whether the filter bar (or a contact) narrows the calls shown."""
    return filters != q.CallFilters()


def _export_bytes(campaign_id: int, filters: q.CallFilters) -> bytes:
    date_from, date_to, export_filters = q.export_arguments(filters)
    with tempfile.TemporaryDirectory(prefix="vc-calls-") as folder:
        out = Path(folder) / "calls.xlsx"
        with state.reading() as conn:
            export_calls(conn, campaign_id, out, date_from, date_to, export_filters)
        return out.read_bytes()


def render(campaign_id: int) -> None:
    """Draw the Call Logs tab of one campaign."""
    filters, sort_slot = _filters(campaign_id)
    sort_label = sort_slot.selectbox("Sort by", list(SORT_LABELS), key=_key(campaign_id, "sort"),
                                    help=SORT_HELP)
    descending = sort_slot.toggle("Descending", value=True, key=_key(campaign_id, "desc"))

    with state.reading() as conn:
        total = q.count_calls(conn, campaign_id, filters)
        pages = max(1, math.ceil(total / q.PAGE_SIZE))
        page_key = _key(campaign_id, "page")
        if st.session_state.get(page_key, 1) > pages:
            st.session_state[page_key] = pages
        page = st.session_state.get(page_key, 1)
        rows = q.call_page(conn, campaign_id, filters, page=page, sort=SORT_LABELS[sort_label],
                           descending=descending)
        zone = campaign_zone(conn, campaign_id)

    actions = st.columns([3.6, 1.6, 1.6, 1], vertical_alignment="center")
    first = (page - 1) * q.PAGE_SIZE + 1 if total else 0
    actions[0].markdown(f"**{total:,}** {'call' if total == 1 else 'calls'} · showing {first:,}–{first + rows.height - 1 if total else 0:,}"
                        f" · page {page:,} of {pages:,}", help=f"Times are in {zone}, the campaign's time zone.")
    actions[1].number_input("Page", min_value=1, max_value=pages, step=1, key=page_key,
                            label_visibility="collapsed", help=f"Page of {pages:,}")
    actions[2].download_button(
        "Download as Excel", data=lambda: _export_bytes(campaign_id, filters),
        file_name=f"campaign-{campaign_id}-calls.xlsx", key=_key(campaign_id, "download"),
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        help="Every call matching the filters, all pages.",
    )
    if actions[3].button("Refresh", key=_key(campaign_id, "refresh")):
        st.rerun()

    if rows.is_empty():
        st.info("No calls match these filters yet." if filtered(filters) else
                "No calls yet: the campaign's calls appear here once it has dialed (Run, or Active on schedule).")
        return
    call_id = record_table(display_frame(rows, campaign_id), rows["call_id"].to_list(), _key(campaign_id, "table"),
                           column_order=TABLE_COLUMNS, column_config=zoned_columns(COLUMN_WIDTHS, zone, "Date"))
    if call_id is not None:
        _detail(campaign_id, call_id)
    else:
        st.caption("Select a row to see the call's analysis, transcript and history, and to leave feedback.")


def never_connected(call: dict) -> bool:
    """The call ended without anyone on the line: no summary or sentiment will come."""
    status = call["status"]
    return status in (CallStatus.not_connected, CallStatus.failed_rate_limit) or (
        status == CallStatus.error and not call["duration_seconds"])


def analysis_note(call: dict) -> str | None:
    """Why the detail has no summary, in the call's own terms (None when it has one). "No summary yet" promised
    one for calls that never connected, which never get one."""
    if call["summary"]:
        return None
    if call.get("disconnect_reason") == q.NOT_PLACED:
        return f"No summary: the call was never placed ({call.get('error_message') or 'its batch stopped first'})."
    if never_connected(call):
        return "No summary: the call did not connect."
    if call["status"] in IN_FLIGHT_STATUSES:
        return "No summary yet: the call is not over."
    if call["analyzed_at"] is None:
        return "No summary yet: the call's analysis has not arrived."
    return "No summary: the provider's analysis has none for this call."


def _detail(campaign_id: int, call_id: int) -> None:
    """The selected call: analysis, data, transcript, recording, history, and the feedback form."""
    with state.reading() as conn:
        call = q.call_detail(conn, campaign_id, call_id)
        history = q.contact_history(conn, campaign_id, call["contact_id"])
        zone = campaign_zone(conn, campaign_id)
    with st.container(border=True):
        st.subheader(f"Call {call_id} · {markdown_text(call['contact_name'] or call['phone_e164'])}")
        st.caption(f"{call['phone_e164']} · {call['local_date']:%b %d, %Y %I:%M %p} ({zone}) · attempt "
                   f"{call['attempt_number']} · {call['status']}"
                   + (f" · {reason_label(call['disconnect_reason'])}" if call["disconnect_reason"] else ""),
                   help=call_meaning(call["status"], call["disconnect_reason"]))
        cards = st.columns(DETAIL_CARD_COLUMNS)
        cards[0].metric("Call successful", _yes_no(call["call_successful"]) or "Unknown")
        cards[1].metric("Sentiment", call["user_sentiment"] or ("–" if never_connected(call) else "Unknown"))
        cards[2].metric("Voicemail", _yes_no(call["in_voicemail"]) or "Unknown")
        cards[3].metric("Duration", format_duration(call["duration_seconds"]) or "–")
        st.markdown("**Summary**")
        # the provider's text, shown as written: no markup, links or images of its own
        st.markdown(markdown_paragraphs(call["summary"]) if call["summary"] else analysis_note(call))
        data = st.columns(2)
        with data[0]:
            st.markdown("**Dynamic variables**")
            st.json(call["dynamic_variables"]) if call["dynamic_variables"] else st.caption("None")
        with data[1]:
            st.markdown("**Custom analysis data**")
            st.json(call["custom_analysis"]) if call["custom_analysis"] else st.caption("None")
        if call["recording_url"]:
            st.markdown(f"**Recording:** {recording_link(call['recording_url'])}")
        if call["transcript"]:
            with st.expander("Transcript"):
                st.text(call["transcript"])
        # rated where it was reviewed: after the summary and transcript, not below the history table
        _feedback_form(call)
        st.markdown("**Call history of this contact in this campaign**")
        history_table(history)


# The reasons' meanings, and that of the rows never placed (`queries.calls.NOT_PLACED`).
SHOWN_MEANINGS = {**REASON_MEANINGS, q.NOT_PLACED: (
    "Never handed to the provider: its batch stopped before reaching it (the campaign was paused, the calling window "
    "closed, or the process placing it stopped). No one was called; it is not an attempt, and the contact is called "
    "again later.")}


def call_meaning(status: str, reason: str | None) -> str:
    """What a call's status and disconnect reason mean, in the product's words (the detail's help)."""
    lines = [f"**{status}**: {STATUS_MEANINGS.get(status, '')}"]
    if reason:
        lines.append(f"**{reason_label(reason)}**: {SHOWN_MEANINGS.get(reason, 'a reason this version does not know.')}")
    return "\n\n".join(lines)


def history_table(history: pl.DataFrame) -> None:
    """A contact's calls (`queries.calls.contact_history`) and, when some are no attempts, why they are not counted."""
    st.dataframe(display_history(history), hide_index=True, width="stretch", column_config=HISTORY_COLUMNS,
                 placeholder=NO_VALUE, column_order=[c for c in history.columns if c not in ("call_id", "counts_as_attempt")])
    note = not_attempts_note(history)
    if note:
        st.caption(note)


def not_attempts_note(history: pl.DataFrame) -> str | None:
    """Why a contact's Attempts is less than its calls listed, or None when every call is an attempt."""
    others = history.height - history["counts_as_attempt"].sum()
    if not others:
        return None
    which = "is not an attempt" if others == 1 else "are not attempts"
    return (f"{others:,} of these {history.height:,} calls {which} (Attempts counts {history.height - others:,}): a "
            "call the provider could not take (Telephony Provider Unavailable, a rate or concurrency limit) or that "
            "was never placed gives its attempt back, so the next call has the same attempt number.")


def display_history(history: pl.DataFrame) -> pl.DataFrame:
    """A contact's calls as the detail panel shows them (with HISTORY_COLUMNS as the column config)."""
    return history.with_columns(
        pl.col("Call Successful").map_elements(_yes_no, return_dtype=pl.String, skip_nulls=False),
        reason_labels("Disconnect Reason"),
        seconds_as_duration("Duration"),
    )


def _feedback_form(call: dict) -> None:
    call_id = call["call_id"]
    st.markdown("**Feedback**")
    stored = {"up": 1, "down": 0}.get(call["feedback_rating"])
    left, right = st.columns([1, 4], vertical_alignment="bottom")
    with left:
        rating = st.feedback("thumbs", key=f"feedback_rating_{call_id}", default=stored)
    comment = right.text_input("Comment", value=call["feedback_comment"] or "", key=f"feedback_comment_{call_id}",
                               max_chars=2000, placeholder="What went well or wrong in this call?")
    if st.button("Save feedback", key=f"feedback_save_{call_id}", type="primary"):
        try:
            with state.writing() as conn:
                # a cleared thumb removes the stored rating (None alone would keep it)
                set_feedback(conn, call_id, {1: "up", 0: "down"}.get(rating), comment, state.now(),
                             clear_rating=rating is None)
        except UserError as error:
            st.error(str(error))
            return
        st.toast("Feedback saved")
        st.rerun()
