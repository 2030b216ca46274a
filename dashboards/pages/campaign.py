"""The campaign page: header (name, status, Active, Run, Save Changes/Discard) and the four tabs."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import datetime

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboards import auth, state
from dashboards.components import capsule_html, dimmed_buttons, markdown_text, moment_text, require_app_shell
from dashboards.leave_guard import leave_guard
from dashboards.queries.campaigns import campaign_header
from dashboards.tabs import call_logs, contact_list, metrics, settings
from tasks.campaigns import activate_campaign, deactivate_campaign, get_campaign
from tasks.errors import NotFoundError, StoreError, StoreLockedError, UserError
from tasks.schedule import Schedule


# While a batch may be dialing the status capsule refreshes itself (seconds between reads, and how long
# after a Run click it keeps watching for the batch to start).
LIVE_STATUSES = frozenset({"Manual Running", "Running"})
REFRESH_SECONDS = 5
RUN_WATCH_SECONDS = 90
HEADER_COLUMNS = [3.2, 1.2, 1.0, 1.4, 1.0]
BUSY = "The database is busy (a flow is writing); nothing was saved. Try again in a moment."


def selected_campaign() -> int | None:
    """The campaign shown: ?campaign=ID in the address, else the one chosen earlier in this session."""
    raw = st.query_params.get("campaign")
    if raw is not None:
        try:
            st.session_state["campaign_id"] = int(raw)
        except ValueError:
            return None
    return st.session_state.get("campaign_id")


# Set by the header's callbacks. A click on the header coming right after an edit inside a tab (a text field commits
# when it loses focus, so typing then clicking Save Changes does this) is merged by Streamlit into that tab's own run:
# the callback runs, the header is not redrawn. The tab then asks for the whole page (`tab_content`).
HEADER_ACTED = "campaign_header_acted"


def header_callback(callback: Callable[[int], None]) -> Callable[[int], None]:
    """Mark a header callback: the page drawn after it is the whole page, with its message and the new state."""
    @functools.wraps(callback)
    def marked(campaign_id: int) -> None:
        st.session_state[HEADER_ACTED] = True
        callback(campaign_id)
    return marked


def _flash(campaign_id: int, kind: str, text: str) -> None:
    st.session_state[state.key(campaign_id, "_flash")] = (kind, text)


NOTHING_TO_SAVE = "Nothing to save: the settings shown are the saved ones."


@header_callback
def save_changes(campaign_id: int) -> None:
    """Save Changes: validate the whole form; write it only when every rule holds."""
    try:
        if not settings.has_unsaved_edits(campaign_id):
            _flash(campaign_id, "info", NOTHING_TO_SAVE)
            return
        errors = settings.save_form(campaign_id)
    except UserError as error:
        _flash(campaign_id, "error", str(error))
        return
    except StoreLockedError:
        _flash(campaign_id, "error", BUSY)
        return
    if not errors:
        _flash(campaign_id, "success", "Changes saved.")


@header_callback
def discard_changes(campaign_id: int) -> None:
    """Discard: the form shows the stored settings again."""
    state.clear_form(st.session_state, campaign_id)


@header_callback
def toggle_active(campaign_id: int) -> None:
    """The Active toggle writes at once (it is not part of the settings form)."""
    wanted = st.session_state[f"active_{campaign_id}"]
    try:
        with state.writing() as conn:
            (activate_campaign if wanted else deactivate_campaign)(conn, campaign_id, state.now())
            status = campaign_header(conn, campaign_id, state.now())["status"]
    except UserError as error:
        rule = getattr(error, "rule", str(error))
        # the first letter only: str.capitalize() lowered the rest ("turn active off", "(america/phoenix)")
        _flash(campaign_id, "error", rule[:1].upper() + rule[1:])
    except StoreLockedError:
        _flash(campaign_id, "error", BUSY)
    else:
        _flash(campaign_id, "success", active_message(wanted, status))


def active_message(wanted: bool, status: str) -> str:
    """What the Active toggle did, naming Paused only when the campaign is Paused now: a finished (Completed)
    or Failed campaign keeps that status with Active off (tasks.campaigns.derive_status)."""
    if wanted:
        return "Scheduled dialing is on."
    return "Scheduled dialing is off (Paused)." if status == "Paused" else "Scheduled dialing is off."


def outside_schedule(stored: dict, now: datetime) -> str | None:
    """Why the campaign's own schedule would not call at `now` (Run dials anyway), or None while it is open."""
    schedule = Schedule.from_row(stored["time_zone"], stored["calling_days"], stored["weekly_schedule"],
                                 stored["start_date"], stored["end_date"])
    closed = schedule.closed_because(now)
    if closed is None:
        return None
    kind, day = closed
    local = schedule.local(now)
    why = {
        "no_start_date": "the campaign has no start date",
        "before_start": f"the campaign starts on {day:%b %d, %Y}" if day else "",
        "after_end": f"the campaign ended on {day:%b %d, %Y}" if day else "",
        "not_calling_day": f"{local:%A} is not one of its calling days",
        "outside_hours": f"{local:%I:%M %p} on {local:%A} is outside its calling hours",
    }[kind]
    return f"It is {local:%a %b %d, %I:%M %p} in {stored['time_zone']}: {why}."


@header_callback
def ask_run(campaign_id: int) -> None:
    """Run clicked: dial at once inside the schedule; outside it, ask first (real people get called now).

    Judged at the click, from the stored settings: the header is drawn by the page's last whole run, which can be
    long before the click when the user worked inside a tab meanwhile (each tab reruns alone).
    """
    try:
        with state.reading() as conn:
            outside = outside_schedule(get_campaign(conn, campaign_id), state.now())
    except NotFoundError:
        return  # deleted meanwhile: the page's run after this callback says so
    if outside is None:
        run_now(campaign_id)
    else:
        st.session_state[state.key(campaign_id, "_confirm_run")] = outside


@header_callback
def cancel_run(campaign_id: int) -> None:
    st.session_state.pop(state.key(campaign_id, "_confirm_run"), None)


@header_callback
def run_now(campaign_id: int) -> None:
    """Run: one batch now, in the background so the page stays responsive."""
    st.session_state.pop(state.key(campaign_id, "_confirm_run"), None)
    st.session_state[f"run_clicked_{campaign_id}"] = time.monotonic()
    try:
        message = state.start_manual_run(campaign_id)
    except Exception as error:  # a failed launch is shown, never a traceback
        _flash(campaign_id, "error", f"Could not start a batch: {error}")
    else:
        _flash(campaign_id, "success", f"Run: {message}. Its result shows here when it has ended; the status "
                                       "shows Manual Running while it dials.")


def run_outcome(campaign_id: int, time_zone: str) -> None:
    """The result of the last Run from this dashboard once its process has ended, shown once per session; its start
    time in the campaign's time zone, as every time on the page."""
    run = state.manual_run(campaign_id)
    outcome = run.outcome() if run is not None else None
    if outcome is None:
        return
    shown = st.session_state.setdefault("runs_shown", set())
    if run.log in shown:
        return
    shown.add(run.log)
    succeeded, line = outcome
    text = f"The Run started at {moment_text(run.started_at, time_zone, state.now())} has ended: {line}"
    (st.info if succeeded else st.error)(text, icon=":material/play_arrow:" if succeeded else ":material/error:")


def live_title(campaign_id: int, head: dict, time_zone: str) -> None:
    """Name and status capsule (and why, when Failed: times in the campaign's `time_zone`); while a batch may be
    dialing, the status refreshes itself every few seconds."""
    recently_run = time.monotonic() - st.session_state.get(f"run_clicked_{campaign_id}", -1e9) < RUN_WATCH_SECONDS
    run_going = state.run_in_progress(campaign_id)
    live = head["status"] in LIVE_STATUSES or recently_run or run_going

    @st.fragment(run_every=REFRESH_SECONDS if live else None)
    def title() -> None:
        current = head
        if live:  # a timed rerun of this fragment alone: read the status again
            if auth.sign_in_lapsed():  # idle too long: the whole app asks for the password again
                st.rerun(scope="app")
            try:
                with state.reading() as conn:
                    current = campaign_header(conn, campaign_id, state.now())
            except (StoreError, NotFoundError):
                # the file, or the campaign (list, CLI, another session), was deleted meanwhile: the whole page
                # says so in one error instead of an exception in the header
                st.rerun(scope="app")
            # the buttons depend on the status too, and the Run button and its result on the run's process
            if current["status"] != head["status"] or (run_going and not state.run_in_progress(campaign_id)):
                st.rerun(scope="app")
        # HTML is allowed here for the capsule only: the name is escaped (a name can hold any text)
        st.markdown(f"## {markdown_text(current['name'])} &nbsp; {capsule_html(current['status'])}",
                    unsafe_allow_html=True)
        failure = current.get("failed_because")
        if failure:  # "Failed" alone said nothing of why: the batch's message was in dial_runs only
            st.error(f"Its {failure['kind']} batch of {moment_text(failure['started_at'], time_zone, state.now())}"
                     f" failed: {markdown_text(failure['message'])}", icon=":material/error:")
        if current.get("numbers_hold"):  # an inactive trunk, a paused or capped number: "Waiting" looked healthy
            st.warning(f"No batch can dial now: {markdown_text(current['numbers_hold'])}. Check the outbound numbers in"
                       " Settings.", icon=":material/phone_disabled:")

    title()


def header(campaign_id: int, head: dict, stored: dict) -> bool:
    """Name, status capsule, Active toggle, Run, Save Changes and Discard; returns whether it showed unsaved edits."""
    dirty = state.is_dirty(st.session_state, campaign_id, stored)
    # room for every label at 1280 px (a narrower Run column drew "R…")
    title, active, run, save, discard = st.columns(HEADER_COLUMNS, vertical_alignment="center")
    with title:
        live_title(campaign_id, head, stored["time_zone"])
    no_start = stored["start_date"] is None
    st.session_state[f"active_{campaign_id}"] = bool(stored["active"])
    active.toggle("Active", key=f"active_{campaign_id}", disabled=no_start, on_change=toggle_active, args=(campaign_id,),
                  help="Scheduled dialing on or off")
    running = head["status"] == "Manual Running" or state.run_in_progress(campaign_id)
    run.button("Run", key=f"run_{campaign_id}", icon=":material/play_arrow:", on_click=ask_run,
               args=(campaign_id,), disabled=running,
               help="Dial one batch now, for testing: even when Active is off or outside the calling schedule "
                    "(asked first then); each callee's legal calling hours still apply")
    # Never disabled, only dimmed while nothing is unsaved: a text field commits its value when it loses focus, so
    # a click on Save Changes right after typing met a button still disabled by the last run and was lost
    save.button("Save Changes", key=f"save_{campaign_id}", type="primary", on_click=save_changes, args=(campaign_id,),
                help=None if dirty else "Nothing to save yet: edit a setting first")
    discard.button("Discard", key=f"discard_{campaign_id}", on_click=discard_changes, args=(campaign_id,))
    if not dirty:
        st.html(dimmed_buttons(f"save_{campaign_id}", f"discard_{campaign_id}"))
    if no_start:
        st.caption("Active is off until the campaign has a Start Date: set it in Settings and save, then activate.")
    confirm = st.session_state.get(state.key(campaign_id, "_confirm_run"))
    if confirm and not running:
        st.warning(f"{confirm} Run dials one batch now anyway: real contacts get called (each callee's legal "
                   "calling hours still apply).", icon=":material/schedule:")
        go, cancel, _ = st.columns([1.4, 1, 3])
        go.button("Dial now anyway", key=f"run_confirm_{campaign_id}", type="primary", on_click=run_now,
                  args=(campaign_id,))
        cancel.button("Cancel", key=f"run_cancel_{campaign_id}", on_click=cancel_run, args=(campaign_id,))
    flash = st.session_state.pop(state.key(campaign_id, "_flash"), None)
    if flash:
        {"success": st.success, "warning": st.warning, "info": st.info}.get(flash[0], st.error)(flash[1])
    run_outcome(campaign_id, stored["time_zone"])
    if dirty:
        st.warning("You have unsaved changes. Click Save Changes to keep them or Discard to drop them.",
                   icon=":material/edit_note:")
    # a reload, closing the tab or another address would lose them silently: the browser asks first (hidden, no gap)
    leave_guard(dirty)
    return dirty


def leave_page(campaign_id: int | None) -> None:
    """All campaigns: leave at once, or first warn when there are unsaved edits."""
    if campaign_id is not None and st.session_state.get("confirm_leave") != campaign_id:
        try:
            with state.reading() as conn:
                dirty = state.is_dirty(st.session_state, campaign_id, get_campaign(conn, campaign_id))
        except NotFoundError:
            dirty = False
        if dirty:
            st.session_state["confirm_leave"] = campaign_id
            return
    st.session_state.pop("confirm_leave", None)
    st.switch_page("pages/campaigns.py")


TABS = ("Settings", "Call Logs", "Contact List", "Metrics")
TAB_MODULES = {"Call Logs": call_logs, "Contact List": contact_list, "Metrics": metrics}


def running_alone() -> bool:
    """Whether this run is of fragments only (an interaction inside one), not of the whole page."""
    ctx = get_script_run_ctx()
    return bool(ctx and ctx.fragment_ids_this_run)


@st.fragment
def tab_content(tab: str, campaign_id: int, open_tab: str | None, dirty_shown: bool) -> None:
    """One tab's content. An interaction inside it reruns this alone, not the header or the other tabs; what
    changes more than the tab runs the whole page (docs/dashboard.md, "What an interaction reruns")."""
    if running_alone() and st.session_state.pop(HEADER_ACTED, False):
        st.rerun(scope="app")  # a header click merged into this tab's run: the header shows what it did
    if st.session_state.get(state.TAB_KEY) != open_tab:
        # a callback in this tab opened another one (the Contact List's Show in Call Logs): the tab bar is outside
        st.rerun(scope="app")
    try:
        if tab != "Settings":
            TAB_MODULES[tab].render(campaign_id)
        elif settings.has_unsaved_edits(campaign_id) != dirty_shown or settings.render(campaign_id) != dirty_shown:
            # the edit made the form saved or unsaved (asked before drawing it, so the page is not drawn twice; and
            # after, as drawing may reset a field): the header's Save Changes, Discard and warning and the sidebar's
            # reminder say so
            st.rerun(scope="app")
    except Exception:
        if not running_alone():
            raise
        # app.py's handlers (the busy-database banner and its retries, a deleted campaign or store, a bug's message
        # without a traceback) wrap whole-page runs only: the whole page meets the problem again and says so
        st.rerun(scope="app")


def contact_from_address(campaign_id: int) -> None:
    """?contact=ID (the Call Logs' View links, opened in a new tab): show only that contact's calls.

    The parameter is applied once and removed from the address, so "Show all calls" stays in effect.
    """
    raw = st.query_params.get("contact")
    if raw is None:
        return
    del st.query_params["contact"]
    try:
        contact_id = int(raw)
    except ValueError:
        st.error(f"The address names contact {markdown_text(repr(raw))}, which is not a contact ID.")
        return
    with state.reading() as conn:
        # enrolled, or removed from the campaign with calls in it (its rows in the Call Logs keep their History link)
        found = conn.execute(
            "select coalesce(nullif(trim(c.name), ''), c.phone_e164) from contacts c where c.contact_id = $contact and"
            " (exists (from campaign_contacts where campaign_id = $campaign and contact_id = $contact)"
            "  or exists (from calls where campaign_id = $campaign and contact_id = $contact))",
            {"campaign": campaign_id, "contact": contact_id},
        ).fetchone()
    if found is None:
        st.error(f"Contact {contact_id} is not in this campaign.")
        return
    call_logs.show_contact(campaign_id, contact_id, found[0])


def above_tabs(campaign_id: int | None) -> bool | None:
    """Back link, leave confirmation, header and ?contact= of the page; whether the form shows unsaved edits, None when
    there is no campaign to show (the page ends there)."""
    if st.button("All campaigns", key="back_to_list", icon=":material/arrow_back:", type="tertiary"):
        leave_page(campaign_id)
    leaving = st.empty()  # filled once the form's state is known
    if campaign_id is None:
        st.info("Choose a campaign on the Campaigns page.")
        return None
    try:
        with state.reading() as conn:
            stored = get_campaign(conn, campaign_id)
            head = campaign_header(conn, campaign_id, state.now())
            state.load_form(st.session_state, campaign_id, stored)
    except NotFoundError:
        st.error(f"Campaign {campaign_id} does not exist (it may have been deleted).")
        return None
    dirty = header(campaign_id, head, stored)
    if st.session_state.get("confirm_leave") == campaign_id:
        if dirty:
            with leaving.container():
                st.warning("You have unsaved changes. They stay here for this session, but nothing is saved until "
                           "you click Save Changes.", icon=":material/warning:")
                if st.button("Leave without saving", key="leave_anyway"):
                    st.session_state.pop("confirm_leave", None)
                    st.switch_page("pages/campaigns.py")
        else:  # saved or discarded since: nothing left to confirm
            st.session_state.pop("confirm_leave", None)
    contact_from_address(campaign_id)
    return dirty


def render() -> None:
    """The campaign page."""
    campaign_id = selected_campaign()
    st.session_state.pop(HEADER_ACTED, None)  # the whole page is drawn: the header shows what its callbacks did
    # What stands above the tabs is one container, whatever it holds (an unsaved-changes warning, a message, a
    # confirmation): Streamlit names each tab's fragment by its place on the page, and a tab moved down or up between
    # its own run and the page's next one would lose the interactions sent meanwhile (a quick edit, then its undo).
    with st.container():
        dirty = above_tabs(campaign_id)
    if dirty is None:
        return
    # The open tab is in the address (?tab=Call+Logs): a link or bookmark opens it, and the Contact List's
    # "Show in Call Logs" switches to it (state.TAB_KEY, set in a callback before the tabs are drawn). Switching
    # tabs runs the whole page (a bound tab bar does); each tab's content is drawn, so its widgets keep their values.
    tabs = st.tabs(list(TABS), key=state.TAB_KEY, bind="query-params", default=TABS[0])
    open_tab = st.session_state.get(state.TAB_KEY)
    for tab, container in zip(TABS, tabs):
        with container:
            tab_content(tab, campaign_id, open_tab, dirty)


require_app_shell()
render()
