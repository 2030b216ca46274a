"""The call lifecycle's one writer of outcomes: applies provider records to calls and enrollments.

Polling (enrich_calls), webhooks and crash reconciliation all write through `apply_provider_calls`,
so every path gives the same row and the enrollment counters move exactly once per call. It is
set-based (one statement per step for any number of calls) because a simulated campaign applies
hundreds of thousands of updates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import duckdb
import polars as pl

from schemas.enums import NOT_AN_ATTEMPT_REASONS, NOT_RETRYABLE_REASONS, sql_list
from tasks.compliance import dnc_from_analysis
from tasks.credits import RateCard
from tasks.errors import NotFoundError
from tasks.retry_policy import apply_retry_policy
from tasks.settings import get_settings
from tasks.telephony.base import ProviderCall

FINAL_SQL = "('ended', 'not_connected', 'error', 'failed_rate_limit')"

_UPDATE_SCHEMA = {
    "call_id": pl.Int64,
    "status": pl.String,
    "provider_call_id": pl.String,
    "disconnect_reason": pl.String,
    "disconnect_reason_raw": pl.String,
    "started_at": pl.Datetime("us", "UTC"),
    "ended_at": pl.Datetime("us", "UTC"),
    "duration_seconds": pl.Float64,
    "analyzed": pl.Boolean,
    "call_successful": pl.Boolean,
    "user_sentiment": pl.String,
    "in_voicemail": pl.Boolean,
    "summary": pl.String,
    "custom_analysis": pl.String,
    "tools_count": pl.Int32,
    "transcript": pl.String,
    "recording_url": pl.String,
    "cost_cents": pl.Float64,
}


def _rank_sql(column: str) -> str:
    return (
        f"case {column} when 'queued' then 0 when 'created' then 1 when 'registered' then 2 "
        f"when 'in_progress' then 3 else 4 end"
    )


def updates_frame(updates: Sequence[tuple[int, ProviderCall]]) -> pl.DataFrame:
    """The provider records as one frame keyed by our call id."""
    rows = {name: [] for name in _UPDATE_SCHEMA}
    for call_id, pc in updates:
        rows["call_id"].append(call_id)
        for name in _UPDATE_SCHEMA:
            if name == "call_id":
                continue
            value = getattr(pc, name)
            if name == "custom_analysis" and value is not None:
                value = json.dumps(value, default=str)
            elif hasattr(value, "value"):  # enums
                value = value.value
            rows[name].append(value)
    return pl.DataFrame(rows, schema=_UPDATE_SCHEMA)


def apply_provider_calls(
    conn: duckdb.DuckDBPyConnection,
    updates: Sequence[tuple[int, ProviderCall]] | pl.DataFrame,
    now: datetime,
    rates: RateCard | None = None,
    *,
    not_attempts: bool = False,
) -> int:
    """Merge provider records into their call rows; release or finish enrollments that are done.

    Idempotent and order-free: statuses only move forward, missing fields never erase stored ones,
    and enrollment counters change only on a call's first final update. Returns rows changed.
    Call it inside a transaction. `not_attempts` marks every record as a call that never reached
    the person for reasons that must not use up their attempts (placing was interrupted).
    """
    frame = updates if isinstance(updates, pl.DataFrame) else updates_frame(updates)
    if frame.height == 0:
        return 0
    frame = frame.unique("call_id", keep="last", maintain_order=True)
    rates = rates or RateCard.from_settings()
    conn.register("provider_updates", frame)
    try:
        low, high = frame["call_id"].min(), frame["call_id"].max()
        conn.execute(
            f"""
            create or replace temp table call_merge as
            with current as (
                -- the id range lets DuckDB skip row groups: calls are numbered in time order
                select c.* from calls c semi join provider_updates u using (call_id)
                where c.call_id between $low and $high
            ),
            merged as (
                select
                    c.call_id, c.campaign_id, c.contact_id, c.counts_as_attempt,
                    c.status as old_status,
                    c.call_successful as old_successful,
                    case
                        when c.status = 'failed_rate_limit' then c.status
                        when {_rank_sql('u.status')} >= {_rank_sql('c.status')} then u.status
                        else c.status
                    end as status,
                    coalesce(c.provider_call_id, u.provider_call_id) as provider_call_id,
                    coalesce(u.disconnect_reason, c.disconnect_reason) as disconnect_reason,
                    coalesce(u.disconnect_reason_raw, c.disconnect_reason_raw) as disconnect_reason_raw,
                    coalesce(u.started_at, c.started_at) as started_at,
                    coalesce(u.ended_at, c.ended_at) as ended_at,
                    coalesce(u.duration_seconds, c.duration_seconds) as duration_seconds,
                    coalesce(u.call_successful, c.call_successful) as call_successful,
                    coalesce(u.user_sentiment, c.user_sentiment) as user_sentiment,
                    coalesce(u.in_voicemail, c.in_voicemail) as in_voicemail,
                    coalesce(u.summary, c.summary) as summary,
                    coalesce(u.custom_analysis::json, c.custom_analysis) as custom_analysis,
                    coalesce(u.tools_count, c.tools_count) as tools_count,
                    coalesce(u.transcript, c.transcript) as transcript,
                    coalesce(u.recording_url, c.recording_url) as recording_url,
                    coalesce(u.cost_cents, c.cost_cents) as cost_cents,
                    c.registered_at, c.analyzed_at, coalesce(u.analyzed, false) as analyzed_now,
                    c.credits as old_credits
                from current c join provider_updates u using (call_id)
            ),
            billed as (
                select *,
                    case
                        when status not in ('ended', 'error') then case when status in {FINAL_SQL} then 0 end
                        when coalesce(in_voicemail, false) or disconnect_reason = 'voicemail_reached' then $voicemail
                        when coalesce(duration_seconds, 0) > 0 then $minute * ceil(duration_seconds / 60)::integer
                        else 0
                    end as credits,
                    case when registered_at is null and {_rank_sql('status')} >= 2 then $now::timestamptz
                         else registered_at end as new_registered_at,
                    case when analyzed_at is null and analyzed_now then $now::timestamptz
                         else analyzed_at end as new_analyzed_at
                from merged
            ),
            final as (
                select *,
                    status in {FINAL_SQL} and counts_as_attempt
                        and ($not_attempts or status = 'failed_rate_limit' or disconnect_reason in ({sql_list(NOT_AN_ATTEMPT_REASONS)}))
                        as refund,
                    status in {FINAL_SQL} and (status <> 'ended' or new_analyzed_at is not null) as done,
                    coalesce(call_successful, false) and not coalesce(old_successful, false) as became_successful
                from billed
            )
            select * from final
            """,
            {"voicemail": rates.per_voicemail, "minute": rates.per_answered_minute, "now": now,
             "not_attempts": not_attempts, "low": low, "high": high},
        )
        merged, refunds, done, successes = conn.execute(
            "select count(*), count(*) filter (where refund), count(*) filter (where done),"
            " count(*) filter (where became_successful) from call_merge"
        ).fetchone()
        if merged < frame.height:
            missing = conn.execute(
                "select u.call_id from provider_updates u anti join call_merge m using (call_id) limit 1"
            ).fetchone()
            raise NotFoundError(f"call {missing[0]} does not exist")
        changed = conn.execute(
            """
            update calls c set
                status = m.status, provider_call_id = m.provider_call_id,
                disconnect_reason = m.disconnect_reason, disconnect_reason_raw = m.disconnect_reason_raw,
                started_at = m.started_at, ended_at = m.ended_at, duration_seconds = m.duration_seconds,
                call_successful = m.call_successful, user_sentiment = m.user_sentiment,
                in_voicemail = m.in_voicemail, summary = m.summary, custom_analysis = m.custom_analysis,
                tools_count = m.tools_count, transcript = m.transcript, recording_url = m.recording_url,
                cost_cents = m.cost_cents, credits = coalesce(m.credits, c.credits),
                registered_at = m.new_registered_at, analyzed_at = m.new_analyzed_at,
                counts_as_attempt = c.counts_as_attempt and not m.refund,
                updated_at = ?
            from call_merge m
            where c.call_id = m.call_id and c.call_id between ? and ? and (
                c.status is distinct from m.status
                or c.provider_call_id is distinct from m.provider_call_id
                or c.disconnect_reason is distinct from m.disconnect_reason
                or c.disconnect_reason_raw is distinct from m.disconnect_reason_raw
                or c.started_at is distinct from m.started_at
                or c.ended_at is distinct from m.ended_at
                or c.duration_seconds is distinct from m.duration_seconds
                or c.call_successful is distinct from m.call_successful
                or c.user_sentiment is distinct from m.user_sentiment
                or c.in_voicemail is distinct from m.in_voicemail
                or c.summary is distinct from m.summary
                or c.custom_analysis::varchar is distinct from m.custom_analysis::varchar
                or c.tools_count is distinct from m.tools_count
                or c.transcript is distinct from m.transcript
                or c.recording_url is distinct from m.recording_url
                or c.cost_cents is distinct from m.cost_cents
                or c.credits is distinct from coalesce(m.credits, c.credits)
                or c.registered_at is distinct from m.new_registered_at
                or c.analyzed_at is distinct from m.new_analyzed_at
                or m.refund
            )
            """,
            [now, low, high],
        ).fetchone()[0]
        _settle_enrollments(conn, now, low, high, refunds=refunds > 0, releases=done > 0, successes=successes > 0)
        # the person asked not to be called: on the global list in this same transaction
        _do_not_call_hook(conn, frame, now)
    finally:
        conn.unregister("provider_updates")
    return changed


def _do_not_call_hook(conn: duckdb.DuckDBPyConnection, frame: pl.DataFrame, now: datetime) -> None:
    """Put on the global do-not-call list the numbers whose call analysis says the person asked so."""
    key = get_settings().do_not_call_key
    asked = frame.filter(
        pl.col("custom_analysis").is_not_null() & pl.col("custom_analysis").str.contains(key, literal=True)
    )["call_id"].to_list()
    if asked:
        dnc_from_analysis(conn, asked, now, key)


def _settle_enrollments(
    conn: duckdb.DuckDBPyConnection, now: datetime, low: int, high: int,
    *, refunds: bool = True, releases: bool = True, successes: bool = True,
) -> None:
    """Refund refusals, release finished calls' contacts and finish the ones that are done.

    The flags skip steps that have no rows (most enrichment passes have no refusal, say).
    """
    if refunds:
        # A refusal for rate or concurrency is not an attempt: give it back (once: counts_as_attempt flips).
        conn.execute(
            """
            update campaign_contacts cc set
                attempts = greatest(cc.attempts - 1, 0),
                attempts_on_day = case
                    when cc.attempts_day = r.local_day then greatest(cc.attempts_on_day - 1, 0)
                    else cc.attempts_on_day end
            from (
                select m.campaign_id, m.contact_id, (c.queued_at at time zone camp.time_zone)::date as local_day
                from call_merge m join calls c using (call_id) join campaigns camp on camp.campaign_id = m.campaign_id
                where m.refund and c.call_id between ? and ?
            ) r
            where cc.campaign_id = r.campaign_id and cc.contact_id = r.contact_id
            """,
            [low, high],
        )
        # ... and take it out of the rolling caps (attempt rows follow call ids: the range skips the rest)
        conn.execute(
            "delete from phone_attempts where call_id between ? and ?"
            " and call_id in (select call_id from call_merge where refund)",
            [low, high],
        )
    if releases:
        apply_retry_policy(conn, now, low, high)  # before the release below clears in_flight_call_id
        conn.execute(
            f"""
            update campaign_contacts cc set
                in_flight_call_id = null,
                finished_reason = case
                    when cc.finished_at is not null then cc.finished_reason
                    when m.call_successful then 'successful'
                    when m.disconnect_reason in ({sql_list(NOT_RETRYABLE_REASONS)}) then 'not_retryable'
                    when cc.attempts >= camp.max_attempts then 'max_attempts'
                end,
                finished_at = case
                    when cc.finished_at is not null then cc.finished_at
                    when m.call_successful or m.disconnect_reason in ({sql_list(NOT_RETRYABLE_REASONS)})
                      or cc.attempts >= camp.max_attempts then ?::timestamptz
                end
            from call_merge m join campaigns camp on camp.campaign_id = m.campaign_id
            where m.done and cc.campaign_id = m.campaign_id and cc.contact_id = m.contact_id
              and cc.in_flight_call_id = m.call_id
            """,
            [now],
        )
    if successes:
        # A success verdict can arrive after the contact was released (late analysis): it still finishes.
        conn.execute(
            """
            update campaign_contacts cc set finished_at = coalesce(cc.finished_at, ?::timestamptz),
                finished_reason = 'successful'
            from call_merge m
            where m.became_successful and cc.campaign_id = m.campaign_id and cc.contact_id = m.contact_id
              and cc.finished_reason is distinct from 'successful'
            """,
            [now],
        )


def apply_provider_call(
    conn: duckdb.DuckDBPyConnection, call_id: int, update: ProviderCall, now: datetime, rates: RateCard | None = None
) -> bool:
    """One provider record (a webhook event, a poll answer): see `apply_provider_calls`."""
    return apply_provider_calls(conn, [(call_id, update)], now, rates) > 0


def find_call_id(
    conn: duckdb.DuckDBPyConnection, *, provider_call_id: str | None = None, attempt_key: str | None = None
) -> int | None:
    """Our call id for an attempt key or a provider call id (webhooks carry both)."""
    if attempt_key:
        row = conn.execute("select call_id from calls where attempt_key = ?", [attempt_key]).fetchone()
        if row:
            return row[0]
    if provider_call_id:
        row = conn.execute("select call_id from calls where provider_call_id = ?", [provider_call_id]).fetchone()
        if row:
            return row[0]
    return None
