"""An independent oracle for "who may be called at `now`, in which order", against the production path.

The oracle below reads the raw tables (campaigns, campaign_contacts, contacts, calls, do_not_call,
calling_rules) in plain Python, from the documented rules (README, docs/dialing.md, the issue):

- the campaign: active, a start date, its date range (inclusive, campaign-local dates), a calling day and
  inside one of its [start, end) windows in campaign-local wall time (24:00 = the day's end);
- a contact: enrolled, not finished, no call in flight, attempts < max attempts, attempts in the current
  campaign-local day < attempts per day, no retry time or one already due;
- the callee's legal rule (subdivision's, else country's, else DEFAULT) open in every one of their zones at
  every moment of [now, now + horizon), not on a public holiday there when the rule says so, the rolling
  caps (counted attempts of the number in the last 24 h / 30 days, every campaign) under the rule's caps;
- not on the global list or the campaign's own (exact numbers, `+1305*` wildcards);
- order: fewest attempts, then the longest since the last call (never called first), then enrollment.

Stores are random but seeded: schedules with several windows a day and windows touching midnight, campaign
zones with DST (New York, London, Lord Howe's 30-minute shift, Chatham), instants next to DST changes, local
midnight, window edges and holidays, and random calling rules. Each case runs in a rolled-back transaction on
one DuckDB file built by the test factory. The production answer is `run_tick`'s schedule gate
(`active`, a start date, `Schedule.is_open`) and `eligible_contacts` (contacts and order).
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import pytest

from tasks.compliance import Rule, parse_windows, rebuild_phone_attempts, zone_blocked
from tasks.dialing import _close_of, eligible_contacts, load_plans
from tasks.schedule import Schedule
from tasks.store import connect, transaction
from tests.factories import make_campaign_db

UTC = timezone.utc
SEED = 20261205
CASES = 180
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CAMPAIGN_ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham", "America/Phoenix"]
CALLEE_ZONES = CAMPAIGN_ZONES + ["Europe/Paris", "America/Los_Angeles", "Asia/Kolkata", "America/Santiago",
                                 "Australia/Sydney"]
# (number prefix, country, subdivision, zones the number gives; None = unknown: the campaign's zone)
PLACES = [
    ("+1212555", "US", "NY", ("America/New_York",)),
    ("+1305555", "US", "FL", ("America/New_York",)),
    ("+1602555", "US", "AZ", ("America/Phoenix",)),
    ("+1907555", "US", "AK", ("America/Adak", "America/Anchorage")),
    ("+44207946", "GB", None, ("Europe/London",)),
    ("+3361234", "FR", None, ("Europe/Paris",)),
    ("+6129123", "AU", None, ("Australia/Sydney",)),
    ("+91221234", "IN", None, None),
]
OTHER_CAMPAIGN = 777


# ------------------------------------------------------------------ the oracle


def _minutes(text: str) -> int:
    return 24 * 60 if text == "24:00" else int(text[:2]) * 60 + int(text[3:5])


def _local(now: datetime, zone_name: str) -> datetime:
    """Local wall time of an instant (naive): the zone's reading of the UTC instant."""
    zone = ZoneInfo(zone_name)
    return zone.fromutc(now.astimezone(UTC).replace(tzinfo=zone)).replace(tzinfo=None)


def _inside(windows: list[tuple[int, int]], local: datetime) -> bool:
    """[start, end) in minutes of the local day, compared to the wall time to the microsecond."""
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    return any(start * 60 <= seconds < end * 60 for start, end in windows)


def oracle_schedule_open(campaign: dict, now: datetime) -> bool:
    """The campaign may be dialed by a scheduled tick at `now`."""
    if not campaign["active"] or campaign["start_date"] is None:
        return False
    local = _local(now, campaign["time_zone"])
    if local.date() < campaign["start_date"] or (campaign["end_date"] is not None and local.date() > campaign["end_date"]):
        return False
    day = DAYS[local.weekday()]
    if day not in campaign["calling_days"]:
        return False
    windows = [(_minutes(s), _minutes(e)) for s, e in campaign["weekly_schedule"].get(day, [])]
    return _inside(windows, local)


def _first_change(predicate, now: datetime, limit: timedelta) -> datetime | None:
    """The first instant after `now` at which `predicate` changes (minute steps, then to the microsecond)."""
    start, t = predicate(now), now
    while t - now < limit:
        later = t + timedelta(minutes=1)
        if predicate(later) != start:
            while later - t > timedelta(microseconds=1):
                middle = t + (later - t) / 2
                middle = middle.replace(microsecond=middle.microsecond)  # timedelta halves round to microseconds
                t, later = (t, middle) if predicate(middle) != start else (middle, later)
            return later
        t = later
    return None


def oracle_close(campaign: dict, now: datetime) -> datetime | None:
    """When the schedule's open stretch containing `now` closes, or None when closed now or when the stretch runs
    on past the next local midnight (the dialer's bound does not look further; the on/off switch apart)."""
    schedule = {**campaign, "active": True}
    if not oracle_schedule_open(schedule, now):
        return None
    day = _local(now, campaign["time_zone"]).date()
    midnight = _first_change(lambda t: _local(t, campaign["time_zone"]).date() == day, now, timedelta(hours=27))
    close = _first_change(lambda t: oracle_schedule_open(schedule, t), now, timedelta(hours=27))
    return close if close is not None and close <= midnight else None


@lru_cache(maxsize=None)
def _holidays(country: str, subdivision: str | None, year: int) -> frozenset:
    supported = holidays.list_supported_countries().get(country)
    if supported is None:
        return frozenset()
    subdiv = subdivision if subdivision in (supported or ()) else None
    return frozenset(holidays.country_holidays(country, subdiv=subdiv, years=year))


def _rule_of(rules: dict, country: str | None, subdivision: str | None) -> dict:
    for rule in rules.values():
        if rule["country"] == country and rule["subdivision"] is not None and rule["subdivision"] == subdivision:
            return rule
    for rule in rules.values():
        if rule["country"] == country and rule["subdivision"] is None:
            return rule
    return rules["DEFAULT"]


def _callee_open(rule: dict, zones: tuple[str, ...], country: str | None, subdivision: str | None,
                 now: datetime, horizon: timedelta) -> bool:
    """Open in every zone at every moment of [now, now + horizon) (windows on whole local minutes: a step of
    a minute finds every close; the last instant is checked too), never on a public holiday there."""
    last = now + horizon - timedelta(microseconds=1) if horizon else now
    t = now
    while True:
        for name in zones:
            local = _local(t, name)
            if rule["no_public_holidays"] and country and local.date() in _holidays(country, subdivision, local.year):
                return False
            if not _inside(rule["windows"][DAYS[local.weekday()]], local):
                return False
        if t >= last:
            return True
        t = min(t + timedelta(minutes=1), last)


def oracle(conn, campaign_id: int, now: datetime, horizon: timedelta, size: int) -> list[int]:
    """The contacts that may be called at `now` (campaign schedule apart), in dialing order, at most `size`."""
    (tz, country_of_campaign, max_attempts, per_day) = conn.execute(
        "select time_zone, country, max_attempts, attempts_per_day from campaigns where campaign_id = ?",
        [campaign_id]).fetchone()
    local_day = _local(now, tz).date()
    rules = {}
    cursor = conn.execute("select * from calling_rules")
    names = [d[0] for d in cursor.description]
    for row in cursor.fetchall():
        r = dict(zip(names, row))
        r["windows"] = {d: [(_minutes(w[:5]), _minutes(w[6:])) for w in (r[d] or "").split()] for d in DAYS}
        rules[r["rule_id"]] = r
    dnc = conn.execute("select prefix, is_prefix from do_not_call where campaign_id is null or campaign_id = ?",
                       [campaign_id]).fetchall()
    calls = conn.execute("select phone_e164, queued_at from calls where counts_as_attempt").fetchall()
    rows = conn.execute(
        "select cc.contact_id, cc.attempts, cc.attempts_day, cc.attempts_on_day, cc.last_call_at, cc.in_flight_call_id,"
        " cc.finished_at, cc.next_call_at, cc.enroll_seq, c.phone_e164, c.time_zone_override"
        " from campaign_contacts cc join contacts c using (contact_id) where cc.campaign_id = ?", [campaign_id]).fetchall()
    callable_ = []
    for (contact_id, attempts, attempts_day, on_day, last_call_at, in_flight, finished_at, next_call_at, enroll_seq,
         phone, override) in rows:
        if finished_at is not None or in_flight is not None or attempts >= max_attempts:
            continue
        if (on_day if attempts_day == local_day else 0) >= per_day:
            continue
        if next_call_at is not None and next_call_at > now:
            continue
        if any(phone == prefix or (is_prefix and phone.startswith(prefix)) for prefix, is_prefix in dnc):
            continue
        _prefix, country, subdivision, zones = next(p for p in PLACES if phone.startswith(p[0]))
        zones = (override,) if override else (zones or (tz,))
        country = country or country_of_campaign
        rule = _rule_of(rules, country, subdivision)
        if not _callee_open(rule, zones, country, subdivision, now, horizon):
            continue
        mine = [at for p, at in calls if p == phone]
        if rule["max_calls_24h"] is not None and sum(at > now - timedelta(hours=24) for at in mine) >= rule["max_calls_24h"]:
            continue
        if rule["max_calls_30d"] is not None and sum(at > now - timedelta(days=30) for at in mine) >= rule["max_calls_30d"]:
            continue
        callable_.append((attempts, last_call_at is not None, last_call_at or now, enroll_seq, contact_id))
    return [c[-1] for c in sorted(callable_)][:size]


# ------------------------------------------------------------------ random stores


def _hhmm(minutes: int) -> str:
    return "24:00" if minutes == 24 * 60 else f"{minutes // 60:02d}:{minutes % 60:02d}"


def random_windows(rng: random.Random) -> list[tuple[int, int]]:
    """0-3 disjoint windows in minutes (touching allowed), often at midnight or DST hours."""
    shape = rng.random()
    if shape < 0.1:
        return []
    if shape < 0.2:
        return [(0, 24 * 60)]
    if shape < 0.3:
        return [(0, rng.choice([30, 60, 120, 150, 180])), (rng.choice([20, 22, 23]) * 60, 24 * 60)]
    points = sorted(rng.sample([0, 30, 60, 90, 120, 135, 150, 180, 195, 210, 240, 480, 600, 720, 780, 840, 1020, 1200,
                                1260, 1320, 1380, 1410, 1440], rng.choice([2, 4, 6])))
    windows = list(zip(points[::2], points[1::2]))
    if rng.random() < 0.3 and len(windows) > 1:  # make two windows touch
        (s0, _e0), (s1, _e1) = windows[0], windows[1]
        windows[0] = (s0, s1)
    return windows


def random_schedule(rng: random.Random) -> dict[str, list[list[str]]]:
    schedule = {}
    for day in DAYS:
        if rng.random() < 0.8:
            windows = random_windows(rng)
            if windows:
                schedule[day] = [[_hhmm(s), _hhmm(e)] for s, e in windows]
    return schedule or {"mon": [["00:00", "24:00"]]}


@lru_cache(maxsize=None)
def transitions(zone_name: str) -> tuple[datetime, ...]:
    """The instants a zone's UTC offset changes in 2026 (found hour by hour, then to the minute)."""
    found = []

    def offset(at: datetime) -> timedelta:
        return _local(at, zone_name) - at.replace(tzinfo=None)

    t = datetime(2026, 1, 1, tzinfo=UTC)
    while t.year == 2026:
        nxt = t + timedelta(days=1)
        if offset(t) != offset(nxt):
            m = t
            while offset(m) == offset(t):
                m += timedelta(minutes=1)
            found.append(m)
        t = nxt
    return tuple(found)


def _instant_of_local(zone_name: str, day: date, minutes: int) -> datetime:
    return (datetime.combine(day, time()) + timedelta(minutes=minutes)).replace(tzinfo=ZoneInfo(zone_name)).astimezone(UTC)


HOLIDAYS = [date(2026, 7, 4), date(2026, 7, 14), date(2026, 12, 25), date(2026, 5, 1), date(2026, 11, 26),
            date(2026, 1, 26), date(2026, 8, 15)]


def random_now(rng: random.Random, campaign_zone: str, focus: str, schedule: dict, rules: dict) -> datetime:
    """An instant next to a DST change, a local midnight, a window edge or a holiday (`focus`: a callee zone)."""
    kind = rng.random()
    jitter = rng.choice([timedelta(0), timedelta(seconds=1), timedelta(seconds=-1), timedelta(minutes=rng.randint(-90, 90)),
                         timedelta(seconds=rng.randint(-400, 400)), timedelta(microseconds=-1)])
    if kind < 0.3:
        zone = campaign_zone if rng.random() < 0.5 else focus
        return rng.choice(transitions(zone) or (datetime(2026, 6, 1, tzinfo=UTC),)) + jitter
    day = date(2026, 1, 1) + timedelta(days=rng.randint(0, 364))
    if kind < 0.45:  # local midnight of the campaign or a callee
        zone = campaign_zone if rng.random() < 0.5 else focus
        return _instant_of_local(zone, day, 0) + jitter
    if kind < 0.7:  # a campaign window edge
        windows = [w for ws in schedule.values() for w in ws]
        edge = _minutes(rng.choice(rng.choice(windows)))
        return _instant_of_local(campaign_zone, day, edge) + jitter
    if kind < 0.85:  # a little before a callee rule's window end, in the focus zone (a batch's span crosses it)
        rule = rng.choice(list(rules.values()))
        ends = [_minutes(w[1]) for d in DAYS for w in rule[d]]
        return _instant_of_local(focus, day, rng.choice(ends) if ends else 0) - timedelta(seconds=rng.randint(0, 1800))
    if kind < 0.92:
        return _instant_of_local(campaign_zone, rng.choice(HOLIDAYS), rng.randint(0, 24 * 60)) + jitter
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 365 * 86400))


def dst_edge(rng: random.Random, zone_name: str) -> tuple[datetime, date, int] | None:
    """(now, local day, window end in minutes): an end the zone's clock skips (now a little before the jump) or
    reads twice (now in the repeated stretch's second pass, before the end); None for a zone without DST."""
    if not transitions(zone_name):
        return None
    jump = rng.choice(transitions(zone_name))
    after, before = _local(jump, zone_name), _local(jump - timedelta(microseconds=1), zone_name)
    delta = (after - before).total_seconds() // 60  # minutes; > 0 forward (a gap), < 0 back (a repeat)
    if delta > 0:
        start = after - timedelta(minutes=delta)  # the first wall time skipped
        now = jump - timedelta(seconds=rng.randint(1, 1800))
    else:
        start = after  # the first wall time read twice
        now = jump + timedelta(seconds=rng.randint(0, int(-delta) * 30 - 1))
    end = start + timedelta(minutes=abs(delta) // 2)
    return now, end.date(), end.hour * 60 + end.minute


def _with_dst_edge(windows: dict, day: date, end: int, pair) -> None:
    """Make `day`'s windows end at `end` from 00:00 and the day before run to 24:00 from 22:00."""
    windows[DAYS[day.weekday()]] = [pair(0, end)]
    windows[DAYS[(day - timedelta(days=1)).weekday()]] = [pair(22 * 60, 24 * 60)]


def random_rules(rng: random.Random) -> dict[str, dict]:
    def rule(country, subdivision):
        windows = {}
        for day in DAYS:
            ws = random_windows(rng) if rng.random() < 0.85 else []
            windows[day] = [(_hhmm(s), _hhmm(e)) for s, e in ws]
        return {"country": country, "subdivision": subdivision, **windows,
                "no_public_holidays": rng.random() < 0.5,
                "max_calls_24h": rng.choice([None, None, 0, 1, 2, 3]),
                "max_calls_30d": rng.choice([None, None, 0, 1, 3, 4])}

    rules = {"DEFAULT": rule(None, None), "US": rule("US", None), "US-FL": rule("US", "FL")}
    if rng.random() < 0.6:
        rules["FR"] = rule("FR", None)
    if rng.random() < 0.4:
        rules["GB"] = rule("GB", None)
    return rules


def write_rules(conn, rules: dict, now: datetime) -> None:
    conn.execute("delete from calling_rules")
    conn.execute(
        "insert into calling_rules (rule_id, country, subdivision, mon, tue, wed, thu, fri, sat, sun,"
        " no_public_holidays, max_calls_24h, max_calls_30d, source, updated_at) values "
        + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'test', ?)"] * len(rules)),
        [v for rule_id, r in rules.items()
         for v in (rule_id, r["country"], r["subdivision"], *(" ".join(f"{s}-{e}" for s, e in r[d]) or None for d in DAYS),
                   r["no_public_holidays"], r["max_calls_24h"], r["max_calls_30d"], now)])


def build_case(conn, campaign_id: int, rng: random.Random, case: int, *, friendly: bool = False) -> dict:
    """Random settings, rules, contacts, calls and lists for one case (inside the caller's transaction).

    `friendly`: an active campaign open at `now` (up to an hour before one of its window ends) and callee rules
    open all day on most days, so that a tick has someone to call more often.
    """
    tz = rng.choice(CAMPAIGN_ZONES)
    schedule = random_schedule(rng)
    rules = random_rules(rng)
    focus = rng.choice(CALLEE_ZONES)
    now = random_now(rng, tz, focus, schedule, rules)
    if friendly:
        for rule in rules.values():
            for day in DAYS:
                if rng.random() < 0.6:
                    rule[day] = [("00:00", "24:00")]
        day = date(2026, 1, 1) + timedelta(days=rng.randint(0, 364))
        while DAYS[day.weekday()] not in schedule:
            day += timedelta(days=1)
        start, end = rng.choice(schedule[DAYS[day.weekday()]])
        now = _instant_of_local(tz, day, _minutes(end)) - timedelta(seconds=rng.randint(1, 900))
    if rng.random() < 0.2:  # a window of the campaign or of the callees ending where the clock jumps
        on_campaign = rng.random() < 0.5
        edge = dst_edge(rng, tz if on_campaign else focus)
        if edge is not None:
            now, day, end = edge
            if on_campaign:
                _with_dst_edge(schedule, day, end, lambda a, b: [_hhmm(a), _hhmm(b)])
            else:
                for rule in rules.values():
                    _with_dst_edge(rule, day, end, lambda a, b: (_hhmm(a), _hhmm(b)))
    local_day = _local(now, tz).date()
    start = rng.choice([None, local_day - timedelta(days=1), local_day, local_day + timedelta(days=1), date(2025, 1, 1)])
    end = rng.choice([None, None, local_day - timedelta(days=1), local_day, local_day + timedelta(days=1)])
    if friendly:
        start, end = date(2025, 1, 1), None
    if start is not None and end is not None and end < start:
        end = None
    max_attempts = rng.randint(1, 5)
    per_day = rng.randint(1, max_attempts)
    conn.execute(
        "update campaigns set time_zone = ?, calling_days = ?, weekly_schedule = ?, start_date = ?, end_date = ?,"
        " max_attempts = ?, attempts_per_day = ?, active = ?, country = ? where campaign_id = ?",
        [tz, [d for d in DAYS if d in schedule], json.dumps(schedule), start, end, max_attempts, per_day,
         rng.random() < 0.9 or friendly, rng.choice(["US", "GB", None]), campaign_id])
    write_rules(conn, rules, now)
    last_calls = [now - timedelta(minutes=rng.randint(1, 60 * 24 * 10)) for _ in range(3)]
    people = []
    for i in range(rng.randint(0, 14)):
        phone = f"{rng.choice(PLACES)[0]}{case % 100:02d}{i:02d}"
        override = rng.random()
        people.append((phone, f"P{i}", focus if override < 0.3 else rng.choice(CALLEE_ZONES) if override < 0.4 else None))
    ids = dict(conn.execute(
        "insert into contacts (phone_e164, name, time_zone_override) values " + ", ".join(["(?, ?, ?)"] * len(people))
        + " returning phone_e164, contact_id", [v for p in people for v in p]).fetchall()) if people else {}
    enrollments, calls, contacts = [], [], []
    for i, (phone, _name, _override) in enumerate(people):
        contact_id = ids[phone]
        attempts = rng.choice([0, 0, 1, 2, max_attempts - 1, max_attempts, max_attempts + 1])
        called = attempts > 0 or rng.random() < 0.1
        enrollments.append([
            campaign_id, contact_id, attempts, attempts,
            rng.choice([None, local_day - timedelta(days=1), local_day, local_day, local_day + timedelta(days=1)]) if called else None,
            rng.choice([0, 1, 1, 2, 3]) if called else 0,
            rng.choice(last_calls) if called else None,
            rng.choice([None] * 9 + [10_000 + i]),
            *(rng.choice([(None, None)] * 8 + [(now - timedelta(hours=1), "successful"),
                                               (now - timedelta(days=2), "not_retryable")])),
            rng.choice([None, None, now, now + timedelta(seconds=1), now - timedelta(seconds=1),
                        now + timedelta(hours=rng.randint(1, 48)), now - timedelta(hours=rng.randint(1, 48))])])
        # the number's counted history, in this campaign or another (the caps count every campaign)
        for n in range(rng.choice([0, 0, 1, 2, 3, 5])):
            ago = rng.choice([timedelta(hours=24), timedelta(days=30), timedelta(hours=24) - timedelta(seconds=1),
                              timedelta(days=30) - timedelta(seconds=1), timedelta(minutes=rng.randint(1, 60 * 24 * 40))])
            calls.append([rng.choice([campaign_id, OTHER_CAMPAIGN]), contact_id, f"o.{case}.{contact_id}.{n}",
                          rng.random() < 0.8, phone, now - ago, now - ago])
        contacts.append((contact_id, phone))
    if enrollments:
        # in enrollment order, one statement (enroll_seq follows the rows)
        conn.execute(
            "insert into campaign_contacts (campaign_id, contact_id, attempts, call_seq, attempts_day, attempts_on_day,"
            " last_call_at, in_flight_call_id, finished_at, finished_reason, next_call_at) values "
            + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(enrollments)), [v for e in enrollments for v in e])
    if calls:
        conn.execute(
            "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt, phone_e164,"
            " status, provider, queued_at, updated_at) values "
            + ", ".join(["(?, ?, ?, 1, ?, ?, 'not_connected', 't', ?, ?)"] * len(calls)), [v for c in calls for v in c])
    if contacts:
        rebuild_phone_attempts(conn, [c for c, _ in contacts])  # history written outside the claim
    entries = []
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        phone = rng.choice(contacts)[1] if contacts else "+12125550000"
        exact = rng.random() < 0.5
        prefix = phone if exact else phone[:rng.randint(4, len(phone) - 1)]
        entries.append([prefix if exact else prefix + "*", prefix, not exact,
                        rng.choice([None, None, campaign_id, OTHER_CAMPAIGN]), now])
    if entries:
        conn.execute("insert into do_not_call (pattern, prefix, is_prefix, campaign_id, source, added_at) values "
                     + ", ".join(["(?, ?, ?, ?, 'test', ?)"] * len(entries)), [v for e in entries for v in e])
    return {"now": now, "horizon": timedelta(seconds=rng.choice([0, 60, 363, 660, 1500, 3 * 500 + 360])),
            "size": rng.choice([500, 500, 1, 2, 3])}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from tasks.store import init_db

    path = tmp_path_factory.mktemp("oracle") / "oracle.duckdb"
    init_db(path)
    ids = make_campaign_db(path)
    # a copy as built, for the tick cases (whatever ran on the store before: sequences are not rolled back)
    shutil.copyfile(path, path.with_name("pristine.duckdb"))
    return {**ids, "pristine": path.with_name("pristine.duckdb")}


def run_case(conn, store: dict, case: int) -> tuple[tuple, tuple]:
    """(production, oracle) answers for one seeded case: (schedule open, when its open stretch closes, contacts
    in order)."""
    rng = random.Random(SEED * 1000 + case)
    campaign_id = store["campaign_id"]
    conn.execute("begin")
    try:
        params = build_case(conn, campaign_id, rng, case)
        now = params["now"]
        plan = load_plans(conn, [campaign_id])[0]
        gate = plan.active and plan.schedule.start_date is not None and plan.schedule.is_open(now)
        close = _close_of(plan.schedule, now)
        produced = eligible_contacts(conn, plan, now, params["size"], horizon=params["horizon"])["contact_id"].to_list()
        campaign = dict(zip(("active", "start_date", "end_date", "time_zone", "calling_days", "weekly_schedule"),
                            conn.execute("select active, start_date, end_date, time_zone, calling_days,"
                                         " weekly_schedule::varchar from campaigns where campaign_id = ?",
                                         [campaign_id]).fetchone()))
        campaign["weekly_schedule"] = json.loads(campaign["weekly_schedule"])
        expected = oracle(conn, campaign_id, now, params["horizon"], params["size"])
    finally:
        conn.execute("rollback")
    return (gate, close, produced), (oracle_schedule_open(campaign, now), oracle_close(campaign, now), expected)


def test_the_places_are_what_phonenumbers_says():
    import phonenumbers as pn
    from phonenumbers import timezone as pn_timezone

    from tasks.compliance import area_code_state

    for prefix, country, subdivision, zones in PLACES:
        number = pn.parse(f"{prefix}0000")
        assert pn.region_code_for_number(number) == country
        found = tuple(sorted(pn_timezone.time_zones_for_number(number)))
        assert found == (zones or ("Etc/Unknown",))
        assert (area_code_state(prefix[2:5]) if country == "US" else None) == subdivision


@pytest.mark.parametrize("chunk", range(6))
def test_production_agrees_with_the_oracle(store, chunk):
    per_chunk = CASES // 6
    failures = []
    with connect(store["db"]) as conn:
        for case in range(chunk * per_chunk, (chunk + 1) * per_chunk):
            produced, expected = run_case(conn, store, case)
            if produced != expected:
                failures.append((case, produced, expected))
    assert not failures, failures[:5]


# ------------------------------------------------------------------ regressions the oracle found


def _rule(windows: str, *, holidays_off: bool = False, days=DAYS) -> Rule:
    return Rule("X", "US", None, {d: parse_windows(windows if d in days else None) for d in DAYS}, holidays_off,
                None, None, "test")


def test_a_window_ending_at_24_00_includes_the_days_last_instant():
    """[22:00, 24:00) holds every instant of the day from 22:00 on, 23:59:59.999999 included (a clock reading
    with microseconds: `wall < time.max` left it out, in the campaign's schedule and in the callee rules)."""
    ny = ZoneInfo("America/New_York")
    last = datetime(2026, 6, 13, 23, 59, 59, 999999, tzinfo=ny)  # a Saturday
    schedule = Schedule.from_row("America/New_York", ["sat"], {"sat": [["22:00", "24:00"]]}, date(2026, 1, 1), None)
    assert schedule.is_open(last)
    assert zone_blocked(_rule("22:00-24:00"), ["America/New_York"], "US", None, last) is None


def test_a_callee_window_going_on_through_the_next_one_does_not_hold_the_batch_back():
    """The callee is open through the whole batch when the window it is in runs on into a touching one,
    24:00 into the next day's 00:00 included (an all-day rule held everyone back for the batch's span
    before each local midnight)."""
    ny = ZoneInfo("America/New_York")
    before_midnight = datetime(2026, 6, 10, 23, 55, tzinfo=ny)  # a Wednesday
    ten = timedelta(minutes=10)
    assert zone_blocked(_rule("00:00-24:00"), ["America/New_York"], "US", None, before_midnight, ten) is None
    assert zone_blocked(_rule("08:00-12:00 12:00-20:00"), ["America/New_York"], "US", None,
                        datetime(2026, 6, 10, 11, 55, tzinfo=ny), ten) is None
    # but not into a closed next day, nor into a public holiday the rule keeps free
    assert zone_blocked(_rule("00:00-24:00", days=("wed",)), ["America/New_York"], "US", None, before_midnight,
                        ten) == "window:X"
    christmas_eve = datetime(2026, 12, 24, 23, 55, tzinfo=ny)
    assert zone_blocked(_rule("00:00-24:00", holidays_off=True), ["America/New_York"], "US", None, christmas_eve,
                        ten) == "window:X"
    assert zone_blocked(_rule("00:00-24:00"), ["America/New_York"], "US", None, christmas_eve, ten) is None


def test_a_callee_window_ending_in_a_dst_gap_closes_at_the_jump():
    """A window ending at 02:30 on the night New York skips 02:00-03:00 closes at 03:00 EDT (07:00 UTC), when the
    wall clock passes 02:30; it was taken to close at 02:30 EST (07:30 UTC), letting a batch call until 03:30."""
    rule = _rule("00:00-02:30")
    now = datetime(2026, 3, 8, 6, 55, tzinfo=UTC)  # 01:55 EST, Sunday
    assert zone_blocked(rule, ["America/New_York"], "US", None, now, timedelta(minutes=4)) is None
    assert zone_blocked(rule, ["America/New_York"], "US", None, now, timedelta(minutes=10)) == "window:X"


def test_a_callee_in_the_repeated_hour_is_open_until_its_window_ends_on_the_wall_clock():
    """On the night New York repeats 01:00-02:00, a window ending at 01:30 is open at 01:10 EST (the second
    01:10) until 01:30 EST; it was taken to have closed at 01:30 EDT, an hour before."""
    rule = _rule("00:00-01:30")
    second_pass = datetime(2026, 11, 1, 6, 10, tzinfo=UTC)  # 01:10 EST
    assert zone_blocked(rule, ["America/New_York"], "US", None, second_pass, timedelta(minutes=10)) is None
    assert zone_blocked(rule, ["America/New_York"], "US", None, second_pass, timedelta(minutes=25)) == "window:X"


def test_the_campaign_window_ends_on_the_wall_clock_across_dst_and_midnight():
    """`open_until` (the batch's bound and the placing deadline) is when the campaign's local clock passes the
    window's end: 03:00 EDT for a window ending at 02:30 on the night New York skips 02:00-03:00 (it said 03:30),
    01:30 EST in the repeated hour's second pass (it said 01:30 EDT, an hour before now), and the next day's
    00:00 for a window running to 24:00 (it said 23:59:59.999999, which is inside the window)."""
    def plan(windows):
        return Schedule.from_row("America/New_York", ["sun", "mon"], {"sun": windows, "mon": [["08:00", "09:00"]]},
                                 date(2026, 1, 1), None)

    assert plan([["00:00", "02:30"]]).open_until(datetime(2026, 3, 8, 6, 55, tzinfo=UTC)) == \
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert plan([["00:00", "01:30"]]).open_until(datetime(2026, 11, 1, 6, 10, tzinfo=UTC)) == \
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    to_midnight = plan([["20:00", "24:00"]])
    end = to_midnight.open_until(datetime(2026, 6, 14, 23, 0, tzinfo=ZoneInfo("America/New_York")))
    assert end == datetime(2026, 6, 15, 4, 0, tzinfo=UTC) and not to_midnight.is_open(end)


# ------------------------------------------------------------------ the whole tick


TICK_CASES = 24


@pytest.mark.parametrize("chunk", range(2))
def test_a_tick_claims_what_the_oracle_says(store, tmp_path, chunk):
    """`run_tick` on a virtual clock, end to end (its schedule gate, the batch bounded by the pace before the
    window closes, the callee windows checked over the batch's span): the calls it claims are the oracle's first
    contacts, in order."""
    import math

    from tasks.clock import VirtualClock
    from tasks.dialing import HORIZON_SLACK_SECONDS, run_tick
    from tests.fakes import FakeProvider

    failures = []
    for case in range(10_000 + chunk * TICK_CASES // 2, 10_000 + (chunk + 1) * TICK_CASES // 2):
        rng = random.Random(SEED * 1000 + case)
        path = tmp_path / f"tick{case}.duckdb"
        shutil.copyfile(store["pristine"], path)
        campaign_id = store["campaign_id"]
        with transaction(path) as conn:
            params = build_case(conn, campaign_id, rng, case, friendly=True)
            # most contacts fresh, and no lists: someone to call
            conn.execute("update campaign_contacts set attempts = 0, call_seq = 0, attempts_day = null, attempts_on_day = 0,"
                         " in_flight_call_id = null, finished_at = null, finished_reason = null, next_call_at = null"
                         " where (contact_id * 7 + ?) % 10 < 8", [case])
            conn.execute("delete from do_not_call")
            # the retry policy's number to avoid (a call marked as spam), with rotation over two numbers or not,
            # the second number's trunk up or down
            rotation, second_up = rng.random() < 0.6, rng.random() < 0.6
            numbers = [r[0] for r in conn.execute("select e164 from phone_numbers order by number_id").fetchall()]
            conn.execute("update campaigns set rotation_enabled = ?, outbound_number_ids = ? where campaign_id = ?",
                         [rotation, store["number_ids"] if rotation else store["number_ids"][:1], campaign_id])
            conn.execute("update phone_numbers set sip_trunk_status = ? where e164 = ?",
                         ["active" if second_up else "inactive", numbers[1]])
            conn.execute("update campaign_contacts set avoid_number = case (contact_id + ?) % 3 when 0 then ?"
                         " when 1 then ? end", [case, numbers[0], numbers[1]])
            avoid = dict(conn.execute("select contact_id, avoid_number from campaign_contacts").fetchall())
            next_at = dict(conn.execute("select contact_id, next_call_at from campaign_contacts").fetchall())
            batch_size, pace = rng.randint(1, 8), rng.choice([0.0, 3.0, 120.0, 600.0, 600.0])
            conn.execute("update campaigns set batch_size = ? where campaign_id = ?", [batch_size, campaign_id])
        now = params["now"]
        with connect(path) as conn:
            campaign = dict(zip(("active", "start_date", "end_date", "time_zone", "calling_days", "weekly_schedule"),
                                conn.execute("select active, start_date, end_date, time_zone, calling_days,"
                                             " weekly_schedule::varchar from campaigns where campaign_id = ?",
                                             [campaign_id]).fetchone()))
            campaign["weekly_schedule"] = json.loads(campaign["weekly_schedule"])
            expected = []
            if oracle_schedule_open(campaign, now):
                close = oracle_close(campaign, now)
                size = batch_size if close is None or pace <= 0 else \
                    min(batch_size, max(1, math.ceil((close - now).total_seconds() / pace)))
                horizon = timedelta(seconds=pace * size + HORIZON_SLACK_SECONDS)
                expected = oracle(conn, campaign_id, now, horizon, size)
        # a number to avoid is honoured only with several numbers on the campaign; when no other number can
        # dial (rotation off, the other's trunk down) the contact is not claimed (the batch is not refilled)
        # and waits for the next campaign-local day
        usable = numbers if rotation and second_up else numbers[:1]
        stuck = [c for c in expected if rotation and len(usable) == 1 and avoid[c] == usable[0]]
        expected = [c for c in expected if c not in stuck]
        run_tick(path, FakeProvider(), VirtualClock(now), pace_seconds=pace)
        with connect(path) as conn:
            rows = conn.execute("select contact_id, from_number from calls where run_id is not null order by call_id").fetchall()
            claimed = [c for c, _ in rows]
            wrong_number = [c for c, number in rows if rotation and len(usable) > 1 and number == avoid[c]]
            midnight = _first_change(lambda t: _local(t, campaign["time_zone"]).date() == _local(now, campaign["time_zone"]).date(),
                                     now, timedelta(hours=27))
            held = {c: (at, number) for c, at, number in conn.execute(
                "select contact_id, next_call_at, avoid_number from campaign_contacts where list_contains(?, contact_id)",
                [stuck]).fetchall()}
        wrong_hold = [c for c in stuck if held[c] != (max(midnight, next_at[c] or midnight), None)]
        if claimed != expected or wrong_number or wrong_hold:
            failures.append((case, claimed, expected, wrong_number, wrong_hold))
    assert not failures, failures[:5]
