"""The embedded telephony provider: seeded, realistic outcomes on a given clock, state in SQLite.

A call's whole outcome (ring time, answer, talk time, reason, analysis) is decided when it is placed,
as a pure function of (seed, attempt key, to-number, placed time): a hash of those seeds one
``random.Random`` for that call, so re-running a simulation gives identical results and several
processes agree. What a reader sees then only depends on the clock it passes in (``now``).

Placed calls live in a small SQLite file (WAL mode, shared by processes: the CLI dials in one,
enrichment reads in another, tests kill processes mid-batch). Every placement is recorded, even a
repeated attempt key, so tests can prove that no attempt was dialled twice.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import random
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from phonenumbers import NumberParseException, parse
from phonenumbers.timezone import time_zones_for_number

from schemas.enums import STATUS_FOR_REASON, CallStatus, DisconnectReason, Sentiment
from tasks.settings import get_settings
from tasks.telephony.base import (
    CallNotFound,
    CallRequest,
    ConcurrencyLimitReached,
    InvalidNumber,
    ProviderCall,
    ProviderError,
    ProviderUnavailable,
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
    no_answer_share: float = NO_ANSWER_SHARE  # of unanswered calls
    busy_share: float = BUSY_SHARE  # of unanswered calls; the rest decline
    failure_scale: float = 1.0  # multiplies the spam, rare-error and dial_failed shares (FAILURE_SHARE)
    success_scale: float = 1.0  # multiplies the success chance by talk time (SUCCESS_SHARE overall)

    def __post_init__(self) -> None:
        if len(self.answer_scale_by_hour) != 24 or min(self.answer_scale_by_hour) < 0:
            raise ValueError("answer_scale_by_hour needs 24 factors >= 0")
        shares = (self.voicemail_share, self.no_answer_share, self.busy_share, self.no_answer_share + self.busy_share)
        if min(shares) < 0 or max(shares) > 1:
            raise ValueError("voicemail, no-answer and busy shares must be within 0..1 (no-answer + busy too)")
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
    provider_call_id  text not null unique,
    attempt_key       text not null,
    to_number         text not null,
    from_number       text not null,
    agent_id          text not null,
    dynamic_variables text not null,
    metadata          text not null,  -- the request metadata besides attempt_key (its own column)
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
create index if not exists sim_calls_attempt_key on sim_calls (attempt_key);
create index if not exists sim_calls_active on sim_calls (end_ts, placed_ts);
create index if not exists sim_calls_placed_ts on sim_calls (placed_ts);
"""


@dataclass(frozen=True)
class Outcome:
    """What will happen to one simulated call, decided when it is placed (times in seconds)."""

    reason: DisconnectReason
    ring_seconds: float
    talk_seconds: float  # 0 unless the call was answered (conversation or voicemail)
    analysis_delay_seconds: float
    call_successful: bool
    in_voicemail: bool
    sentiment: Sentiment | None
    custom_analysis: dict[str, bool] | None
    tools_count: int
    cost_cents: float

    @property
    def status(self) -> CallStatus:
        return STATUS_FOR_REASON[self.reason]

    @property
    def answered(self) -> bool:
        return self.talk_seconds > 0


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
    digest = hashlib.blake2b(to_number.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % 1000 < INVALID_NUMBER_PER_MILLE


def answer_probability(local: datetime) -> float:
    """Chance that a callee picks up at this local time."""
    return ANSWER_BY_HOUR[local.hour] * ANSWER_BY_WEEKDAY[local.weekday()]


def _timestamp_micros(placed_ts: float) -> int:
    return int(round(placed_ts * 1_000_000))


def call_rng(seed: int, attempt_key: str, to_number: str, placed_ts: float) -> random.Random:
    """The random stream of one call: a pure function of its seeds, independent of global state."""
    material = f"{seed}|{attempt_key}|{to_number}|{_timestamp_micros(placed_ts)}".encode()
    return random.Random(int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "big"))


def simulate_outcome(
    seed: int, attempt_key: str, to_number: str, placed_ts: float, rates: OutcomeRates = DEFAULT_RATES,
) -> Outcome:
    """The outcome of one call placed at ``placed_ts`` (UTC epoch seconds); deterministic."""
    # The default rates multiply by 1.0 and compare with the same constants: the same draws, the same outcomes.
    rng = call_rng(seed, attempt_key, to_number, placed_ts)
    if is_always_invalid(to_number):
        return _not_connected(DisconnectReason.invalid_destination, rng.uniform(0.5, 3.0))
    spam_share, rare_error_share = SPAM_SHARE * rates.failure_scale, RARE_ERROR_SHARE * rates.failure_scale
    draw = rng.random()
    if draw < spam_share:
        return _not_connected(DisconnectReason.marked_as_spam, rng.uniform(1.0, 8.0))
    draw -= spam_share
    if draw < rare_error_share * len(RARE_ERRORS):
        return _not_connected(RARE_ERRORS[int(draw / rare_error_share)], rng.uniform(2.0, 12.0))
    draw -= rare_error_share * len(RARE_ERRORS)
    if draw < DIAL_FAILED_SHARE * rates.failure_scale:
        return _not_connected(DisconnectReason.dial_failed, rng.uniform(1.0, 5.0))

    local = datetime.fromtimestamp(placed_ts, callee_zone(to_number))
    if rng.random() >= answer_probability(local) * rates.answer_scale_by_hour[local.hour]:
        kind = rng.random()
        if kind < rates.no_answer_share:
            return _not_connected(DisconnectReason.dial_no_answer, rng.uniform(25.0, 45.0))
        if kind < rates.no_answer_share + rates.busy_share:
            return _not_connected(DisconnectReason.dial_busy, rng.uniform(1.0, 5.0))
        return _not_connected(DisconnectReason.user_declined, rng.uniform(4.0, 15.0))

    ring = rng.uniform(3.0, 20.0)
    delay = rng.uniform(*ANALYSIS_DELAY_SECONDS)
    if rng.random() < rates.voicemail_share:
        talk = rng.uniform(12.0, 40.0)
        return Outcome(
            reason=DisconnectReason.voicemail_reached, ring_seconds=ring, talk_seconds=talk,
            analysis_delay_seconds=delay, call_successful=False, in_voicemail=True,
            sentiment=Sentiment.Unknown,
            custom_analysis={"interested": False, "callback_requested": False, "do_not_call": False},
            tools_count=0, cost_cents=_cost(talk),
        )
    talk = max(3.0, rng.lognormvariate(math.log(TALK_MEDIAN_SECONDS), TALK_SIGMA))
    if talk >= MAX_DURATION_SECONDS:
        talk, reason = MAX_DURATION_SECONDS, DisconnectReason.max_duration_reached
    else:
        kind = rng.random()
        reason = (
            DisconnectReason.user_hangup if kind < 0.45
            else DisconnectReason.agent_hangup if kind < 0.85
            else DisconnectReason.call_transfer if kind < 0.92
            else DisconnectReason.inactivity
        )
    success_chance = next(share for bound, share in SUCCESS_BY_TALK if talk < bound)
    successful = rng.random() < success_chance * rates.success_scale
    sentiment = _pick_sentiment(rng, successful)
    do_not_call = not successful and rng.random() < 0.03
    custom = {
        "interested": successful or (not do_not_call and rng.random() < 0.10),
        "callback_requested": not do_not_call and rng.random() < 0.12,
        "do_not_call": do_not_call,
    }
    tools = rng.randint(1, 3) if successful else rng.randint(0, 1)
    return Outcome(
        reason=reason, ring_seconds=ring, talk_seconds=talk, analysis_delay_seconds=delay,
        call_successful=successful, in_voicemail=False, sentiment=sentiment,
        custom_analysis=custom, tools_count=tools, cost_cents=_cost(talk),
    )


def _not_connected(reason: DisconnectReason, ring: float) -> Outcome:
    return Outcome(
        reason=reason, ring_seconds=ring, talk_seconds=0.0, analysis_delay_seconds=0.0,
        call_successful=False, in_voicemail=False, sentiment=None, custom_analysis=None,
        tools_count=0, cost_cents=0.0,
    )


def _pick_sentiment(rng: random.Random, successful: bool) -> Sentiment:
    draw = rng.random()
    if successful:
        return Sentiment.Positive if draw < 0.70 else Sentiment.Neutral if draw < 0.95 else Sentiment.Negative
    return (
        Sentiment.Positive if draw < 0.15 else Sentiment.Neutral if draw < 0.60
        else Sentiment.Negative if draw < 0.90 else Sentiment.Unknown
    )


def _cost(talk_seconds: float) -> float:
    return round(talk_seconds / 60.0 * COST_CENTS_PER_MINUTE, 2)


def _dumps(mapping: dict) -> str:
    return json.dumps(mapping) if mapping else "{}"


@lru_cache(maxsize=16)
def _custom_json(interested: bool, callback_requested: bool, do_not_call: bool) -> str:
    # Eight possible values: encode each once (JSON encoding was a tenth of a placement's cost).
    return json.dumps({"interested": interested, "callback_requested": callback_requested, "do_not_call": do_not_call})


def _as_ts(now: datetime) -> float:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.timestamp()


def _as_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class SimulatedProvider:
    """The embedded provider: seeded outcomes, a concurrency limit and an optional rate limit.

    ``seed`` and ``concurrency_limit`` default to the settings (CAMPAIGNS_SIMULATOR_SEED,
    CAMPAIGNS_PROVIDER_CONCURRENCY_LIMIT); ``rate_limit_per_second`` is off unless given; ``rates``
    replaces the default outcome odds (the forecast passes a campaign's observed mix).
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
        self._failures: list[ProviderError] = []
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    # -- storage ---------------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        # A forked child must not reuse its parent's SQLite handle.
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
            conn.execute("pragma busy_timeout = 30000")
            conn.execute("pragma journal_mode = wal")
            # WAL + NORMAL: a committed placement survives a killed process (not a power cut).
            conn.execute("pragma synchronous = normal")
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
        start_ts = _as_ts(now)
        results: list[str | ProviderError] = []
        rows: list[tuple] = []
        with self._write() as conn:
            next_seq = conn.execute("select coalesce(max(seq), 0) + 1 from sim_calls").fetchone()[0]
            active_sql = "from sim_calls indexed by sim_calls_active where end_ts > ? and placed_ts <= ?"
            active = conn.execute(f"select count(*) {active_sql}", (start_ts, start_ts)).fetchone()[0]
            # The end times are only needed when this batch could reach the limit.
            check_limit = active + len(requests) >= self.concurrency_limit
            ends = [r[0] for r in conn.execute(f"select end_ts {active_sql}", (start_ts, start_ts))] if check_limit else []
            heapq.heapify(ends)
            recent: list[float] = []
            if self.rate_limit_per_second is not None:
                recent = [r[0] for r in conn.execute(
                    "select placed_ts from sim_calls where placed_ts > ? order by placed_ts",
                    (start_ts - 1.0,),
                )]
            for index, request in enumerate(requests):
                placed_ts = start_ts + index * pace_seconds
                if self._failures:
                    results.append(self._failures.pop(0))
                    if isinstance(results[-1], ProviderUnavailable):
                        break
                    continue
                if not E164.fullmatch(request.to_number):
                    results.append(InvalidNumber(f"to_number is not E.164: {request.to_number!r}"))
                    continue
                while ends and ends[0] <= placed_ts:
                    heapq.heappop(ends)
                if check_limit and len(ends) >= self.concurrency_limit:
                    results.append(ConcurrencyLimitReached(
                        f"{len(ends)} calls in progress, limit {self.concurrency_limit}"
                    ))
                    continue
                if self.rate_limit_per_second is not None:
                    recent = [ts for ts in recent if ts > placed_ts - 1.0]
                    if len(recent) >= self.rate_limit_per_second:
                        results.append(RateLimited(f"more than {self.rate_limit_per_second:g} calls per second"))
                        continue
                    recent.append(placed_ts)
                row = self._new_row(next_seq, request, placed_ts)
                next_seq += 1
                if check_limit:
                    heapq.heappush(ends, row[9])
                rows.append(row)
                results.append(row[0])
            conn.executemany(
                f"insert into sim_calls ({_COLUMNS}) values ({', '.join('?' * 21)})", rows
            )
        for row in rows:
            self._remember(row)
        return results

    def _new_row(self, seq: int, request: CallRequest, placed_ts: float) -> tuple:
        outcome = simulate_outcome(self.seed, request.attempt_key, request.to_number, placed_ts, self.rates)
        answer_ts = placed_ts + outcome.ring_seconds if outcome.answered else None
        end_ts = placed_ts + outcome.ring_seconds + outcome.talk_seconds
        return (
            f"sim_{seq:09d}", request.attempt_key, request.to_number, request.from_number,
            request.provider_agent_id, _dumps(request.dynamic_variables), _dumps(request.metadata),
            placed_ts, answer_ts, end_ts, end_ts + outcome.analysis_delay_seconds,
            outcome.status.value, outcome.reason.value, outcome.talk_seconds,
            int(outcome.call_successful), outcome.sentiment.value if outcome.sentiment else None,
            int(outcome.in_voicemail),
            _custom_json(**outcome.custom_analysis) if outcome.custom_analysis is not None else None,
            outcome.tools_count, outcome.cost_cents, self.seed,
        )

    # -- reading ----------------------------------------------------------------------------------
    def get_call(self, provider_call_id: str, now: datetime) -> ProviderCall:
        """The call's state at ``now``. Raises CallNotFound for an id this simulator never issued."""
        return self.get_calls([provider_call_id], now)[0]

    def get_calls(self, provider_call_ids: Sequence[str], now: datetime) -> list[ProviderCall]:
        """The calls' states at ``now``, in the order asked."""
        now_ts = _as_ts(now)
        missing = [i for i in dict.fromkeys(provider_call_ids) if i not in self._rows]
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            for row in self._read(
                f"select {_COLUMNS} from sim_calls where provider_call_id in ({', '.join('?' * len(chunk))})",
                chunk,
            ):
                self._remember(row)
        calls = []
        for provider_call_id in provider_call_ids:
            row = self._rows.get(provider_call_id)
            if row is None:
                raise CallNotFound(f"no simulated call {provider_call_id!r}")
            calls.append(_call_at(row, now_ts))
        return calls

    def list_calls(self, since: datetime, now: datetime) -> list[ProviderCall]:
        """Every call placed at or after ``since`` (and not after ``now``), in placement order."""
        rows = self._read(
            f"select {_COLUMNS} from sim_calls where placed_ts >= ? and placed_ts <= ? order by seq",
            (_as_ts(since), _as_ts(now)),
        )
        now_ts = _as_ts(now)
        return [_call_at(row, now_ts) for row in rows]

    def find_by_attempt_key(self, attempt_key: str, now: datetime) -> ProviderCall | None:
        """The first call placed with this attempt key, if any."""
        rows = self._read(
            f"select {_COLUMNS} from sim_calls where attempt_key = ? order by seq limit 1", (attempt_key,)
        )
        return _call_at(rows[0], _as_ts(now)) if rows else None

    def find_by_attempt_keys(self, attempt_keys: Sequence[str], now: datetime) -> dict[str, ProviderCall]:
        """The first call placed with each attempt key, for the keys that have one."""
        now_ts = _as_ts(now)
        found: dict[str, ProviderCall] = {}
        keys = list(dict.fromkeys(attempt_keys))
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            for row in self._read(
                f"select {_COLUMNS} from sim_calls where attempt_key in ({', '.join('?' * len(chunk))}) order by seq",
                chunk,
            ):
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
        return self._read("select count(*) from sim_calls where attempt_key = ?", (attempt_key,))[0][0]

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
        variables = json.loads(dynamic_json)
        call.transcript = _transcript(final_reason, variables)
        call.recording_url = f"https://simulator.invalid/recordings/{call_id}.wav"
    if now_ts >= analyzed_ts:
        call.analyzed = True
        call.call_successful = bool(successful)
        call.in_voicemail = bool(voicemail)
        if answer_ts is not None:
            call.user_sentiment = Sentiment(sentiment)
            call.custom_analysis = json.loads(custom_json)
            call.summary = _summary(final_reason, bool(successful), call.custom_analysis, talk)
    return call


def _transcript(reason: DisconnectReason, variables: dict[str, str]) -> str:
    name = variables.get("contact_name") or variables.get("first_name") or "there"
    company = variables.get("company_name") or "your company"
    if reason == DisconnectReason.voicemail_reached:
        return f"Agent: Hi {name}, this is Ava calling for {company}. Please call us back when you can. Thanks!"
    lines = [f"Agent: Hi {name}, this is Ava. Do you have a minute to talk about {company}?", "User: Sure, go ahead."]
    if reason == DisconnectReason.call_transfer:
        lines.append("Agent: Let me connect you with a colleague.")
    elif reason == DisconnectReason.inactivity:
        lines.append("Agent: Hello? Are you still there?")
    else:
        lines.append("Agent: Thanks for your time today.")
    return "\n".join(lines)


def _summary(reason: DisconnectReason, successful: bool, custom: dict, talk: float) -> str:
    if reason == DisconnectReason.voicemail_reached:
        return "The call reached voicemail; the agent left a short message."
    outcome = "agreed to the next step" if successful else "did not agree to the next step"
    extras = []
    if custom.get("callback_requested"):
        extras.append("asked to be called back")
    if custom.get("do_not_call"):
        extras.append("asked not to be called again")
    tail = f" and {' and '.join(extras)}" if extras else ""
    return f"A {talk:.0f}-second conversation; the contact {outcome}{tail} ({reason.value})."
