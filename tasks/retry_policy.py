"""The retry policy: when (and from which number) a contact may be called again, by the last call's outcome.

A policy maps an outcome key — a disconnect reason, or `short_user_hangup` (a `user_hangup` shorter
than `SHORT_HANGUP_SECONDS`) — to a rule written as text, so it reads the same in YAML, the
dashboard and the `campaigns.retry_policy` column. A call the analysis says reached a voicemail box
(`in_voicemail`) but that ended with a hang-up reason (the agent left a message and hung up:
`agent_hangup`; the box cut it off: `user_hangup`, `inactivity`, `max_duration_reached`) follows the
`voicemail_reached` rule: the person was not reached, so it must not be retried at once.

- `now` — no wait (attempt limits still hold);
- `30m`, `2h`, `1d` — wait that long after the call ended (a campaign may set at most `3650d`);
- `next_day` — from the next campaign-local day (local midnight);
- `next_day_other_band` — the next calling day, at the open local time nearest this call's (when it was placed,
  not when its batch was claimed) that is at least one 3-hour band away from it (so a voicemail at 10:00 is
  retried at 13:00, or 07:00 when 13:00 is closed; under 08:00-10:00 and 16:00-18:00 a call at 09:00 comes back
  at 16:00: `band_choice`);
- `other_number` — no wait, but from a different outbound number (next day when there is only one);
- `never` — the contact is finished (`not_retryable`).

Rate/concurrency refusals and provider outages are not attempts and are re-queued at once: they
have no rule. Outcomes without a rule keep the engine's plain behaviour (no wait).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from schemas.enums import NOT_AN_ATTEMPT_REASONS, NOT_RETRYABLE_REASONS, WEEKDAYS, DisconnectReason
from tasks.schedule import Schedule, zone

SHORT_HANGUP_SECONDS = 10.0
SHORT_HANGUP_KEY = "short_user_hangup"
# Reasons a call that reached a voicemail box may end with (Retell: `agent_hangup` after leaving a message):
# such a call follows the rule of this key.
VOICEMAIL_KEY = DisconnectReason.voicemail_reached.value
VOICEMAIL_HANGUP_REASONS = frozenset({"agent_hangup", "user_hangup", "inactivity", "max_duration_reached"})
HOUR_BAND = timedelta(hours=3)
WORDS = ("now", "next_day", "next_day_other_band", "other_number", "never")
_WAIT = re.compile(r"^(\d+)\s*(m|h|d)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# The longest wait a campaign may set: ten years outlasts any campaign, so a longer one is a typo; one of
# thousands of years would make a retry time no date can hold.
MAX_WAIT = timedelta(days=3650)

DEFAULT_POLICY: dict[str, str] = {
    DisconnectReason.dial_busy.value: "30m",
    DisconnectReason.dial_no_answer.value: "2h",
    VOICEMAIL_KEY: "next_day_other_band",
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
        try:
            return RetryRule("wait", timedelta(**{_UNITS[match.group(2)]: int(match.group(1))}))
        except OverflowError:  # more days than a timedelta holds
            raise ValueError(f"\"{text}\" is too long a wait (at most {_wait_text(MAX_WAIT)})") from None
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
        if rule.wait is not None and rule.wait > MAX_WAIT:
            raise ValueError(f"{key}: \"{text}\" is too long a wait (at most {_wait_text(MAX_WAIT)})")
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


def rule_for(policy: dict[str, RetryRule], reason: str | None, duration_seconds: float | None,
             in_voicemail: bool | None = None) -> RetryRule | None:
    """The rule that applies to a finished call, or None (no wait)."""
    if reason is None:
        return None
    if in_voicemail and reason in VOICEMAIL_HANGUP_REASONS:
        return policy.get(VOICEMAIL_KEY)
    if reason == DisconnectReason.user_hangup and (duration_seconds or 0.0) < SHORT_HANGUP_SECONDS:
        return policy.get(SHORT_HANGUP_KEY) or policy.get(reason)
    return policy.get(reason)


def next_local_midnight(schedule: Schedule, moment: datetime) -> datetime:
    """When the campaign-local day after `moment`'s begins (in `moment`'s zone)."""
    return _midnight_after(schedule.time_zone, schedule.local(moment).date()).astimezone(moment.tzinfo)


def _midnight_after(time_zone: str, local_day: date) -> datetime:
    """The instant (UTC) the local day after `local_day` begins."""
    return datetime.combine(local_day + timedelta(days=1), time(), zone(time_zone)).astimezone(timezone.utc)


_BAND_US = HOUR_BAND // timedelta(microseconds=1)


def band_choice(windows: Sequence[tuple[int, int]], called: int) -> int | None:
    """Of a day's calling windows ([start, end) microseconds of the local day), when a call made at local
    time `called` (microseconds of its day) is retried that day in another band; None if no window allows it.

    The open time nearest the call's that is at least one band (3 h) away on the clock, the later one on
    a tie: one band later or earlier when that is open, else the closest window beyond a band. A window
    wholly before that counts by its last instant and is returned by its opening (the whole window to
    call in): a call at 09:00 under 08:00-10:00 and 16:00-18:00 is retried at 16:00, not in its own band.
    """
    later = [max(called + _BAND_US, start) for start, end in windows if max(called + _BAND_US, start) < end]
    earlier = [(min(called - _BAND_US, end - 1), start if end <= called - _BAND_US else called - _BAND_US)
               for start, end in windows if start <= called - _BAND_US]
    best_later = min(later, default=None)
    nearest, earlier_pick = max(earlier, default=(None, None))
    if best_later is None:
        return earlier_pick
    if nearest is None or best_later - called <= called - nearest:
        return best_later
    return earlier_pick


def other_band_time(schedule: Schedule, called_at: datetime, ended_at: datetime) -> datetime:
    """The first later calling day's instant in another band than the call's local time (`band_choice`)."""
    local = schedule.local(called_at)
    called = _window_micros(local.time().replace(tzinfo=None))
    epoch_day = (local.date() - _EPOCH_DAY).days
    for days in range(1, 8):
        picked = band_choice(_calling_windows(schedule, epoch_day + days), called)
        if picked is None:
            continue
        wall = datetime.combine(local.date() + timedelta(days=days), time(), local.tzinfo) \
            + timedelta(microseconds=picked)
        candidate = wall.astimezone(called_at.tzinfo)
        # a wall time a DST jump skips reads later once real: it must still be open
        if schedule.is_open(candidate):
            return candidate
    return next_local_midnight(schedule, ended_at)


def next_call_at(
    rule: RetryRule | None, schedule: Schedule, called_at: datetime, ended_at: datetime, numbers: int
) -> datetime | None:
    """When the next attempt may be placed under `rule` (None = no wait)."""
    if rule is None or rule.kind in ("now", "never"):
        return None
    if rule.kind == "wait":
        return ended_at + rule.wait
    if rule.kind == "other_number":
        return None if numbers > 1 else next_local_midnight(schedule, ended_at)
    if rule.kind == "next_day":
        return next_local_midnight(schedule, ended_at)
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
    queued_at: the time the call was placed when known, as tasks.call_state passes it, from_number, optionally
    in_voicemail); tasks.call_state writes the result with the release, in the same
    statement. Exactly `rule_for` and `next_call_at` per call, computed on numpy columns of epoch
    microseconds: time zones are looked up once per campaign-local day, not per call (a batch's
    Python datetimes cost more than its rules).
    """
    if released.is_empty():
        return pl.DataFrame(schema=RETRY_SCHEMA)
    campaign_ids = released["campaign_id"].to_numpy()
    reasons = released["disconnect_reason"].to_list()
    distinct = list(set(reasons))
    reason_code = np.fromiter(map({reason: code for code, reason in enumerate(distinct)}.__getitem__, reasons),
                              dtype=np.int64, count=len(reasons))
    durations = released["duration_seconds"]
    short = (durations.fill_null(0.0) if durations.null_count() else durations).to_numpy() < SHORT_HANGUP_SECONDS
    short &= reason_code == (distinct.index(_USER_HANGUP) if _USER_HANGUP in distinct else -1)
    # a hang-up in a voicemail box follows the voicemail rule (`rule_for`)
    voicemail = np.zeros(len(reasons), dtype=bool)
    if "in_voicemail" in released.columns and not VOICEMAIL_HANGUP_REASONS.isdisjoint(distinct):
        flagged = released["in_voicemail"].fill_null(False).to_numpy()
        voicemail = flagged & np.isin(reason_code, [code for code, reason in enumerate(distinct)
                                                    if reason in VOICEMAIL_HANGUP_REASONS])
    ended = _epoch_micros(released["ended_at"])
    ended = np.where(ended == _NONE, _micros(now), ended)  # a call not ended yet counts as ended now
    queued = _epoch_micros(released["queued_at"])
    retry_at = np.full(len(reasons), _NONE, dtype=np.int64)
    avoid, never = np.zeros(len(reasons), dtype=bool), np.zeros(len(reasons), dtype=bool)
    for campaign_id in np.unique(campaign_ids).tolist():
        campaign = campaigns[campaign_id]
        rows = np.flatnonzero(campaign_ids == campaign_id)
        # each reason of the batch decided once by rule_for, as a user hang-up also when short: (kind, wait)
        rules = np.array([[_kind_and_wait(rule_for(campaign.policy, reason, seconds)) for seconds in (
            SHORT_HANGUP_SECONDS, 0.0)] for reason in distinct], dtype=np.int64)
        kind, wait = rules[reason_code[rows], short[rows].astype(np.int64)].T
        if voicemail[rows].any():
            vm_kind, vm_wait = _kind_and_wait(campaign.policy.get(VOICEMAIL_KEY))
            kind, wait = np.where(voicemail[rows], vm_kind, kind), np.where(voicemail[rows], vm_wait, wait)
        retry_at[rows] = np.where(kind == _KIND["wait"], ended[rows] + wait, _NONE)
        band = rows[kind == _KIND["next_day_other_band"]]
        retry_at[band] = _other_band_micros(campaign.schedule, queued[band], ended[band])
        other_number = kind == _KIND["other_number"]
        midnight = rows[(kind == _KIND["next_day"]) | (other_number & (campaign.numbers <= 1))]
        retry_at[midnight] = _next_midnight_micros(campaign.schedule, ended[midnight])
        avoid[rows] = other_number & (campaign.numbers > 1)
        never[rows] = kind == _KIND["never"]
    # built in Arrow: a Polars operation per column costs more than this whole function's arithmetic
    return pl.DataFrame([
        released["call_id"],
        pl.Series("retry_at", pa.array(retry_at, mask=retry_at == _NONE).view(pa.timestamp("us", tz="UTC"))),
        pl.Series("retry_avoid_number", pa.array(released["from_number"].to_list(), mask=~avoid, type=pa.string())),
        pl.Series("never", never),
    ])


_USER_HANGUP = DisconnectReason.user_hangup.value  # a plain string compares faster than the enum member
# rule kinds as numbers for numpy columns (-1: no rule)
_KIND = {kind: code for code, kind in enumerate(("wait", *WORDS))}


def _kind_and_wait(rule: RetryRule | None) -> tuple[int, int]:
    """A rule as (kind code, wait in microseconds)."""
    if rule is None:
        return -1, 0
    return _KIND[rule.kind], 0 if rule.wait is None else _micros_in(rule.wait)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NONE = np.iinfo(np.int64).min  # no retry time (no wait)
_DAY_US = 86_400_000_000


def _micros_in(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return _micros_in(moment - _EPOCH)


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _epoch_micros(moments: pl.Series) -> np.ndarray:
    """A datetime column as epoch microseconds; null is NaT, the smallest int64 (`_NONE`)."""
    if moments.dtype.time_unit != "us":  # type: ignore[attr-defined]
        moments = moments.dt.cast_time_unit("us")
    return moments.to_numpy().view(np.int64)


def _offset_micros(tz: ZoneInfo, micros: int) -> int:
    return _micros_in(_instant(micros).astimezone(tz).utcoffset())


def _local_micros(tz: ZoneInfo, instants: np.ndarray) -> np.ndarray:
    """Instants (epoch microseconds) as local wall-clock microseconds since 1970-01-01 00:00 local."""
    if not len(instants):
        return instants
    first, last = int(instants.min()), int(instants.max())
    offset = _offset_micros(tz, first)
    # No zone changes its offset twice within a day: instants less than a day apart with the same offset at
    # both ends all have it. Otherwise (a DST change among them) instant by instant.
    if last - first <= _DAY_US and _offset_micros(tz, last) == offset:
        return instants + offset
    return instants + np.array([_offset_micros(tz, us) for us in instants.tolist()], dtype=np.int64)


def _next_midnight_micros(schedule: Schedule, ended: np.ndarray) -> np.ndarray:
    """`next_local_midnight` of each instant, computed once per campaign-local day."""
    if not len(ended):
        return ended
    result = np.empty(len(ended), dtype=np.int64)
    for day, rows in _by_day(_local_micros(zone(schedule.time_zone), ended) // _DAY_US):
        result[rows] = _micros(_midnight_after(schedule.time_zone, _day(day)))
    return result


def _by_day(days: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The distinct days with the rows on each; the usual batch has one."""
    if days.min() == days.max():
        return [(int(days[0]), np.arange(len(days)))]
    return [(day, np.flatnonzero(days == day)) for day in np.unique(days).tolist()]


def _day(days: int) -> date:
    """The calendar day `days` days after 1970-01-01."""
    return _EPOCH_DAY + timedelta(days=days)


_EPOCH_DAY = _EPOCH.date()


@lru_cache(maxsize=4096)
def _week_offset(time_zone: str, day: int, day_offset: int) -> int | None:
    """The UTC offset of the seven local days after local day `day` (epoch days), None when a DST change falls in them.

    `day_offset` is the offset on `day` itself, a first guess at the next midnight's. No zone changes its offset
    twice within a day: eight local midnights with one offset have it all week.
    """
    tz = zone(time_zone)
    offset = _offset_micros(tz, (day + 1) * _DAY_US - day_offset)
    if any(_offset_micros(tz, (day + k) * _DAY_US - offset) != offset for k in range(2, 9)):
        return None
    return offset


def _calling_windows(schedule: Schedule, day: int) -> list[tuple[int, int]]:
    """The local day's calling windows as [start, end) microseconds of the day; none if it is no calling day."""
    calendar_day = _day(day)
    weekday = WEEKDAYS[calendar_day.weekday()]
    if weekday not in schedule.calling_days or not schedule.in_date_range(calendar_day):
        return []
    return [(_window_micros(start), _window_micros(end)) for start, end in schedule.windows.get(weekday, ())]


def _window_micros(moment: time) -> int:
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000 + moment.microsecond


def _other_band_micros(schedule: Schedule, called: np.ndarray, ended: np.ndarray) -> np.ndarray:
    """`other_band_time` of each call, computed by campaign-local day of the call.

    Without a DST change in the week ahead, the candidates are wall-clock microseconds, tried in
    other_band_time's order for all calls of the day at once; with one, call by call.
    """
    tz = zone(schedule.time_zone)
    local = _local_micros(tz, called)
    result = np.full(len(called), _NONE, dtype=np.int64)
    for day, rows in _by_day(local // _DAY_US) if len(called) else ():
        offset = _week_offset(schedule.time_zone, day, int(local[rows[0]] - called[rows[0]]))
        if offset is None:
            result[rows] = [_micros(other_band_time(schedule, _instant(int(called[row])), _instant(int(ended[row]))))
                            for row in rows.tolist()]
            continue
        walls = local[rows] % _DAY_US  # each call's wall-clock time of its day
        found = np.full(len(rows), _NONE, dtype=np.int64)
        for days in range(1, 8):
            windows = _calling_windows(schedule, day + days)
            if not windows:
                continue
            picks = _band_choices(windows, walls)
            hit = (found == _NONE) & (picks != _NONE)
            found[hit] = (day + days) * _DAY_US + picks[hit] - offset
            if (found != _NONE).all():
                break
        result[rows] = found
        # no band open within a week: the next local midnight after the call ended
        if (found == _NONE).any():
            unfound = rows[found == _NONE]
            result[unfound] = _next_midnight_micros(schedule, ended[unfound])
    return result


def _band_choices(windows: Sequence[tuple[int, int]], called: np.ndarray) -> np.ndarray:
    """`band_choice` of each wall-clock time of `called` (`_NONE`: none) for one day's windows."""
    later = np.full(len(called), np.iinfo(np.int64).max, dtype=np.int64)
    nearest = np.full(len(called), _NONE, dtype=np.int64)
    earlier = np.full(len(called), _NONE, dtype=np.int64)
    after, before = called + _BAND_US, called - _BAND_US
    for start, end in windows:
        candidate = np.maximum(after, start)
        later = np.where(candidate < end, np.minimum(later, candidate), later)
        near = np.minimum(before, end - 1)
        pick = np.where(end <= before, start, before)
        # the greatest (nearest, pick) pair, as max() of tuples
        better = (start <= before) & ((near > nearest) | ((near == nearest) & (pick > earlier)))
        nearest, earlier = np.where(better, near, nearest), np.where(better, pick, earlier)
    has_later = later != np.iinfo(np.int64).max
    take_later = has_later & ((nearest == _NONE) | (later - called <= called - nearest))
    return np.where(take_later, later, earlier)


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
