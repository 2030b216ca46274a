"""The embedded telephony provider: seeded, realistic outcomes on a given clock, state in SQLite.

A call's whole outcome (ring time, answer, talk time, reason, analysis) is decided when it is placed,
as a pure function of (seed, attempt key, to-number, the callee's local hour and weekday then, rates): a
blake2b hash of (seed, attempt key, to-number) is the call's 64-bit key, and its k-th random draw is
splitmix64(key + (k + 1) × γ), a counter-based generator; the local hour and weekday set the chance the
draw for picking up is held against (a call that waited for a free line keeps its outcome unless its
callee's hour or weekday changed meanwhile). So a batch draws every call's numbers at once with numpy
(``simulate_outcomes``), one call alone gets exactly the same numbers in plain Python
(``simulate_outcome``), re-running a simulation gives identical results and several processes agree.
What a reader sees then only depends on the clock it passes in (``now``).

Placed calls live in a small SQLite file (WAL mode, shared by processes: the CLI dials in one,
enrichment reads in another, tests kill processes mid-batch). Every placement is recorded, even a
repeated attempt key, so tests can prove that no attempt was dialled twice. Recently placed or read
calls are also kept in memory, as rows for ``get_calls`` and as numpy columns for ``get_calls_frame``.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import re
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
from phonenumbers import NumberParseException, parse
from phonenumbers.timezone import time_zones_for_number

from schemas.enums import STATUS_FOR_REASON, CallStatus, DisconnectReason, Sentiment
from tasks.settings import get_settings
from tasks.sqlite_shared import connect_shared
from tasks.telephony.base import (
    CLOCK_SKEW_ALLOWANCE,
    CallBatch,
    CapacityWait,
    CallNotFound,
    CallRequest,
    ConcurrencyLimitReached,
    InvalidNumber,
    PlacedBatch,
    ProviderCall,
    ProviderError,
    ProviderUnavailable,
    RECORD_SCHEMA,
    RateLimited,
)

E164 = re.compile(r"\+[1-9]\d{6,14}")

# Probability that a dialled person picks up, by their local hour (0..23): low at night, peaks
# late morning and early evening, as outbound dialers observe.
ANSWER_BY_HOUR = (
    0.04, 0.03, 0.03, 0.03, 0.04, 0.06, 0.10, 0.18, 0.28, 0.34, 0.42, 0.44,
    0.36, 0.32, 0.32, 0.34, 0.38, 0.46, 0.50, 0.48, 0.38, 0.26, 0.14, 0.07,
)
# Multiplier by local weekday (Monday=0): weekends, and Sundays most, answer less.
ANSWER_BY_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 0.95, 0.8, 0.55)
VOICEMAIL_SHARE = 0.30  # of answered calls
NO_ANSWER_SHARE = 0.70  # of unanswered calls
BUSY_SHARE = 0.15  # of unanswered calls; the rest decline (user_declined)
INVALID_NUMBER_PER_MILLE = 15  # numbers that are always invalid_destination (hash of the number)
SPAM_SHARE = 0.008
DIAL_FAILED_SHARE = 0.01
RARE_ERRORS = (
    DisconnectReason.error_asr,
    DisconnectReason.error_no_audio_received,
    DisconnectReason.error_unknown,
    DisconnectReason.telephony_provider_unavailable,
)
RARE_ERROR_SHARE = 0.003  # each
TALK_MEDIAN_SECONDS = 70.0
TALK_SIGMA = 0.9  # log-normal spread: ~1% of conversations pass 10 minutes
MAX_DURATION_SECONDS = 900.0  # longer conversations are cut: max_duration_reached
COST_CENTS_PER_MINUTE = 7.0
ANALYSIS_DELAY_SECONDS = (10.0, 30.0)
# call_successful by conversation length: short calls rarely succeed (overall about 30%).
SUCCESS_BY_TALK = ((20.0, 0.05), (60.0, 0.20), (180.0, 0.40), (math.inf, 0.50))
# Ring time (uniform, seconds) by how the call ended; every answered call rings 3-20 s.
RING_SECONDS = {
    DisconnectReason.invalid_destination: (0.5, 3.0),
    DisconnectReason.marked_as_spam: (1.0, 8.0),
    **dict.fromkeys(RARE_ERRORS, (2.0, 12.0)),
    DisconnectReason.dial_failed: (1.0, 5.0),
    DisconnectReason.dial_no_answer: (25.0, 45.0),
    DisconnectReason.dial_busy: (1.0, 5.0),
    DisconnectReason.user_declined: (4.0, 15.0),
}
ANSWERED_RING_SECONDS = (3.0, 20.0)
VOICEMAIL_TALK_SECONDS = (12.0, 40.0)
# A personalised greeting the agent took for the person: it hears the greeting out, leaves its message and hangs up.
GREETING_TALK_SECONDS = (20.0, 60.0)


def _talk_below(seconds: float) -> float:
    """Share of conversations shorter than `seconds` (the log-normal talk time; the 3 s floor is below every bound)."""
    return 0.5 * (1.0 + math.erf((math.log(seconds) - math.log(TALK_MEDIAN_SECONDS)) / (TALK_SIGMA * math.sqrt(2.0))))


# Expected share of failed calls before the answer draw, and of successful conversations (≈ 0.30).
FAILURE_SHARE = SPAM_SHARE + RARE_ERROR_SHARE * len(RARE_ERRORS) + DIAL_FAILED_SHARE
SUCCESS_SHARE = sum(
    share * ((1.0 if bound == math.inf else _talk_below(bound)) - (_talk_below(low) if low else 0.0))
    for low, (bound, share) in zip((0.0, *(b for b, _ in SUCCESS_BY_TALK[:-1])), SUCCESS_BY_TALK)
)


@dataclass(frozen=True)
class OutcomeRates:
    """The simulator's outcome odds; the defaults, or a campaign's observed mix that keeps the hour × weekday shape."""

    answer_scale_by_hour: tuple[float, ...] = (1.0,) * 24  # multiplies the pick-up chance, by callee-local hour
    voicemail_share: float = VOICEMAIL_SHARE  # of answered calls
    # of voicemails: a personalised greeting the agent talked into (billed per minute, not the flat voicemail rate)
    greeting_share: float = 0.0
    no_answer_share: float = NO_ANSWER_SHARE  # of unanswered calls
    busy_share: float = BUSY_SHARE  # of unanswered calls; the rest decline
    failure_scale: float = 1.0  # multiplies the spam, rare-error and dial_failed shares (FAILURE_SHARE)
    success_scale: float = 1.0  # multiplies the success chance by talk time (SUCCESS_SHARE overall)

    def __post_init__(self) -> None:
        if len(self.answer_scale_by_hour) != 24 or min(self.answer_scale_by_hour) < 0:
            raise ValueError("answer_scale_by_hour needs 24 factors >= 0")
        shares = (self.voicemail_share, self.greeting_share, self.no_answer_share, self.busy_share,
                  self.no_answer_share + self.busy_share)
        if min(shares) < 0 or max(shares) > 1:
            raise ValueError("voicemail, greeting, no-answer and busy shares must be within 0..1 (no-answer + busy too)")
        if self.failure_scale < 0 or self.failure_scale * FAILURE_SHARE > 1 or self.success_scale < 0:
            raise ValueError("failure_scale must keep the failure share within 0..1; success_scale must be >= 0")


DEFAULT_RATES = OutcomeRates()

_COLUMNS = (
    "provider_call_id, attempt_key, to_number, from_number, agent_id, dynamic_variables, metadata, "
    "placed_ts, answer_ts, end_ts, analyzed_ts, status, reason, talk_seconds, call_successful, "
    "sentiment, in_voicemail, custom_analysis, tools_count, cost_cents, seed"
)
_SCHEMA = """
create table if not exists sim_calls (
    seq               integer primary key,
    provider_call_id  text not null,  -- 'sim_' + seq on 9 digits: found by seq
    attempt_key       text not null,
    to_number         text not null,
    from_number       text not null,
    agent_id          text not null,
    dynamic_variables text not null,
    metadata          text not null,  -- the request metadata as sent (attempt_key also has its own column)
    placed_ts         real not null,
    answer_ts         real,
    end_ts            real not null,
    analyzed_ts       real not null,
    status            text not null,
    reason            text not null,
    talk_seconds      real not null,
    call_successful   integer,
    sentiment         text,
    in_voicemail      integer,
    custom_analysis   text,
    tools_count       integer,
    cost_cents        real not null,
    seed              integer not null
);
-- Attempt keys arrive in no order: a plain index on them costs a page write per placement. Indexed within
-- blocks of 8,192 placements (seq >> 13), a batch lands in one small subtree; a lookup probes every block.
create index if not exists sim_calls_attempt_key on sim_calls (seq >> 13, attempt_key);
create index if not exists sim_calls_active on sim_calls (end_ts, placed_ts);
-- No index on placed_ts alone: only list_calls (rare, a scan) would use it, and every placement would pay for it.
"""


_ROWS_PER_INSERT = 47  # 987 parameters: under SQLite's limit before 3.32 (999)


@lru_cache(maxsize=4)
def _insert_sql(rows: int) -> str:
    """An insert of ``rows`` calls (every column but seq) in one statement."""
    values = f"({', '.join('?' * 21)})"
    return f"insert into sim_calls ({_COLUMNS}) values {', '.join([values] * rows)}"


def _by_attempt_keys_sql(selected: str, keys: int) -> str:
    """Select ``selected`` from the calls placed with any of ``keys`` attempt keys, in placement order."""
    return f"""
        with recursive blocks(block) as (
            select 0 union all select block + 1 from blocks where block < (select max(seq) >> 13 from sim_calls)
        )
        select {selected} from blocks join sim_calls on seq >> 13 = block
        where attempt_key in ({', '.join('?' * keys)}) order by seq
    """


# get_calls_frame's columns (the provider record frame of tasks.telephony.base)
FRAME_SCHEMA = RECORD_SCHEMA


@dataclass(frozen=True)
class Outcome:
    """What will happen to one simulated call, decided when it is placed (times in seconds)."""

    reason: DisconnectReason
    ring_seconds: float
    talk_seconds: float  # 0 unless the call was answered (conversation or voicemail); whole milliseconds
    analysis_delay_seconds: float
    call_successful: bool
    in_voicemail: bool
    sentiment: Sentiment | None
    custom_analysis: dict[str, bool] | None
    tools_count: int
    cost_cents: float

    @property
    def answered(self) -> bool:
        return self.talk_seconds > 0


@dataclass(frozen=True)
class Outcomes:
    """The outcomes of many calls as numpy columns (``simulate_outcomes``); row i is call i.

    Codes index small tables: ``reason`` into ``REASONS``, ``sentiment`` into ``SENTIMENTS`` (-1: none),
    ``custom`` is the custom analysis as bits interested=4, callback_requested=2, do_not_call=1 (-1: none).
    """

    reason: np.ndarray  # int8
    ring_seconds: np.ndarray
    talk_seconds: np.ndarray
    analysis_delay_seconds: np.ndarray
    call_successful: np.ndarray  # bool
    in_voicemail: np.ndarray  # bool
    sentiment: np.ndarray  # int8
    custom: np.ndarray  # int8
    tools_count: np.ndarray  # int32
    cost_cents: np.ndarray


REASONS = tuple(DisconnectReason)
SENTIMENTS = tuple(Sentiment)
_REASON_CODE = {reason: code for code, reason in enumerate(REASONS)}
_SENTIMENT_CODE = {sentiment: code for code, sentiment in enumerate(SENTIMENTS)}
_STATUSES = tuple(CallStatus)
_STATUS_CODE = {status: code for code, status in enumerate(_STATUSES)}
_REASON_VALUES = tuple(r.value for r in REASONS)
_SENTIMENT_VALUES = tuple(s.value for s in SENTIMENTS)
_STATUS_VALUES = tuple(s.value for s in _STATUSES)
_STATUS_OF_REASON = np.array([_STATUS_CODE[STATUS_FOR_REASON[r]] for r in REASONS], dtype=np.int8)
_RING_LOW = np.array([RING_SECONDS.get(r, ANSWERED_RING_SECONDS)[0] for r in REASONS])
_RING_HIGH = np.array([RING_SECONDS.get(r, ANSWERED_RING_SECONDS)[1] for r in REASONS])
_RARE_ERROR_CODES = np.array([_REASON_CODE[r] for r in RARE_ERRORS], dtype=np.int8)

# The k-th draw of a call: one index per question, whichever branch asks it, so that a batch can
# draw every number of every call at once.
# A new question takes the next index: the earlier draws, and so every outcome of the old odds, stay the same.
(_FAILURE, _RING, _ANSWER, _UNANSWERED_KIND, _DELAY, _VOICEMAIL, _VOICEMAIL_TALK, _TALK_RADIUS, _TALK_ANGLE,
 _HANGUP_KIND, _SUCCESS, _SENTIMENT, _DO_NOT_CALL, _INTERESTED, _CALLBACK, _TOOLS, _GREETING) = range(17)
_DRAWS = 17
_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # splitmix64's increment: 2^64 / golden ratio
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_UNIT = 2.0 ** -53  # a 53-bit integer times this is a double in [0, 1)
_MICROS_PER_HOUR, _MICROS_PER_DAY = 3_600_000_000, 86_400_000_000
_THURSDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


_zone_cache: dict[str, ZoneInfo] = {}
_UTC_ZONE = ZoneInfo("UTC")


def callee_zone(to_number: str) -> ZoneInfo:
    """The callee's likely time zone from the number (first of phonenumbers' zones), else UTC."""
    # US zones resolve by area code and exchange: a 6-character prefix (+1 NPA X) is close enough
    # for an hour-of-day curve, and keeps the cache small.
    prefix = to_number[:6]
    zone = _zone_cache.get(prefix)
    if zone is None:
        zone = _UTC_ZONE
        try:
            names = time_zones_for_number(parse(to_number))
            if names and names[0] != "Etc/Unknown":
                zone = ZoneInfo(names[0])
        except (NumberParseException, KeyError, ValueError):
            pass
        _zone_cache[prefix] = zone
    return zone


def is_always_invalid(to_number: str) -> bool:
    """Whether this number is one of the simulator's dead numbers (the same for every seed)."""
    # CRC-32: stable, cheap, and evenly spread over phone numbers (about 1.5% of sequential ranges too)
    return zlib.crc32(to_number.encode()) % 1000 < INVALID_NUMBER_PER_MILLE


def answer_probability(local: datetime) -> float:
    """Chance that a callee picks up at this local time."""
    return ANSWER_BY_HOUR[local.hour] * ANSWER_BY_WEEKDAY[local.weekday()]


def _timestamp_micros(placed_ts: float) -> int:
    return int(round(placed_ts * 1_000_000))


@lru_cache(maxsize=8)
def _seeded_hasher(seed: int) -> Any:
    return hashlib.blake2b(f"{seed}|".encode(), digest_size=8)


def _key_digest(seed: int, attempt_key: str, to_number: str) -> bytes:
    """blake2b of "seed|attempt key|to-number", 8 bytes."""
    # the seed's prefix is hashed once: copying that state costs half a fresh hasher
    hasher = _seeded_hasher(seed).copy()
    hasher.update(f"{attempt_key}|{to_number}".encode())
    return hasher.digest()


def call_key(seed: int, attempt_key: str, to_number: str) -> int:
    """The 64-bit key of one call's random draws: a pure function of its seeds (an attempt key is one attempt)."""
    return int.from_bytes(_key_digest(seed, attempt_key, to_number), "big")


def _draw(key: int, index: int) -> float:
    """The index-th uniform draw in [0, 1) of the call with this key (splitmix64 at that counter)."""
    z = (key + (index + 1) * _GAMMA) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return ((z ^ (z >> 31)) >> 11) * _UNIT


def _draws(keys: np.ndarray) -> np.ndarray:
    """Every draw of every call: row i holds ``_draw(keys[i], k)`` for k = 0.._DRAWS-1 (uint64 arithmetic wraps)."""
    z = keys[:, None] + np.arange(1, _DRAWS + 1, dtype=np.uint64)[None, :] * np.uint64(_GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return ((z ^ (z >> np.uint64(31))) >> np.uint64(11)).astype(np.float64) * _UNIT


def _offset_at(zone: ZoneInfo, ts: float) -> int:
    return datetime.fromtimestamp(ts, zone).utcoffset() // timedelta(microseconds=1)


# A zone's UTC offset per quarter hour of UTC time, for the quarter hours it does not change in: the waiting
# placement asks it twice per call that waited (~700 a batch), and a datetime per ask cost ~5 ms a batch.
_offset_cache: dict[tuple[ZoneInfo, int], int] = {}
_OFFSET_BUCKET = 900
_OFFSET_CACHE_SIZE = 100_000


def _utc_offset_micros(zone: ZoneInfo, placed_ts: float) -> int:
    bucket = int(placed_ts // _OFFSET_BUCKET)
    offset = _offset_cache.get((zone, bucket))
    if offset is not None:
        return offset
    offset = _offset_at(zone, placed_ts)
    # cached only when the offset is the same at the quarter's first and last second (tz changes fall on whole
    # seconds, and no zone changes twice in a quarter hour): then it holds for every instant of the quarter
    start = bucket * _OFFSET_BUCKET
    if _offset_at(zone, start) == offset == _offset_at(zone, start + _OFFSET_BUCKET - 1):
        if len(_offset_cache) >= _OFFSET_CACHE_SIZE:
            _offset_cache.clear()
        _offset_cache[(zone, bucket)] = offset
    return offset


def _callee_hour_and_weekday(to_number: str, placed_ts: float) -> tuple[int, int]:
    """The callee's local hour and weekday at ``placed_ts``: all of the moment a call's outcome depends on."""
    zone = _zone_cache.get(to_number[:6]) or callee_zone(to_number)
    return _local_hour_and_weekday(_timestamp_micros(placed_ts) + _utc_offset_micros(zone, placed_ts))


def _local_hour_and_weekday(local_micros: int) -> tuple[int, int]:
    # integer arithmetic on microseconds, the same in numpy (_answer_chances): both paths agree exactly
    return local_micros // _MICROS_PER_HOUR % 24, (local_micros // _MICROS_PER_DAY + _THURSDAY) % 7


def _quantised(seconds: float) -> float:
    """To the millisecond (durations are reported to the millisecond; numpy's rint/1000 gives the same)."""
    return round(seconds * 1000) / 1000


def _lognormal_talk(radius_draw: float, angle_draw: float) -> float:
    """A conversation's length before the 3 s floor and the cap: log-normal, by Box–Muller from two draws."""
    # plain math on both paths (numpy's transcendental functions may differ in the last bit)
    normal = math.sqrt(-2.0 * math.log(1.0 - radius_draw)) * math.cos(2.0 * math.pi * angle_draw)
    return _quantised(math.exp(math.log(TALK_MEDIAN_SECONDS) + TALK_SIGMA * normal))


def _uniform(bounds: tuple[float, float], draw: float) -> float:
    low, high = bounds
    return low + (high - low) * draw


def simulate_outcome(
    seed: int, attempt_key: str, to_number: str, placed_ts: float, rates: OutcomeRates = DEFAULT_RATES,
) -> Outcome:
    """The outcome of one call placed at ``placed_ts`` (UTC epoch seconds); deterministic.

    The reference form of ``simulate_outcomes``: the same draws, the same result, one call at a time.
    """
    key = call_key(seed, attempt_key, to_number)
    if is_always_invalid(to_number):
        return _not_connected(DisconnectReason.invalid_destination, _draw(key, _RING))
    spam_share, rare_error_share = SPAM_SHARE * rates.failure_scale, RARE_ERROR_SHARE * rates.failure_scale
    draw = _draw(key, _FAILURE)
    if draw < spam_share:
        return _not_connected(DisconnectReason.marked_as_spam, _draw(key, _RING))
    draw -= spam_share
    if draw < rare_error_share * len(RARE_ERRORS):
        rare = RARE_ERRORS[min(int(draw / rare_error_share), len(RARE_ERRORS) - 1)]
        return _not_connected(rare, _draw(key, _RING))
    draw -= rare_error_share * len(RARE_ERRORS)
    if draw < DIAL_FAILED_SHARE * rates.failure_scale:
        return _not_connected(DisconnectReason.dial_failed, _draw(key, _RING))

    micros = _timestamp_micros(placed_ts)
    hour, weekday = _local_hour_and_weekday(micros + _utc_offset_micros(callee_zone(to_number), placed_ts))
    if _draw(key, _ANSWER) >= ANSWER_BY_HOUR[hour] * ANSWER_BY_WEEKDAY[weekday] * rates.answer_scale_by_hour[hour]:
        kind = _draw(key, _UNANSWERED_KIND)
        if kind < rates.no_answer_share:
            return _not_connected(DisconnectReason.dial_no_answer, _draw(key, _RING))
        if kind < rates.no_answer_share + rates.busy_share:
            return _not_connected(DisconnectReason.dial_busy, _draw(key, _RING))
        return _not_connected(DisconnectReason.user_declined, _draw(key, _RING))

    ring = _uniform(ANSWERED_RING_SECONDS, _draw(key, _RING))
    delay = _uniform(ANALYSIS_DELAY_SECONDS, _draw(key, _DELAY))
    if _draw(key, _VOICEMAIL) < rates.voicemail_share:
        # a greeting taken for the person: the provider never recognised the box, the agent hung up after its message
        greeting = _draw(key, _GREETING) < rates.greeting_share
        talk_range, reason = ((GREETING_TALK_SECONDS, DisconnectReason.agent_hangup) if greeting
                              else (VOICEMAIL_TALK_SECONDS, DisconnectReason.voicemail_reached))
        talk = _quantised(_uniform(talk_range, _draw(key, _VOICEMAIL_TALK)))
        return Outcome(
            reason=reason, ring_seconds=ring, talk_seconds=talk,
            analysis_delay_seconds=delay, call_successful=False, in_voicemail=True,
            sentiment=Sentiment.Unknown, custom_analysis=_custom(0), tools_count=0, cost_cents=_cost(talk),
        )
    talk = max(3.0, _lognormal_talk(_draw(key, _TALK_RADIUS), _draw(key, _TALK_ANGLE)))
    if talk >= MAX_DURATION_SECONDS:
        talk, reason = MAX_DURATION_SECONDS, DisconnectReason.max_duration_reached
    else:
        kind = _draw(key, _HANGUP_KIND)
        reason = (
            DisconnectReason.user_hangup if kind < 0.45
            else DisconnectReason.agent_hangup if kind < 0.85
            else DisconnectReason.call_transfer if kind < 0.92
            else DisconnectReason.inactivity
        )
    success_chance = next(share for bound, share in SUCCESS_BY_TALK if talk < bound)
    successful = _draw(key, _SUCCESS) < success_chance * rates.success_scale
    sentiment = _pick_sentiment(_draw(key, _SENTIMENT), successful)
    do_not_call = not successful and _draw(key, _DO_NOT_CALL) < 0.03
    interested = successful or (not do_not_call and _draw(key, _INTERESTED) < 0.10)
    callback_requested = not do_not_call and _draw(key, _CALLBACK) < 0.12
    tools = 1 + int(_draw(key, _TOOLS) * 3) if successful else int(_draw(key, _TOOLS) * 2)
    return Outcome(
        reason=reason, ring_seconds=ring, talk_seconds=talk, analysis_delay_seconds=delay,
        call_successful=successful, in_voicemail=False, sentiment=sentiment,
        custom_analysis=_custom(4 * interested + 2 * callback_requested + do_not_call),
        tools_count=tools, cost_cents=_cost(talk),
    )


def _not_connected(reason: DisconnectReason, ring_draw: float) -> Outcome:
    return Outcome(
        reason=reason, ring_seconds=_uniform(RING_SECONDS[reason], ring_draw), talk_seconds=0.0,
        analysis_delay_seconds=0.0, call_successful=False, in_voicemail=False, sentiment=None,
        custom_analysis=None, tools_count=0, cost_cents=0.0,
    )


def _pick_sentiment(draw: float, successful: bool) -> Sentiment:
    if successful:
        return Sentiment.Positive if draw < 0.70 else Sentiment.Neutral if draw < 0.95 else Sentiment.Negative
    return (
        Sentiment.Positive if draw < 0.15 else Sentiment.Neutral if draw < 0.60
        else Sentiment.Negative if draw < 0.90 else Sentiment.Unknown
    )


def _custom(code: int) -> dict[str, bool]:
    """The custom analysis from its bits (interested=4, callback_requested=2, do_not_call=1)."""
    return {"interested": bool(code & 4), "callback_requested": bool(code & 2), "do_not_call": bool(code & 1)}


def _custom_code(custom: dict[str, Any]) -> int:
    return 4 * bool(custom.get("interested")) + 2 * bool(custom.get("callback_requested")) + bool(custom.get("do_not_call"))


# The eight possible custom analyses as JSON, by their bits (encoded once: JSON encoding is costly per call).
_CUSTOM_JSON = tuple(json.dumps(_custom(code)) for code in range(8))


def _answer_chances(to_numbers: Sequence[str], placed_ts: np.ndarray, micros: np.ndarray, rates: OutcomeRates) -> np.ndarray:
    """Each call's pick-up chance at the callee's local hour and weekday (as ``simulate_outcome`` computes it)."""
    zone_codes: dict[ZoneInfo, int] = {}
    cached = _zone_cache.get
    codes = np.array([zone_codes.setdefault(cached(number[:6]) or callee_zone(number), len(zone_codes))
                      for number in to_numbers], dtype=np.int64)
    first, last = (float(placed_ts.min()), float(placed_ts.max())) if len(placed_ts) else (0.0, 0.0)
    # No zone changes its offset twice within a day: a zone with the same offset at the batch's first and last
    # instants has it for every call between; the others (a DST change inside the batch) go call by call.
    zone_offsets = np.array([_utc_offset_micros(zone, first) for zone in zone_codes], dtype=np.int64)
    offsets = zone_offsets[codes]
    for zone, zone_code in zone_codes.items():
        if last - first > 86_400 or _utc_offset_micros(zone, last) != zone_offsets[zone_code]:
            rows = np.flatnonzero(codes == zone_code)
            offsets[rows] = [_utc_offset_micros(zone, ts) for ts in placed_ts[rows].tolist()]
    local = micros + offsets
    hour = local // _MICROS_PER_HOUR % 24
    weekday = (local // _MICROS_PER_DAY + _THURSDAY) % 7
    by_hour, by_weekday = np.array(ANSWER_BY_HOUR), np.array(ANSWER_BY_WEEKDAY)
    return by_hour[hour] * by_weekday[weekday] * np.array(rates.answer_scale_by_hour)[hour]


def _first(conditions: list[np.ndarray], choices: list[Any], default: Any) -> np.ndarray:
    """``np.select`` without its fixed cost (a tenth of a one-call batch): the choice of the first true condition."""
    result = np.full(len(conditions[0]), default)
    for condition, choice in zip(reversed(conditions), reversed(choices)):
        result = np.where(condition, choice, result)
    return result


def simulate_outcomes(
    seed: int, attempt_keys: Sequence[str], to_numbers: Sequence[str], placed_ts: np.ndarray,
    rates: OutcomeRates = DEFAULT_RATES,
) -> Outcomes:
    """``simulate_outcome`` for many calls at once: row i is exactly ``simulate_outcome(seed, attempt_keys[i], ...)``."""
    placed_ts = np.asarray(placed_ts, dtype=np.float64)
    micros = np.rint(placed_ts * 1_000_000).astype(np.int64)
    digests = b"".join(_key_digest(seed, key, number) for key, number in zip(attempt_keys, to_numbers))
    draws = _draws(np.frombuffer(digests, dtype=">u8").astype(np.uint64))
    code = _REASON_CODE

    # failures before the pick-up, in simulate_outcome's order (_first takes the first true condition)
    invalid = np.fromiter(map(is_always_invalid, to_numbers), dtype=bool, count=len(to_numbers))
    spam_share, rare_error_share = SPAM_SHARE * rates.failure_scale, RARE_ERROR_SHARE * rates.failure_scale
    draw = draws[:, _FAILURE]
    spam = draw < spam_share
    draw = draw - spam_share
    rare = draw < rare_error_share * len(RARE_ERRORS)
    rare_index = np.zeros(len(draw), dtype=np.int64)
    if rare_error_share > 0:
        rare_index = np.clip(draw / rare_error_share, 0, len(RARE_ERRORS) - 1).astype(np.int64)
    draw = draw - rare_error_share * len(RARE_ERRORS)
    dial_failed = draw < DIAL_FAILED_SHARE * rates.failure_scale
    unanswered = draws[:, _ANSWER] >= _answer_chances(to_numbers, placed_ts, micros, rates)
    kind = draws[:, _UNANSWERED_KIND]

    answered = ~(invalid | spam | rare | dial_failed | unanswered)
    voicemail = answered & (draws[:, _VOICEMAIL] < rates.voicemail_share)
    greeting = voicemail & (draws[:, _GREETING] < rates.greeting_share)
    conversation = answered & ~voicemail
    talk_low, talk_high = (np.where(greeting, greeting_bound, voicemail_bound)
                           for greeting_bound, voicemail_bound in zip(GREETING_TALK_SECONDS, VOICEMAIL_TALK_SECONDS))
    voicemail_talk = talk_low + (talk_high - talk_low) * draws[:, _VOICEMAIL_TALK]
    talk = np.where(voicemail, np.rint(voicemail_talk * 1000) / 1000, 0.0)
    rows = np.flatnonzero(conversation)
    talk[rows] = np.maximum(3.0, np.array(
        [_lognormal_talk(r, a) for r, a in zip(draws[rows, _TALK_RADIUS].tolist(), draws[rows, _TALK_ANGLE].tolist())],
        dtype=np.float64,
    ))
    capped = conversation & (talk >= MAX_DURATION_SECONDS)
    talk[capped] = MAX_DURATION_SECONDS
    hangup = draws[:, _HANGUP_KIND]
    reason = _first(
        [invalid, spam, rare, dial_failed,
         unanswered & (kind < rates.no_answer_share), unanswered & (kind < rates.no_answer_share + rates.busy_share),
         unanswered, greeting, voicemail, capped, hangup < 0.45, hangup < 0.85, hangup < 0.92],
        [code[DisconnectReason.invalid_destination], code[DisconnectReason.marked_as_spam], _RARE_ERROR_CODES[rare_index],
         code[DisconnectReason.dial_failed], code[DisconnectReason.dial_no_answer], code[DisconnectReason.dial_busy],
         code[DisconnectReason.user_declined], code[DisconnectReason.agent_hangup], code[DisconnectReason.voicemail_reached],
         code[DisconnectReason.max_duration_reached], code[DisconnectReason.user_hangup],
         code[DisconnectReason.agent_hangup], code[DisconnectReason.call_transfer]],
        code[DisconnectReason.inactivity],
    ).astype(np.int8)

    success_chance = _first([talk < bound for bound, _ in SUCCESS_BY_TALK[:-1]],
                            [share for _, share in SUCCESS_BY_TALK[:-1]], SUCCESS_BY_TALK[-1][1])
    successful = conversation & (draws[:, _SUCCESS] < success_chance * rates.success_scale)
    sentiment_draw = draws[:, _SENTIMENT]
    positive, neutral, negative = (_SENTIMENT_CODE[s] for s in (Sentiment.Positive, Sentiment.Neutral, Sentiment.Negative))
    sentiment = _first(
        [~answered, voicemail,
         successful & (sentiment_draw < 0.70), successful & (sentiment_draw < 0.95), successful,
         sentiment_draw < 0.15, sentiment_draw < 0.60, sentiment_draw < 0.90],
        [-1, _SENTIMENT_CODE[Sentiment.Unknown], positive, neutral, negative, positive, neutral, negative],
        _SENTIMENT_CODE[Sentiment.Unknown],
    ).astype(np.int8)
    do_not_call = conversation & ~successful & (draws[:, _DO_NOT_CALL] < 0.03)
    interested = conversation & (successful | (~do_not_call & (draws[:, _INTERESTED] < 0.10)))
    callback_requested = conversation & ~do_not_call & (draws[:, _CALLBACK] < 0.12)
    custom = np.where(answered, 4 * interested + 2 * callback_requested + do_not_call, -1).astype(np.int8)
    tools = np.where(successful, 1 + (draws[:, _TOOLS] * 3).astype(np.int32),
                     np.where(conversation, (draws[:, _TOOLS] * 2).astype(np.int32), 0)).astype(np.int32)
    cost = np.zeros(len(talk))
    answered_rows = np.flatnonzero(answered)
    cost[answered_rows] = [_cost(seconds) for seconds in talk[answered_rows].tolist()]
    return Outcomes(
        reason=reason,
        ring_seconds=_RING_LOW[reason] + (_RING_HIGH[reason] - _RING_LOW[reason]) * draws[:, _RING],
        talk_seconds=talk,
        analysis_delay_seconds=np.where(answered, ANALYSIS_DELAY_SECONDS[0] + (
            ANALYSIS_DELAY_SECONDS[1] - ANALYSIS_DELAY_SECONDS[0]) * draws[:, _DELAY], 0.0),
        call_successful=successful, in_voicemail=voicemail, sentiment=sentiment, custom=custom,
        tools_count=tools, cost_cents=cost,
    )


def _cost(talk_seconds: float) -> float:
    return round(talk_seconds / 60.0 * COST_CENTS_PER_MINUTE, 2)


def _dumps(mapping: dict) -> str:
    # orjson (a Prefect dependency) encodes a small dict in a tenth of json.dumps' time: a third of a placement
    return orjson.dumps(mapping, option=orjson.OPT_NON_STR_KEYS).decode() if mapping else "{}"


# The stored text of each code, as numpy object arrays (one fancy index per column); code -1 is the last: None.
_STORED_STATUS = np.array(_STATUS_VALUES, dtype=object)
_STORED_REASON = np.array(_REASON_VALUES, dtype=object)
_STORED_SENTIMENT = np.array([*_SENTIMENT_VALUES, None], dtype=object)
_STORED_CUSTOM = np.array([*_CUSTOM_JSON, None], dtype=object)


def _as_ts(now: datetime) -> float:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.timestamp()


def _as_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _datetime_micros(ts: np.ndarray) -> np.ndarray:
    """Epoch microseconds exactly as ``datetime.fromtimestamp`` rounds them: the fraction, half to even."""
    fraction, whole = np.modf(ts)
    micros = np.rint(fraction * 1e6)
    # CPython carries a fraction rounded up to a whole second, and borrows for a negative one
    carry = (micros >= 1e6).astype(np.int64) - (micros < 0)
    return (whole.astype(np.int64) + carry) * 1_000_000 + (micros - carry * 1e6).astype(np.int64)


def _names(variables: dict[str, Any]) -> tuple[Any, Any]:
    """Whom the agent greets and for which company, from a call's dynamic variables."""
    return (variables.get("contact_name") or variables.get("first_name") or "there",
            variables.get("company_name") or "your company")


# The columns kept in memory per call for get_calls_frame (numpy dtypes; times in epoch seconds, NaN: never).
_CACHED = {
    "placed_ts": np.float64, "answer_ts": np.float64, "end_ts": np.float64, "analyzed_ts": np.float64,
    "reason": np.int8, "talk_seconds": np.float64, "duration_seconds": np.float64, "call_successful": np.bool_,
    "in_voicemail": np.bool_, "sentiment": np.int8, "custom": np.int8, "tools_count": np.int32,
    "cost_cents": np.float64, "contact_name": object, "company_name": object,
}


class _CallColumns:
    """Recently placed or read calls as numpy columns, found by provider call id (rows never change once written).

    Holds about ``limit`` calls: when full, it keeps the newest part and drops the rest. The arrays grow by
    doubling, so adding a batch costs the batch, not the whole cache.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.columns = {name: np.empty(1024, dtype) for name, dtype in _CACHED.items()}

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """Each id's row, or -1 when it is not held."""
        # map over a C method: a generator's frame per id cost more than the lookup
        return np.fromiter(map(self.index.get, ids, repeat(-1, len(ids))), dtype=np.int64, count=len(ids))

    def add(self, ids: list[str], columns: dict[str, np.ndarray]) -> None:
        held = len(self.ids)
        if held + len(ids) > self.limit:
            keep = min(held, max(self.limit - len(ids), 0) // 2)
            for column in self.columns.values():
                column[:keep] = column[held - keep:held]
            self.ids = self.ids[held - keep:]
            self.index = {call_id: row for row, call_id in enumerate(self.ids)}
            held = keep
        capacity = len(self.columns["placed_ts"])
        if held + len(ids) > capacity:
            capacity = max(2 * capacity, held + len(ids))
            for name, column in self.columns.items():
                grown = np.empty(capacity, column.dtype)
                grown[:held] = column[:held]
                self.columns[name] = grown
        for name, column in self.columns.items():
            column[held:held + len(ids)] = columns[name]
        self.index.update(zip(ids, range(held, held + len(ids))))
        self.ids.extend(ids)


@dataclass(frozen=True)
class _Asked:
    """A batch's requests as columns, call i in row i: what placing reads of them."""

    to_numbers: Sequence[str]
    from_numbers: Sequence[str]
    agent_ids: Sequence[str]
    attempt_keys: Sequence[str]
    dynamic_variables: Sequence[dict[str, Any]]
    metadata: Sequence[dict[str, Any]]

    def rows(self, take: list[int]) -> _Asked:
        """Only calls ``take``, in that order."""
        return _Asked(*([column[i] for i in take] for column in (
            self.to_numbers, self.from_numbers, self.agent_ids, self.attempt_keys, self.dynamic_variables, self.metadata)))


def _asked_of(batch: CallBatch) -> _Asked:
    keys = list(batch.attempt_keys)
    return _Asked(
        batch.to_numbers, batch.from_numbers, [batch.provider_agent_id] * len(keys), keys,
        [orjson.loads(variables) for variables in batch.dynamic_variables],
        [{"attempt_key": key, **batch.metadata} for key in keys],
    )


# A call whose callee's hour changed while it waited for a line is drawn again with this many after it: they
# are placed as much later, near the same hour's edge, and one draw of a few costs about what one draw of one does.
REDRAW_AHEAD = 16


def _redraw(
    provider: SimulatedProvider, asked: _Asked, placed: np.ndarray, answer: np.ndarray, end: np.ndarray,
    outcomes: Outcomes, drawn_at: np.ndarray, index: int, waited: float,
) -> None:
    """Calls ``index`` and the next few drawn again (in place) as placed ``waited`` seconds after their plan."""
    stop = min(index + REDRAW_AHEAD, len(placed))
    moments = placed[index:stop] - drawn_at[index:stop] + waited
    part = simulate_outcomes(provider.seed, asked.attempt_keys[index:stop], asked.to_numbers[index:stop], moments,
                             provider.rates)
    for column in fields(Outcomes):
        getattr(outcomes, column.name)[index:stop] = getattr(part, column.name)
    placed[index:stop] = moments
    answer[index:stop] = moments + part.ring_seconds
    end[index:stop] = answer[index:stop] + part.talk_seconds
    drawn_at[index:stop] = waited


class SimulatedProvider:
    """The embedded provider: seeded outcomes, a concurrency limit and an optional rate limit.

    ``seed`` and ``concurrency_limit`` default to the settings (CAMPAIGNS_SIMULATOR_SEED,
    CAMPAIGNS_PROVIDER_CONCURRENCY_LIMIT); ``rate_limit_per_second`` is off unless given; ``rates``
    replaces the default outcome odds (the forecast passes a campaign's observed mix); ``cache_size``
    bounds the calls kept in memory (SQLite answers the others).
    """

    name = "simulator"

    def __init__(
        self,
        path: str | Path,
        *,
        seed: int | None = None,
        concurrency_limit: int | None = None,
        rate_limit_per_second: float | None = None,
        cache_size: int = 200_000,
        rates: OutcomeRates | None = None,
    ):
        settings = get_settings()
        self.path = Path(path)
        self.seed = settings.simulator_seed if seed is None else seed
        self.concurrency_limit = settings.provider_concurrency_limit if concurrency_limit is None else concurrency_limit
        self.rate_limit_per_second = rate_limit_per_second
        self.rates = DEFAULT_RATES if rates is None else rates
        self._cache_size = cache_size
        self._rows: dict[str, tuple] = {}  # rows never change once written: safe to cache
        self._columns = _CallColumns(cache_size)
        self._failures: list[ProviderError] = []
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    # -- storage ---------------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        # A forked child must not reuse its parent's SQLite handle.
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect_shared(self.path)
            # WAL + NORMAL: a committed placement survives a killed process (not a power cut).
            conn.execute("pragma synchronous = normal")
            # Checkpoint (and fsync) every ~40 MB of WAL rather than 4 MB: on a busy disk those fsyncs were about
            # a sixth of a placement's wall time (interleaved runs: 36 -> 30 us per call, same CPU time).
            conn.execute("pragma wal_autocheckpoint = 10000")
            conn.executescript(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            # IMMEDIATE takes the write lock first, so the concurrency check and the insert are one
            # atomic step across processes.
            conn.execute("begin immediate")
            try:
                yield conn
            except BaseException:
                conn.execute("rollback")
                raise
            conn.execute("commit")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def _rows_by_id(self, provider_call_ids: Sequence[str]) -> list[tuple]:
        """The stored rows of these ids (500 per query), in no particular order; unknown ids are absent."""
        wanted = set(provider_call_ids)
        seqs = [int(i[4:]) for i in wanted if i.startswith("sim_") and i[4:].isdecimal() and len(i) < 24]
        rows: list[tuple] = []
        for start in range(0, len(seqs), 500):
            chunk = seqs[start:start + 500]
            rows += self._read(f"select {_COLUMNS} from sim_calls where seq in ({', '.join('?' * len(chunk))})", chunk)
        # 'sim_1' and 'sim_000000001' share a seq: only the id that was issued is known
        return [row for row in rows if row[0] in wanted]

    def close(self) -> None:
        """Close the SQLite handle (a new one opens on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def _remember(self, row: tuple) -> None:
        if len(self._rows) >= self._cache_size:
            self._rows.clear()
        self._rows[row[0]] = row

    # -- test knobs -------------------------------------------------------------------------------
    def fail_next(self, error: ProviderError, times: int = 1) -> None:
        """Make the next ``times`` placements (in this instance) raise ``error`` instead of dialling."""
        self._failures.extend([error] * times)

    # -- placing ----------------------------------------------------------------------------------
    def place_call(self, request: CallRequest, now: datetime) -> str:
        """Dial; returns the provider call id, or raises the refusal (see ``place_calls``)."""
        result = self.place_calls([request], now)[0]
        if isinstance(result, ProviderError):
            raise result
        return result

    def place_calls(
        self, requests: Sequence[CallRequest], now: datetime, pace_seconds: float = 0.0
    ) -> list[str | ProviderError]:
        """Dial several calls, the i-th at ``now + i * pace_seconds`` on the virtual clock; per request,
        the call id or the refusal (ConcurrencyLimitReached, RateLimited, InvalidNumber). An injected
        ProviderUnavailable ends the batch (see ``BatchTelephonyProvider.place_calls``)."""
        return self._place(_Asked(
            [r.to_number for r in requests], [r.from_number for r in requests], [r.provider_agent_id for r in requests],
            [r.attempt_key for r in requests], [r.dynamic_variables for r in requests], [r.metadata for r in requests],
        ), now, pace_seconds)[0]

    def place_call_batch(self, batch: CallBatch, now: datetime, pace_seconds: float = 0.0) -> list[str | ProviderError]:
        """``place_calls(batch.requests(), now, pace_seconds)``: the same calls, rows and answers, without a
        CallRequest per call (a 500-call claim: 35 -> 29 us of CPU per call here, bench_simulator)."""
        return self._place(_asked_of(batch), now, pace_seconds)[0]

    def place_call_batch_waiting(
        self, batch: CallBatch, now: datetime, pace_seconds: float, wait: CapacityWait
    ) -> PlacedBatch:
        """The batch as the real-time dialer places it one by one (``_place_one_by_one``) on this clock: call i
        ``pace_seconds`` after call i-1, later while ``concurrency_limit`` calls are up (``wait``), none at or
        after ``wait.until``. The same calls, outcomes and rows as placing them one at a time at those moments."""
        answers, placed = self._place(_asked_of(batch), now, pace_seconds, wait)
        return PlacedBatch(answers, [_as_dt(ts) for ts in placed[:len(answers)].tolist()])

    def _place(
        self, asked: _Asked, now: datetime, pace_seconds: float, wait: CapacityWait | None = None
    ) -> tuple[list[str | ProviderError], np.ndarray]:
        """(per call the id or the refusal, every call's placing time). Without ``wait`` call i is placed at
        ``now + i * pace_seconds`` and refused when the limit is reached; with it, as ``place_call_batch_waiting``."""
        start_ts = _as_ts(now)
        # Every outcome is drawn up front (a pure function, outside the lock); the pass under the lock
        # only decides which requests the limits let through (and, waiting, redraws those placed later).
        placed = start_ts + np.arange(len(asked.attempt_keys)) * pace_seconds
        outcomes = simulate_outcomes(self.seed, asked.attempt_keys, asked.to_numbers, placed, self.rates)
        answer = placed + outcomes.ring_seconds
        end = answer + outcomes.talk_seconds
        until_ts = _as_ts(wait.until) if wait is not None and wait.until is not None else math.inf
        waited_total = 0.0  # how much later than planned the calls from here on are placed
        drawn_at = np.zeros(len(placed))  # the wait each call's outcome was drawn with
        dialable = [E164.fullmatch(number) is not None for number in asked.to_numbers]
        results: list[str | ProviderError] = []
        accepted: list[int] = []
        with self._write() as conn:
            next_seq = conn.execute("select coalesce(max(seq), 0) + 1 from sim_calls").fetchone()[0]
            active_sql = "from sim_calls indexed by sim_calls_active where end_ts > ? and placed_ts <= ?"
            active = conn.execute(f"select count(*) {active_sql}", (start_ts, start_ts)).fetchone()[0]
            # The end times are only needed when this batch could reach the limit.
            check_limit = active + len(placed) >= self.concurrency_limit
            ends = [r[0] for r in conn.execute(f"select end_ts {active_sql}", (start_ts, start_ts))] if check_limit else []
            heapq.heapify(ends)
            recent: list[float] = []
            if self.rate_limit_per_second is not None:
                recent = [r[0] for r in conn.execute(
                    # a call placed in the last second ends after its start: the active index finds it
                    "select placed_ts from sim_calls indexed by sim_calls_active where end_ts > ? and placed_ts > ?"
                    " order by placed_ts", (start_ts - 1.0, start_ts - 1.0),
                )]
            failures, limit, rate_limit = self._failures, self.concurrency_limit, self.rate_limit_per_second
            heappop, heappush = heapq.heappop, heapq.heappush
            for index in range(len(placed)):
                if wait is not None and check_limit:
                    placed_ts = float(placed[index]) + waited_total - drawn_at[index]
                    while ends and ends[0] <= placed_ts:
                        heappop(ends)
                    waited = 0.0
                    while waited < wait.max_wait and len(ends) >= limit:
                        placed_ts += wait.step
                        waited += wait.step
                        while ends and ends[0] <= placed_ts:
                            heappop(ends)
                    waited_total += waited
                    if placed_ts >= until_ts:
                        break  # the window closed: this call and the rest are not placed
                    if drawn_at[index] != waited_total:
                        # placed later than planned: the same outcome, later, unless the callee's local hour or
                        # weekday changed meanwhile (then it is drawn again at the moment it is placed)
                        number = asked.to_numbers[index]
                        if _callee_hour_and_weekday(number, placed_ts) != _callee_hour_and_weekday(number, float(placed[index])):
                            _redraw(self, asked, placed, answer, end, outcomes, drawn_at, index, waited_total)
                        else:
                            placed[index], drawn_at[index] = placed_ts, waited_total
                            answer[index] = placed_ts + outcomes.ring_seconds[index]
                            end[index] = answer[index] + outcomes.talk_seconds[index]
                elif wait is not None and placed[index] >= until_ts:
                    break
                placed_ts, end_ts = float(placed[index]), float(end[index])
                if failures:
                    results.append(failures.pop(0))
                    if isinstance(results[-1], ProviderUnavailable):
                        break
                    continue
                if not dialable[index]:
                    results.append(InvalidNumber(f"to_number is not E.164: {asked.to_numbers[index]!r}"))
                    continue
                if check_limit:
                    while ends and ends[0] <= placed_ts:
                        heappop(ends)
                    if len(ends) >= limit:
                        results.append(ConcurrencyLimitReached(f"{len(ends)} calls in progress, limit {limit}"))
                        continue
                if rate_limit is not None:
                    recent = [ts for ts in recent if ts > placed_ts - 1.0]
                    if len(recent) >= rate_limit:
                        results.append(RateLimited(f"more than {rate_limit:g} calls per second"))
                        continue
                    recent.append(placed_ts)
                if check_limit:
                    heappush(ends, end_ts)
                results.append(None)  # the call id, once the accepted calls are counted
                accepted.append(index)
            ids = [f"sim_{seq:09d}" for seq in range(next_seq, next_seq + len(accepted))]
            for index, call_id in zip(accepted, ids):
                results[index] = call_id
            rows, columns = self._new_rows(ids, asked.rows(accepted), np.array(accepted, dtype=np.int64),
                                           placed, answer, end, outcomes)
            # rows by the dozens in one statement: a statement per row cost a sixth of the insert
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                chunk = rows[start:start + _ROWS_PER_INSERT]
                conn.execute(_insert_sql(len(chunk)), [value for row in chunk for value in row])
            if len(self._rows) + len(rows) > self._cache_size:
                self._rows.clear()
            self._rows.update(zip(ids, rows))
            self._columns.add(ids, columns)
        return results, placed

    def _new_rows(
        self, ids: list[str], asked: _Asked, take: np.ndarray, placed: np.ndarray, answer: np.ndarray,
        end: np.ndarray, outcomes: Outcomes,
    ) -> tuple[list[tuple], dict[str, np.ndarray]]:
        """The placed calls (``asked``: rows ``take`` of the batch) as SQLite rows and as cache columns."""
        answered = outcomes.talk_seconds[take] > 0
        answer_ts = np.where(answered, answer[take], np.nan)
        analyzed_ts = end[take] + outcomes.analysis_delay_seconds[take]
        reason, sentiment, custom = outcomes.reason[take], outcomes.sentiment[take], outcomes.custom[take]
        names = [_names(variables) for variables in asked.dynamic_variables]
        columns = {
            "placed_ts": placed[take], "answer_ts": answer_ts, "end_ts": end[take], "analyzed_ts": analyzed_ts,
            "reason": reason, "talk_seconds": outcomes.talk_seconds[take],
            # talk times are whole milliseconds: rounding to 3 digits (what get_calls reports) changes nothing
            "duration_seconds": outcomes.talk_seconds[take], "call_successful": outcomes.call_successful[take],
            "in_voicemail": outcomes.in_voicemail[take], "sentiment": sentiment, "custom": custom,
            "tools_count": outcomes.tools_count[take], "cost_cents": outcomes.cost_cents[take],
            "contact_name": np.array([name for name, _ in names], dtype=object),
            "company_name": np.array([company for _, company in names], dtype=object),
        }
        stored_answer_ts = answer_ts.astype(object)
        stored_answer_ts[~answered] = None
        rows = list(zip(
            ids, asked.attempt_keys, asked.to_numbers, asked.from_numbers, asked.agent_ids,
            [_dumps(variables) for variables in asked.dynamic_variables], [_dumps(metadata) for metadata in asked.metadata],
            columns["placed_ts"].tolist(), stored_answer_ts.tolist(), columns["end_ts"].tolist(), analyzed_ts.tolist(),
            _STORED_STATUS[_STATUS_OF_REASON[reason]].tolist(), _STORED_REASON[reason].tolist(),
            columns["talk_seconds"].tolist(), columns["call_successful"].astype(int).tolist(),
            _STORED_SENTIMENT[sentiment].tolist(), columns["in_voicemail"].astype(int).tolist(),
            _STORED_CUSTOM[custom].tolist(), columns["tools_count"].tolist(), columns["cost_cents"].tolist(),
            [self.seed] * len(ids),
        ))
        return rows, columns

    # -- reading ----------------------------------------------------------------------------------
    def get_call(self, provider_call_id: str, now: datetime) -> ProviderCall:
        """The call's state at ``now``. Raises CallNotFound for an id this simulator never issued."""
        return self.get_calls([provider_call_id], now)[0]

    def get_calls(self, provider_call_ids: Sequence[str], now: datetime) -> list[ProviderCall]:
        """The calls' states at ``now``, in the order asked."""
        now_ts = _as_ts(now)
        rows = {i: self._rows.get(i) for i in provider_call_ids}
        # the answer holds what it read even when remembering it evicts other rows (a cache smaller than the ask)
        for row in self._rows_by_id([i for i, row in rows.items() if row is None]):
            rows[row[0]] = row
            self._remember(row)
        calls = []
        for provider_call_id in provider_call_ids:
            row = rows[provider_call_id]
            if row is None:
                raise CallNotFound(f"no simulated call {provider_call_id!r}")
            calls.append(_call_at(row, now_ts))
        return calls

    def get_calls_frame(self, provider_call_ids: Sequence[str], now: datetime) -> pl.DataFrame:
        """The calls' states at ``now`` as one frame (``FRAME_SCHEMA``), a row per id in the order asked.

        Field for field what ``get_calls`` reports, without building a ProviderCall per call: the calls
        come from the in-memory columns, SQLite only for those placed by another process or instance.
        """
        now_ts = _as_ts(now)
        ids = list(provider_call_ids)
        with self._lock:
            positions = self._columns.positions(ids)
            block = {name: column[positions] for name, column in self._columns.columns.items()}
            misses = np.flatnonzero(positions < 0)
            if len(misses):
                missing = list(dict.fromkeys(ids[i] for i in misses.tolist()))
                rows = {row[0]: row for row in self._rows_by_id(missing)}
                unknown = next((i for i in missing if i not in rows), None)
                if unknown is not None:
                    raise CallNotFound(f"no simulated call {unknown!r}")
                loaded = _columns_from_rows([rows[i] for i in missing])
                row_of = {call_id: row for row, call_id in enumerate(missing)}
                from_loaded = np.array([row_of[ids[i]] for i in misses.tolist()], dtype=np.int64)
                for name, column in block.items():
                    column[misses] = loaded[name][from_loaded]
                self._columns.add(missing, loaded)
        return _frame_at(ids, block, now_ts)

    def list_calls(self, since: datetime, now: datetime) -> list[ProviderCall]:
        """Every call placed at or after ``since`` (and not after ``now``), in placement order."""
        rows = self._read(
            f"select {_COLUMNS} from sim_calls where placed_ts >= ? and placed_ts <= ? order by seq",
            (_as_ts(since), _as_ts(now)),
        )
        now_ts = _as_ts(now)
        return [_call_at(row, now_ts) for row in rows]

    def find_by_attempt_key(
        self, attempt_key: str, now: datetime, *, to_number: str | None = None, placed_after: datetime | None = None
    ) -> ProviderCall | None:
        """The first call placed with this attempt key, if any; with ``placed_after``, the first placed at or after it
        less ``CLOCK_SKEW_ALLOWANCE``. ``to_number`` is not needed: the simulator's calls are one store's own, in the
        file beside it. But that file is not part of a backup: a store restored from one reuses the attempt keys of
        the calls placed after the backup, which are still in the file."""
        if placed_after is None:
            return self.find_by_attempt_keys([attempt_key], now).get(attempt_key)
        floor = _as_ts(placed_after - CLOCK_SKEW_ALLOWANCE)
        row = next((r for r in self._read(_by_attempt_keys_sql(_COLUMNS, 1), (attempt_key,)) if r[7] >= floor), None)
        return None if row is None else _call_at(row, _as_ts(now))

    def find_by_attempt_keys(self, attempt_keys: Sequence[str], now: datetime) -> dict[str, ProviderCall]:
        """The first call placed with each attempt key, for the keys that have one."""
        now_ts = _as_ts(now)
        found: dict[str, ProviderCall] = {}
        keys = list(dict.fromkeys(attempt_keys))
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            for row in self._read(_by_attempt_keys_sql(_COLUMNS, len(chunk)), chunk):
                found.setdefault(row[1], _call_at(row, now_ts))
        return found

    def active_calls(self, now: datetime) -> int:
        """How many calls are ringing or talking at ``now``."""
        now_ts = _as_ts(now)
        return self._read(
            "select count(*) from sim_calls indexed by sim_calls_active where end_ts > ? and placed_ts <= ?", (now_ts, now_ts)
        )[0][0]

    def placed_count(self, attempt_key: str) -> int:
        """How many times a call was placed with this attempt key (more than 1 = a double dial)."""
        return len(self._read(_by_attempt_keys_sql("seq", 1), (attempt_key,)))

    def duplicate_attempt_keys(self) -> dict[str, int]:
        """Every attempt key placed more than once, with its count (empty when exactly once held)."""
        return dict(self._read(
            "select attempt_key, count(*) from sim_calls group by attempt_key having count(*) > 1"
        ))

    def total_placed(self) -> int:
        """How many calls were placed in total."""
        return self._read("select count(*) from sim_calls")[0][0]



def _call_at(row: tuple, now_ts: float) -> ProviderCall:
    """A stored call as the provider would report it at ``now_ts``."""
    (call_id, attempt_key, _to, _from, _agent, dynamic_json, _meta, placed_ts, answer_ts, end_ts,
     analyzed_ts, status, reason, talk, successful, sentiment, voicemail, custom_json, tools, cost,
     _seed) = row
    if now_ts < end_ts:
        if answer_ts is not None and now_ts >= answer_ts:
            return ProviderCall(call_id, CallStatus.in_progress, attempt_key=attempt_key, started_at=_as_dt(answer_ts))
        return ProviderCall(call_id, CallStatus.registered, attempt_key=attempt_key)
    final_reason = DisconnectReason(reason)
    call = ProviderCall(
        call_id, CallStatus(status), attempt_key=attempt_key, disconnect_reason=final_reason,
        disconnect_reason_raw=reason, started_at=_as_dt(answer_ts if answer_ts is not None else placed_ts),
        ended_at=_as_dt(end_ts), duration_seconds=round(talk, 3), cost_cents=cost,
        tools_count=tools if answer_ts is not None else None,
    )
    if answer_ts is not None:
        call.transcript = _transcript(final_reason, bool(voicemail), *_names(orjson.loads(dynamic_json)))
        call.recording_url = _recording_url(call_id)
    if now_ts >= analyzed_ts:
        call.analyzed = True
        call.call_successful = bool(successful)
        call.in_voicemail = bool(voicemail)
        if answer_ts is not None:
            call.user_sentiment = Sentiment(sentiment)
            call.custom_analysis = orjson.loads(custom_json)
            call.summary = _summary(final_reason, bool(voicemail), bool(successful), _custom_code(call.custom_analysis),
                                    talk)
    return call


def _columns_from_rows(rows: list[tuple]) -> dict[str, np.ndarray]:
    """Stored rows as cache columns (what ``_new_rows`` makes when placing)."""
    (_ids, _keys, _to, _from, _agent, dynamic, _meta, placed, answer, end, analyzed, _status, reason, talk,
     successful, sentiment, voicemail, custom, tools, cost, _seed) = zip(*rows)
    names = [_names(orjson.loads(variables)) for variables in dynamic]
    return {
        "placed_ts": np.array(placed, dtype=np.float64),
        "answer_ts": np.array([np.nan if ts is None else ts for ts in answer], dtype=np.float64),
        "end_ts": np.array(end, dtype=np.float64), "analyzed_ts": np.array(analyzed, dtype=np.float64),
        "reason": np.array([_REASON_CODE[r] for r in reason], dtype=np.int8),
        "talk_seconds": np.array(talk, dtype=np.float64),
        "duration_seconds": np.array([round(seconds, 3) for seconds in talk], dtype=np.float64),
        "call_successful": np.array([bool(s) for s in successful], dtype=np.bool_),
        "in_voicemail": np.array([bool(v) for v in voicemail], dtype=np.bool_),
        "sentiment": np.array([-1 if s is None else _SENTIMENT_CODE[s] for s in sentiment], dtype=np.int8),
        "custom": np.array([-1 if c is None else _custom_code(orjson.loads(c)) for c in custom], dtype=np.int8),
        "tools_count": np.array([t or 0 for t in tools], dtype=np.int32),
        "cost_cents": np.array(cost, dtype=np.float64),
        "contact_name": np.array([name for name, _ in names], dtype=object),
        "company_name": np.array([company for _, company in names], dtype=object),
    }


def _strings(codes: np.ndarray, values: Sequence[str], present: np.ndarray) -> pa.Array:
    """``values[code]`` per row, null where not ``present``."""
    return pa.array(np.array(values, dtype=object)[codes], mask=~present, type=pa.string())


def _times(ts: np.ndarray, present: np.ndarray) -> pa.Array:
    micros = _datetime_micros(np.where(present, ts, 0.0))
    return pa.array(micros, mask=~present).view(pa.timestamp("us", tz="UTC"))


def _frame_at(ids: list[str], block: dict[str, np.ndarray], now_ts: float) -> pl.DataFrame:
    """Cached calls (``block``, one row per id) as the provider reports them at ``now_ts``, in ``FRAME_SCHEMA``."""
    answer_ts = block["answer_ts"]
    answered = ~np.isnan(answer_ts)
    ended = now_ts >= block["end_ts"]
    talking = ~ended & answered & (now_ts >= answer_ts)
    analyzed = ended & (now_ts >= block["analyzed_ts"])
    heard = ended & answered  # transcript, recording and tools
    judged = analyzed & answered  # sentiment, custom analysis and summary
    status = np.where(ended, _STATUS_OF_REASON[block["reason"]],
                      np.where(talking, _STATUS_CODE[CallStatus.in_progress], _STATUS_CODE[CallStatus.registered]))
    reason = _strings(block["reason"], _REASON_VALUES, ended)
    # the texts from their templates, the columns read once as lists (a numpy scalar per field cost more)
    transcripts, recordings, summaries = (np.full(len(ids), None, dtype=object) for _ in range(3))
    rows = np.flatnonzero(heard)
    transcripts[rows] = [
        _TRANSCRIPTS[voicemail][code].format(name=name, company=company) for voicemail, code, name, company in zip(
            block["in_voicemail"][rows].tolist(), block["reason"][rows].tolist(), block["contact_name"][rows].tolist(),
            block["company_name"][rows].tolist())
    ]
    recordings[rows] = [_recording_url(ids[row]) for row in rows.tolist()]
    rows = np.flatnonzero(judged)
    summaries[rows] = [
        _SUMMARIES[voicemail][code][successful][custom].format(talk=talk)
        for voicemail, code, successful, custom, talk in zip(
            block["in_voicemail"][rows].tolist(), block["reason"][rows].tolist(),
            block["call_successful"][rows].tolist(), block["custom"][rows].tolist(), block["talk_seconds"][rows].tolist())
    ]
    table = pa.table({
        "provider_call_id": pa.array(ids, type=pa.string()),
        "status": _strings(status, _STATUS_VALUES, np.ones(len(ids), dtype=bool)),
        "disconnect_reason": reason,
        "disconnect_reason_raw": reason,
        "started_at": _times(np.where(answered, answer_ts, block["placed_ts"]), ended | talking),
        "ended_at": _times(block["end_ts"], ended),
        "duration_seconds": pa.array(block["duration_seconds"], mask=~ended),
        "analyzed": pa.array(analyzed),
        "call_successful": pa.array(block["call_successful"], mask=~analyzed),
        "user_sentiment": _strings(block["sentiment"], _SENTIMENT_VALUES, judged),
        "in_voicemail": pa.array(block["in_voicemail"], mask=~analyzed),
        "summary": pa.array(summaries, type=pa.string()),
        "custom_analysis": _strings(block["custom"], _CUSTOM_JSON, judged),
        "tools_count": pa.array(block["tools_count"], mask=~heard),
        "transcript": pa.array(transcripts, type=pa.string()),
        "recording_url": pa.array(recordings, type=pa.string()),
        "cost_cents": pa.array(block["cost_cents"], mask=~ended),
    })
    return pl.from_arrow(table)


def _recording_url(provider_call_id: str) -> str:
    return f"https://simulator.invalid/recordings/{provider_call_id}.wav"


def _transcript(reason: DisconnectReason, in_voicemail: bool, name: Any, company: Any) -> str:
    return _transcript_template(reason, in_voicemail).format(name=name, company=company)


_VOICEMAIL_MESSAGE = "Agent: Hi {name}, this is Ava calling for {company}. Please call us back when you can. Thanks!"


def _transcript_template(reason: DisconnectReason, in_voicemail: bool) -> str:
    """A connected call's transcript with ``{name}`` and ``{company}`` to fill in."""
    if reason == DisconnectReason.voicemail_reached:
        return _VOICEMAIL_MESSAGE
    if in_voicemail:  # a personalised greeting the agent took for the person
        return "User: Hi, this is {name}. I can't take your call right now, please leave a message.\n" + _VOICEMAIL_MESSAGE
    lines = ["Agent: Hi {name}, this is Ava. Do you have a minute to talk about {company}?", "User: Sure, go ahead."]
    if reason == DisconnectReason.call_transfer:
        lines.append("Agent: Let me connect you with a colleague.")
    elif reason == DisconnectReason.inactivity:
        lines.append("Agent: Hello? Are you still there?")
    else:
        lines.append("Agent: Thanks for your time today.")
    return "\n".join(lines)


def _summary(reason: DisconnectReason, in_voicemail: bool, successful: bool, custom: int, talk: float) -> str:
    """What a call analysis says about a connected call (``custom``: the custom analysis bits)."""
    return _summary_template(reason, in_voicemail, successful, custom).format(talk=talk)


def _summary_template(reason: DisconnectReason, in_voicemail: bool, successful: bool, custom: int) -> str:
    """``_summary`` with ``{talk:.0f}`` to fill in."""
    if reason == DisconnectReason.voicemail_reached:
        return "The call reached voicemail; the agent left a short message."
    if in_voicemail:
        return "The call reached a personal voicemail greeting; the agent took it for the contact and left a message."
    outcome = "agreed to the next step" if successful else "did not agree to the next step"
    extras = []
    if custom & 2:
        extras.append("asked to be called back")
    if custom & 1:
        extras.append("asked not to be called again")
    tail = f" and {' and '.join(extras)}" if extras else ""
    return f"A {{talk:.0f}}-second conversation; the contact {outcome}{tail} ({reason.value})."


# The templates by in_voicemail and reason code (and for summaries, successful and custom bits): an enum member
# hashes in Python.
_TRANSCRIPTS = tuple(tuple(_transcript_template(reason, in_voicemail) for reason in REASONS)
                     for in_voicemail in (False, True))
_SUMMARIES = tuple(tuple(tuple(tuple(_summary_template(reason, in_voicemail, successful, custom) for custom in range(8))
                               for successful in (False, True)) for reason in REASONS) for in_voicemail in (False, True))
