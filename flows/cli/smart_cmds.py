"""Smart dialing commands: `forecast CAMPAIGN_ID`, `numbers health`, `numbers restore NUMBER_ID`, `best-time CAMPAIGN_ID`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from enum import Enum

import typer

from flows.cli.common import JsonOpt, app, db, emit, numbers_app, require_campaign, table

CampaignArg = Annotated[int, typer.Argument(help="Campaign id (campaigns.campaign_id).")]


class Rates(str, Enum):
    """The forecast's outcome odds (tasks.forecast.choose_rates)."""

    auto = "auto"
    observed = "observed"
    default = "default"


@app.command()
def forecast(
    campaign_id: CampaignArg,
    seed: Annotated[int | None, typer.Option("--seed", help="Simulator seed (default CAMPAIGNS_SIMULATOR_SEED).")] = None,
    days: Annotated[float, typer.Option("--days", min=1, help="Horizon in days.")] = 120.0,
    rates: Annotated[Rates, typer.Option(
        "--rates", help="Outcome odds: the campaign's observed mix once it has 200 calls (auto), or force one.")] = Rates.auto,
    as_json: JsonOpt = False,
) -> None:
    """Expected completion date, calls, connected and successful contacts and credits, by simulating a copy."""
    from tasks.forecast import forecast as run_forecast

    result = run_forecast(db(), campaign_id, datetime.now(UTC), seed=seed, horizon_days=days, rates=rates.value)
    data = result.as_dict()
    horizon = f"{days:g} day{'' if days == 1 else 's'}"
    completion = f"not within {horizon}"
    if result.completion is not None:
        completion = _completion_text(result.completion, campaign_id)
        if result.held_by and result.held_back_contacts:
            # the simulation stopped on a hold (a paused number): its last call is no completion for those left
            completion = f"none while dialing is held ({result.held_back_contacts} contacts left); last call {completion}"
    # with no completion, the unfinished contacts include those the horizon did not reach, not only those held back
    never = f"still unfinished after {horizon}" if result.completion is None else "expected never to finish"
    rate = (f"{result.forecast_connection_rate:.1%} of calls" if result.forecast_connection_rate is not None
            else "no calls simulated")
    observed = (f"{result.observed_connection_rate:.1%} of calls" if result.observed_connection_rate is not None
                else "no calls yet")
    per_contact = f"{result.connected_contacts / result.contacts:.1%}" if result.contacts else "n/a"
    emit(data, as_json, "\n".join([
        f"Campaign {campaign_id} forecast (simulated from {result.start:%Y-%m-%d %H:%M} UTC, seed {result.seed})",
        f"Expected completion   {completion}",
        f"Contacts              {result.contacts} ({result.remaining_contacts} not finished; "
        f"{result.held_back_contacts} {never}"
        + (f", {result.do_not_call_contacts} of them on a do-not-call list" if result.do_not_call_contacts else "") + ")",
        *([f"Held back by          {result.held_by}"] if result.held_by else []),
        f"Calls                 {result.calls}",
        f"Connected contacts    {result.connected_contacts}",
        f"Successful contacts   {result.successful_contacts}",
        f"Credits               {result.credits}",
        # per contact first: the Metrics tab's Connection Rate counts contacts, the simulation's rate calls
        f"Connection rate       {per_contact} of contacts by the end (as the Metrics tab counts); {rate} "
        f"(observed so far: {observed})",
        f"Rates used            {result.rates_used}",
        *([f"Observed outcomes     {_shares(result.observed_mix)}", f"Simulated outcomes    {_shares(result.forecast_mix)}"]
          if result.observed_mix and result.forecast_mix else []),
    ]))


def _completion_text(moment: datetime, campaign_id: int) -> str:
    """The expected completion in the campaign's time zone, as the dashboard shows it, with UTC beside it."""
    from zoneinfo import ZoneInfo

    from tasks.store import connect

    with connect(db()) as conn:
        zone = conn.execute("select time_zone from campaigns where campaign_id = ?", [campaign_id]).fetchone()[0]
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone} ({moment.astimezone(UTC):%H:%M} UTC)"


def _shares(mix: dict[str, float]) -> str:
    return " · ".join(f"{outcome.replace('_', ' ')} {share:.0%}" for outcome, share in mix.items())


@numbers_app.command("health")
def numbers_health(as_json: JsonOpt = False) -> None:
    """Every outbound number: in rotation or paused (with the reason), whether it can dial (in rotation with an
    active SIP trunk), and its last 24 hours."""
    from tasks.number_health import numbers_overview
    from tasks.store import connect

    with connect(db()) as conn:
        # in rotation is the health verdict; a number whose SIP trunk is not active cannot dial either way
        rows = [{**row, "can_dial": bool(row["in_rotation"] and row["sip_trunk_status"] == "active")}
                for row in numbers_overview(conn, datetime.now(UTC))]
    emit(rows, as_json, table(rows, ["number_id", "e164", "nickname", "sip_trunk_status", "in_rotation", "can_dial",
                                     "calls_24h", "connection_rate_24h", "spam_marks_24h", "paused_reason"]))


@numbers_app.command("restore")
def numbers_restore(number_id: Annotated[int, typer.Argument(help="Number id (phone_numbers.number_id).")],
                    now: Annotated[str | None, typer.Option(
                        "--now", help="Restore at this ISO instant (a virtual clock, as `dial --now`): its health is "
                                      "judged from then on; one without an offset is UTC.")] = None,
                    as_json: JsonOpt = False) -> None:
    """Put a number taken out of rotation back in."""
    from flows.cli.dialing_cmds import parse_instant
    from tasks.number_health import restore_number
    from tasks.store import transaction

    # on the wall clock a restore stamped today was before a virtual-clock dial's calls, which paused it again at once
    at = parse_instant(now, "--now") or datetime.now(UTC)
    with transaction(db()) as conn:
        restored = restore_number(conn, number_id, at)
    emit({"number_id": number_id, "restored": restored}, as_json,
         f"number {number_id} is back in rotation" if restored else f"number {number_id} was already in rotation")


@app.command("best-time")
def best_time(campaign_id: CampaignArg, as_json: JsonOpt = False) -> None:
    """Connection rate by callee-local weekday × hour (the Metrics tab heatmap), as of the last aggregation."""
    from schemas.enums import WEEKDAYS
    from tasks.best_time import MIN_CELL_CALLS, heatmap
    from tasks.store import connect

    with connect(db()) as conn:
        require_campaign(conn, campaign_id)
        cells = heatmap(conn, campaign_id).to_dicts()
    seen = [c for c in cells if c["calls"]]
    # as the heatmap does: a rate over a few calls (1 of 1 = 100%) is said to be not reliable yet
    rows = [{"day": WEEKDAYS[c["weekday"]], "hour": c["hour"], "calls": c["calls"], "connected": c["connected"],
             "rate": f"{c['connection_rate']:.0%}",
             "note": f"fewer than {MIN_CELL_CALLS} calls: not reliable yet" if c["calls"] < MIN_CELL_CALLS else None}
            for c in seen]
    emit(cells, as_json, table(rows, ["day", "hour", "calls", "connected", "rate", "note"]))
