"""Campaign commands: create, edit, apply, list, show, activate, deactivate, duplicate, delete; agents; numbers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from flows.cli.common import JsonOpt, agents_app, app, db, emit, numbers_app, options_named, plain_value, table
from tasks.errors import UserError

IdArg = Annotated[int, typer.Argument(help="Campaign id.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Campaign name.")]
ObjectiveOpt = Annotated[str | None, typer.Option("--objective", help="Optional description.")]
AgentOpt = Annotated[str | None, typer.Option("--agent", help="Agent id or name (see `campaigns agents list`).")]
StartOpt = Annotated[str | None, typer.Option("--start-date", help="First calling day, YYYY-MM-DD, campaign-local; 'none' clears it.")]
EndOpt = Annotated[str | None, typer.Option("--end-date", help="Last calling day, YYYY-MM-DD; 'none' clears it.")]
DaysOpt = Annotated[str | None, typer.Option("--calling-days", help="Comma-separated days, e.g. mon,tue,wed,thu,fri.")]
HoursOpt = Annotated[list[str] | None, typer.Option(
    "--hours", help="Same window every calling day, HH:MM-HH:MM; repeat for several windows.")]
ScheduleOpt = Annotated[str | None, typer.Option(
    "--schedule", help='Per-day windows as JSON, e.g. {"mon": [["08:00","18:00"]]}.')]
ZoneOpt = Annotated[str | None, typer.Option("--time-zone", help="IANA time zone, e.g. America/Phoenix.")]
CountryOpt = Annotated[str | None, typer.Option("--country", help="ISO 3166 alpha-2; needed when the zone is shared.")]
MaxOpt = Annotated[int | None, typer.Option("--max-attempts", help="Calls per contact in total, 1..20.")]
PerDayOpt = Annotated[int | None, typer.Option("--attempts-per-day", help="Calls per contact per local day.")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Contacts per batch, 1..500.")]
RotationOpt = Annotated[bool | None, typer.Option("--rotation/--no-rotation", help="Rotate over several numbers.")]
NumberOpt = Annotated[list[int] | None, typer.Option("--number", help="Outbound number id; repeat for rotation.")]
ActiveOpt = Annotated[bool | None, typer.Option("--active/--no-active", help="Scheduled dialing on or off.")]
CapOpt = Annotated[str | None, typer.Option(
    "--number-daily-cap", help="Most calls per outbound number per campaign-local day, 1..10000 (default 100); "
                               "'none' removes the cap.")]


def _now() -> datetime:
    return datetime.now(UTC)


def _setting_options(hours_given: bool) -> dict[str, str]:
    """The option that sets each campaign setting, to name in an error instead of the field; the schedule is
    --hours when the user gave hours, else --schedule."""
    return {
        "name": "--name", "objective": "--objective", "agent_id": "--agent", "start_date": "--start-date",
        "end_date": "--end-date", "time_zone": "--time-zone", "country": "--country", "calling_days": "--calling-days",
        "weekly_schedule or same_hours (hours)": "--schedule or --hours",
        "weekly_schedule": "--hours" if hours_given else "--schedule", "same_hours": "--hours",
        "max_attempts": "--max-attempts", "attempts_per_day": "--attempts-per-day", "batch_size": "--batch-size",
        "rotation_enabled": "--rotation", "outbound_number_ids": "--number", "active": "--active",
        "number_daily_cap": "--number-daily-cap",
    }


# The schema's rule when an active campaign loses its start date; said in the CLI's terms for `edit --start-date
# none` on an active campaign without --active (the user typed no --active, and "turn Active off" is the form's).
_ACTIVE_NEEDS_START = "an active campaign needs a start date: set one, or turn Active off"


def _edit_options(hours_given: bool, changes: dict[str, Any], active_given: bool, campaign_id: int) -> dict[str, str]:
    """`edit`'s names for the settings (_setting_options); a start date cleared on a campaign left active is
    refused as --start-date's problem, with what to do, not as --active's, an option the user did not type."""
    names = _setting_options(hours_given)
    if not active_given and "start_date" in changes and changes["start_date"] is None:
        names["active"] = "--start-date"
        names[_ACTIVE_NEEDS_START] = ("an active campaign needs a start date; deactivate it first "
                                      f"(campaigns deactivate {campaign_id})")
    return names


def _changes(**options: Any) -> dict[str, Any]:
    """The settings given on the command line, in the model's field names."""
    changes: dict[str, Any] = {}
    simple = ("name", "objective", "time_zone", "country", "max_attempts", "attempts_per_day",
              "batch_size", "rotation_enabled", "active")
    changes.update({key: options[key] for key in simple if options.get(key) is not None})
    if options.get("agent") is not None:
        changes["agent_id"] = options["agent"]
    for key in ("start_date", "end_date"):  # "none" (or empty) clears a date
        if options.get(key) is not None:
            changes[key] = None if options[key].strip().lower() in ("", "none") else options[key].strip()
    if options.get("calling_days") is not None:
        changes["calling_days"] = [d for d in options["calling_days"].replace(" ", "").split(",") if d]
    if options.get("hours"):
        changes["same_hours"] = options["hours"]
    if options.get("schedule") is not None:
        try:
            changes["weekly_schedule"] = json.loads(options["schedule"])
        except json.JSONDecodeError as error:
            raise UserError(f"--schedule: not valid JSON ({error.msg} at column {error.colno})") from None
        schedule = changes["weekly_schedule"]
        if "calling_days" not in changes and isinstance(schedule, dict):
            # the days the schedule gives windows are the calling days, unless --calling-days says otherwise
            from schemas.enums import WEEKDAYS

            given = {str(day).strip().lower()[:3] for day, windows in schedule.items() if windows}
            changes["calling_days"] = [day for day in WEEKDAYS if day in given]
    if options.get("numbers"):
        changes["outbound_number_ids"] = list(options["numbers"])
    if options.get("number_daily_cap") is not None:  # "none" (or empty) removes the cap; the model checks the rest
        cap = options["number_daily_cap"].strip()
        changes["number_daily_cap"] = (None if cap.lower() in ("", "none")
                                       else int(cap) if re.fullmatch(r"[+-]?\d+", cap) else cap)
    return changes


def agent_id(conn, given: str) -> int:
    """An agent by id or by name (as `apply` takes it), with what to do when there is none."""
    from tasks.campaigns import agents_named

    text = str(given).strip()
    if text.isdigit():
        if conn.execute("select 1 from agents where agent_id = ?", [int(text)]).fetchone() is None:
            raise UserError(f"--agent: agent {text} does not exist; `campaigns agents list` shows them, "
                            "`campaigns agents add NAME` adds one")
        return int(text)
    ids = agents_named(conn, text)
    if not ids:
        raise UserError(f"--agent: no agent named {text!r}; `campaigns agents list` shows them, "
                        "`campaigns agents add NAME` adds one")
    if len(ids) > 1:
        raise UserError(f"--agent: {len(ids)} agents are named {text!r}; give the id ({', '.join(map(str, ids))})")
    return ids[0]


def _show_data(conn, campaign_id: int, now: datetime) -> dict[str, Any]:
    from tasks.campaigns import (
        campaign_status, get_campaign, get_campaign_settings, start_line, status_notes, summary_lines,
    )

    row = get_campaign(conn, campaign_id)
    status = campaign_status(conn, campaign_id, now).value
    settings = get_campaign_settings(conn, campaign_id)
    summary = summary_lines(settings)
    # "will start on" a date already passed: what the campaign page's summary says instead
    summary[0] = start_line(summary[0], settings, now.astimezone(ZoneInfo(settings.time_zone)).date(),
                            settings.start_date, bool(row["active"]))
    # Failed said nothing of why (the failed batch's message was in dial_runs only), nor Waiting of a dead number
    return {**row, "summary": summary, "status": status, **status_notes(conn, campaign_id, status, now)}


def _show_text(data: dict[str, Any]) -> str:
    hidden = {"summary", "status", "campaign_id", "name", "failed_because", "numbers_hold"}
    lines = [f"campaign {data['campaign_id']}: {data['name']}  [{data['status']}]"]
    failure = data.get("failed_because")
    if failure:
        started = failure["started_at"].astimezone(ZoneInfo(data["time_zone"]))
        lines.append(f"  its {failure['kind']} batch of {started:%Y-%m-%d %H:%M} {data['time_zone']} failed:"
                     f" {failure['message']}")
    if data.get("numbers_hold"):
        lines.append(f"  no batch can dial now: {data['numbers_hold']}")
    lines.append("")
    lines += [f"  {line}" for line in data["summary"]]
    lines.append("")
    lines += [f"{key}: {plain_value(value)}" for key, value in data.items() if key not in hidden]
    return "\n".join(lines)


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="Campaign name.")],
    agent: Annotated[str, typer.Option("--agent", help="Agent id or name (see `campaigns agents list`).")],
    time_zone: Annotated[str, typer.Option("--time-zone", help="IANA time zone, e.g. America/Phoenix.")],
    objective: ObjectiveOpt = None, start_date: StartOpt = None, end_date: EndOpt = None,
    calling_days: DaysOpt = None, hours: HoursOpt = None, schedule: ScheduleOpt = None, country: CountryOpt = None,
    max_attempts: MaxOpt = None, attempts_per_day: PerDayOpt = None, batch_size: BatchOpt = None,
    rotation: RotationOpt = None, number: NumberOpt = None, active: ActiveOpt = None,
    number_daily_cap: CapOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a campaign (every setting validated); prints its id, summary and status."""
    from tasks.campaigns import create_campaign
    from tasks.store import transaction

    changes = _changes(name=name, agent=agent, time_zone=time_zone, objective=objective, start_date=start_date,
                       end_date=end_date, calling_days=calling_days, hours=hours, schedule=schedule, country=country,
                       max_attempts=max_attempts, attempts_per_day=attempts_per_day, batch_size=batch_size,
                       rotation_enabled=rotation, numbers=number, active=active,
                       number_daily_cap=number_daily_cap)
    if "same_hours" not in changes and "weekly_schedule" not in changes:
        raise UserError("create: give --hours HH:MM-HH:MM (same every calling day) or --schedule JSON")
    now = _now()
    with options_named(_setting_options(bool(hours))), transaction(db()) as conn:
        changes["agent_id"] = agent_id(conn, agent)
        campaign_id = create_campaign(conn, changes, now)
        data = _show_data(conn, campaign_id, now)
    emit(data, as_json, f"created campaign {campaign_id}\n" + _show_text(data))


@app.command()
def edit(
    campaign_id: IdArg, name: NameOpt = None, agent: AgentOpt = None, time_zone: ZoneOpt = None,
    objective: ObjectiveOpt = None, start_date: StartOpt = None, end_date: EndOpt = None,
    calling_days: DaysOpt = None, hours: HoursOpt = None, schedule: ScheduleOpt = None, country: CountryOpt = None,
    max_attempts: MaxOpt = None, attempts_per_day: PerDayOpt = None, batch_size: BatchOpt = None,
    rotation: RotationOpt = None, number: NumberOpt = None, active: ActiveOpt = None,
    number_daily_cap: CapOpt = None, as_json: JsonOpt = False,
) -> None:
    """Change some settings of a campaign; the whole result is validated before it is saved."""
    from tasks.campaigns import update_campaign
    from tasks.store import transaction

    changes = _changes(name=name, agent=agent, time_zone=time_zone, objective=objective, start_date=start_date,
                       end_date=end_date, calling_days=calling_days, hours=hours, schedule=schedule, country=country,
                       max_attempts=max_attempts, attempts_per_day=attempts_per_day, batch_size=batch_size,
                       rotation_enabled=rotation, numbers=number, active=active,
                       number_daily_cap=number_daily_cap)
    if not changes:
        raise UserError("edit: give at least one setting to change (see campaigns edit --help)")
    now = _now()
    with options_named(_edit_options(bool(hours), changes, active is not None, campaign_id)), transaction(db()) as conn:
        if agent is not None:
            changes["agent_id"] = agent_id(conn, agent)
        update_campaign(conn, campaign_id, changes, now)
        data = _show_data(conn, campaign_id, now)
    emit(data, as_json, f"updated campaign {campaign_id}\n" + _show_text(data))


@app.command()
def apply(
    file: Annotated[Path, typer.Argument(help="Campaign YAML (see data/example_campaign.yaml).")],
    as_json: JsonOpt = False,
) -> None:
    """Create or update (matched by name) the campaign declared in a YAML file."""
    from tasks.campaigns import apply_yaml, load_yaml
    from tasks.store import transaction

    now = _now()
    store = db()  # the store's path is checked first (a missing folder), then the file, before the store is created
    load_yaml(file)
    with transaction(store) as conn:
        result = apply_yaml(conn, file, now)
        data = {**result, **_show_data(conn, result["campaign_id"], now)}
    verb = "created" if result["created"] else "updated"
    emit(data, as_json, f"{verb} campaign {result['campaign_id']} from {file}\n" + _show_text(data))


@app.command("list")
def list_(
    search: Annotated[str | None, typer.Option("--search", help="Part of the name, case and accents aside.")] = None,
    sort: Annotated[str, typer.Option("--sort", help="created (newest first) or name.")] = "created",
    as_json: JsonOpt = False,
) -> None:
    """List campaigns with their status, agent and number of contacts."""
    from tasks.campaigns import list_campaigns
    from tasks.store import connect

    with options_named({"sort": "--sort"}), connect(db()) as conn:
        rows = list_campaigns(conn, _now(), search=search, sort=sort)
    emit(rows, as_json, table(rows, ["campaign_id", "name", "status", "agent_name", "contacts", "created_at"]))


@app.command()
def show(campaign_id: IdArg, as_json: JsonOpt = False) -> None:
    """A campaign's settings, plain-language summary and status."""
    from tasks.store import connect

    with connect(db()) as conn:
        data = _show_data(conn, campaign_id, _now())
    emit(data, as_json, _show_text(data))


def _set_active(campaign_id: int, on: bool, as_json: bool) -> None:
    from tasks.campaigns import activate_campaign, deactivate_campaign
    from tasks.store import transaction

    now = _now()
    with transaction(db()) as conn:
        (activate_campaign if on else deactivate_campaign)(conn, campaign_id, now)
        data = _show_data(conn, campaign_id, now)
    emit({"campaign_id": campaign_id, "active": on, "status": data["status"]}, as_json,
         f"campaign {campaign_id} {'activated' if on else 'deactivated'}: {data['status']}")


@app.command()
def activate(campaign_id: IdArg, as_json: JsonOpt = False) -> None:
    """Turn scheduled dialing on (needs a start date and an outbound number; refused once the end date is over)."""
    _set_active(campaign_id, True, as_json)


@app.command()
def deactivate(campaign_id: IdArg, as_json: JsonOpt = False) -> None:
    """Turn scheduled dialing off (Paused)."""
    _set_active(campaign_id, False, as_json)


@app.command()
def duplicate(campaign_id: IdArg, as_json: JsonOpt = False) -> None:
    """Copy a campaign's settings and its own do-not-call entries into a new inactive campaign named "<name> (Copy)", without contacts."""  # noqa: E501 (one line: Typer keeps a docstring's line breaks)
    from tasks.campaigns import duplicate_campaign
    from tasks.store import transaction

    now = _now()
    with transaction(db()) as conn:
        copy_id = duplicate_campaign(conn, campaign_id, now)
        data = _show_data(conn, copy_id, now)
    emit(data, as_json, f"campaign {campaign_id} copied to campaign {copy_id}: {data['name']}")


@app.command()
def delete(
    campaign_id: IdArg,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: deleting cannot be undone.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a campaign permanently with its calls, feedback, enrollments, runs, metrics and own do-not-call list (CRM contacts stay)."""
    from tasks.campaigns import delete_campaign
    from tasks.store import transaction

    if not yes:
        raise UserError(f"campaign {campaign_id}: deleting is permanent (calls, feedback, enrollments, metrics); "
                        "add --yes to confirm")
    with transaction(db()) as conn:
        deleted = delete_campaign(conn, campaign_id)
    emit({"campaign_id": campaign_id, "deleted": deleted}, as_json,
         f"deleted campaign {campaign_id} (" + ", ".join(f"{t}: {n}" for t, n in deleted.items()) + ")")


@agents_app.command("add")
def agents_add(
    name: Annotated[str, typer.Argument(help="Agent display name.")],
    provider_agent_id: Annotated[str | None, typer.Option("--provider-agent-id", help="The agent's id at the provider.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a voice agent."""
    from tasks.campaigns import add_agent
    from tasks.store import transaction

    with options_named({"name": "NAME argument"}), transaction(db()) as conn:
        agent_id = add_agent(conn, name, provider_agent_id, _now())
    emit({"agent_id": agent_id, "name": name, "provider_agent_id": provider_agent_id}, as_json,
         f"added agent {agent_id}: {name}")


@agents_app.command("list")
def agents_list(as_json: JsonOpt = False) -> None:
    """List voice agents."""
    from tasks.campaigns import list_agents
    from tasks.store import connect

    with connect(db()) as conn:
        rows = list_agents(conn)
    emit(rows, as_json, table(rows, ["agent_id", "name", "provider_agent_id", "created_at"]))


@numbers_app.command("add")
def numbers_add(
    e164: Annotated[str, typer.Argument(help="The number in E.164, e.g. +16025550100.")],
    nickname: Annotated[str | None, typer.Option("--nickname", help="Display name.")] = None,
    status: Annotated[str, typer.Option("--status", help="SIP trunk status: active, inactive or error.")] = "active",
    as_json: JsonOpt = False,
) -> None:
    """Add an outbound phone number."""
    from tasks.campaigns import add_number
    from tasks.store import transaction

    with options_named({"e164": "E164 argument", "sip_trunk_status": "--status"}), transaction(db()) as conn:
        number_id = add_number(conn, e164, nickname, status, _now())
        row = conn.execute("select e164 from phone_numbers where number_id = ?", [number_id]).fetchone()
    emit({"number_id": number_id, "e164": row[0], "nickname": nickname, "sip_trunk_status": status}, as_json,
         f"added number {number_id}: {row[0]}")


@numbers_app.command("list")
def numbers_list(as_json: JsonOpt = False) -> None:
    """List outbound phone numbers with nickname and SIP trunk status."""
    from tasks.campaigns import list_numbers
    from tasks.store import connect

    with connect(db()) as conn:
        rows = list_numbers(conn)
    emit(rows, as_json, table(rows, ["number_id", "e164", "nickname", "sip_trunk_status", "created_at"]))


@numbers_app.command("set-status")
def numbers_set_status(
    number_id: Annotated[int, typer.Argument(help="Number id.")],
    status: Annotated[str, typer.Argument(help="active, inactive or error.")],
    as_json: JsonOpt = False,
) -> None:
    """Change an outbound number's SIP trunk status (only active numbers dial)."""
    from tasks.campaigns import set_number_status
    from tasks.store import transaction

    with options_named({"sip_trunk_status": "STATUS argument"}), transaction(db()) as conn:
        set_number_status(conn, number_id, status)
    emit({"number_id": number_id, "sip_trunk_status": status}, as_json, f"number {number_id}: {status}")
