"""A campaign's calling schedule on the clock: is it open now, and when does it next open."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from schemas.enums import WEEKDAYS


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """A cached IANA time zone."""
    return ZoneInfo(name)


def _parse_hhmm(text: str) -> time:
    if text in ("24:00", "24:00:00"):
        return time.max
    return time.fromisoformat(text)


def within(start: time, end: time, wall: time) -> bool:
    """`wall` in the [start, end) window; an end of 24:00 (time.max) holds the day's last instant too."""
    return start <= wall and (wall < end or end == time.max)


def wall_reached(day: date, wall: time, tz: ZoneInfo, fold: int = 0) -> datetime:
    """The first instant (UTC) at which the local clock of `tz` reads `wall` on `day` (24:00 = the next day's 00:00;
    `fold` picks the second pass of a repeated hour). A wall time a DST jump skips is reached at the jump: read
    with the offset before it (`fold=0`), it would fall after the jump, by as much as the jump."""
    if wall == time.max:
        day, wall, fold = day + timedelta(days=1), time.min, 0
    target = datetime.combine(day, wall)
    at = target.replace(tzinfo=tz, fold=fold).astimezone(timezone.utc)
    if at.astimezone(tz).replace(tzinfo=None) == target:
        return at
    # skipped: the jump lies between the readings with the offsets after (fold=1) and before (fold=0) it;
    # offsets change on whole seconds
    low, high = target.replace(tzinfo=tz, fold=1).astimezone(timezone.utc), at
    while high - low > timedelta(seconds=1):
        middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
        if middle.astimezone(tz).replace(tzinfo=None) >= target:
            high = middle
        else:
            low = middle
    return high


@dataclass(frozen=True)
class Schedule:
    """When a campaign may call: dates (inclusive, local), weekdays and [start, end) local windows."""

    time_zone: str
    calling_days: tuple[str, ...]
    windows: dict[str, tuple[tuple[time, time], ...]]
    start_date: date | None
    end_date: date | None

    @classmethod
    def from_row(cls, time_zone: str, calling_days, weekly_schedule, start_date, end_date) -> Schedule:
        """Build from the `campaigns` columns (weekly_schedule as JSON text or dict)."""
        raw = json.loads(weekly_schedule) if isinstance(weekly_schedule, str) else (weekly_schedule or {})
        windows = {
            day: tuple(sorted((_parse_hhmm(start), _parse_hhmm(end)) for start, end in raw.get(day, [])))
            for day in WEEKDAYS
        }
        return cls(time_zone, tuple(calling_days or ()), windows, start_date, end_date)

    def local(self, now: datetime) -> datetime:
        return now.astimezone(zone(self.time_zone))

    def in_date_range(self, local_day: date) -> bool:
        if self.start_date is None or local_day < self.start_date:
            return False
        return self.end_date is None or local_day <= self.end_date

    def is_open(self, now: datetime) -> bool:
        """True when `now` falls on a calling day inside the date range and a window (local wall time)."""
        local = self.local(now)
        day = WEEKDAYS[local.weekday()]
        if day not in self.calling_days or not self.in_date_range(local.date()):
            return False
        wall = local.time().replace(tzinfo=None)
        return any(within(start, end, wall) for start, end in self.windows.get(day, ()))

    def closed_because(self, now: datetime) -> tuple[str, date | None] | None:
        """Why the schedule is closed at `now`, None while open: ("no_start_date", None), ("before_start", start),
        ("after_end", end), ("not_calling_day", local day) or ("outside_hours", local day). The CLI's `dial` and the
        dashboard's Run word it each their way (`schedule.local(now)` gives the local time to show)."""
        if self.is_open(now):
            return None
        day = self.local(now).date()
        if self.start_date is None:
            return "no_start_date", None
        if day < self.start_date:
            return "before_start", self.start_date
        if self.end_date is not None and day > self.end_date:
            return "after_end", self.end_date
        if WEEKDAYS[day.weekday()] not in self.calling_days:
            return "not_calling_day", day
        return "outside_hours", day

    def open_until(self, now: datetime) -> datetime | None:
        """When the open stretch that contains `now` ends (windows that touch join up); None if closed now.

        The local end of the day's last touching window, as the first instant the local clock reads it (an end
        a DST jump skips: the jump); a window that runs to midnight ends the stretch at the next day's start
        (callers that care check `is_open` at that instant).
        """
        if not self.is_open(now):
            return None
        tz = zone(self.time_zone)
        local = self.local(now)
        wall = local.time().replace(tzinfo=None)
        windows = self.windows.get(WEEKDAYS[local.weekday()], ())
        end = next(e for s, e in windows if within(s, e, wall))
        for start, later_end in windows:
            if start <= end < later_end:
                end = later_end
        return wall_reached(local.date(), end, tz, local.fold).astimezone(now.tzinfo)

    def next_open(self, now: datetime, horizon_days: int = 400) -> datetime | None:
        """The first instant at or after `now` when the schedule is open; None if never again."""
        if self.is_open(now):
            return now
        tz = zone(self.time_zone)
        local = self.local(now)
        for offset in range(horizon_days + 1):
            day = local.date() + timedelta(days=offset)
            if self.end_date is not None and day > self.end_date:
                return None
            if WEEKDAYS[day.weekday()] not in self.calling_days or not self.in_date_range(day):
                continue
            openings = [self._opening(day, start, tz, now) for start, _end in self.windows.get(WEEKDAYS[day.weekday()], ())]
            # a fall-back day: a window that was open when the clock went back reopens then, at no start of its own
            # (00:30-01:30 is open again from 01:00 EST, after 01:30 EDT)
            openings += [moment for moment in _fall_backs(day, tz) if moment >= now and self.is_open(moment)]
            openings = [o for o in openings if o is not None]
            if openings:
                return min(openings).astimezone(now.tzinfo)
        return None

    def _opening(self, day: date, start: time, tz: ZoneInfo, now: datetime) -> datetime | None:
        """The first instant at or after `now` when the window starting at local `start` on `day` is open, or None.

        A start the clock reads twice (the repeated hour of a fall-back day) opens on both passes: the second one
        counts once the first is over. A start inside a spring-forward gap does not exist: the window opens at the
        jump, the first instant whose local time is past the start (it was taken an hour late, 03:30 for a
        02:30–03:30 window that the dialer found open from 03:00).
        """
        wall = datetime.combine(day, start, tz)
        passes = sorted({wall.replace(fold=fold).astimezone(now.tzinfo) for fold in (0, 1)})
        for instant in passes:
            if instant >= now:
                for probe in (instant, instant + timedelta(minutes=1)):
                    if self.is_open(probe):
                        return probe
        if len(passes) == 2 and passes[0].astimezone(tz).time() != start:  # in a gap: both folds miss the start
            probe = max(now, passes[0]).replace(second=0, microsecond=0)
            while probe <= passes[1]:
                if probe >= now and self.is_open(probe):
                    return probe
                probe += timedelta(minutes=1)
        return None

    def local_day(self, now: datetime) -> date:
        """The campaign-local calendar day of an instant."""
        return self.local(now).date()


def _fall_backs(day: date, tz: ZoneInfo) -> list[datetime]:
    """The instants (UTC) during local `day` at which the clock goes back (a fall-back change): at most one a day."""
    first = datetime.combine(day, time(), tz).astimezone(timezone.utc)
    last = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(timezone.utc)
    if first.astimezone(tz).utcoffset() <= last.astimezone(tz).utcoffset():
        return []
    low, high = first, last  # the offset is the day's first one at `low` and the smaller one at `high`
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == first.astimezone(tz).utcoffset():
            low = middle
        else:
            high = middle
    return [low.replace(microsecond=0) + timedelta(seconds=1)]  # changes fall on whole seconds: the one in (low, high]
