"""Clocks: the wall clock for production, a virtual clock that makes a simulated month take seconds."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    """What time-dependent loops need: the time now, and a way to wait."""

    virtual: bool

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    """Real time, real sleeps."""

    virtual = False

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """Simulated time: sleeping moves the clock forward instantly."""

    virtual = True

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("the virtual clock needs a time-zone-aware start")
        self._now = start.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += timedelta(seconds=seconds)

    def advance_to(self, moment: datetime) -> None:
        """Jump forward (never back) to `moment`."""
        if moment > self._now:
            self._now = moment.astimezone(timezone.utc)
