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
    """Credits a finished call consumes: answered minutes (each started one), voicemail, or 0.

    A standard voicemail (the provider recognised the box and hung up: `voicemail_reached`) bills the flat rate;
    a box whose personalised greeting the agent took for the person and talked into (the analysis says
    `in_voicemail`, the call ended another way) bills as answered, as the product does. A voicemail without a
    duration bills the flat rate.
    """
    if status not in (CallStatus.ended, CallStatus.error):
        return 0  # never connected (or not finished): nothing billed
    # a missing or non-finite duration is none (a NaN read as a length would bill nonsense)
    seconds = duration_seconds if duration_seconds is not None and math.isfinite(duration_seconds) else 0.0
    if disconnect_reason == DisconnectReason.voicemail_reached or (in_voicemail and seconds <= 0):
        return rates.per_voicemail
    return rates.per_answered_minute * math.ceil(seconds / 60) if seconds > 0 else 0
