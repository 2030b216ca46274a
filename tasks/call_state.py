"""The call lifecycle's one writer of outcomes: applies provider records to calls and enrollments.

Polling (enrich_calls), webhooks and crash reconciliation all write through `apply_provider_calls`,
so every path gives the same row and the enrollment counters move exactly once per call. A batch
of any size costs at most four statements (read the stored calls, write the calls, read the
campaigns' settings, settle the enrollments) plus one for refunds and one for do-not-call requests
when there are any, because a simulated campaign applies hundreds of thousands of updates: the
decisions in between are Polars expressions on the batch, and only the columns they need are read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache

import duckdb
import polars as pl

from schemas.enums import NOT_AN_ATTEMPT_REASONS, NOT_RETRYABLE_REASONS
from tasks.compliance import dnc_from_analysis
from tasks.credits import RateCard
from tasks.errors import NotFoundError
from tasks.retry_policy import CampaignRetry, effective_policy, retry_decisions
from tasks.schedule import Schedule
from tasks.settings import get_settings
from tasks.telephony.base import CLOCK_SKEW_ALLOWANCE, RECORD_SCHEMA, ProviderCall

FINAL_STATUSES = ("ended", "not_connected", "error", "failed_rate_limit")

_UPDATE_SCHEMA = {"call_id": pl.Int64, **RECORD_SCHEMA}  # a provider record keyed by our call id
_ENUM_COLUMNS = frozenset({"status", "disconnect_reason", "user_sentiment"})
# Provider fields a record fills in when it has them; a missing one never erases what is stored.
_FILLED = ("disconnect_reason", "disconnect_reason_raw", "started_at", "ended_at", "duration_seconds",
           "call_successful", "user_sentiment", "in_voicemail", "summary", "tools_count", "transcript",
           "recording_url", "cost_cents")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# What the decisions need of the stored calls (never transcripts). The id range lets DuckDB skip row
# groups (calls are numbered in time order); the id list is bound only when the range also holds
# many other calls, since binding it costs more than reading a few extra rows.
STORED_SQL = """
select call_id, campaign_id, contact_id, status, counts_as_attempt, disconnect_reason, duration_seconds,
       in_voicemail, call_successful, ended_at, registered_at, analyzed_at, queued_at, from_number
from calls
where call_id between $low and $high and ($ids is null or list_contains($ids, call_id))
"""

# The calls update, per column: a column no record of the batch carries is left out of it, so a batch
# of refusals or progress reports rewrites about 7 columns, not 22 (DuckDB records, and commits, every
# column an UPDATE sets, changed or not).
_CALL_SETS = {
    "provider_call_id": "coalesce(c.provider_call_id, w.provider_call_id)",
    **{c: f"coalesce(w.{c}, c.{c})" for c in _FILLED},
    "custom_analysis": "coalesce(w.custom_analysis::json, c.custom_analysis)",
    "credits": "coalesce(w.credits, c.credits)",
}
_CALL_CHANGES = {
    **{c: f"c.{c} is distinct from {value}" for c, value in _CALL_SETS.items()},
    "custom_analysis": f"c.custom_analysis::varchar is distinct from ({_CALL_SETS['custom_analysis']})::varchar",
}


# `updated_at` is the write's `now`, but never before its campaign's metrics watermark, read in this
# transaction: a pass that asked the provider long before it commits (its `now` is older than changes
# other writers committed meanwhile, and an aggregation may have run in between) still stamps a time the
# next aggregation re-reads. Writers and aggregations take turns (tasks/store.py), so this transaction
# sees the watermark of every aggregation committed before it. See docs/schema.md, "metrics_state".
_UPDATED_AT = ("greatest($now::timestamptz,"
               " (select s.calls_watermark from metrics_state s where s.campaign_id = c.campaign_id))")


def _call_write_sql(carried: Sequence[str], floored: bool = True) -> str:
    """The calls update for a batch whose records carry `carried` (keys of `_CALL_SETS`); `floored`: stamp
    `updated_at` no earlier than each campaign's watermark (not needed when none is ahead of `$now`)."""
    return f"""
update calls c set
    status = w.status, registered_at = w.registered_at, analyzed_at = w.analyzed_at,
    counts_as_attempt = c.counts_as_attempt and not w.refund,
    {"".join(f"{column} = {_CALL_SETS[column]}, " for column in carried)}updated_at = {_UPDATED_AT if floored else "$now"}
from call_writes w
where c.call_id = w.call_id and (
    c.status is distinct from w.status or c.registered_at is distinct from w.registered_at
    or c.analyzed_at is distinct from w.analyzed_at or w.refund
    {"".join(f" or {_CALL_CHANGES[column]}" for column in carried)}
)
"""


# One statement settles the batch's enrollments on their current values: refused calls give their
# attempt back (and the day's, when refused on the enrollment's current campaign-local day); the
# in-flight call's final record releases the contact, with the retry policy's next time and number
# to avoid, or finishes it (rule `never`, successful, not retryable, out of attempts); a success
# verdict finishes it even when it comes after the release (late analysis). Like the calls update,
# it sets the refund and retry columns only for a batch that has some.
_REFUND_SETS = """
    attempts = greatest(cc.attempts - s.refunds, 0),
    attempts_on_day = case when cc.attempts_day = s.refund_day then greatest(cc.attempts_on_day - s.refunds_on_day, 0)
                           else cc.attempts_on_day end,"""
_RETRY_SETS = """
    -- a later time set by someone else (a requested callback) is kept
    next_call_at = case
        when cc.in_flight_call_id = s.release_call_id and cc.finished_at is null and s.retry_at is not null
        then greatest(s.retry_at, coalesce(cc.next_call_at, s.retry_at)) else cc.next_call_at end,
    avoid_number = case when cc.in_flight_call_id = s.release_call_id and cc.finished_at is null and s.never is not null
                        then s.retry_avoid_number else cc.avoid_number end,"""
_ENROLLMENT_WRITE_SQL = """
update campaign_contacts cc set {refund_sets}{retry_sets}
    in_flight_call_id = case when cc.in_flight_call_id = s.release_call_id then null else cc.in_flight_call_id end,
    finished_reason = case
        when s.became_successful then 'successful'
        when cc.finished_at is null and cc.in_flight_call_id = s.release_call_id then case
            when s.never then 'not_retryable'
            when s.release_successful then 'successful'
            when s.release_not_retryable then 'not_retryable'
            when greatest(cc.attempts - s.refunds, 0) >= s.max_attempts then 'max_attempts'
        end
        else cc.finished_reason
    end,
    finished_at = case
        when cc.finished_at is not null then cc.finished_at
        when s.became_successful then $now::timestamptz
        when cc.in_flight_call_id = s.release_call_id and (s.never or s.release_successful or s.release_not_retryable
             or greatest(cc.attempts - s.refunds, 0) >= s.max_attempts) then $now::timestamptz
    end
from enrollment_changes s
where cc.campaign_id = s.campaign_id and cc.contact_id = s.contact_id and (
    s.refunds > 0 or cc.in_flight_call_id = s.release_call_id
    or (s.became_successful and cc.finished_reason is distinct from 'successful'))
"""

# The settings of the batch's campaigns that the release and the retry policy go by.
CAMPAIGNS_SQL = """
select campaign_id, time_zone, max_attempts, calling_days, weekly_schedule::varchar, start_date, end_date,
       retry_policy::varchar, len(outbound_number_ids)
from campaigns
where list_contains($ids, campaign_id)
"""


def updates_frame(updates: Sequence[tuple[int, ProviderCall]]) -> pl.DataFrame:
    """The provider records as one frame keyed by our call id."""
    columns: dict[str, list] = {"call_id": [call_id for call_id, _ in updates]}
    for name in _UPDATE_SCHEMA:
        if name == "call_id":
            continue
        values = [getattr(pc, name) for _, pc in updates]
        if name == "custom_analysis":
            values = [None if v is None else json.dumps(v, default=str) for v in values]
        elif name in _ENUM_COLUMNS:
            values = [getattr(v, "value", v) for v in values]
        columns[name] = values
    return pl.DataFrame(columns, schema=_UPDATE_SCHEMA)


# The merge, as expressions built once (building Polars expressions costs more than running them on a
# batch), in two passes: the merged fields, then what follows from them. Statuses move forward only;
# every final status ranks 4, so a later final record may replace an earlier one, except that a
# refusal (failed_rate_limit) stays one.
def _rank(status: pl.Expr) -> pl.Expr:
    return (pl.when(status == "queued").then(0).when(status == "created").then(1)
            .when(status == "registered").then(2).when(status == "in_progress").then(3).otherwise(4))


_STATUS, _STORED_STATUS = pl.col("status"), pl.col("status_stored")
_MERGED = (
    pl.when(_STORED_STATUS == "failed_rate_limit").then(_STORED_STATUS)
    .when(_rank(_STATUS) >= _rank(_STORED_STATUS)).then(_STATUS).otherwise(_STORED_STATUS).alias("status"),
    *(pl.coalesce(c, f"{c}_stored").alias(c) for c in
      ("disconnect_reason", "duration_seconds", "in_voicemail", "call_successful", "ended_at")),
)
_FINAL = _STATUS.is_in(FINAL_STATUSES)
# Analysed only once final: a record that says "analysed" on an unfinished call (no provider does so
# today) leaves `analyzed_at` null until the final record, so `analyzed_at` is null on every unfinished
# call, which lets the pending-calls read (`tasks/enrichment.py`) skip row groups by null counts.
_NEWLY_ANALYZED = pl.col("analyzed_at").is_null() & pl.col("analyzed").fill_null(False) & _FINAL
_MEANING = (
    # done with this record and not before: only then may it release the contact (a call is released in
    # the transaction that made it done)
    (_FINAL & ((_STATUS != "ended") | pl.col("analyzed_at").is_not_null() | _NEWLY_ANALYZED)
     & ~(_STORED_STATUS.is_in(FINAL_STATUSES)
         & ((_STORED_STATUS != "ended") | pl.col("analyzed_at").is_not_null()))).alias("done"),
    (pl.col("call_successful").fill_null(False) & ~pl.col("call_successful_stored").fill_null(False))
    .alias("became_successful"),
)


# a missing or non-finite duration is none, as `call_credits` reads it (NaN > 0 would fail the Int32 cast)
_SECONDS = pl.when(pl.col("duration_seconds").is_finite()).then(pl.col("duration_seconds")).otherwise(0.0)


@cache
def _credits(rates: RateCard) -> pl.Expr:
    return (
        pl.when(~_STATUS.is_in(("ended", "error"))).then(pl.when(_FINAL).then(pl.lit(0, pl.Int32)))
        # a standard voicemail bills flat; a personalised greeting talked into bills as answered (`call_credits`)
        .when((pl.col("disconnect_reason") == "voicemail_reached").fill_null(False)
              | (pl.col("in_voicemail").fill_null(False) & (_SECONDS <= 0)))
        .then(pl.lit(rates.per_voicemail, pl.Int32))
        .when(_SECONDS > 0)
        .then((_SECONDS / 60).ceil().cast(pl.Int32) * rates.per_answered_minute)
        .otherwise(pl.lit(0, pl.Int32))
        .alias("credits")
    )


@cache
def _refund(not_attempts: bool) -> pl.Expr:
    return (_FINAL & pl.col("counts_as_attempt") & (
        pl.lit(not_attempts) | (_STATUS == "failed_rate_limit")
        | pl.col("disconnect_reason").is_in([r.value for r in NOT_AN_ATTEMPT_REASONS])
    )).fill_null(False).alias("refund")


def utc_literal(moment: datetime) -> pl.Expr:
    """`moment` as a Polars UTC datetime literal: a datetime literal costs Polars half a millisecond,
    microseconds since the epoch cast to one do not."""
    return pl.lit((moment - _EPOCH) // timedelta(microseconds=1)).cast(pl.Datetime("us", "UTC"))


def merge_records(
    records: pl.DataFrame, stored: pl.DataFrame, now: datetime, rates: RateCard, *, not_attempts: bool = False
) -> pl.DataFrame:
    """Each record merged with its stored call (records of unknown calls drop out): new status, credits, times.

    `refund`: the call's first final record says it was no attempt (refusal, outage, `not_attempts`);
    `done`: the call became final, and analysed unless it ended unanswered, with this record;
    `became_successful`: its first success verdict. Stored values the merge replaced come suffixed `_stored`.
    """
    now_utc = utc_literal(now)
    return records.join(stored, on="call_id", how="inner", suffix="_stored").with_columns(*_MERGED).with_columns(
        *_MEANING, _credits(rates), _refund(not_attempts),
        # placed = the provider took it (it has the provider's id): a refusal or a call closed as never placed
        # moves past `registered` without ever ringing, and keeps no placing time
        pl.when(pl.col("registered_at").is_null() & (_rank(_STATUS) >= 2) & pl.col("provider_call_id").is_not_null())
        .then(now_utc).otherwise(pl.col("registered_at")).alias("registered_at"),
        pl.when(_NEWLY_ANALYZED).then(now_utc).otherwise(pl.col("analyzed_at")).alias("analyzed_at"),
    )


_KEYS = ("campaign_id", "contact_id")
_DONE, _REFUND = pl.col("done"), pl.col("refund")
_SUCCESSFUL = pl.col("call_successful").fill_null(False)
# Per settling call, what it brings to its enrollment; the release columns count only for a done call.
_ENROLLMENT_CHANGE = (
    *_KEYS, "became_successful",
    _REFUND.cast(pl.Int32).alias("refunds"),
    _REFUND.cast(pl.Int32).alias("refunds_on_day"),
    pl.when(_DONE).then(pl.col("call_id")).alias("release_call_id"),
    pl.when(_DONE).then(_SUCCESSFUL).alias("release_successful"),
    pl.when(_DONE).then(pl.col("disconnect_reason").is_in([r.value for r in NOT_RETRYABLE_REASONS]).fill_null(False))
    .alias("release_not_retryable"),
    *(pl.when(_DONE).then(pl.col(c)).alias(c) for c in ("retry_at", "retry_avoid_number", "never")),
)
_RELEASE_COLUMNS = ("release_call_id", "release_successful", "release_not_retryable", "retry_at",
                    "retry_avoid_number", "never")


def campaign_retry(time_zone: str, schedule: Sequence, retry_policy: str | None, numbers: int) -> CampaignRetry:
    """What a campaign's retry decisions go by, from a `CAMPAIGNS_SQL` row's columns."""
    return CampaignRetry(Schedule.from_row(time_zone, *schedule), effective_policy(retry_policy), numbers)


def enrollment_changes(conn: duckdb.DuckDBPyConnection, settling: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Per contact of the settling calls of a merged batch, what `_ENROLLMENT_WRITE_SQL` settles it by.

    Settling calls are done, refunded or newly successful. The release columns are those of the
    contact's newest done call, the only one that can be in flight (a contact's next call is placed
    only once its last one was released), with its campaign's retry policy; of several refunds, only
    those on the latest day can be on the enrollment's current day.
    """
    campaign_ids = settling.filter(_DONE | _REFUND)["campaign_id"].unique().to_list()
    rows = conn.execute(CAMPAIGNS_SQL, {"ids": campaign_ids}).fetchall() if campaign_ids else []
    max_attempts, local_day, campaigns = pl.lit(None, pl.Int32), pl.lit(None, pl.Date), {}
    for campaign_id, time_zone, campaign_max, *schedule, retry_policy, numbers in rows:
        in_campaign = pl.col("campaign_id") == campaign_id
        max_attempts = pl.when(in_campaign).then(campaign_max).otherwise(max_attempts)
        # a refusal gives back the attempt of its campaign-local day
        local_day = pl.when(in_campaign).then(pl.col("queued_at").dt.convert_time_zone(time_zone).dt.date()) \
            .otherwise(local_day)
        campaigns[campaign_id] = campaign_retry(time_zone, schedule, retry_policy, numbers)
    # "next day, other band" is measured from when the phone rang (`merge_records` gives every call its registered_at
    # once placed), not from the batch's claim: a 500-call batch places its last call 25 minutes after its claim
    released = settling.filter(_DONE & ~_REFUND & ~_SUCCESSFUL).with_columns(
        pl.coalesce("registered_at", "queued_at").alias("queued_at"))
    changes = settling.join(retry_decisions(campaigns, released, now), on="call_id", how="left").select(
        *_ENROLLMENT_CHANGE, max_attempts.alias("max_attempts"),
        pl.when(_REFUND).then(local_day).alias("refund_day"),
    )
    if not changes.select(pl.struct(_KEYS).is_duplicated().any()).item():
        return changes  # the usual batch: one call per contact
    refund_days = pl.col("refund_day").drop_nulls()
    return changes.sort("release_call_id", nulls_last=False).group_by(_KEYS).agg(
        pl.col("max_attempts").first(), pl.col("became_successful").any(), pl.col("refunds").sum(),
        refund_days.max(), (refund_days == refund_days.max()).sum().cast(pl.Int32).alias("refunds_on_day"),
        *(pl.col(c).last() for c in _RELEASE_COLUMNS),
    )


# For `restore_retries`: each re-enrolled contact's newest attempt that released it (done, not successful), with what
# the retry policy reads of it, as `enrollment_changes` passes a released call.
_LAST_RELEASE_SQL = """
select call_id, campaign_id, contact_id, disconnect_reason, duration_seconds, ended_at,
       coalesce(registered_at, queued_at) as queued_at, from_number, in_voicemail
from calls k
where k.campaign_id = $campaign_id and list_contains($contacts, k.contact_id) and k.counts_as_attempt
  and k.status in ('ended', 'not_connected', 'error') and (k.status <> 'ended' or k.analyzed_at is not null)
  and not coalesce(k.call_successful, false)
qualify row_number() over (partition by k.contact_id order by k.call_id desc) = 1
"""


def restore_retries(conn: duckdb.DuckDBPyConnection, campaign_id: int, now: datetime) -> int:
    """Give the contacts enrolled again at `now` (after a removal) what their last released call set on release:
    the retry wait (`next_call_at`), the number to avoid, and the finish of a `never` rule; returns how many.

    `tasks.contacts_import.enroll_contacts` restores the counters from the calls; a wait it did not restore: a contact
    declined today was called again at once, and one whose spam mark's rule is `never` was called again at all.
    The decision is `retry_decisions` on the same call, so it is the one its release made (it reads the call's times,
    not `now`).
    """
    contacts = [r[0] for r in conn.execute(
        "select contact_id from campaign_contacts where campaign_id = ? and added_at = ? and call_seq > 0"
        " and finished_at is null and in_flight_call_id is null", [campaign_id, now]).fetchall()]
    if not contacts:
        return 0
    released = conn.execute(_LAST_RELEASE_SQL, {"campaign_id": campaign_id, "contacts": contacts}).pl()
    if released.is_empty():
        return 0
    [(_, time_zone, _max, *schedule, retry_policy, numbers)] = conn.execute(
        CAMPAIGNS_SQL, {"ids": [campaign_id]}).fetchall()
    campaigns = {campaign_id: campaign_retry(time_zone, schedule, retry_policy, numbers)}
    decided = released.select("call_id", "contact_id", "ended_at", "queued_at").join(
        retry_decisions(campaigns, released, now), on="call_id")
    conn.register("restored_retries", decided)
    try:
        conn.execute(
            """
            update campaign_contacts cc set
                next_call_at = r.retry_at,
                avoid_number = r.retry_avoid_number,
                finished_reason = case when r.never then 'not_retryable' end,
                finished_at = case when r.never then coalesce(r.ended_at, r.queued_at) end
            from restored_retries r
            where cc.campaign_id = $campaign_id and cc.contact_id = r.contact_id
            """, {"campaign_id": campaign_id})
    finally:
        conn.unregister("restored_retries")
    return decided.height


def apply_provider_calls(
    conn: duckdb.DuckDBPyConnection,
    updates: Sequence[tuple[int, ProviderCall]] | pl.DataFrame,
    now: datetime,
    rates: RateCard | None = None,
    *,
    not_attempts: bool = False,
    skip_missing: bool = False,
) -> int:
    """Merge provider records into their call rows; release or finish enrollments that are done.

    Idempotent and order-free: statuses only move forward, missing fields never erase stored ones,
    and enrollment counters change only on a call's first final update. Returns rows changed.
    Call it inside a transaction. `not_attempts` marks every record as a call that never reached
    the person for reasons that must not use up their attempts (placing was interrupted). A record of a
    call that does not exist raises NotFoundError, unless `skip_missing` (an enrichment pass: the call was
    deleted with its campaign after the pass read it) leaves it out.
    """
    frame = updates if isinstance(updates, pl.DataFrame) else updates_frame(updates)
    if frame.height == 0:
        return 0
    frame = frame.select(list(_UPDATE_SCHEMA))
    ids = frame["call_id"]
    if ids.n_unique() < ids.len():
        frame = frame.unique("call_id", keep="last", maintain_order=True)
        ids = frame["call_id"]
    low, high = ids.min(), ids.max()
    listed = ids.to_list() if high - low + 1 > 2 * ids.len() else None
    stored = conn.execute(STORED_SQL, {"low": low, "high": high, "ids": listed}).pl()
    calls = merge_records(frame, stored, now, rates or RateCard.from_settings(), not_attempts=not_attempts)
    if calls.height < frame.height and not skip_missing:
        missing = ids.filter(~ids.is_in(calls["call_id"]))[0]
        raise NotFoundError(f"call {missing} does not exist")
    writes = calls.select("call_id", "status", *_CALL_SETS, "registered_at", "analyzed_at", "refund")
    carried = [c for c, nulls in zip(_CALL_SETS, writes.select(pl.col(*_CALL_SETS).null_count()).row(0))
               if nulls < writes.height]
    conn.register("call_writes", writes)
    try:
        # the watermark floor costs the update a join (~2 ms); it only matters for a campaign whose
        # watermark is ahead of this write's `now` (a pass that asked the provider before an aggregation)
        ahead = conn.execute(
            "select count(*) from metrics_state where list_contains($ids, campaign_id) and calls_watermark > $now",
            {"ids": calls["campaign_id"].unique().to_list(), "now": now}).fetchone()[0]
        changed = conn.execute(_call_write_sql(carried, floored=ahead > 0), {"now": now}).fetchone()[0]
    finally:
        conn.unregister("call_writes")
    settling = calls.filter(_DONE | _REFUND | pl.col("became_successful"))
    if settling.height:
        changes = enrollment_changes(conn, settling, now)
        sql = _ENROLLMENT_WRITE_SQL.format(refund_sets=_REFUND_SETS if changes["refunds"].sum() else "",
                                           retry_sets=_RETRY_SETS if changes["never"].is_not_null().any() else "")
        conn.register("enrollment_changes", changes)
        try:
            conn.execute(sql, {"now": now})
        finally:
            conn.unregister("enrollment_changes")
    refunded = settling.filter(_REFUND)["call_id"]
    if refunded.len():
        # a refused call leaves the rolling caps too (attempt rows follow call ids: the range skips the rest)
        conn.execute(
            "delete from phone_attempts where call_id between ? and ? and list_contains(?, call_id)",
            [refunded.min(), refunded.max(), refunded.to_list()],
        )
    # the person asked not to be called: on the global list in this same transaction
    asked = _may_ask_not_to_call(frame)
    if asked:
        dnc_from_analysis(conn, asked, now, get_settings().do_not_call_key)
    return changed


def _may_ask_not_to_call(frame: pl.DataFrame) -> list[int]:
    """The calls whose analysis may say the person asked not to be called: a superset, `dnc_from_analysis` decides.

    The key set to true, "true", 1 or "yes" in any case: nearly every analysis names the key (false), so
    the do-not-call statement runs only for the batches where someone may really have asked.
    """
    key = get_settings().do_not_call_key
    # the key as JSON text spells it: quotes escaped, non-ASCII letters escaped or not (either writer)
    spellings = "|".join(pl.escape_regex(json.dumps(key, ensure_ascii=a)) for a in (True, False))
    said = rf'(?:{spellings})\s*:\s*"?(?i:true|1|yes)'
    return frame.filter(pl.col("custom_analysis").str.contains(said))["call_id"].to_list()


def apply_provider_call(
    conn: duckdb.DuckDBPyConnection, call_id: int, update: ProviderCall, now: datetime, rates: RateCard | None = None
) -> bool:
    """One provider record (a webhook event, a poll answer): see `apply_provider_calls`."""
    return apply_provider_calls(conn, [(call_id, update)], now, rates) > 0


def predates(started_at: datetime | None, queued_at: datetime | None) -> bool:
    """Whether a provider call that started at ``started_at`` began before our attempt row was queued at
    ``queued_at``, so it is not that row's call.

    An attempt key is unique within one store only. After a backup is restored, the next attempts reuse the keys of
    calls placed after the backup, and those calls are still at the provider (and in the simulator's file beside the
    store). The same is true of a staging store on the same account. Such a call started before our row was queued.
    """
    return started_at is not None and queued_at is not None and started_at < queued_at - CLOCK_SKEW_ALLOWANCE


def find_call_id(
    conn: duckdb.DuckDBPyConnection, *, provider_call_id: str | None = None, attempt_key: str | None = None,
    started_at: datetime | None = None,
) -> int | None:
    """Our call id for an attempt key or a provider call id (webhooks carry both, and the call's start).

    An attempt key is unique within one store only (a restored backup, or a staging store on the same provider
    account, reuses it). So a call with our key is not ours when our row holds another provider call id, or when our
    row has none yet and the call started before our row was queued (`predates`).
    """
    if attempt_key:
        row = conn.execute(
            "select call_id, provider_call_id, queued_at from calls where attempt_key = ?", [attempt_key]
        ).fetchone()
        if row and (not provider_call_id or row[1] == provider_call_id
                    or (row[1] is None and not predates(started_at, row[2]))):
            return row[0]
    if provider_call_id:
        row = conn.execute("select call_id from calls where provider_call_id = ?", [provider_call_id]).fetchone()
        if row:
            return row[0]
    return None
