"""Metrics commands: `aggregate`, `metrics CAMPAIGN_ID`, `export calls CAMPAIGN_ID`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import JsonOpt, app, check_out_file, db, emit, export_app, options_named, table
from tasks.errors import UserError

CampaignArg = Annotated[int, typer.Argument(help="Campaign id (campaigns.campaign_id).")]
FromOpt = Annotated[str | None, typer.Option("--from", help="First campaign-local day, YYYY-MM-DD (inclusive).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last campaign-local day, YYYY-MM-DD (inclusive).")]
RANGE_OPTIONS = {"date_from": "--from", "date_to": "--to"}  # named in errors instead of the fields


def _day(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: '{text}' is not a date (YYYY-MM-DD)") from None


@app.command()
def aggregate(
    full: Annotated[bool, typer.Option("--full", help="Rebuild every metrics table from scratch.")] = False,
    campaign: Annotated[int | None, typer.Option("--campaign", help="Only this campaign.")] = None,
    no_snapshot: Annotated[bool, typer.Option("--no-snapshot", help="Skip the analyst snapshot refresh.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Refresh contact_stats and metrics_daily (incrementally unless --full), then the analyst snapshot."""
    from flows.aggregate_metrics import run_aggregation

    result = run_aggregation(db(), campaign_id=campaign, full=full, snapshot=not no_snapshot)
    snapshot = f"; snapshot {result['snapshot']} ({result['snapshot_seconds']} s)" if "snapshot" in result else ""
    emit(result, as_json, (
        f"{result['campaigns']} campaign(s), {result['rebuilt']} rebuilt; {result['contact_rows']} contact row(s) "
        f"and {result['day_rows']} day row(s) written in {result['aggregate_seconds']} s{snapshot}"
    ))


@app.command()
def metrics(campaign_id: CampaignArg, date_from: FromOpt = None, date_to: ToOpt = None, as_json: JsonOpt = False) -> None:
    """The Metrics tab: KPI cards, contact funnel and calls per day for a campaign-local date range."""
    from tasks.metrics import calls_per_day, funnel, kpis
    from tasks.store import connect

    first, last = _day("--from", date_from), _day("--to", date_to)
    with options_named(RANGE_OPTIONS), connect(db()) as conn:
        cards = kpis(conn, campaign_id, first, last)
        stages = funnel(conn, campaign_id, first, last)
        per_day = calls_per_day(conn, campaign_id, first, last).to_dicts()
    data = {"campaign_id": campaign_id, "from": first, "to": last, "kpis": cards, "funnel": stages,
            "calls_per_day": per_day}
    human = "\n".join([
        f"Credits Used        {cards['credits_used']}",
        f"Total Calls         {cards['total_calls']}",
        f"Contacts Called     {cards['contacts_called']}",
        f"Connection Rate     {cards['connection_rate']:.2f} %",
        f"Avg. Call Duration  {cards['avg_call_duration_seconds']:.1f} s",
        "",
        f"Funnel: {stages['total_contacts']} contacts → {stages['connected']} connected "
        f"({stages['connected_pct']:.2f} %) → {stages['successful']} successful ({stages['successful_pct']:.2f} %)",
        "",
        "Calls per day (metrics_daily, as of the last aggregation):",
        table(per_day, ["day", "disconnect_reason", "calls"]),
    ])
    emit(data, as_json, human)


@export_app.command("calls")
def export_calls_cmd(
    campaign_id: CampaignArg,
    out: Annotated[Path, typer.Option("--out", help="The .xlsx file to write.")],
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the campaign's call logs (with analysis, dynamic variables, custom data) to Excel."""
    from tasks.export_calls import export_calls
    from tasks.store import connect

    check_out_file(out, ".xlsx")
    first, last = _day("--from", date_from), _day("--to", date_to)
    with options_named(RANGE_OPTIONS), connect(db()) as conn:
        rows = export_calls(conn, campaign_id, out, first, last)
    emit({"out": str(out), "rows": rows}, as_json, f"{rows} call(s) written to {out}")
