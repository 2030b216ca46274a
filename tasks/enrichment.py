"""Post-call enrichment by polling: which calls are pending, what the provider says, what to write.

The three steps are separate so the caller can keep the DuckDB connection closed while the provider
is asked (network calls can take seconds): read `pending_calls` with one short connection, ask with
`collect_updates` (no connection), then write the plan with `apply_plan` in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import polars as pl

from schemas.enums import CallStatus, DisconnectReason
from tasks.call_state import apply_provider_calls
from tasks.credits import RateCard
from tasks.telephony.base import CallNotFound, ProviderCall, ProviderError, TelephonyProvider

PENDING_SQL = """
with pending as (
    select call_id, provider_call_id, attempt_key, status, queued_at, analyzed_at
    from calls
    where status in ('registered', 'in_progress') or (status = 'ended' and analyzed_at is null)
),
final as (
    select *, queued_at <= ?::timestamptz as stuck
    from pending
)
select * from final order by call_id
"""

# How many calls one provider batch read asks for (the simulator reads 500 ids per SQLite query).
BATCH_SIZE = 500


@dataclass
class EnrichmentPlan:
    """What one enrichment pass will write: provider records per call and why some are synthetic."""

    updates: list[tuple[int, ProviderCall]] = field(default_factory=list)
    error_messages: dict[int, str] = field(default_factory=dict)
    asked: int = 0
    unknown: int = 0
    provider_errors: int = 0
    stuck_errors: int = 0
    analysis_missing: int = 0


def pending_calls(conn: duckdb.DuckDBPyConnection, now: datetime, stuck_minutes: float) -> pl.DataFrame:
    """Calls whose outcome or analysis is still to come, with `stuck` = pending past the limit."""
    stuck_before = now - timedelta(minutes=stuck_minutes)
    return conn.execute(PENDING_SQL, [stuck_before]).pl()


def _ask(provider: TelephonyProvider, ids: Sequence[str], now: datetime) -> dict[str, ProviderCall | ProviderError]:
    """Each id's provider record or the error reading it; one batch read when the provider has one."""
    answers: dict[str, ProviderCall | ProviderError] = {}
    get_calls = getattr(provider, "get_calls", None)
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = list(ids[start:start + BATCH_SIZE])
        if get_calls is not None:
            try:
                answers.update(zip(chunk, get_calls(chunk, now)))
                continue
            except ProviderError:
                pass  # one unknown id fails the whole batch: fall back to one read per call
        for provider_call_id in chunk:
            try:
                answers[provider_call_id] = provider.get_call(provider_call_id, now)
            except ProviderError as error:
                answers[provider_call_id] = error
    return answers


def collect_updates(
    provider: TelephonyProvider, pending: pl.DataFrame, now: datetime, stuck_minutes: float
) -> EnrichmentPlan:
    """Ask the provider about every pending call and decide what to write (no database access)."""
    plan = EnrichmentPlan()
    rows = pending.to_dicts()
    by_id = {r["provider_call_id"]: r for r in rows if r["provider_call_id"]}
    answers: dict[int, ProviderCall | ProviderError | None] = {}
    for provider_call_id, answer in _ask(provider, list(by_id), now).items():
        answers[by_id[provider_call_id]["call_id"]] = answer
    for row in rows:
        if not row["provider_call_id"]:
            # Registered without a stored provider id cannot normally happen; the attempt key finds it.
            try:
                answers[row["call_id"]] = provider.find_by_attempt_key(row["attempt_key"], now)
            except ProviderError as error:
                answers[row["call_id"]] = error
    plan.asked = len(rows)
    for row in rows:
        answer = answers.get(row["call_id"])
        if answer is None or isinstance(answer, CallNotFound):
            plan.unknown += 1
            answer = None
        elif isinstance(answer, ProviderError):
            plan.provider_errors += 1
        _decide(plan, row, answer, now, stuck_minutes)
    return plan


def _decide(
    plan: EnrichmentPlan, row: dict, answer: ProviderCall | ProviderError | None, now: datetime, stuck_minutes: float
) -> None:
    """Add what to write for one pending call: the provider's record, a synthetic one, or nothing."""
    call_id, stuck = row["call_id"], row["stuck"]
    answered = isinstance(answer, ProviderCall)
    if answered and (not stuck or answer.analyzed or answer.status in (CallStatus.not_connected, CallStatus.error)):
        plan.updates.append((call_id, answer))
        return
    if not stuck:
        return  # unknown or unreachable for now: ask again on the next pass
    no_analysis = f"analysis not received within {stuck_minutes:g} minutes of queueing"
    if answered and answer.status == CallStatus.ended:
        # Ended, but the analysis never came: store what the provider has and count the analysis
        # as done without a verdict so the contact is released. A late analysis still lands later
        # (webhook): apply_provider_calls fills fields and finishes the contact on a late success.
        answer.analyzed = True
        plan.updates.append((call_id, answer))
        plan.error_messages[call_id] = no_analysis
        plan.analysis_missing += 1
        return
    if row["status"] == CallStatus.ended:
        # Stored as ended earlier and the provider can tell no more: release it as it is.
        plan.updates.append((call_id, ProviderCall(row["provider_call_id"], CallStatus.ended, analyzed=True)))
        plan.error_messages[call_id] = no_analysis
        plan.analysis_missing += 1
        return
    why = (
        "provider does not know this call" if answer is None
        else f"provider still reports {answer.status.value}" if answered
        else f"provider unreachable: {answer}"
    )
    # A synthetic final record releases the contact; if the real outcome arrives later (a webhook)
    # it replaces this one, because final statuses rank equal in apply_provider_calls.
    plan.updates.append((call_id, ProviderCall(
        row["provider_call_id"], CallStatus.error, disconnect_reason=DisconnectReason.error_unknown, ended_at=now,
    )))
    plan.error_messages[call_id] = f"stuck in flight for more than {stuck_minutes:g} minutes; {why}"
    plan.stuck_errors += 1


def apply_plan(
    conn: duckdb.DuckDBPyConnection, plan: EnrichmentPlan, now: datetime, rates: RateCard | None = None
) -> int:
    """Write an enrichment plan (call it inside one transaction); returns call rows changed."""
    changed = apply_provider_calls(conn, plan.updates, now, rates)
    if plan.error_messages:
        # apply_provider_calls carries provider fields only; our own explanation goes beside it.
        messages = pl.DataFrame(
            {"call_id": list(plan.error_messages), "message": list(plan.error_messages.values())},
            schema={"call_id": pl.Int64, "message": pl.String},
        )
        conn.register("stuck_messages", messages)
        try:
            conn.execute(
                "update calls c set error_message = m.message from stuck_messages m "
                "where c.call_id = m.call_id and c.error_message is distinct from m.message"
            )
        finally:
            conn.unregister("stuck_messages")
    return changed


def call_detail(conn: duckdb.DuckDBPyConnection, call_id: int) -> dict | None:
    """One call as stored (outcome, analysis, credits) with its contact's name and its feedback."""
    cursor = conn.execute(
        """
        select c.*, ct.name as contact_name, f.rating as feedback_rating, f.comment as feedback_comment
        from calls c
        left join contacts ct using (contact_id)
        left join call_feedback f using (call_id)
        where c.call_id = ?
        """,
        [call_id],
    )
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row)) if row else None
