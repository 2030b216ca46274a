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

from tasks.call_state import _UPDATE_SCHEMA, apply_provider_calls, updates_frame, utc_literal
from tasks.credits import RateCard
from tasks.telephony.base import (
    CallNotFound,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    TelephonyProvider,
)

# Pending: in flight (`registered`, `in_progress`) or ended and awaiting its analysis. `analyzed_at` is
# set only on final calls (`merge_records`; migration 008 cleared older exceptions), so this equals
# `status in ('registered', 'in_progress') or (status = 'ended' and analyzed_at is null)`, and the null
# test comes first: DuckDB skips every row group whose `analyzed_at` has no nulls, where the `or` form
# scans the whole call log (a live 100,000-contact run: 8-11 ms -> ~3.5 ms a pass late in the run).
PENDING_SQL = """
with pending as (
    select call_id, provider_call_id, attempt_key, status, queued_at, analyzed_at
    from calls
    where analyzed_at is null and status in ('registered', 'in_progress', 'ended')
),
final as (
    select *, queued_at <= $stuck_before as stuck, queued_at <= $overdue_before as overdue
    from pending
)
select * from final order by call_id
"""

# How many calls one provider batch read asks for (the simulator reads 500 ids per SQLite query).
BATCH_SIZE = 500

# The provider's answer per pending call: its record (the update columns), or the error reading it.
_ANSWER_SCHEMA = {**_UPDATE_SCHEMA, "provider_error": pl.String}
PLAN_SCHEMA = {**_UPDATE_SCHEMA, "error_message": pl.String}
# Empty frames built once: with time zones in the schema, each costs Polars milliseconds to build.
_NO_ANSWERS = pl.DataFrame(schema=_ANSWER_SCHEMA)
_NO_UPDATES = pl.DataFrame(schema=PLAN_SCHEMA)


@dataclass
class EnrichmentPlan:
    """What one enrichment pass will write: a record per call (`PLAN_SCHEMA`; our own explanation of a
    synthetic one in `error_message`), and how many calls were asked, unknown, unreachable, stuck or
    never analysed."""

    updates: pl.DataFrame = field(default_factory=lambda: _NO_UPDATES)
    asked: int = 0
    unknown: int = 0
    provider_errors: int = 0
    stuck_errors: int = 0
    analysis_missing: int = 0


# A call the provider still reports in flight is believed this long after queueing (settings.max_call_minutes).
MAX_CALL_MINUTES = 120.0


def pending_calls(
    conn: duckdb.DuckDBPyConnection, now: datetime, stuck_minutes: float, max_call_minutes: float = MAX_CALL_MINUTES,
) -> pl.DataFrame:
    """Calls whose outcome or analysis is still to come, with `stuck` = pending past the limit and `overdue` =
    past the longest call (only then is a call the provider still reports in flight closed as stuck)."""
    return conn.execute(PENDING_SQL, {
        "stuck_before": now - timedelta(minutes=stuck_minutes),
        "overdue_before": now - timedelta(minutes=max(stuck_minutes, max_call_minutes)),
    }).pl()


# Errors that say the provider is failing as a whole, not for one call: once DOWN_STREAK reads one at a
# time in a row end in one, the rest of the pass is not asked (each read would spend its own retries and
# timeouts: on a Retell outage about 25 s a call, hours for a pass of hundreds); they get that error
# instead. A streak, not the first failure: one call whose reads keep failing must not starve the others.
_PROVIDER_DOWN = (ProviderUnavailable, RateLimited)
DOWN_STREAK = 3


def _not_asked(down: ProviderError) -> str:
    """The provider error recorded for a call left unasked because the provider is down."""
    return f"not asked: an earlier read of this pass failed ({down})"


def _read_one_by_one(call_ids: Sequence[int], keys: Sequence[str], read, down: list[ProviderError]) -> pl.DataFrame:
    """`read(key)` per call: its record, or the error (calls the provider does not know are left out).

    `down` holds the provider-down errors of the reads in a row so far (this pass): at DOWN_STREAK of
    them the provider is taken as down and nothing more is asked.
    """
    records, errors = [], []
    for call_id, key in zip(call_ids, keys):
        if len(down) >= DOWN_STREAK:
            errors.append((call_id, _not_asked(down[-1])))
            continue
        try:
            answer = read(key)
        except CallNotFound:
            down.clear()
            continue
        except ProviderError as error:
            errors.append((call_id, str(error)))
            if isinstance(error, _PROVIDER_DOWN):
                down.append(error)
            else:
                down.clear()
            continue
        down.clear()
        if answer is not None:
            records.append((call_id, answer))
    failed = pl.DataFrame(errors, schema={"call_id": pl.Int64, "provider_error": pl.String}, orient="row")
    return pl.concat([updates_frame(records), failed], how="diagonal_relaxed")


def _answers(provider: TelephonyProvider, pending: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Each pending call's provider record or the error reading it (`_ANSWER_SCHEMA`); unknown calls are left out.

    One frame per batch when the provider has `get_calls_frame` (no record object per call), else
    `get_calls`; one read per call when a batch read fails (one unknown id fails the whole batch).
    Once DOWN_STREAK reads one at a time in a row find the provider down (`_PROVIDER_DOWN`), the rest is
    not asked.
    """
    get_frame = getattr(provider, "get_calls_frame", None)
    # a provider without a batch read (`reads_one_by_one`: Retell) is read call by call from the start: its
    # `get_calls` stops at the first failing call, and the batch would then be read again one by one
    get_calls = None if getattr(provider, "reads_one_by_one", False) else getattr(provider, "get_calls", None)
    known = pending.filter(pl.col("provider_call_id").is_not_null())
    call_ids, provider_ids = known["call_id"].to_list(), known["provider_call_id"].to_list()
    parts, down = [], []
    for start in range(0, len(provider_ids), BATCH_SIZE):
        chunk_calls, chunk = call_ids[start:start + BATCH_SIZE], provider_ids[start:start + BATCH_SIZE]
        if len(down) >= DOWN_STREAK:
            parts.append(pl.DataFrame({"call_id": chunk_calls, "provider_error": _not_asked(down[-1])},
                                      schema={"call_id": pl.Int64, "provider_error": pl.String}))
            continue
        try:
            if get_frame is not None:
                parts.append(get_frame(chunk, now).with_columns(call_id=pl.Series(chunk_calls, dtype=pl.Int64)))
                continue
            if get_calls is not None:
                parts.append(updates_frame(list(zip(chunk_calls, get_calls(chunk, now)))))
                continue
        except ProviderError:
            pass  # one unknown id fails the whole batch read: read this batch one call at a time
        parts.append(_read_one_by_one(chunk_calls, chunk, lambda call: provider.get_call(call, now), down))
    # Registered without a stored provider id cannot normally happen; the attempt key finds it.
    lost = pending.filter(pl.col("provider_call_id").is_null())
    if lost.height:
        queued = dict(zip(lost["attempt_key"].to_list(), lost["queued_at"].to_list()))  # an older call's key: not ours
        parts.append(_read_one_by_one(lost["call_id"].to_list(), lost["attempt_key"].to_list(),
                                      lambda attempt_key: provider.find_by_attempt_key(
                                          attempt_key, now, placed_after=queued[attempt_key]), down))
    return pl.concat([_NO_ANSWERS, *parts], how="diagonal_relaxed").select(list(_ANSWER_SCHEMA)).cast(_ANSWER_SCHEMA)


def collect_updates(
    provider: TelephonyProvider, pending: pl.DataFrame, now: datetime, stuck_minutes: float,
    max_call_minutes: float = MAX_CALL_MINUTES,
) -> EnrichmentPlan:
    """Ask the provider about every pending call and decide what to write (no database access)."""
    return decide(pending, _answers(provider, pending, now), now, stuck_minutes, max_call_minutes)


_ANSWERED, _FAILED, _STUCK = pl.col("status").is_not_null(), pl.col("provider_error").is_not_null(), pl.col("stuck")
# The rules for stuck calls, as expressions built once (building them costs more than running them).
# A stuck call's record is written only when it says how the call ended.
# A call the provider reports still in flight is believed until `overdue`: releasing its contact
# earlier could redial someone still on the line with the agent.
_IN_FLIGHT_ANSWER = pl.col("status").is_in(["registered", "in_progress"]) & ~pl.col("overdue")
_AS_IS = _ANSWERED & (
    ~_STUCK | pl.col("analyzed").fill_null(False) | pl.col("status").is_in(["not_connected", "error"])
    | _IN_FLIGHT_ANSWER)
_UNSETTLED = ~pl.col("as_is") & _STUCK
_ENDED_ANSWER = _ANSWERED & (pl.col("status") == "ended")
_STUCK_RULES = (
    # Ended, but the analysis never came: store what the provider has and count the analysis as done
    # without a verdict so the contact is released. A late analysis still lands later (webhook):
    # apply_provider_calls fills fields and finishes the contact on a late success.
    (_UNSETTLED & _ENDED_ANSWER).alias("analysis_missing"),
    # Stored as ended earlier and the provider can tell no more: release it as it is.
    (_UNSETTLED & ~_ENDED_ANSWER & (pl.col("stored_status") == "ended")).alias("stored_ended"),
    # A synthetic final record releases the contact; if the real outcome arrives later (a webhook)
    # it replaces this one, because final statuses rank equal in apply_provider_calls.
    (_UNSETTLED & ~_ENDED_ANSWER & (pl.col("stored_status") != "ended")).alias("stuck_error"),
)
_SYNTHETIC = pl.col("stored_ended") | pl.col("stuck_error")
_WHY = (
    pl.when(_ANSWERED).then(pl.lit("provider still reports ") + pl.col("status"))
    .when(_FAILED).then(pl.lit("provider unreachable: ") + pl.col("provider_error"))
    .otherwise(pl.lit("provider does not know this call"))
)
_REPLACED = {
    "call_id": pl.col("call_id"),
    "status": pl.when(pl.col("stored_ended")).then(pl.lit("ended")).when(pl.col("stuck_error"))
    .then(pl.lit("error")).otherwise(pl.col("status")),
    "provider_call_id": pl.when(_SYNTHETIC).then(pl.col("stored_provider_call_id"))
    .otherwise(pl.col("provider_call_id")),
    "disconnect_reason": pl.when(pl.col("stuck_error")).then(pl.lit("error_unknown"))
    .when(~_SYNTHETIC).then(pl.col("disconnect_reason")),
    "analyzed": pl.col("analysis_missing") | pl.col("stored_ended")
    | (pl.col("as_is") & pl.col("analyzed").fill_null(False)),
}
_KEPT = {c: pl.when(~_SYNTHETIC).then(pl.col(c)).alias(c) for c in PLAN_SCHEMA}


def decide(pending: pl.DataFrame, answers: pl.DataFrame, now: datetime, stuck_minutes: float,
           max_call_minutes: float = MAX_CALL_MINUTES) -> EnrichmentPlan:
    """For each pending call what to write: the provider's record, a synthetic one, or nothing (ask again later)."""
    rows = pending.select(
        "call_id", "stuck", "overdue", pl.col("provider_call_id").alias("stored_provider_call_id"),
        pl.col("status").alias("stored_status"),
    ).join(answers, on="call_id", how="left")
    counts = rows.select(unknown=(~_ANSWERED & ~_FAILED).sum(), provider_errors=_FAILED.sum()).row(0, named=True)
    if not rows["stuck"].any():
        # A young call's record is written as it comes; an unknown or unreachable one is asked again later.
        return EnrichmentPlan(asked=pending.height, **counts, updates=rows.filter(_ANSWERED).select(
            *_UPDATE_SCHEMA, pl.lit(None, pl.String).alias("error_message")))
    rows = rows.with_columns(as_is=_AS_IS).with_columns(*_STUCK_RULES)
    no_analysis = f"analysis not received within {stuck_minutes:g} minutes of queueing"
    columns = {
        **_KEPT, **_REPLACED,
        "ended_at": pl.when(pl.col("stuck_error"))
        .then(utc_literal(now))
        .when(~_SYNTHETIC).then(pl.col("ended_at")),
        "error_message": pl.when(pl.col("analysis_missing") | pl.col("stored_ended")).then(pl.lit(no_analysis))
        .when(pl.col("stuck_error") & _ANSWERED & pl.col("overdue"))  # reported in flight past the longest call
        .then(pl.lit(f"stuck in flight for more than {max(stuck_minutes, max_call_minutes):g} minutes; ") + _WHY)
        .when(pl.col("stuck_error"))
        .then(pl.lit(f"stuck in flight for more than {stuck_minutes:g} minutes; ") + _WHY),
    }
    updates = rows.filter(pl.col("as_is") | pl.col("analysis_missing") | _SYNTHETIC).select(
        *(columns[c].alias(c) for c in PLAN_SCHEMA)).cast(PLAN_SCHEMA)
    stuck_errors, analysis_missing = rows.select(
        pl.col("stuck_error").sum(), pl.col("analysis_missing").sum() + pl.col("stored_ended").sum()).row(0)
    return EnrichmentPlan(updates=updates, asked=pending.height, **counts, stuck_errors=stuck_errors,
                          analysis_missing=analysis_missing)


def apply_plan(
    conn: duckdb.DuckDBPyConnection, plan: EnrichmentPlan, now: datetime, rates: RateCard | None = None
) -> int:
    """Write an enrichment plan (call it inside one transaction); returns call rows changed."""
    # the pass read its calls in an earlier transaction: one deleted since (with its campaign) is left out
    changed = apply_provider_calls(conn, plan.updates.drop("error_message"), now, rates, skip_missing=True)
    messages = plan.updates.filter(pl.col("error_message").is_not_null()).select("call_id", "error_message")
    if messages.height:
        # apply_provider_calls carries provider fields only; our own explanation goes beside it.
        conn.register("stuck_messages", messages)
        try:
            conn.execute(
                "update calls c set error_message = m.error_message from stuck_messages m "
                "where c.call_id = m.call_id and c.error_message is distinct from m.error_message"
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
