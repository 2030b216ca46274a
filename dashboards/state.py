"""Dashboard state: short store connections, the per-campaign settings form kept in session state, the Run launcher.

The Settings tab and the wizard's scheduling step edit the same widget keys (``c<id>:<field>``), so
edits survive reruns and tab switches until they are saved or discarded. "Dirty" compares the
settings the widgets describe with the stored ones, not the raw widget values.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from schemas.campaign import SETTING_FIELDS
from schemas.enums import WEEKDAYS
from tasks.errors import StoreError, UserError
from tasks.settings import PROJECT_ROOT, get_settings
from tasks.store import connect, db_path, store_file_problem, transaction
from tasks.timezones import zone_needs_country

SAME, PER_DAY = "same", "per_day"
TAB_KEY = "tab"  # the campaign page's open tab (bound to ?tab= in the address)
# The settings the form edits (the others, such as Active, are never part of "unsaved edits").
FORM_SETTINGS = (
    "name", "objective", "agent_id", "start_date", "end_date", "time_zone", "country", "calling_days",
    "weekly_schedule", "max_attempts", "attempts_per_day", "batch_size", "rotation_enabled", "outbound_number_ids",
)
EDITS = "_edits"  # the session-state field holding a copy of the form's values
HOURS_MODES = {SAME: "Same hours every calling day", PER_DAY: "Different hours per day"}
DEFAULT_HOURS = "09:00-17:00"
# Widget fields of the settings form; the hours fields are text such as "08:00-12:00, 13:00-18:00".
FORM_FIELDS = (
    "name", "objective", "agent_id", "start_date", "end_date", "time_zone", "country", "calling_days",
    "hours_mode", "same_hours", *(f"hours_{d}" for d in WEEKDAYS), "max_attempts", "attempts_per_day",
    "batch_size", "rotation_enabled", "numbers", "number",
)


def now() -> datetime:
    """The wall clock in UTC (pages pass it to every time-dependent read)."""
    return datetime.now(UTC)


def check_store() -> None:
    """Raise StoreError, creating nothing, when the store file is missing or empty: the dashboard never creates one.

    A mistyped CAMPAIGNS_DB, or the file deleted while the dashboard runs, used to get a new, empty database
    on the next read. `campaigns dashboard` creates the default store on its first start instead.
    """
    path = db_path()
    problem = store_file_problem(path)
    if problem is not None:
        raise StoreError(f"{path}: {problem} (campaigns init creates one)")


@contextmanager
def reading() -> Iterator[duckdb.DuckDBPyConnection]:
    """A short connection for one read; a lock held too long raises StoreLockedError (the app shows a banner)."""
    check_store()
    with connect(timeout=get_settings().dashboard_lock_timeout_seconds) as conn:
        yield conn


@contextmanager
def writing() -> Iterator[duckdb.DuckDBPyConnection]:
    """One short transaction for a write made from the dashboard."""
    check_store()
    with transaction(timeout=get_settings().dashboard_lock_timeout_seconds) as conn:
        yield conn


# ------------------------------------------------------------------ the settings form


def key(campaign_id: int, field: str) -> str:
    """The session-state key of one settings widget of one campaign."""
    return f"c{campaign_id}:{field}"


def windows_text(windows: list[list[str]] | None) -> str:
    """[["08:00", "12:00"], ["13:00", "18:00"]] → "08:00-12:00, 13:00-18:00"."""
    return ", ".join(f"{start}-{end}" for start, end in windows or [])


def windows_from_text(text: str | None) -> list[str]:
    """ "08:00-12:00, 13:00-18:00" → ["08:00-12:00", "13:00-18:00"] (the settings model checks each window)."""
    return [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]


def form_from_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The widget values showing stored settings."""
    schedule = settings["weekly_schedule"] or {}
    distinct = {windows_text(w) for w in schedule.values()}
    shared = next(iter(distinct)) if len(distinct) == 1 else None
    fallback = shared or next(iter(distinct), DEFAULT_HOURS)
    numbers = list(settings.get("outbound_number_ids") or [])
    return {
        "name": settings["name"], "objective": settings.get("objective") or "", "agent_id": settings["agent_id"],
        "start_date": settings.get("start_date"), "end_date": settings.get("end_date"),
        "time_zone": settings["time_zone"], "country": settings.get("country"),
        "calling_days": list(settings["calling_days"]),
        "hours_mode": SAME if shared is not None or not schedule else PER_DAY,
        "same_hours": fallback,
        **{f"hours_{d}": windows_text(schedule[d]) if d in schedule else fallback for d in WEEKDAYS},
        "max_attempts": int(settings["max_attempts"]), "attempts_per_day": int(settings["attempts_per_day"]),
        "batch_size": int(settings["batch_size"]), "rotation_enabled": bool(settings["rotation_enabled"]),
        "numbers": numbers if settings["rotation_enabled"] else numbers[:1],
        "number": numbers[0] if numbers else None,
    }


def settings_from_form(form: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the widgets describe, the others as stored, ready for `validate_campaign`."""
    days = [d for d in WEEKDAYS if d in (form["calling_days"] or [])]
    if form["hours_mode"] == SAME:
        schedule = {d: windows_from_text(form["same_hours"]) for d in days}
    else:
        schedule = {d: windows_from_text(form[f"hours_{d}"]) for d in days}
    rotation = bool(form["rotation_enabled"])
    numbers = list(form["numbers"] or []) if rotation else ([form["number"]] if form["number"] is not None else [])
    # settings this form does not show (Active, smart dialing options) keep their stored values
    kept = {field: stored[field] for field in SETTING_FIELDS if field in stored}
    return kept | {
        "name": (form["name"] or "").strip(), "objective": (form["objective"] or "").strip() or None,
        "agent_id": form["agent_id"], "start_date": form["start_date"], "end_date": form["end_date"],
        "time_zone": form["time_zone"], "calling_days": days,
        # a zone of one country implies it (the model fills it in); only shared zones ask
        "country": form["country"] if zone_needs_country(form["time_zone"] or "") else None,
        "weekly_schedule": schedule, "max_attempts": int(form["max_attempts"]),
        "attempts_per_day": int(form["attempts_per_day"]), "batch_size": int(form["batch_size"]),
        "rotation_enabled": rotation, "outbound_number_ids": numbers,
    }


def load_form(session: MutableMapping[str, Any], campaign_id: int, stored: Mapping[str, Any], *, force: bool = False) -> None:
    """Put the stored settings into the widgets of a campaign (only where nothing is being edited, unless forced)."""
    remembered = {} if force else session.get(key(campaign_id, EDITS)) or {}
    for field, value in form_from_settings(stored).items():
        if force or key(campaign_id, field) not in session:
            session[key(campaign_id, field)] = remembered.get(field, value)


def current_form(session: Mapping[str, Any], campaign_id: int) -> dict[str, Any]:
    """The widget values of a campaign's settings form."""
    return {field: session.get(key(campaign_id, field)) for field in FORM_FIELDS}


def comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings reduced to what a user can change, windows as text, so equal meaning compares equal."""
    data = dict(settings)
    data["weekly_schedule"] = {
        d: windows_text([[part.strip() for part in w.split("-", 1)] if isinstance(w, str) else w for w in windows])
        for d, windows in (data.get("weekly_schedule") or {}).items()
    }
    data["objective"] = data.get("objective") or None
    if not zone_needs_country(data.get("time_zone") or ""):
        data["country"] = None
    data["calling_days"] = [d for d in WEEKDAYS if d in (data.get("calling_days") or [])]
    data["outbound_number_ids"] = list(data.get("outbound_number_ids") or [])
    return {field: data.get(field) for field in FORM_SETTINGS}


def is_dirty(session: Mapping[str, Any], campaign_id: int, stored: Mapping[str, Any]) -> bool:
    """Whether the form describes settings other than the stored ones (unsaved edits)."""
    return form_differs(current_form(session, campaign_id), stored)


def form_differs(form: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    """Whether a settings form's values describe settings other than the stored ones."""
    if any(value is None for f, value in form.items() if f in ("name", "time_zone", "hours_mode")):
        return False  # not loaded yet
    described = settings_from_form(form, stored)
    stored_view = {f: stored.get(f) for f in described}
    return comparable(described) != comparable(stored_view)


def remember_form(session: MutableMapping[str, Any], campaign_id: int) -> None:
    """Copy the form's values aside once the page has drawn it.

    Streamlit forgets the values of widgets a page does not draw, so unsaved edits would vanish on a
    visit to another page; `load_form` restores them from this copy.
    """
    session[key(campaign_id, EDITS)] = current_form(session, campaign_id)


def unsaved_campaigns(session: Mapping[str, Any], conn: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    """(id, name) of the campaigns this session has unsaved settings edits for (their `remember_form` copy).

    What every page reminds of, since leaving the campaign page by the sidebar cannot be intercepted.
    """
    from tasks.campaigns import get_campaign
    from tasks.errors import NotFoundError

    found = []
    for name in list(session.keys()):
        if not (isinstance(name, str) and name.startswith("c") and name.endswith(":" + EDITS)):
            continue
        try:
            campaign_id = int(name[1:-len(EDITS) - 1])
            stored = get_campaign(conn, campaign_id)
        except (ValueError, NotFoundError):
            continue
        if form_differs(session[name], stored):
            found.append((campaign_id, stored["name"]))
    return sorted(found)


def clear_form(session: MutableMapping[str, Any], campaign_id: int) -> None:
    """Forget a campaign's edits and errors (Discard, after Save, after delete)."""
    for name in [k for k in list(session.keys()) if isinstance(k, str) and k.startswith(f"c{campaign_id}:")]:
        del session[name]


# ------------------------------------------------------------------ the Run button


@dataclass
class ManualRun:
    """A batch the Run button started as a background `campaigns run` process, and the file of its output."""

    process: subprocess.Popen
    log: Path
    started_at: datetime

    def running(self) -> bool:
        return self.process.poll() is None

    def outcome(self) -> tuple[bool, str] | None:
        """(exited cleanly, the run's one-line result) once the process has ended; None while it runs."""
        code = self.process.poll()
        if code is None:
            return None
        lines = [line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        # the CLI's result ("campaign 7: claimed 0, placed 0 (no eligible contacts)") or its "error: ..."
        # line, not a warning a library printed on its way out
        results = [line for line in lines if line.startswith(("campaign ", "error:"))]
        if results or lines:
            return code == 0, (results or lines)[-1]
        return code == 0, f"the run ended with exit code {code} and printed nothing"


@dataclass
class DeploymentRun:
    """A batch the Run button started as a run of the `run-campaign` Prefect deployment (served mode).

    Followed through the Prefect API: running until the flow run's state is final; the result is that
    state's message: the batch's line (`BatchResult.line`, flows/dial_campaigns.run_campaign) when it
    completed, the error when it failed.
    """

    flow_run_id: Any
    name: str
    started_at: datetime
    log: str = ""  # the key `run_outcome` remembers a shown result by
    _final: tuple[bool, str] | None = None
    _read_at: float = -1e9

    def __post_init__(self) -> None:
        self.log = self.log or f"flow-run:{self.flow_run_id}"

    def _read(self) -> tuple[bool, str] | None:
        """(completed, result line) once the flow run's state is final; None while it runs."""
        if self._final is not None:
            return self._final
        moment = time.monotonic()
        if moment - self._read_at < DEPLOYMENT_POLL_SECONDS:  # a page draw asks several times
            return None
        self._read_at = moment
        from prefect.client.orchestration import get_client

        try:
            with get_client(sync_client=True) as client:
                final = client.read_flow_run(self.flow_run_id).state
        except Exception as error:  # the server went away: stop following, say why, free the Run button
            self._final = (False, f"Prefect flow run {self.name} could not be followed: {type(error).__name__}: {error}")
            return self._final
        if final is None or not final.is_final():
            return None
        if final.is_completed() and (final.message or "").startswith("campaign "):
            self._final = (True, final.message)
        else:
            self._final = (final.is_completed(), f"Prefect flow run {self.name} ended {final.name}"
                           + (f": {final.message}" if final.message else ""))
        return self._final

    def running(self) -> bool:
        return self._read() is None

    def outcome(self) -> tuple[bool, str] | None:
        return self._read()


DEPLOYMENT_POLL_SECONDS = 2.0  # how often a followed deployment run's state is read

# The runs this dashboard process started, by (database, campaign). Streamlit serves every session from
# one process, so a second click, in this session or another, cannot start a second run of a campaign.
_RUNS: dict[tuple[Path, int], ManualRun | DeploymentRun] = {}
_RUNS_LOCK = threading.Lock()


def run_logs_folder() -> Path:
    """Where the Run button's processes write their output: one file a run, beside the database."""
    return db_path().parent / "logs" / "runs"


def manual_run(campaign_id: int) -> ManualRun | DeploymentRun | None:
    """The last run of the campaign this dashboard started, if any."""
    return _RUNS.get((db_path(), campaign_id))


def run_in_progress(campaign_id: int) -> bool:
    """Whether a run the Run button started for the campaign is still going."""
    run = manual_run(campaign_id)
    return run is not None and run.running()


def start_manual_run(campaign_id: int) -> str:
    """Start one batch now without blocking the page: a Prefect deployment run, or a background CLI process.

    The process's output goes to a file under `run_logs_folder()`; `manual_run(...).outcome()` reads its
    result once it has ended; a deployment run is followed through the Prefect API the same way. Refused
    while the campaign's previous run from this dashboard still goes.
    """
    with _RUNS_LOCK:
        current = manual_run(campaign_id)
        if current is not None and current.running():
            which = (f"Prefect flow run {current.name}" if isinstance(current, DeploymentRun)
                     else f"process {current.process.pid}")
            raise UserError(f"the last run ({which}) is still going")
        started = now()
        if get_settings().prefect_deployments:
            from prefect.deployments import run_deployment

            flow_run = run_deployment("run-campaign/run-campaign", parameters={"campaign_id": campaign_id}, timeout=0)
            _RUNS[(db_path(), campaign_id)] = DeploymentRun(flow_run.id, flow_run.name, started)
            return f"Prefect flow run {flow_run.name} started"
        folder = run_logs_folder()
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"campaign-{campaign_id}-{started:%Y%m%dT%H%M%S%f}.log"
        with log.open("wb") as output:  # the child keeps its own copy of the handle
            process = subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "--db", str(db_path()), "run", str(campaign_id)],
                cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _RUNS[(db_path(), campaign_id)] = ManualRun(process, log, started)
    return f"a batch is starting (process {process.pid})"
