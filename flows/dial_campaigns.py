"""The dial_campaigns flow (every minute) and run_campaign (the Run button): thin wrappers over tasks.dialing."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.clock import Clock, VirtualClock, WallClock
from tasks.dialing import PROVIDER_FAILED, BatchResult, idle_campaigns, idle_line, run_manual, run_tick
from tasks.telephony.base import TelephonyProvider


def _clock(now: datetime | None) -> Clock:
    # A given `now` (tests, replays) runs on a virtual clock starting there; pacing then costs nothing.
    return VirtualClock(now) if now is not None else WallClock()


def _provider(db: str | None) -> TelephonyProvider:
    from tasks.telephony import make_provider

    return make_provider(db=db)


# No retries here: a retried tick is safe (reconciliation first) but the next tick is a minute away.
@task(name="dial-tick", cache_policy=NO_CACHE)
def dial_tick(db: str | None, provider: TelephonyProvider, clock: Clock, campaign_ids: list[int] | None) -> dict:
    """Reconcile, then one batch for each active campaign open now; `idle`: the active campaigns given no batch, and
    why (`idle_campaigns`)."""
    started = clock.now()
    tick = run_tick(db, provider, clock, campaign_ids=campaign_ids)
    return {**tick.as_dict(), "idle": idle_campaigns(db, tick, started, active_only=True, campaign_ids=campaign_ids)}


@flow(name="dial-campaigns")
def dial_campaigns(now: datetime | None = None, db: str | None = None, campaign_ids: list[int] | None = None) -> dict:
    """One scheduled dialing tick for every active campaign (or the given ones).

    The run ends Completed with what the tick did as its state message, and each batch's line in the log: a tick
    that placed nothing said nothing of why (a paused number, the daily caps, nobody callable) in the Prefect UI.
    """
    from prefect.states import Completed, Failed

    result = dial_tick(db, _provider(db), _clock(now), campaign_ids)
    batches = [BatchResult(**batch) for batch in result["batches"]]
    logger = get_run_logger()
    for batch in batches:
        (logger.error if provider_failed(batch) else logger.info)(batch.line())
    for idle in result["idle"]:
        logger.info(idle_line(idle))
    message = tick_message(result["reconciled"], result["placed"],
                           [batch.line() for batch in batches] + [idle_line(idle) for idle in result["idle"]])
    if any(provider_failed(batch) for batch in batches):
        # a refused API key or an outage: the run is Failed, so that Prefect's failure alerts fire (it ended
        # Completed and green, minute after minute, while nothing could be dialed)
        return Failed(message=message, data=result)
    return Completed(message=message, data=result)


def provider_failed(batch: BatchResult) -> bool:
    """The provider refused or could not take the batch's calls (its run ended failed, tasks.dialing)."""
    return bool(batch.message) and batch.message.startswith(PROVIDER_FAILED)


def tick_message(reconciled: int, placed: int, lines: list[str]) -> str:
    """A tick's result as one line: "reconciled 0, placed 5; campaign 1: claimed 5, placed 5"."""
    return f"reconciled {reconciled}, placed {placed}; " + ("; ".join(lines) if lines else "no active campaign may call now")


@task(name="manual-batch", cache_policy=NO_CACHE)
def manual_batch(db: str | None, provider: TelephonyProvider, campaign_id: int, clock: Clock) -> dict:
    """One batch for one campaign now, whatever its schedule."""
    return run_manual(db, provider, campaign_id, clock).__dict__


@flow(name="run-campaign")
def run_campaign(campaign_id: int, now: datetime | None = None, db: str | None = None) -> dict:
    """The Run button: one batch now for one campaign (status Manual Running while it runs).

    The run ends Completed with the batch's one-line result as its state message (what the Prefect UI shows
    and the dashboard reads back: dashboards/state.DeploymentRun), whatever the logging level.
    """
    from prefect.states import Completed

    result = manual_batch(db, _provider(db), campaign_id, _clock(now))
    return Completed(message=BatchResult(**result).line(), data=result)
