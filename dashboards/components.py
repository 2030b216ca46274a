"""Shared look of the dashboard: status capsules, CSS, and formatting of durations, disconnect reasons, dates and
credits (every duration and reason the dashboard shows goes through `format_duration` and `reason_label`)."""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path
from datetime import date, datetime
from zoneinfo import ZoneInfo

import polars as pl

# Background and text colour of each campaign status capsule.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "Draft": ("#e5e7eb", "#374151"),
    "Scheduled": ("#dbeafe", "#1d4ed8"),
    "Running": ("#dcfce7", "#15803d"),
    "Waiting": ("#fef3c7", "#b45309"),
    "Paused": ("#e2e8f0", "#475569"),
    "Manual Running": ("#ede9fe", "#6d28d9"),
    "Completed": ("#d1fae5", "#065f46"),
    "Failed": ("#fee2e2", "#b91c1c"),
}

# What a table shows for a missing value (a never-called contact's Last Call Date, a rejected row's international
# phone): an empty cell. Streamlit draws a grey "None", which managers read as a value.
NO_VALUE = ""

# (no /* comments */ inside: st.markdown reads the asterisks as emphasis and the rule is lost)
# A KPI card's label wraps instead of ending in "…" when five cards share a 1280 px row; so does its value
# ("1 min, 22 sec" is wider than a fifth of the row). The label's paragraph is set too: Streamlit keeps it on one line,
# and a long label ran on under its help icon ("Already in this campaign" in the import report).
CSS = """
<style>
.vc-capsule {display:inline-block; padding:0.15rem 0.7rem; border-radius:999px; font-size:0.8rem;
             font-weight:600; line-height:1.4; white-space:nowrap;}
.vc-muted {color:#6b7280; font-size:0.85rem;}
.vc-row-name {font-weight:600; font-size:1rem;}
div[data-testid="stMainBlockContainer"] {padding-top:2.5rem;}
[data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"], [data-testid="stMetricLabel"] p {
    white-space:normal; overflow:visible; text-overflow:clip;}
[data-testid="stMetricValue"] [data-testid="stMarkdownContainer"], [data-testid="stMetricValue"] p {
    white-space:normal; overflow:visible; text-overflow:clip;}
</style>
"""


def capsule_html(status: str) -> str:
    """A coloured pill showing a campaign status (unknown statuses are grey)."""
    background, colour = STATUS_COLOURS.get(status, STATUS_COLOURS["Draft"])
    return (f'<span class="vc-capsule" style="background:{background};color:{colour}">'
            f"{html.escape(status)}</span>")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


def markdown_text(text: object) -> str:
    """Text shown literally inside st.markdown: markup, links, colour directives and HTML are escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def markdown_paragraphs(text: object) -> str:
    """Several lines of text shown literally inside st.markdown, each line kept (`markdown_text` per line)."""
    return "  \n".join(markdown_text(line) for line in str(text).splitlines() if line.strip())


_WEB_ADDRESS = re.compile(r"https?://[^\s<>()\[\]`\\]+", re.IGNORECASE)


def recording_link(url: str) -> str:
    """Markdown for a recording address: a link when it is a plain web address, else the text alone."""
    if _WEB_ADDRESS.fullmatch(url):
        return f"[{markdown_text(url)}](<{url}>)"
    return markdown_text(url)


# How a duration reads everywhere the dashboard shows one: as the tables draw a typed duration with
# NumberColumn(format="localized") (the browser's Intl.DurationFormat, style "short", English), so a
# card and a table never disagree ("45 sec", "2 min, 5 sec", "1 hr, 2 min, 3 sec"; zero parts left out).
_DURATION_UNITS = (("day", "days", 86400), ("hr", "hr", 3600), ("min", "min", 60), ("sec", "sec", 1))


def format_duration(seconds: float | int | None) -> str:
    """Seconds as "1 hr, 2 min, 3 sec", "2 min, 5 sec", "45 sec" or "0 sec" (the tables' format); blank when unknown."""
    if seconds is None:
        return ""
    rest = int(round(seconds))
    parts = []
    for one, many, size in _DURATION_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts) or "0 sec"


# Words of a disconnect-reason code written in capitals rather than Title Case.
REASON_ACRONYMS = {"asr": "ASR", "sip": "SIP", "ivr": "IVR"}
# Short words kept lower case inside a label ("Marked as Spam").
REASON_SMALL_WORDS = frozenset({"as", "of", "to", "by", "on", "in"})
_REASON_CODE = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")


def reason_label(code: str | None) -> str:
    """How a disconnect reason reads on screen: "user_hangup" → "User Hangup", "error_asr" → "Error ASR".

    Only for display: stored data, SQL, filters' values, the Excel export and the CLI keep the codes.
    Text that is not a code (e.g. the Calls Made chart's "in flight / no reason") is returned as is; blank when missing.
    """
    if code is None:
        return ""
    text = str(code)
    if not _REASON_CODE.fullmatch(text):
        return text
    words = text.split("_")
    return " ".join(REASON_ACRONYMS.get(word) or (word if i and word in REASON_SMALL_WORDS else word.capitalize())
                    for i, word in enumerate(words))


def reason_labels(column: str) -> pl.Expr:
    """A column of disconnect-reason codes as their labels (`reason_label`), nulls kept."""
    return pl.col(column).map_elements(reason_label, return_dtype=pl.String).alias(column)


def format_local(moment: datetime | None, time_zone: str, with_time: bool = True) -> str:
    """A UTC instant in the campaign's time zone, as "Apr 27, 2026 08:05 AM"; blank when missing."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(time_zone))
    text = f"{local:%b} {local.day}, {local.year}"
    return f"{text} {local:%I:%M %p}" if with_time else text


def format_date(day: date | None) -> str:
    """A calendar date as "April 27, 2026"; "Not set" when missing."""
    return "Not set" if day is None else f"{day:%B} {day.day}, {day.year}"


def format_credits(credits: float | int | None) -> str:
    """Credits with thousands separators ("12,345"); blank when unknown."""
    if credits is None:
        return ""
    return f"{credits:,.0f}"


# Tables keep numbers, durations and times typed and format them in the column config, so a click on a
# column header sorts by value (1,332 after 999), not as text. Dates: momentjs tokens.
TABLE_DATE_FORMAT = "MMM DD, YYYY hh:mm A"


def seconds_as_duration(column: str) -> pl.Expr:
    """A column of seconds as a whole-second duration (shown as "2 min, 5 sec" with format="localized",
    the same text as `format_duration`)."""
    return pl.duration(milliseconds=pl.col(column).round().cast(pl.Int64) * 1000).alias(column)


def require_app_shell() -> None:
    """Make a page file run inside `app.py`'s navigation, even on the first visit to its address.

    A folder named `pages/` beside the main script makes Streamlit start in its legacy multipage mode
    until `st.navigation` runs once, and in that mode a request for /campaign runs this file alone,
    without the app's page config, navigation and error banners. Running `app.py` here instead
    (which draws this page through `st.navigation`) and stopping keeps every request in the app.
    """
    import runpy

    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        runpy.run_path(str(Path(__file__).with_name("app.py")), run_name="__main__")
        st.stop()


def record_table(frame: pl.DataFrame, ids: list[int], key: str, **options) -> int | None:
    """A table with single-row selection whose selection belongs to a record, not to a row position: draws `frame`
    (one row per id of `ids`, in order) and returns the id of the selected row, or None.

    Streamlit keeps a selection as a row position for the widget's key, so the key names the ids shown, in order:
    other rows (a filter, search, sort, page, a refresh or a new call) make a new table, which selects the record
    selected before if it is still shown, at its new position, and nothing otherwise. A row position is only ever
    read against the rows it was chosen in: the detail, feedback and row actions act on that record.
    """
    import streamlit as st

    # a missing value (a contact without a name, a never-called contact's last call date) is an empty cell, not the
    # grey "None" Streamlit draws for a null; texts are filled too, so a search of the frame finds no "None"
    frame = frame.with_columns(pl.col(pl.String).fill_null(""))
    chosen_key = f"{key}_chosen"
    chosen = st.session_state.get(chosen_key)
    digest = hashlib.blake2b(",".join(map(str, ids)).encode(), digest_size=8).hexdigest()
    event = st.dataframe(
        frame, key=f"{key}_{digest}", hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
        placeholder=NO_VALUE,
        selection_default={"selection": {"rows": [ids.index(chosen)]}} if chosen in ids else None, **options)
    rows = event.selection.rows if event is not None else []
    st.session_state[chosen_key] = ids[rows[0]] if rows and rows[0] < len(ids) else None
    return st.session_state[chosen_key]


def dimmed_buttons(*keys: str) -> str:
    """A style showing the buttons of these keys as inactive while they stay clickable (Save Changes and Discard with
    nothing unsaved: a disabled button lost the click that came right after typing, see pages/campaign.py)."""
    selectors = ", ".join(f".st-key-{key} button" for key in keys)
    return f"<style>{selectors} {{opacity: 0.45}}</style>"


def moment_text(moment: datetime, time_zone: str, now: datetime) -> str:
    """A moment in a zone with seconds, for a one-off message: "09:14:03 AM (America/Bogota)", led by the date
    ("Apr 27, ") when it is not the same local day as `now`."""
    zone = ZoneInfo(time_zone)
    local = moment.astimezone(zone)
    day = "" if local.date() == now.astimezone(zone).date() else f"{local:%b %d}, "
    return f"{day}{local:%I:%M:%S %p} ({time_zone})"


def zoned_columns(config: dict, zone: str, *columns: str) -> dict:
    """A table's column config in which these (date) columns say, in their header's help, the time zone of their
    times; each keeps the rest of its own config (format, width)."""
    return {**config, **{column: {**config[column], "help": f"In {zone}, the campaign's time zone"} for column in columns}}
