"""The retry policy: when (and from which number) a contact may be called again, by the last call's outcome.

A policy maps an outcome key — a disconnect reason, or `short_user_hangup` (a `user_hangup` shorter
than `SHORT_HANGUP_SECONDS`) — to a rule written as text, so it reads the same in YAML, the
dashboard and the `campaigns.retry_policy` column:

- `now` — no wait (attempt limits still hold);
- `30m`, `2h`, `1d` — wait that long after the call ended;
- `next_day` — from the next campaign-local day (local midnight);
- `next_day_other_band` — the next calling day, at a local time at least one 3-hour band away from
  this call's, inside the calling window (so a voicemail at 10:00 is retried at 13:00 or 07:00...);
- `other_number` — no wait, but from a different outbound number (next day when there is only one);
- `never` — the contact is finished (`not_retryable`).

Rate/concurrency refusals and provider outages are not attempts and are re-queued at once: they
have no rule. Outcomes without a rule keep the engine's plain behaviour (no wait).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any

import duckdb
import polars as pl

from schemas.enums import NOT_AN_ATTEMPT_REASONS, NOT_RETRYABLE_REASONS, DisconnectReason
from tasks.schedule import Schedule

SHORT_HANGUP_SECONDS = 10.0
SHORT_HANGUP_KEY = "short_user_hangup"
HOUR_BAND = timedelta(hours=3)
WORDS = ("now", "next_day", "next_day_other_band", "other_number", "never")
_WAIT = re.compile(r"^(\d+)\s*(m|h|d)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}

DEFAULT_POLICY: dict[str, str] = {
    DisconnectReason.dial_busy.value: "30m",
    DisconnectReason.dial_no_answer.value: "2h",
    DisconnectReason.voicemail_reached.value: "next_day_other_band",
    DisconnectReason.user_declined.value: "next_day",
    SHORT_HANGUP_KEY: "next_day",
    DisconnectReason.invalid_destination.value: "never",
    DisconnectReason.marked_as_spam.value: "other_number",
}
# Every outcome a policy may name: the attempts' reasons (refusals are re-queued, never retried by rule).
POLICY_KEYS = tuple(r.value for r in DisconnectReason if r not in NOT_AN_ATTEMPT_REASONS) + (SHORT_HANGUP_KEY,)


@dataclass(frozen=True)
class RetryRule:
    """One parsed rule: its kind (`wait` or one of WORDS) and, for `wait`, how long."""

    kind: str
    wait: timedelta | None = None

    @property
    def text(self) -> str:
        return self.kind if self.wait is None else _wait_text(self.wait)


def _wait_text(wait: timedelta) -> str:
    minutes = int(wait.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def parse_rule(text: Any) -> RetryRule:
    """A rule from its text (`30m`, `2h`, `next_day`, ...); ValueError naming what is allowed."""
    if not isinstance(text, str):
        raise ValueError(f"expected a rule as text such as \"30m\" or \"next_day\", got {text!r}")
    value = text.strip().lower()
    if value in WORDS:
        return RetryRule(value)
    match = _WAIT.match(value)
    if match and int(match.group(1)) > 0:
        return RetryRule("wait", timedelta(**{_UNITS[match.group(2)]: int(match.group(1))}))
    raise ValueError(f"\"{text}\" is not a rule (use a wait such as 30m, 2h, 1d, or one of {', '.join(WORDS)})")


def check_overrides(overrides: Any) -> dict[str, str] | None:
    """A campaign's overrides validated and normalised (`{key: rule text}`), or ValueError naming the key."""
    if overrides is None:
        return None
    if not isinstance(overrides, dict):
        raise ValueError(f"expected a mapping of outcome to rule, got {overrides!r}")
    checked = {}
    for key, text in overrides.items():
        if key not in POLICY_KEYS:
            if key in {r.value for r in NOT_AN_ATTEMPT_REASONS}:
                raise ValueError(f"{key}: refusals are re-queued at once and take no rule")
            raise ValueError(f"unknown outcome \"{key}\" (use a disconnect reason or {SHORT_HANGUP_KEY})")
        try:
            rule = parse_rule(text)
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
        if key in NOT_RETRYABLE_REASONS and rule.kind != "never":
            raise ValueError(f"{key}: the number does not exist; the only rule is never")
        checked[key] = rule.text
    return checked or None


def effective_policy(overrides: dict[str, str] | str | None) -> dict[str, RetryRule]:
    """The defaults with a campaign's overrides applied, parsed."""
    if isinstance(overrides, str):
        overrides = json.loads(overrides)
    merged = {**DEFAULT_POLICY, **(overrides or {})}
    return {key: parse_rule(text) for key, text in merged.items()}


def rule_for(policy: dict[str, RetryRule], reason: str | None, duration_seconds: float | None) -> RetryRule | None:
    """The rule that applies to a finished call, or None (no wait)."""
    if reason is None:
        return None
    if reason == DisconnectReason.user_hangup and (duration_seconds or 0.0) < SHORT_HANGUP_SECONDS:
        return policy.get(SHORT_HANGUP_KEY) or policy.get(reason)
    return policy.get(reason)


def _next_local_midnight(schedule: Schedule, moment: datetime) -> datetime:
    local = schedule.local(moment)
    return datetime.combine(local.date() + timedelta(days=1), time(), local.tzinfo).astimezone(moment.tzinfo)


def other_band_time(schedule: Schedule, called_at: datetime, ended_at: datetime) -> datetime:
    """The first later calling day's instant at least one band from the call's local time, inside a window."""
    local = schedule.local(called_at)
    shifts = [sign * step * HOUR_BAND for step in (1, 2, 3) for sign in (1, -1)]
    for days in range(1, 8):
        day = local.date() + timedelta(days=days)
        base = datetime.combine(day, local.time().replace(tzinfo=None), local.tzinfo)
        for shift in shifts:
            candidate = base + shift
            # the shift must not slide back onto the call's own local day
            if candidate.date() == day and schedule.is_open(candidate.astimezone(called_at.tzinfo)):
                return candidate.astimezone(called_at.tzinfo)
    return _next_local_midnight(schedule, ended_at)


def next_call_at(
    rule: RetryRule | None, schedule: Schedule, called_at: datetime, ended_at: datetime, numbers: int
) -> datetime | None:
    """When the next attempt may be placed under `rule` (None = no wait)."""
    if rule is None or rule.kind in ("now", "never"):
        return None
    if rule.kind == "wait":
        return ended_at + rule.wait
    if rule.kind == "other_number":
        return None if numbers > 1 else _next_local_midnight(schedule, ended_at)
    if rule.kind == "next_day":
        return _next_local_midnight(schedule, ended_at)
    return other_band_time(schedule, called_at, ended_at)


@dataclass(frozen=True)
class CampaignRetry:
    """What a campaign's retry decisions go by: its calling schedule, its policy, its outbound numbers."""

    schedule: Schedule
    policy: dict[str, RetryRule]
    numbers: int


RETRY_SCHEMA = {
    "call_id": pl.Int64, "retry_at": pl.Datetime("us", "UTC"), "retry_avoid_number": pl.String, "never": pl.Boolean,
}


def retry_decisions(campaigns: dict[int, CampaignRetry], released: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Per call that releases its contact: when the contact may be called again, the number to avoid, `never`.

    `released` holds the calls (call_id, campaign_id, disconnect_reason, duration_seconds, ended_at,
    queued_at, from_number); tasks.call_state writes the result with the release, in the same
    statement. Times go through the loop as microseconds since the epoch: a batch's Python
    datetimes would cost more than its rules.
    """
    retry_at, avoid, never = [], [], []
    for campaign_id, reason, duration, ended_us, queued_us, from_number in zip(
        released["campaign_id"].to_list(), released["disconnect_reason"].to_list(),
        released["duration_seconds"].to_list(),
        released["ended_at"].dt.epoch("us").fill_null(_micros(now)).to_list(),
        released["queued_at"].dt.epoch("us").to_list(), released["from_number"].to_list(),
    ):
        campaign = campaigns[campaign_id]
        rule = rule_for(campaign.policy, reason, duration)
        kind = None if rule is None else rule.kind
        if kind == "wait":
            retry_at.append(ended_us + _micros_in(rule.wait))
        elif kind in ("next_day", "next_day_other_band") or (kind == "other_number" and campaign.numbers <= 1):
            retry_at.append(_micros(next_call_at(rule, campaign.schedule, _instant(queued_us), _instant(ended_us),
                                                 campaign.numbers)))
        else:
            retry_at.append(None)
        avoid.append(from_number if kind == "other_number" and campaign.numbers > 1 else None)
        never.append(kind == "never")
    return pl.DataFrame(
        {"call_id": released["call_id"], "retry_at": pl.Series(retry_at, dtype=pl.Int64),
         "retry_avoid_number": avoid, "never": never},
        schema_overrides={"retry_avoid_number": pl.String},
    ).cast(RETRY_SCHEMA)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _micros_in(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return _micros_in(moment - _EPOCH)


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


NEXT_ALLOWED_SQL = """
with enrolled as (
    select contact_id, next_call_at, avoid_number, finished_at, finished_reason, in_flight_call_id
    from campaign_contacts
    where campaign_id = $campaign_id and ($contact_ids is null or list_contains($contact_ids, contact_id))
),
final as (
    select contact_id,
           case when finished_at is not null then null
                when next_call_at > $now then next_call_at
                else $now::timestamptz end as next_allowed_at,
           finished_at is null and next_call_at > $now as waiting_for_retry,
           avoid_number, finished_reason, in_flight_call_id is not null as in_flight
    from enrolled
)
select * from final order by contact_id
"""


def next_allowed(
    conn: duckdb.DuckDBPyConnection, campaign_id: int, now: datetime, contact_ids: list[int] | None = None
) -> pl.DataFrame:
    """Per enrolled contact, the next time the retry policy allows a call (None once finished), for the Contact List.

    Schedule, attempt limits and compliance still apply at that time.
    """
    return conn.execute(NEXT_ALLOWED_SQL, {"campaign_id": campaign_id, "now": now, "contact_ids": contact_ids}).pl()
