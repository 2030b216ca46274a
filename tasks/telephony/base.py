"""The telephony provider interface: place a call, read it, list calls; typed errors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import orjson
import polars as pl

from schemas.enums import CallStatus, DisconnectReason, Sentiment

# The latest moment the call being placed may start: the campaign's calling window closing or the end of the
# span its callee's window was checked for, whichever comes first (set by the dialer around `place_call`). A
# provider that may wait before placing (the cluster's global call slots) refuses the call rather than start
# it later.
PLACING_DEADLINE: ContextVar[datetime | None] = ContextVar("placing_deadline", default=None)


@contextmanager
def placing_deadline(moment: datetime | None) -> Iterator[None]:
    """`PLACING_DEADLINE` set to `moment` for the calls placed inside the block."""
    token = PLACING_DEADLINE.set(moment)
    try:
        yield
    finally:
        PLACING_DEADLINE.reset(token)

# A provider's call records as one frame (`get_calls_frame`): a ProviderCall's fields as columns, enums as
# their values, custom analysis as JSON text. tasks.call_state's update frame is this plus our call id.
RECORD_SCHEMA = {
    "provider_call_id": pl.String,
    "status": pl.String,
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


class ProviderError(Exception):
    """The provider could not do what was asked."""


class RateLimited(ProviderError):
    """Refused for rate (HTTP 429): not an attempt; retry later."""


class ConcurrencyLimitReached(ProviderError):
    """Refused because too many calls are in progress: not an attempt; retry later."""


class ProviderUnavailable(ProviderError):
    """The provider is unreachable or failing (timeouts, 5xx after retries)."""


class OutcomeUnknown(ProviderUnavailable):
    """A placement failed after it may have reached the provider: reconcile by attempt key, never redial blindly."""


class InvalidNumber(ProviderError):
    """The provider rejected the destination number."""


class CallNotFound(ProviderError):
    """The provider has no call with this id."""


@dataclass(frozen=True)
class CallRequest:
    """What we ask the provider to dial."""

    to_number: str
    from_number: str
    provider_agent_id: str
    attempt_key: str
    dynamic_variables: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallBatch:
    """Calls to place as columns: ``requests()`` is the same batch as CallRequests, one per call.

    Call i dials ``to_numbers[i]`` from ``from_numbers[i]`` with ``attempt_keys[i]``; its dynamic variables are the
    JSON object ``dynamic_variables[i]`` (text, as a claim stores it) and its metadata ``{"attempt_key": key,
    **metadata}``. A dialer holding a claimed frame hands over its columns; a provider that places columns
    (``ColumnarTelephonyProvider``) skips an object per call, the others get ``requests()``.
    """

    to_numbers: Sequence[str]
    from_numbers: Sequence[str]
    attempt_keys: Sequence[str]
    dynamic_variables: Sequence[str]
    provider_agent_id: str
    metadata: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.attempt_keys)

    def requests(self) -> list[CallRequest]:
        return [
            CallRequest(to_number=to, from_number=caller, provider_agent_id=self.provider_agent_id, attempt_key=key,
                        dynamic_variables=orjson.loads(variables), metadata={"attempt_key": key, **self.metadata})
            for to, caller, key, variables in zip(self.to_numbers, self.from_numbers, self.attempt_keys,
                                                  self.dynamic_variables)
        ]


@dataclass
class ProviderCall:
    """A provider's call, normalised to our vocabulary."""

    provider_call_id: str
    status: CallStatus
    attempt_key: str | None = None
    disconnect_reason: DisconnectReason | None = None
    disconnect_reason_raw: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    analyzed: bool = False
    call_successful: bool | None = None
    user_sentiment: Sentiment | None = None
    in_voicemail: bool | None = None
    summary: str | None = None
    custom_analysis: dict[str, Any] | None = None
    tools_count: int | None = None
    transcript: str | None = None
    recording_url: str | None = None
    cost_cents: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in (CallStatus.ended, CallStatus.not_connected, CallStatus.error)


# How far a provider's clock may run behind ours: a call the provider placed earlier than this before our attempt
# row was queued is not that row's call (`find_by_attempt_key`'s ``placed_after``).
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)


@runtime_checkable
class TelephonyProvider(Protocol):
    """One interface for the simulator and the Retell adapter. Flows receive one; they never build it."""

    name: str
    concurrency_limit: int

    def place_call(self, request: CallRequest, now: datetime) -> str:
        """Dial; returns the provider's call id. Raises RateLimited, ConcurrencyLimitReached,
        ProviderUnavailable or InvalidNumber."""

    def get_call(self, provider_call_id: str, now: datetime) -> ProviderCall:
        """The call's current state."""

    def list_calls(self, since: datetime, now: datetime) -> list[ProviderCall]:
        """Every call placed at or after ``since``."""

    def find_by_attempt_key(
        self, attempt_key: str, now: datetime, *, to_number: str | None = None, placed_after: datetime | None = None
    ) -> ProviderCall | None:
        """The call placed with this attempt key in its metadata, if the provider has one. An attempt key is unique
        within one store only (a restored backup, a staging store on the same account): given ``to_number`` (our
        row's phone), a provider whose account other stores share skips a call with the key to another number;
        given ``placed_after`` (when our row was queued), every provider skips a call placed more than
        ``CLOCK_SKEW_ALLOWANCE`` before it (a restored store's next attempts reuse the keys of the calls placed
        after its backup)."""

    def active_calls(self, now: datetime) -> int:
        """How many calls are in progress at the provider now (for pacing under its limit)."""


@runtime_checkable
class BatchTelephonyProvider(TelephonyProvider, Protocol):
    """A provider with batch forms (both of ours): fewer round trips for a batch of calls."""

    def place_calls(
        self, requests: Sequence[CallRequest], now: datetime, pace_seconds: float = 0.0
    ) -> list[str | ProviderError]:
        """Dial in order, the i-th at ``now + i * pace_seconds`` (virtual clock for the simulator, real
        waiting for Retell). Per request: the provider call id, or the refusal (RateLimited,
        ConcurrencyLimitReached, InvalidNumber). A ProviderUnavailable (or OutcomeUnknown) ends the batch:
        it is the last element, and the requests after it were not attempted (the list is shorter)."""

    def get_calls(self, provider_call_ids: Sequence[str], now: datetime) -> list[ProviderCall]:
        """The calls' current states, in the order asked."""

    def find_by_attempt_keys(self, attempt_keys: Sequence[str], now: datetime) -> dict[str, ProviderCall]:
        """For each attempt key the provider has a call for, that call (keys without one are absent)."""


@runtime_checkable
class ColumnarTelephonyProvider(BatchTelephonyProvider, Protocol):
    """A batch provider that places a CallBatch as it is (the simulator): optional, see ``place_batch``."""

    def place_call_batch(
        self, batch: CallBatch, now: datetime, pace_seconds: float = 0.0
    ) -> list[str | ProviderError]:
        """Exactly ``place_calls(batch.requests(), now, pace_seconds)``, without building a request per call."""


@dataclass(frozen=True)
class CapacityWait:
    """How the real-time dialer paces a batch, for a provider that places it on a virtual clock.

    Before each call (after the pace): while the provider is at its concurrency limit, wait ``step``
    seconds at a time, ``max_wait`` at most (then place it anyway: the provider refuses it); place nothing
    at or after ``until`` (the calling window's end; None: no end, a manual run).
    """

    step: float
    max_wait: float
    until: datetime | None


@dataclass
class PlacedBatch:
    """A waiting placement's result: per call answered, in order, the provider call id or the refusal, and when
    it was placed. Shorter than the batch when the window closed or the provider went down (its last answer)."""

    answers: list[str | ProviderError]
    placed_at: list[datetime]


@runtime_checkable
class WaitingTelephonyProvider(ColumnarTelephonyProvider, Protocol):
    """A columnar provider that also paces a batch as the real-time dialer does (the simulator): optional."""

    def place_call_batch_waiting(
        self, batch: CallBatch, now: datetime, pace_seconds: float, wait: CapacityWait
    ) -> PlacedBatch:
        """The calls one after another from ``now``, each ``pace_seconds`` after the previous one plus any wait
        for capacity (``wait``), exactly as placing them one by one on that clock would."""


def place_batch(
    provider: BatchTelephonyProvider, batch: CallBatch, now: datetime, pace_seconds: float = 0.0
) -> list[str | ProviderError]:
    """``place_calls`` of the batch, through the provider's columnar form when it has one."""
    # getattr, not isinstance: a runtime protocol check inspects every member, on every batch
    place_columns = getattr(provider, "place_call_batch", None)
    if place_columns is not None:
        return place_columns(batch, now, pace_seconds=pace_seconds)
    return provider.place_calls(batch.requests(), now, pace_seconds=pace_seconds)


@runtime_checkable
class FrameTelephonyProvider(BatchTelephonyProvider, Protocol):
    """A batch provider that can also read calls as one frame (the simulator): optional, check with isinstance.

    For a simulated campaign's hundreds of thousands of reads, building a ProviderCall per call and then a
    frame from them costs more than the simulation itself.
    """

    def get_calls_frame(self, provider_call_ids: Sequence[str], now: datetime) -> pl.DataFrame:
        """``get_calls`` as one frame, a row per id in the order asked: ``provider_call_id``, then the columns and
        dtypes of ``tasks.call_state``'s update frame without ``call_id`` (enums as their values, custom analysis
        as JSON text), field for field what that frame makes of ``get_calls``. Raises CallNotFound for an unknown id."""
