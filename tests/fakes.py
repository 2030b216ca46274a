"""An in-memory telephony provider for engine tests: scripted outcomes, a concurrency limit, a ledger."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from schemas.enums import STATUS_FOR_REASON, CallStatus, DisconnectReason
from tasks.telephony.base import CLOCK_SKEW_ALLOWANCE, CallRequest, ConcurrencyLimitReached, ProviderCall


class FakeProvider:
    """Every call rings for `ring` seconds then ends with `outcome(request)` (a reason, successful?)."""

    name = "fake"

    def __init__(self, concurrency_limit: int = 20, ring_seconds: float = 20, talk_seconds: float = 60,
                 outcome=None, fail_with: Exception | None = None):
        self.concurrency_limit = concurrency_limit
        self.ring, self.talk = timedelta(seconds=ring_seconds), timedelta(seconds=talk_seconds)
        self.outcome = outcome or (lambda request: (DisconnectReason.dial_no_answer, False))
        self.fail_with = fail_with
        self.calls: dict[str, tuple[CallRequest, datetime]] = {}
        self.placed = Counter()  # attempt key → times placed

    def _end(self, request: CallRequest, placed_at: datetime) -> datetime:
        reason, _ = self.outcome(request)
        connected = STATUS_FOR_REASON[reason] == CallStatus.ended
        return placed_at + self.ring + (self.talk if connected else timedelta(0))

    def active_calls(self, now: datetime) -> int:
        return sum(1 for request, placed in self.calls.values() if placed <= now < self._end(request, placed))

    def place_call(self, request: CallRequest, now: datetime) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        if self.active_calls(now) >= self.concurrency_limit:
            raise ConcurrencyLimitReached("limit")
        call_id = f"fake_{len(self.calls) + 1}"
        self.calls[call_id] = (request, now)
        self.placed[request.attempt_key] += 1
        return call_id

    def get_call(self, provider_call_id: str, now: datetime) -> ProviderCall:
        request, placed = self.calls[provider_call_id]
        end = self._end(request, placed)
        if now < end:
            return ProviderCall(provider_call_id, CallStatus.registered, attempt_key=request.attempt_key)
        reason, successful = self.outcome(request)
        status = STATUS_FOR_REASON[reason]
        duration = (end - placed - self.ring).total_seconds()
        return ProviderCall(
            provider_call_id, status, attempt_key=request.attempt_key, disconnect_reason=reason,
            started_at=placed, ended_at=end, duration_seconds=duration, analyzed=True,
            call_successful=successful, in_voicemail=reason == DisconnectReason.voicemail_reached,
        )

    def list_calls(self, since: datetime, now: datetime) -> list[ProviderCall]:
        return [self.get_call(cid, now) for cid, (_, placed) in self.calls.items() if placed >= since]

    def find_by_attempt_key(
        self, attempt_key: str, now: datetime, *, to_number: str | None = None, placed_after: datetime | None = None
    ) -> ProviderCall | None:
        floor = None if placed_after is None else placed_after - CLOCK_SKEW_ALLOWANCE
        for cid, (request, placed) in self.calls.items():
            if request.attempt_key == attempt_key and (floor is None or placed >= floor):
                return self.get_call(cid, now)
        return None
