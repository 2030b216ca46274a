"""Call commands: `enrich`, `webhooks serve`, `feedback CALL_ID`, `calls show CALL_ID`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from flows.cli.common import JsonOpt, app, db, emit, plain_value
from tasks.errors import NotFoundError, UserError

webhooks_app = typer.Typer(help="The provider webhook receiver.", no_args_is_help=True)
calls_app = typer.Typer(help="Call logs.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(calls_app, name="calls")

CallIdArg = Annotated[int, typer.Argument(help="Call id (calls.call_id).")]


def _instant(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--now: '{text}' is not an ISO date-time (e.g. 2026-04-28T17:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command()
def enrich(
    now: Annotated[str | None, typer.Option(
        "--now", help="Enrich as of this ISO instant (default: now); one without an offset is UTC.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One enrichment pass: ask the provider about every unfinished call and store the answers."""
    from flows.enrich_calls import run_enrichment
    from tasks.telephony import make_provider

    result = run_enrichment(db(), make_provider(db=db()), _instant(now))
    emit(result, as_json, (
        f"{result['pending']} pending call(s), {result['changed']} updated; "
        f"stuck marked error: {result['stuck_errors']}, analysis given up: {result['analysis_missing']}, "
        f"unknown to the provider: {result['unknown']}, provider errors: {result['provider_errors']}"
    ))


@webhooks_app.command("serve")
def webhooks_serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8787,
) -> None:
    """Serve POST /webhooks/retell (signatures checked with RETELL_API_KEY; without it, 503) and GET /healthz until interrupted."""
    from flows.webhooks_app import serve
    from tasks.settings import get_settings

    if get_settings().retell_api_key is None:
        typer.echo("warning: RETELL_API_KEY is not set; /webhooks/retell will answer 503", err=True)
    serve(host, port, db())


@app.command()
def feedback(
    call_id: CallIdArg,
    up: Annotated[bool, typer.Option("--up", help="Thumbs up.")] = False,
    down: Annotated[bool, typer.Option("--down", help="Thumbs down.")] = False,
    clear_rating: Annotated[bool, typer.Option("--clear-rating", help="Remove the rating.")] = False,
    comment: Annotated[str | None, typer.Option("--comment", help="Free-text comment ('' removes it).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rate a call (thumbs up/down) and/or comment on it; never changes dialing."""
    from tasks.feedback import set_feedback
    from tasks.store import transaction

    if up + down + clear_rating > 1:
        raise UserError("give only one of --up, --down, --clear-rating")
    rating = "up" if up else "down" if down else None
    with transaction(db()) as conn:
        row = set_feedback(conn, call_id, rating, comment, datetime.now(UTC), clear_rating=clear_rating)
    emit(row, as_json, f"call {call_id}: rating {row['rating'] or '-'}, comment {row['comment'] or '-'}")


@calls_app.command("show")
def calls_show(call_id: CallIdArg, as_json: JsonOpt = False) -> None:
    """Everything stored about one call: outcome, analysis, credits, transcript, feedback."""
    from tasks.enrichment import call_detail
    from tasks.store import connect

    with connect(db()) as conn:
        row = call_detail(conn, call_id)
    if row is None:
        raise NotFoundError(f"call {call_id} does not exist")
    for key in ("dynamic_variables", "custom_analysis"):
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    width = max(len(k) for k in row)
    human = "\n".join(
        f"{key.ljust(width)}  {'' if value is None else plain_value(value)}" for key, value in row.items()
        if key != "transcript"
    )
    if row["transcript"]:
        human += "\ntranscript:\n  " + row["transcript"].replace("\n", "\n  ")
    emit(row, as_json, human)
