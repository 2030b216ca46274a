"""`campaigns dial`, `campaigns run ID`, `campaigns simulate ID`: the dialing engine from the shell."""

from __future__ import annotations

import sys
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated

import typer

from flows.cli.common import JsonOpt, app, db, emit
from tasks.errors import UserError

def parse_instant(text: str | None, option: str) -> datetime | None:
    """An ISO instant from the command line; one without an offset is UTC (as --now's help says)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: '{text}' is not an ISO date-time (e.g. 2026-04-28T17:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


NowOpt = Annotated[str | None, typer.Option(
    "--now", help="Run on a virtual clock starting at this ISO instant; one without an offset is UTC.")]


@app.command()
def dial(now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """One dialing tick for every active campaign that may call now."""
    from tasks.clock import VirtualClock, WallClock
    from tasks.dialing import TickError, idle_campaigns, idle_line, outcome_text, run_tick
    from tasks.telephony import make_provider

    instant = parse_instant(now, "--now")
    clock = VirtualClock(instant) if instant else WallClock()
    started = clock.now()
    failed = None
    try:
        tick = run_tick(db(), make_provider(db=db()), clock)
    except TickError as error:  # some campaigns failed: what the others did, then why, exit 1
        tick, failed = error.result, error
    # the campaigns the tick gave no batch, with why (a failed one is named in the error instead)
    idle = idle_campaigns(db(), tick, clock.now())
    result = {"now": started, **tick.as_dict(), "idle": idle}
    lines = [f"virtual clock at {started:%Y-%m-%d %H:%M:%S} UTC"] if instant else []
    lines += [f"reconciled {result['reconciled']} call(s); placed {result['placed']} call(s)"]
    lines += [f"  campaign {b['campaign_id']}: claimed {b['claimed']}, placed {b['placed']}"
              + outcome_text(b["message"], b["held"]) for b in result["batches"]]
    lines += [f"  {idle_line(i)}" for i in idle]
    emit(result, as_json, "\n".join(lines))
    if failed is not None:
        print(f"error: {failed}", file=sys.stderr)
        raise typer.Exit(1)


@app.command()
def run(campaign_id: int, now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """Start one batch of a campaign now (the Run button), even when inactive or outside its schedule."""
    from tasks.clock import VirtualClock, WallClock
    from tasks.dialing import NO_NUMBER, run_manual
    from tasks.telephony import make_provider

    instant = parse_instant(now, "--now")
    clock = VirtualClock(instant) if instant else WallClock()
    result = run_manual(db(), make_provider(db=db()), campaign_id, clock)
    emit(result.__dict__, as_json, result.line())
    if result.message == NO_NUMBER:  # a setup the batch cannot run with, as `activate` refuses it: not "nobody due"
        raise UserError(f"campaign {campaign_id}: {NO_NUMBER}; add one with `campaigns edit {campaign_id} --number ID`")


@app.command()
def simulate(
    campaign_id: int,
    days: Annotated[float, typer.Option("--days", min=0.01, help="Simulated days to run.")] = 7,
    start: Annotated[str | None, typer.Option(
        "--start", help="First day (YYYY-MM-DD); default the campaign's start date, or, when it has calls, the day after "
                        "its last call's (from the last call for fractional --days): a simulation writes into the "
                        "campaign and cannot start before calls already made.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Simulator seed (default CAMPAIGNS_SIMULATOR_SEED).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate days of dialing, enrichment and metrics on a virtual clock with the simulated provider, writing the
    calls into this campaign (`campaigns forecast` simulates a copy instead)."""
    from flows.simulate import simulate as run_simulation
    from tasks.settings import get_settings
    from tasks.store import connect
    from tasks.telephony import make_provider

    with connect(db()) as conn:
        row = conn.execute("select start_date, time_zone, (select max(queued_at) from calls where campaign_id = $id)"
                           " from campaigns where campaign_id = $id", {"id": campaign_id}).fetchone()
    if row is None:
        raise UserError(f"campaign {campaign_id} does not exist")
    if start is not None:
        try:
            first_day = date.fromisoformat(start)
        except ValueError:
            raise UserError(f"--start: '{start}' is not a date (YYYY-MM-DD)") from None
    elif row[0] is not None:
        first_day = row[0]
    else:
        raise UserError(f"campaign {campaign_id} has no start date: pass --start or set one")
    from tasks.schedule import zone

    begin = datetime.combine(first_day, time(0, 0), zone(row[1])).astimezone(timezone.utc)
    last_call = row[2]
    if last_call is not None and begin < last_call:
        # The simulation writes its calls into this campaign: its clock cannot start before calls already made
        # (a simulated attempt 2 dated before a real attempt 1). By default it goes on from the last call.
        if start is not None:
            raise UserError(f"--start {first_day}: campaign {campaign_id} already has calls until "
                            f"{last_call.astimezone(zone(row[1])):%Y-%m-%d %H:%M} ({row[1]}); a simulation writes into "
                            f"the campaign and starts after them (leave --start out), or use `campaigns forecast`, "
                            f"which simulates a copy")
        begin = last_call.astimezone(timezone.utc)
        if float(days).is_integer():
            # whole days go on from the campaign-local midnight after the last call's day: a run of whole days covered
            # that day to its end, and `--days 2` from its last call (a morning batch) gave one new calling day
            next_day = last_call.astimezone(zone(row[1])).date() + timedelta(days=1)
            begin = datetime.combine(next_day, time(0, 0), zone(row[1])).astimezone(timezone.utc)
    settings = get_settings()
    if seed is not None:
        settings = settings.model_copy(update={"simulator_seed": seed})
    settings = settings.model_copy(update={"provider": "simulator"})
    provider = make_provider(settings, db=db())
    span = days
    local_begin = begin.astimezone(zone(row[1]))
    if float(days).is_integer() and local_begin.time() == time(0, 0):
        # whole campaign-local days: to the local midnight N days on (a day across a DST change has 23 or 25 hours;
        # 3 days counted as 72 hours ended an hour before the third midnight)
        end = datetime.combine(local_begin.date() + timedelta(days=int(days)), time(0, 0), zone(row[1]))
        span = (end - begin) / timedelta(days=1)
    result = run_simulation(db(), provider, begin, span, campaign_ids=[campaign_id]).as_dict()
    import polars as pl

    from tasks.campaigns import open_enrollment_sql
    from tasks.compliance import suppressed_contacts

    with connect(db()) as conn:
        # left: may still be called, as the campaign's status counts them
        open_sql = ("select count(*) from campaign_contacts cc join campaigns c using (campaign_id)"
                    f" where cc.campaign_id = ? and {open_enrollment_sql()}")
        left = conn.execute(open_sql, [campaign_id]).fetchone()[0]
        # contacts a do-not-call list holds: nothing releases them, so a run with only those left is done
        listed = suppressed_contacts(conn, campaign_id).filter(pl.col("do_not_call"))["contact_id"].to_list()
        held = conn.execute(open_sql + " and list_contains(?, cc.contact_id)",
                            [campaign_id, listed]).fetchone()[0] if listed else 0
    result.update(requested_days=days, simulated_days=round((result["end"] - begin) / timedelta(days=1), 3),
                  # completed: every contact finished; done: nothing will be dialled any more (the only ones left
                  # are on a do-not-call list, as the campaign's Completed status counts them)
                  contacts_left=left, left_on_do_not_call=held, completed=left == 0, done=left == held)
    emit(result, as_json, simulated_summary(result))


def simulated_summary(result: dict) -> str:
    """What a simulation covered, from the simulated clock: its span (not the days asked for) and whether it completed."""
    hours = (result["end"] - result["start"]) / timedelta(hours=1)
    span = f"{hours:.1f} hour(s)" if hours < 24 else f"{hours / 24:.1f} day(s)"
    left, held = result["contacts_left"], result.get("left_on_do_not_call", 0)
    if result["completed"]:
        outcome = "completed: every contact finished"
    elif held == left:
        outcome = f"done: the {left} contact(s) left are on a do-not-call list"
    else:
        outcome = f"{left - held} contact(s) still to dial" + (f", {held} on a do-not-call list" if held else "")
    # why the last ticks placed nothing (a number out of rotation, a daily cap), when the run did not complete
    hold = f"; dialing held at the end: {result['held_by']}" if result.get("held_by") and not result["completed"] else ""
    if hold and result.get("held_at") is not None:  # the last tick that could call: the run may end days after it
        hold += f" (last seen {result['held_at']:%Y-%m-%d %H:%M} UTC)"
    return (f"simulated {span} ({result['start']:%Y-%m-%d %H:%M} to {result['end']:%Y-%m-%d %H:%M} UTC;"
            f" {result['requested_days']:g} day(s) requested), {outcome}: {result['ticks']} ticks,"
            f" {result['placed']} calls placed{hold}")
