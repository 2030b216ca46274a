"""Credits: one rate card, applied in one place."""

from __future__ import annotations

import math
from dataclasses import dataclass

from schemas.enums import CallStatus, DisconnectReason


@dataclass(frozen=True)
class RateCard:
    """Credits per started answered minute and per call that reached a standard voicemail."""

    per_answered_minute: int = 333
    per_voicemail: int = 75

    @classmethod
    def from_settings(cls) -> RateCard:
        from tasks.settings import get_settings

        s = get_settings()
        return cls(s.credits_per_answered_minute, s.credits_per_voicemail)


def call_credits(
    status: str | None,
    disconnect_reason: str | None,
    duration_seconds: float | None,
    in_voicemail: bool | None,
    rates: RateCard = RateCard(),
) -> int:
    """Credits a finished call consumes: answered minutes (each started one), voicemail, or 0."""
    if status not in (CallStatus.ended, CallStatus.error):
        return 0  # never connected (or not finished): nothing billed
    if in_voicemail or disconnect_reason == DisconnectReason.voicemail_reached:
        return rates.per_voicemail
    seconds = duration_seconds or 0.0
    return rates.per_answered_minute * math.ceil(seconds / 60) if seconds > 0 else 0
