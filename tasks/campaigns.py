"""Campaigns in the store: create, edit, list, duplicate, delete, (de)activate, status, summary, YAML apply.

Every write validates the complete settings through `schemas.campaign.CampaignSettings` plus the
rules that need the store (the agent and numbers exist). Call the writing functions inside
`tasks.store.transaction()` so a failure leaves nothing half-written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import phonenumbers
import yaml

from schemas.campaign import (
    NAME_MAX_LENGTH, SETTING_FIELDS, CampaignSettings, combined_error, errors_from_pydantic, parse_settings,
)
from schemas.enums import WEEKDAY_NAMES, WEEKDAYS, CampaignStatus, SipTrunkStatus
from tasks.errors import NotFoundError, UserError, ValidationError, read_input_file

Conn = duckdb.DuckDBPyConnection

# ---------------------------------------------------------------------------------------------
# Agents and outbound numbers


def add_agent(conn: Conn, name: str, provider_agent_id: str | None, now: datetime) -> int:
    """Insert a voice agent under a name no other agent has; returns its id."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("name", "an agent needs a name")
    taken = agents_named(conn, name)
    if taken:
        raise ValidationError("name", f'agent {taken[0]} is already named "{name}"; choose another name')
    return conn.execute(
        "insert into agents (name, provider_agent_id, created_at) values (?, ?, ?) returning agent_id",
        [name, (provider_agent_id or "").strip() or None, now],
    ).fetchone()[0]


def agents_named(conn: Conn, name: str) -> list[int]:
    """The ids of the agents named `name` (trimmed, compared as typed, as `apply` matches campaign names), lowest first.

    `add_agent` refuses a name in use, but a store written before it may hold several agents of one name."""
    return [row[0] for row in conn.execute(
        "select agent_id from agents where name = ? order by agent_id", [(name or "").strip()]).fetchall()]


def list_agents(conn: Conn) -> list[dict]:
    """Every agent as {agent_id, name, provider_agent_id, created_at}, by id."""
    return _dicts(conn.execute("select agent_id, name, provider_agent_id, created_at from agents order by agent_id"))


def normalise_e164(raw: str) -> str:
    """A phone number given in E.164 (+ and country code), checked and formatted, or a ValidationError."""
    text = (raw or "").strip()
    if not text.startswith("+"):
        raise ValidationError("e164", f'"{raw}" is not in E.164 (it must start with + and the country code)')
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as error:
        raise ValidationError("e164", f'"{raw}" is not a phone number ({error})') from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError("e164", f'"{raw}" is not a valid phone number')
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _sip_status(status: str) -> str:
    try:
        return SipTrunkStatus(status).value
    except ValueError:
        allowed = ", ".join(s.value for s in SipTrunkStatus)
        raise ValidationError("sip_trunk_status", f'"{status}" is not one of {allowed}') from None


def add_number(conn: Conn, e164: str, nickname: str | None, status: str, now: datetime) -> int:
    """Insert an outbound number (E.164 validated, unique); returns its id."""
    number = normalise_e164(e164)
    status = _sip_status(status)
    if conn.execute("select 1 from phone_numbers where e164 = ?", [number]).fetchone():
        raise ValidationError("e164", f"{number} is already an outbound number")
    return conn.execute(
        "insert into phone_numbers (e164, nickname, sip_trunk_status, created_at) values (?, ?, ?, ?) returning number_id",
        [number, (nickname or "").strip() or None, status, now],
    ).fetchone()[0]


def list_numbers(conn: Conn) -> list[dict]:
    """Every outbound number as {number_id, e164, nickname, sip_trunk_status, created_at}, by id."""
    return _dicts(conn.execute(
        "select number_id, e164, nickname, sip_trunk_status, created_at from phone_numbers order by number_id"
    ))


def set_number_status(conn: Conn, number_id: int, status: str) -> None:
    """Change an outbound number's SIP trunk status (only active numbers dial)."""
    status = _sip_status(status)
    if not conn.execute("select 1 from phone_numbers where number_id = ?", [number_id]).fetchone():
        raise NotFoundError(f"number {number_id} does not exist")
    conn.execute("update phone_numbers set sip_trunk_status = ? where number_id = ?", [status, number_id])


# ---------------------------------------------------------------------------------------------
# Validation against the store


def reference_errors(conn: Conn, settings: CampaignSettings) -> list[ValidationError]:
    """The rules that need the store: the agent and every outbound number exist."""
    errors = []
    if not conn.execute("select 1 from agents where agent_id = ?", [settings.agent_id]).fetchone():
        errors.append(ValidationError("agent_id", f"agent {settings.agent_id} does not exist"))
    if settings.outbound_number_ids:
        found = {row[0] for row in conn.execute(
            "select number_id from phone_numbers where list_contains(?, number_id)", [settings.outbound_number_ids]
        ).fetchall()}
        missing = [str(n) for n in settings.outbound_number_ids if n not in found]
        if missing:
            errors.append(ValidationError("outbound_number_ids", f"number(s) {', '.join(missing)} do not exist"))
    return errors


def validate_campaign(conn: Conn, data: Mapping[str, Any]) -> list[ValidationError]:
    """Every rule the settings break, model and store rules together (for forms: one per field)."""
    from pydantic import ValidationError as PydanticValidationError

    try:
        settings = CampaignSettings.model_validate(dict(data))
    except PydanticValidationError as error:
        return errors_from_pydantic(error)
    return reference_errors(conn, settings)


def checked_settings(conn: Conn, data: Mapping[str, Any] | CampaignSettings) -> CampaignSettings:
    """The settings validated by the model and against the store, or a UserError naming every problem."""
    settings = data if isinstance(data, CampaignSettings) else parse_settings(dict(data))
    errors = reference_errors(conn, settings)
    if errors:
        raise combined_error(errors)
    return settings


# ---------------------------------------------------------------------------------------------
# Create, read, edit


def _row_values(settings: CampaignSettings) -> list[Any]:
    values = settings.model_dump()
    values["weekly_schedule"] = json.dumps(values["weekly_schedule"])
    if values.get("retry_policy") is not None:
        values["retry_policy"] = json.dumps(values["retry_policy"])
    return [values[f] for f in SETTING_FIELDS]


def create_campaign(conn: Conn, data: Mapping[str, Any] | CampaignSettings, now: datetime) -> int:
    """Insert a validated campaign (created_at = updated_at = now); returns its id.

    Created active is refused once the end date has passed, as turning Active on is (`update_campaign`)."""
    settings = checked_settings(conn, data)
    check_name_free(conn, settings.name)
    if settings.active and _ended(settings, now):
        raise ValidationError("active", f"cannot create it active: its end date {settings.end_date} has passed "
                                        f"({settings.time_zone}); set a later end date or leave it inactive")
    columns = ", ".join(SETTING_FIELDS)
    marks = ", ".join("?" for _ in SETTING_FIELDS)
    return conn.execute(
        f"insert into campaigns ({columns}, created_at, updated_at) values ({marks}, ?, ?) returning campaign_id",
        [*_row_values(settings), now, now],
    ).fetchone()[0]


def check_name_free(conn: Conn, name: str, campaign_id: int | None = None) -> None:
    """Refuse a name another campaign has: `apply` finds a campaign by its name, as agents are (`add_agent`)."""
    taken = conn.execute("select min(campaign_id) from campaigns where name = ? and campaign_id is distinct from ?",
                         [name, campaign_id]).fetchone()[0]
    if taken is not None:
        raise ValidationError("name", f'campaign {taken} is already named "{name}"; choose another name')


def _settings_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    data = {f: row[f] for f in SETTING_FIELDS}
    schedule = data["weekly_schedule"]
    data["weekly_schedule"] = json.loads(schedule) if isinstance(schedule, str) else schedule
    data["calling_days"] = list(data["calling_days"] or [])
    data["outbound_number_ids"] = list(data["outbound_number_ids"] or [])
    if isinstance(data.get("retry_policy"), str):
        data["retry_policy"] = json.loads(data["retry_policy"])
    return data


def get_campaign(conn: Conn, campaign_id: int) -> dict[str, Any]:
    """A campaign's stored row: campaign_id, every setting, agent_name, created_at, updated_at."""
    rows = _dicts(conn.execute(
        "select c.*, a.name as agent_name from campaigns c left join agents a using (agent_id)"
        " where c.campaign_id = ?", [campaign_id],
    ))
    if not rows:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    row = rows[0]
    return {"campaign_id": row["campaign_id"], **_settings_dict(row), "agent_name": row["agent_name"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def get_campaign_settings(conn: Conn, campaign_id: int) -> CampaignSettings:
    """A stored campaign's settings as the model (stored rows were validated when written)."""
    row = get_campaign(conn, campaign_id)
    return CampaignSettings.model_construct(**{f: row[f] for f in SETTING_FIELDS})


def merged_settings(current: CampaignSettings, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The current settings with ``changes`` applied, ready to validate.

    A change of calling days alone keeps the schedule's shared hours (if every day had the same
    windows), so `--calling-days mon,wed` does not also require re-typing the hours; with
    per-day hours, removed days lose their windows and added days must be given some.
    """
    data = current.model_dump()
    changes = dict(changes)
    shorthand = any(key in changes for key in ("same_hours", "hours"))
    if shorthand:
        data.pop("weekly_schedule")
    elif "calling_days" in changes and "weekly_schedule" not in changes:
        hours = current.same_hours()
        if hours is not None:
            data.pop("weekly_schedule")
            changes["same_hours"] = hours
        elif isinstance(changes["calling_days"], list):
            # a per-day schedule loses the days no longer called; new days still need windows
            kept = {str(d).strip().lower()[:3] for d in changes["calling_days"]}
            data["weekly_schedule"] = {d: w for d, w in current.weekly_schedule.items() if d in kept}
    data.update(changes)
    return data


def update_campaign(conn: Conn, campaign_id: int, changes: Mapping[str, Any], now: datetime) -> CampaignSettings:
    """Apply ``changes`` to a campaign after validating the whole result; updated_at = now.

    Turning Active on is refused once the end date has passed (campaign-local date); a campaign already
    active may have its end date moved into the past (it is Completed then: no call comes)."""
    current = get_campaign_settings(conn, campaign_id)
    settings = checked_settings(conn, merged_settings(current, changes))
    if settings.name != current.name:
        check_name_free(conn, settings.name, campaign_id)
    if settings.active and not current.active and _ended(settings, now):
        # Active on would change nothing but the word: no call comes after the end date (status Completed)
        raise ValidationError("active", f"campaign {campaign_id}: cannot activate: its end date {settings.end_date} "
                                        f"has passed ({settings.time_zone}); set a later end date first")
    assignments = ", ".join(f"{f} = ?" for f in SETTING_FIELDS)
    # Active turned off stamps paused_at (Paused, not Draft); turned on clears it
    paused = "now" if current.active and not settings.active else "clear" if settings.active else "keep"
    conn.execute(
        f"update campaigns set {assignments}, updated_at = ?,"
        " paused_at = case ? when 'now' then ? when 'clear' then null else paused_at end where campaign_id = ?",
        [*_row_values(settings), now, paused, now, campaign_id],
    )
    if settings.time_zone != current.time_zone:
        _recount_attempt_days(conn, campaign_id, settings.time_zone)
    if settings.max_attempts > current.max_attempts:
        reopen_out_of_attempts(conn, campaign_id, settings.max_attempts)
    return settings


def reopen_out_of_attempts(conn: Conn, campaign_id: int, max_attempts: int) -> int:
    """Make callable again the contacts finished because they used up a lower Max Attempts, now that they have
    calls left (raising the limit is how a manager gives them more tries). Contacts finished for another reason
    (successful, not retryable) stay finished. Returns how many were reopened."""
    return conn.execute(
        "update campaign_contacts set finished_at = null, finished_reason = null"
        " where campaign_id = ? and finished_reason = 'max_attempts' and attempts < ?",
        [campaign_id, max_attempts],
    ).fetchone()[0]


def _recount_attempt_days(conn: Conn, campaign_id: int, time_zone: str) -> None:
    """Re-derive each enrollment's attempts per campaign-local day (`attempts_day`, `attempts_on_day`) from its
    counted calls in a new time zone: read as dates of the old zone, a contact called late on one day there could
    be called again on the same day of the new zone (over attempts_per_day). All of the contact's calls in the
    campaign count, as when it is enrolled again after a removal (`contacts_import.enroll_contacts`)."""
    conn.execute(
        """
        update campaign_contacts cc set attempts_day = d.day, attempts_on_day = d.n
        from (
            select contact_id, max(day) as day, arg_max(n, day) as n
            from (
                select contact_id, (queued_at at time zone $tz)::date as day, count(*) as n
                from calls
                where campaign_id = $campaign_id and counts_as_attempt
                group by all
            )
            group by contact_id
        ) d
        where cc.campaign_id = $campaign_id and cc.contact_id = d.contact_id
        """,
        {"tz": time_zone, "campaign_id": campaign_id},
    )


def _ended(settings: CampaignSettings, now: datetime) -> bool:
    """Whether the end date is behind the campaign-local date of `now` (its last day is over there; as `derive_status`)."""
    return settings.end_date is not None and now.astimezone(ZoneInfo(settings.time_zone)).date() > settings.end_date


def open_enrollment_sql(enrollment: str = "cc", campaign: str = "c") -> str:
    """SQL: an enrollment that may still be called, or is on a call now. Not finished, and under its campaign's
    max attempts; one that used them up (Max Attempts lowered below its attempts by an edit) is not called again,
    as the claim's eligibility says, until the limit is raised. The status's, the do-not-call count's and
    `campaigns simulate`'s "unfinished"."""
    return (f"({enrollment}.finished_at is null and ({enrollment}.attempts < {campaign}.max_attempts"
            f" or {enrollment}.in_flight_call_id is not null))")


def activate_campaign(conn: Conn, campaign_id: int, now: datetime) -> CampaignSettings:
    """Turn scheduled dialing on; refused without a start date or an outbound number, or past the end date."""
    current = get_campaign_settings(conn, campaign_id)
    if current.start_date is None:
        raise ValidationError("active", f"campaign {campaign_id}: cannot activate: set a start date first")
    if not current.outbound_number_ids:
        raise ValidationError("active", f"campaign {campaign_id}: cannot activate: choose an outbound number first")
    return update_campaign(conn, campaign_id, {"active": True}, now)


def deactivate_campaign(conn: Conn, campaign_id: int, now: datetime) -> CampaignSettings:
    """Turn scheduled dialing off (an active campaign becomes Paused)."""
    return update_campaign(conn, campaign_id, {"active": False}, now)


def duplicate_campaign(conn: Conn, campaign_id: int, now: datetime) -> int:
    """A copy with the same settings, name + " (Copy)" (" (Copy 2)", ... when taken), Active off, no contacts, created now; its id.

    The campaign's own do-not-call entries come along (same numbers, wildcards, reasons and dates): they are calling
    rules, and a person who asked this campaign not to call must not be called by its copy."""
    settings = get_campaign_settings(conn, campaign_id)
    taken = {row[0] for row in conn.execute("select name from campaigns").fetchall()}
    # " (Copy)", then " (Copy 2)", ...: a second copy named like the first made `apply` (matched by name) refuse both
    for number in range(1, len(taken) + 2):
        suffix = " (Copy)" if number == 1 else f" (Copy {number})"
        # the suffix is kept whole: a long name is shortened instead, so the copy never reads like the original
        name = settings.name[:NAME_MAX_LENGTH - len(suffix)].rstrip() + suffix
        if name not in taken:
            break
    copy = settings.model_dump() | {"name": name, "active": False}
    copy_id = create_campaign(conn, copy, now)
    conn.execute(
        "insert into do_not_call (pattern, prefix, is_prefix, campaign_id, reason, source, added_at)"
        " select pattern, prefix, is_prefix, ?, reason, source, added_at from do_not_call where campaign_id = ?"
        " order by dnc_id",
        [copy_id, campaign_id],
    )
    return copy_id


# ---------------------------------------------------------------------------------------------
# Delete


def _tables_with_column(conn: Conn, column: str) -> list[str]:
    names = [row[0] for row in conn.execute(
        "select c.table_name from information_schema.columns c"
        " join information_schema.tables t on t.table_name = c.table_name and t.table_schema = c.table_schema"
        " where c.table_schema = 'main' and t.table_type = 'BASE TABLE' and c.column_name = ?"
        " order by c.table_name", [column],
    ).fetchall()]
    # Identifiers come from the catalogue, never from input; still refuse anything odd.
    return [n for n in names if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)]


def placing_batch(conn: Conn, campaign_id: int) -> int | None:
    """The latest dial run of the campaign still placing its calls (running, its process alive), or None.

    A run whose process died is not placing anything: the next tick's reconciliation settles its rows."""
    rows = conn.execute(
        "select run_id, owner_host, owner_pid, heartbeat_at from dial_runs where campaign_id = ? and state = 'running'"
        " order by run_id desc", [campaign_id]).fetchall()
    if not rows:
        return None
    from tasks.dialing import run_is_dead  # the dialer's own rule; imported only when a run is open (Polars and all)
    from tasks.settings import get_settings

    lease = get_settings().run_lease_seconds
    return next((run_id for run_id, host, pid, beat in rows if not run_is_dead(host, pid, beat, lease)), None)


def delete_campaign(conn: Conn, campaign_id: int) -> dict[str, int]:
    """Delete a campaign and everything of it (calls, feedback, enrollments, runs, metrics); CRM contacts stay.

    Every table with a `campaign_id` column is cleared for it, and every table keyed by `call_id`
    only (call_feedback) for its calls, so tables added by later migrations are covered too; but
    `phone_attempts`, the calls the rolling caps per phone number count (the person was called).
    Returns the rows deleted per table.

    Refused while a batch of the campaign is placing its calls (`placing_batch`): it would go on dialing the
    deleted campaign's contacts, and record outcomes of calls that no longer exist.
    """
    get_campaign(conn, campaign_id)  # NotFoundError when missing
    run_id = placing_batch(conn, campaign_id)
    if run_id is not None:
        raise UserError(f"campaign {campaign_id}: batch {run_id} is placing its calls now; delete the campaign once it "
                        "has ended (turn Active off first, so that no new batch starts)")
    by_campaign = [t for t in _tables_with_column(conn, "campaign_id") if t != "campaigns"]
    # phone_attempts stays (but for never-placed rows, below): the rolling legal caps count the calls a person
    # received, whichever campaign made them
    by_call = [t for t in _tables_with_column(conn, "call_id")
               if t not in by_campaign and t not in ("calls", "phone_attempts")]
    deleted: dict[str, int] = {}
    if "calls" in by_campaign:
        # ... but a row a dead batch left `queued` was never handed to the provider: nobody was called (the
        # reconciliation that would have given it back no longer sees it once its call is gone)
        deleted["phone_attempts"] = conn.execute(
            "delete from phone_attempts where call_id in"
            " (select call_id from calls where campaign_id = ? and status = 'queued')", [campaign_id]).fetchone()[0]
        for table in by_call:
            deleted[table] = conn.execute(
                f'delete from "{table}" where call_id in (select call_id from calls where campaign_id = ?)',
                [campaign_id],
            ).fetchone()[0]
    for table in by_campaign:
        deleted[table] = conn.execute(f'delete from "{table}" where campaign_id = ?', [campaign_id]).fetchone()[0]
    deleted["campaigns"] = conn.execute("delete from campaigns where campaign_id = ?", [campaign_id]).fetchone()[0]
    return deleted


# ---------------------------------------------------------------------------------------------
# Status


@dataclass(frozen=True)
class StatusFacts:
    """What a campaign's status is derived from: its dates, the Active flag, runs and enrollments."""

    start_date: date | None
    end_date: date | None
    time_zone: str
    active: bool
    paused: bool  # Active was turned off by hand (and not on again since)
    manual_running: bool
    scheduled_running: bool
    latest_run_state: str | None
    contacts: int
    unfinished: int
    listed: int = 0  # unfinished enrollments whose number is on a do-not-call list (nobody will call them)


def derive_status(facts: StatusFacts, now: datetime) -> CampaignStatus:
    """The status from its facts; the first rule that holds wins, in this order:

    1. Draft — no start date.
    2. Manual Running — a run started by hand is in progress (its process alive: `with_derived_facts`).
    3. Completed — the end date has passed (campaign-local date), or at least one contact is
       enrolled and every enrollment is finished, out of attempts (max_attempts lowered below its
       attempts, and no call in flight) or on a do-not-call list (processed: no call will come; taking
       a number off the list or raising max_attempts makes the campaign go on).
    4. Failed — the latest dialing run for it failed.
    5. Paused — Active is off, turned off by hand; Draft when it was never on (a new campaign, a
       duplicate: "created, not scheduled or activated").
    6. Scheduled — Active, the start date is still ahead (campaign-local date).
    7. Running — Active, a scheduled batch is being dialed.
    8. Waiting — Active, in its date range, between batches or outside the calling window.
    """
    if facts.start_date is None:
        return CampaignStatus.draft
    if facts.manual_running:
        return CampaignStatus.manual_running
    today = now.astimezone(ZoneInfo(facts.time_zone)).date()
    if (facts.end_date is not None and today > facts.end_date) or (
            facts.contacts > 0 and facts.unfinished <= facts.listed):
        return CampaignStatus.completed
    if facts.latest_run_state == "failed":
        return CampaignStatus.failed
    if not facts.active:
        return CampaignStatus.paused if facts.paused else CampaignStatus.draft
    if today < facts.start_date:
        return CampaignStatus.scheduled
    if facts.scheduled_running:
        return CampaignStatus.running
    return CampaignStatus.waiting


# One query for any number of campaigns: their list columns and every fact the status needs.
_CAMPAIGN_FACTS_SQL = """
with scope as (
    select *
    from campaigns
    where ($campaign_id is null or campaign_id = $campaign_id)
      and ($search is null or {name_matches})
    {page}
),
ranked_runs as (
    select campaign_id, kind, state, owner_host, owner_pid, heartbeat_at,
           row_number() over (partition by campaign_id order by started_at desc, run_id desc) as recency
    from dial_runs
    where campaign_id in (select campaign_id from scope)
),
run_facts as (
    select campaign_id,
           -- whether each one's process is alive is told in Python (`with_derived_facts`)
           list({{'kind': kind, 'host': owner_host, 'pid': owner_pid, 'beat': heartbeat_at}} order by recency)
               filter (where state = 'running') as running_runs,
           max(state) filter (where recency = 1) as latest_run_state
    from ranked_runs
    group by campaign_id
),
enrollment as (
    -- unfinished: may still be called, or is in a call now (`open_enrollment_sql`)
    select cc.campaign_id,
           count(*) as contacts,
           count(*) filter (where {open_enrollment}) as unfinished
    from campaign_contacts cc join scope s using (campaign_id)
    group by cc.campaign_id
),
final as (
    select s.campaign_id, s.name, s.start_date, s.end_date, s.time_zone, s.active, s.created_at,
           s.paused_at is not null as paused,
           a.name as agent_name,
           coalesce(e.contacts, 0) as contacts,
           coalesce(e.unfinished, 0) as unfinished,
           coalesce(r.running_runs, []) as running_runs,
           r.latest_run_state
    from scope s
    left join agents a using (agent_id)
    left join enrollment e using (campaign_id)
    left join run_facts r using (campaign_id)
)
select * from final
"""


def campaign_facts_sql(page: str = "") -> str:
    """The campaign list's facts query; `page` (trusted SQL: order, limit, offset) trims the scope first.

    $search matches the name as the Contact List and Call Logs searches match theirs (`contains_folded`)."""
    # imported here, not above: tasks.export_calls loads Polars (about half a second), which the CLI commands
    # that only read settings or manage agents and numbers through this module never need
    from tasks.export_calls import contains_folded

    return _CAMPAIGN_FACTS_SQL.format(page=page, name_matches=contains_folded("name", "search"),
                                      open_enrollment=open_enrollment_sql("cc", "s"))


LIST_SORTS = _SORTS = {
    "created": "order by created_at desc, campaign_id desc",
    "name": "order by lower(name), campaign_id",
}


# Per campaign, its unfinished enrollments whose number a do-not-call list holds (global or the
# campaign's own; exact numbers by hash, wildcards by one probe per distinct wildcard length).
_LISTED_SQL = """
with open_enrollments as (
    -- the facts query's unfinished enrollments
    select cc.campaign_id, cc.contact_id, k.phone_e164
    from campaign_contacts cc join contacts k using (contact_id) join campaigns c using (campaign_id)
    where list_contains($ids, cc.campaign_id) and {open_enrollment}
),
wildcard_lengths as (
    select distinct length(prefix) as n from do_not_call where is_prefix
),
listed as (
    select e.campaign_id, e.contact_id
    from open_enrollments e join do_not_call d on e.phone_e164 = d.prefix and not d.is_prefix
    where d.campaign_id is null or d.campaign_id = e.campaign_id
    union
    select e.campaign_id, e.contact_id
    from open_enrollments e cross join wildcard_lengths w
    join do_not_call d on left(e.phone_e164, w.n) = d.prefix and d.is_prefix
    where d.campaign_id is null or d.campaign_id = e.campaign_id
)
select campaign_id, count(*) from listed group by campaign_id
""".replace("{open_enrollment}", open_enrollment_sql())


def with_derived_facts(conn: Conn, rows: list[dict]) -> list[dict]:
    """Fill the facts the facts query leaves to Python: `manual_running` and `scheduled_running` (a run in state
    running whose process is alive: one killed mid-batch is not dialing, though its row says running until the
    next tick's reconciliation settles it) and `listed` (`with_listed`)."""
    lease = None
    for row in rows:
        runs = row.pop("running_runs")
        if runs:
            from tasks.dialing import run_is_dead  # the dialer's own rule (as `placing_batch`); Polars and all
            from tasks.settings import get_settings

            lease = get_settings().run_lease_seconds if lease is None else lease
            runs = [r for r in runs if not run_is_dead(r["host"], r["pid"], r["beat"], lease)]
        row["manual_running"] = any(r["kind"] == "manual" for r in runs)
        row["scheduled_running"] = any(r["kind"] == "scheduled" for r in runs)
    return with_listed(conn, rows)


def with_listed(conn: Conn, rows: list[dict]) -> list[dict]:
    """Fill each facts row's `listed` (unfinished enrollments on a do-not-call list).

    Only where it can decide the status: a campaign has more unfinished enrollments than the lists have
    exact numbers, and no wildcard, cannot have them all listed (a contact is one number), so the usual
    active campaign costs one count of the lists.
    """
    for row in rows:
        row["listed"] = 0
    open_rows = [r for r in rows if r["unfinished"] > 0]
    if not open_rows:
        return rows
    exact, wildcards = conn.execute(
        "select count(*) filter (where not is_prefix), count(*) filter (where is_prefix) from do_not_call"
    ).fetchone()
    ids = [r["campaign_id"] for r in open_rows if wildcards or r["unfinished"] <= exact]
    if ids:
        listed = dict(conn.execute(_LISTED_SQL, {"ids": ids}).fetchall())
        for row in open_rows:
            row["listed"] = listed.get(row["campaign_id"], 0)
    return rows


def _facts_rows(conn: Conn, campaign_id: int | None = None, search: str | None = None, sort: str = "created") -> list[dict]:
    order = _SORTS[sort]  # whitelisted; the caller checked `sort`
    return with_derived_facts(conn, _dicts(conn.execute(f"{campaign_facts_sql()} {order}",
                                                 {"campaign_id": campaign_id, "search": search})))


def _facts(row: Mapping[str, Any]) -> StatusFacts:
    return StatusFacts(**{f: row[f] for f in StatusFacts.__dataclass_fields__})


def latest_failure(conn: Conn, campaign_id: int) -> dict[str, Any] | None:
    """Why the campaign is Failed: its latest batch run's kind, start, end and message when that run failed, else None."""
    row = conn.execute(
        "select kind, started_at, ended_at, message, state from dial_runs where campaign_id = ?"
        " order by started_at desc, run_id desc limit 1", [campaign_id]).fetchone()
    if row is None or row[4] != "failed":
        return None
    return {"kind": row[0], "started_at": row[1], "ended_at": row[2], "message": row[3] or "no reason was recorded"}


def status_notes(conn: Conn, campaign_id: int, status: str, now: datetime) -> dict[str, Any]:
    """What the campaign page and `campaigns show` say beside a status: `failed_because` when Failed
    (`latest_failure`), and `numbers_hold` when no batch can dial for want of a usable outbound number
    (`tasks.dialing.numbers_hold`; not asked of a Draft or a Completed campaign). Only the notes that apply."""
    notes: dict[str, Any] = {}
    if status == CampaignStatus.failed.value:
        notes["failed_because"] = latest_failure(conn, campaign_id)
    if status not in (CampaignStatus.draft.value, CampaignStatus.completed.value):
        from tasks.dialing import numbers_hold  # the dialer's own rule; Polars and all, only when asked

        notes["numbers_hold"] = numbers_hold(conn, campaign_id, now)
    return {name: note for name, note in notes.items() if note}


def campaign_status(conn: Conn, campaign_id: int, now: datetime) -> CampaignStatus:
    """A campaign's derived status at ``now`` (rules and precedence: `derive_status`)."""
    rows = _facts_rows(conn, campaign_id=campaign_id)
    if not rows:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    return derive_status(_facts(rows[0]), now)


def list_campaigns(conn: Conn, now: datetime, search: str | None = None, sort: str = "created") -> list[dict]:
    """Campaign list rows {campaign_id, name, status, agent_name, contacts, created_at}, in one query.

    ``search`` matches part of the name, case and accents aside ("medellin" finds "Medellín Q3", as the
    Contact List search does: `tasks.export_calls.contains_folded`), taken literally (% and _ are themselves;
    spaces around it are ignored, as names have none); ``sort`` is "created" (newest first, the default) or "name".
    """
    if sort not in _SORTS:
        raise ValidationError("sort", f'"{sort}" is not one of {", ".join(_SORTS)}')
    return [
        {"campaign_id": row["campaign_id"], "name": row["name"], "status": derive_status(_facts(row), now).value,
         "agent_name": row["agent_name"], "contacts": row["contacts"], "created_at": row["created_at"]}
        for row in _facts_rows(conn, search=(search or "").strip() or None, sort=sort)
    ]


# ---------------------------------------------------------------------------------------------
# Plain-language summary


def long_date(day: date) -> str:
    """2026-11-10 → "November 10, 2026" (the Campaign summary's dates)."""
    return f"{day:%B} {day.day}, {day.year}"


def _clock(text: str) -> str:
    """ "18:00" → "06:00 PM"; "24:00" (until midnight) → "12:00 AM"."""
    hour, minute = (int(part) for part in text.split(":"))
    hour %= 24
    return f"{hour % 12 or 12:02d}:{minute:02d} {'AM' if hour < 12 else 'PM'}"


def _and_join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _days_text(days: list[str]) -> str:
    """ "Monday to Friday", "Monday, Wednesday and Friday", "every day": runs of 3+ days read "X to Y"."""
    indexes = sorted(WEEKDAYS.index(d) for d in days)
    if len(indexes) == 7:
        return "every day"
    runs: list[list[int]] = []
    for index in indexes:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    items: list[str] = []
    for run in runs:
        if len(run) >= 3:
            items.append(f"{WEEKDAY_NAMES[run[0]]} to {WEEKDAY_NAMES[run[-1]]}")
        else:
            items += [WEEKDAY_NAMES[i] for i in run]
    return _and_join(items)


def _windows_text(windows: list[list[str]]) -> str:
    return _and_join([f"{_clock(start)} - {_clock(end)}" for start, end in windows])


def summary_lines(settings: CampaignSettings) -> list[str]:
    """The Campaign summary card in the product's words: start (and end), days and hours, attempts."""
    if settings.start_date is None:
        first = "Your campaign has no start date yet"
    else:
        first = f"Your campaign will start on: {long_date(settings.start_date)}"
        if settings.end_date is not None:
            first += f" and end on: {long_date(settings.end_date)}"
    # Days with identical windows are told together, in week order of their first day.
    groups: dict[tuple, list[str]] = {}
    for day in WEEKDAYS:
        if day in settings.weekly_schedule and day in settings.calling_days:
            groups.setdefault(tuple(map(tuple, settings.weekly_schedule[day])), []).append(day)
    parts = [f"{_days_text(days)} " + ("around the clock" if [list(w) for w in windows] == [["00:00", "24:00"]]
                                       else f"between {_windows_text([list(w) for w in windows])}")
             for windows, days in groups.items()]
    second = f"It will call {'; '.join(parts)} ({settings.time_zone})"
    total = settings.max_attempts
    third = (f"Each contact will receive up to {total} call{'' if total == 1 else 's'} in total, "
             f"max {settings.attempts_per_day} per day.")
    return [first, second, third]


def start_line(first: str, settings: CampaignSettings, today: date, saved_start: date | None, active: bool) -> str:
    """The summary's first line, true of a start date already passed (campaign-local `today`): `summary_lines` says
    "will start on" of any date.

    An active campaign's saved start date "started"; otherwise calls start once the campaign is Active (and the
    date just chosen saved); an end date passed too means no call at all. The campaign page and `campaigns show`
    both say it.
    """
    start, end = settings.start_date, settings.end_date
    if start is None or start >= today:
        return first
    if end is not None and end < today:
        return f"Your campaign's dates have passed ({long_date(start)} to {long_date(end)}): it makes no calls"
    ends = long_date(end) if end is not None else ""
    if start == saved_start and active:
        return f"Your campaign started on: {long_date(start)}" + (f" and will end on: {ends}" if ends else "")
    when = "Active" if start == saved_start else "saved and Active"
    return (f"Your campaign will start calling as soon as it is {when}: its start date, {long_date(start)}, has "
            "passed" + (f"; it will end on: {ends}" if ends else ""))


# ---------------------------------------------------------------------------------------------
# YAML apply

# Keys a campaign YAML may hold; see data/example_campaign.yaml for their meaning.
YAML_KEYS = (
    "name", "objective", "agent", "start_date", "end_date", "time_zone", "country", "calling_days", "hours",
    "weekly_schedule", "max_attempts", "attempts_per_day", "batch_size", "rotation_enabled", "outbound_numbers",
    "active", "retry_policy", "smart_ordering", "exploration_share", "number_daily_cap",
)
_AGENT_KEYS = ("name", "provider_agent_id")
_NUMBER_KEYS = ("e164", "nickname", "sip_trunk_status")


def _yaml_agent(conn: Conn, value: Any, path: Path, now: datetime) -> int:
    """The agent's id: a number is an agent id; a name refers to an existing agent; a mapping declares (upserts)
    one by name. A name several agents share (a store from before `add_agent` refused it) is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value < 2**63 or not conn.execute("select 1 from agents where agent_id = ?", [value]).fetchone():
            raise UserError(f"{path}: agent: no agent with id {value} (campaigns agents list shows them)")
        return value
    if isinstance(value, str):
        agent_id = _agent_by_name(conn, value, path)
        if agent_id is None:
            raise UserError(f"{path}: agent: no agent named \"{value}\" (declare it as agent: {{name: ..., provider_agent_id: ...}},"
                            " or give an agent id)")
        return agent_id
    if not isinstance(value, dict):
        raise UserError(f"{path}: agent: expected a name, an agent id, or a mapping with name and provider_agent_id")
    unknown = [k for k in value if k not in _AGENT_KEYS]
    if unknown:
        raise UserError(f"{path}: agent: unknown key '{unknown[0]}' (allowed: {', '.join(_AGENT_KEYS)})")
    name, provider_id = value.get("name"), value.get("provider_agent_id")
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{path}: agent.name: expected the agent's name as text")
    if provider_id is not None and not isinstance(provider_id, str):
        raise UserError(f"{path}: agent.provider_agent_id: expected text, got {provider_id!r}")
    agent_id = _agent_by_name(conn, name, path)
    if agent_id is None:
        return add_agent(conn, name, provider_id, now)
    if provider_id is not None:
        conn.execute("update agents set provider_agent_id = ? where agent_id = ?", [provider_id.strip(), agent_id])
    return agent_id


def _agent_by_name(conn: Conn, name: str, path: Path) -> int | None:
    """The id of the agent named `name`, None when there is none; a name several agents share is refused (the
    campaign would silently get whichever came first)."""
    ids = agents_named(conn, name)
    if len(ids) > 1:
        raise UserError(f"{path}: agent: {len(ids)} agents are named \"{name.strip()}\" (ids {', '.join(map(str, ids))});"
                        f" give the id of the one to use instead, e.g. agent: {ids[0]}")
    return ids[0] if ids else None


def _yaml_number(conn: Conn, value: Any, where: str, now: datetime) -> int:
    """A number's id: an E.164 text refers to an existing number; a mapping declares (upserts) one."""
    declared = isinstance(value, dict)
    if declared:
        unknown = [k for k in value if k not in _NUMBER_KEYS]
        if unknown:
            raise UserError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(_NUMBER_KEYS)})")
        raw = value.get("e164")
    else:
        raw = value
    if not isinstance(raw, str):
        raise UserError(f'{where}: expected an E.164 number as quoted text such as "+16025550100", got {raw!r}')
    try:
        e164 = normalise_e164(raw)
    except ValidationError as error:
        raise UserError(f"{where}: {error.rule}") from None
    row = conn.execute("select number_id from phone_numbers where e164 = ?", [e164]).fetchone()
    if not declared:
        if row is None:
            raise UserError(f"{where}: no outbound number {e164} (declare it as {{e164: ..., nickname: ...}})")
        return row[0]
    nickname, status = value.get("nickname"), value.get("sip_trunk_status", "active")
    if nickname is not None and not isinstance(nickname, str):
        raise UserError(f"{where}.nickname: expected text, got {nickname!r}")
    try:
        status = _sip_status(str(status))
    except ValidationError as error:
        raise UserError(f"{where}.sip_trunk_status: {error.rule}") from None
    if row is None:
        return add_number(conn, e164, nickname, status, now)
    conn.execute("update phone_numbers set nickname = coalesce(?, nickname), sip_trunk_status = ? where number_id = ?",
                 [nickname, status, row[0]])
    return row[0]


# Hostile-YAML limits (issue #10). Anchors and aliases are fine for sharing hours between days, but nine
# nested aliases of nine items each expand to 387 million values (an 800-byte file took 14 GB and printed a
# 2 GB error message): a campaign holds a few hundred values at most. Python refuses to print an integer of
# over 4,300 digits (a traceback in the error message); no setting needs more than a few.
MAX_YAML_VALUES = 10_000
MAX_YAML_INTEGER_DIGITS = 100


class _CampaignYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also refuses a repeated key, an integer too long to be a setting, and names
    the line of an impossible date."""

    def construct_yaml_int(self, node):
        if sum(ch.isalnum() for ch in str(node.value)) > MAX_YAML_INTEGER_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"a number {len(str(node.value)):,} characters long is no setting (at most "
                f"{MAX_YAML_INTEGER_DIGITS} digits)", node.start_mark)
        return super().construct_yaml_int(node)

    def construct_mapping(self, node, deep=False):
        first_line: dict[Any, int] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = key in first_line
            except TypeError:  # an unhashable key: the safe loader's own error names it
                continue
            if seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first on line {first_line[key] + 1})", key_node.start_mark)
            first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as error:  # 2026-02-30 looks like a date but is none
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value} is not a date ({error})", node.start_mark) from None


_CampaignYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _CampaignYamlLoader.construct_yaml_timestamp)
_CampaignYamlLoader.add_constructor("tag:yaml.org,2002:int", _CampaignYamlLoader.construct_yaml_int)


def _expands_beyond(document: Any, limit: int) -> bool:
    """Whether the document holds more than `limit` values (keys, items, texts, numbers) with every alias
    expanded; stops counting at the limit, so a huge or self-referencing expansion costs no more."""
    count, pending = 0, [document]
    while pending:
        value = pending.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, (list, tuple, set)):
            pending.extend(value)
    return False


def load_yaml(path: Path) -> dict[str, Any]:
    """A campaign YAML file's top-level mapping, with unknown and repeated keys refused."""
    raw = read_input_file(path, "YAML file")  # missing, a folder, unreadable: the same words as every input file
    try:
        document = yaml.load(raw.decode("utf-8"), Loader=_CampaignYamlLoader)  # noqa: S506 (a safe loader)
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start}); save the YAML as UTF-8") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        reason = " ".join(str(getattr(error, "problem", None) or error).split())  # a reader error spans lines
        raise UserError(f"{path}: not valid YAML{where}: {reason}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path}: expected a mapping of campaign settings at the top level")
    if _expands_beyond(document, MAX_YAML_VALUES):
        raise UserError(f"{path}: more than {MAX_YAML_VALUES:,} values once its anchors (&) and aliases (*) are "
                        "expanded; a campaign needs far fewer (a hostile or mistaken file?)")
    unknown = [k for k in document if k not in YAML_KEYS]
    if unknown:
        raise UserError(f"{path}: unknown key '{unknown[0]}' (allowed: {', '.join(YAML_KEYS)})")
    return document


def apply_yaml(conn: Conn, path: str | Path, now: datetime) -> dict[str, Any]:
    """Create or update (matched by name) the campaign a YAML file declares; {campaign_id, created, changed}.

    The agent and outbound numbers it declares are upserted first; run it inside one
    `transaction()` so that a rule broken later leaves nothing written.
    """
    path = Path(path)
    document = load_yaml(path)
    data = {k: v for k, v in document.items() if k not in ("agent", "outbound_numbers")}
    if "agent" not in document:
        raise UserError(f"{path}: agent: is required (a name, an agent id, or a mapping with name and provider_agent_id)")
    data["agent_id"] = _yaml_agent(conn, document["agent"], path, now)
    numbers = document.get("outbound_numbers") or []
    if not isinstance(numbers, list):
        raise UserError(f"{path}: outbound_numbers: expected a list of numbers")
    data["outbound_number_ids"] = [_yaml_number(conn, n, f"{path}: outbound_numbers[{i}]", now) for i, n in enumerate(numbers)]
    try:
        settings = checked_settings(conn, data)
    except UserError as error:
        raise UserError(f"{path}: {error}") from None
    matches = [row[0] for row in conn.execute(
        "select campaign_id from campaigns where name = ? order by campaign_id", [settings.name]
    ).fetchall()]
    if len(matches) > 1:
        raise UserError(f"{path}: name: {len(matches)} campaigns are named \"{settings.name}\"; rename one first")
    if matches:
        # Re-applying an unchanged file keeps updated_at: it records setting changes only.
        changed = get_campaign_settings(conn, matches[0]).model_dump() != settings.model_dump()
        if changed:
            try:
                update_campaign(conn, matches[0], settings.model_dump(), now)
            except UserError as error:  # e.g. active: true for a campaign past its end date
                raise UserError(f"{path}: {error}") from None
        return {"campaign_id": matches[0], "created": False, "changed": changed}
    try:
        created = create_campaign(conn, settings, now)
    except UserError as error:  # e.g. active: true past its end date: named with the file, as an update's
        raise UserError(f"{path}: {error}") from None
    return {"campaign_id": created, "created": True, "changed": True}


# ---------------------------------------------------------------------------------------------


def _dicts(cursor: Conn) -> list[dict]:
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]
