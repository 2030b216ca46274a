"""Property tests: whatever the contacts, zones and instant (DST changes in both hemispheres included),
no contact the claim offers is outside its legal window, on its holiday, listed, or over a cap.

The oracle below is written from the law's text (issue #11), not from the rules table, so a wrong
row in data/calling_rules.csv fails here too.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.compliance import rebuild_phone_attempts, zone_blocked
from tasks.dialing import eligible_contacts, load_plans
from tasks.store import connect, init_db, transaction
from tests.factories import make_campaign_db

UTC = timezone.utc
H = 60
# callee-local [start, end) minutes per weekday (0 = Monday), from the text
LAW = {
    "US": {d: [(8 * H, 21 * H)] for d in range(7)},
    "US-FL": {d: [(8 * H, 20 * H)] for d in range(7)},
    "FR": {d: [(10 * H, 13 * H), (14 * H, 20 * H)] for d in range(5)},
    "CO": {**{d: [(7 * H, 19 * H)] for d in range(5)}, 5: [(8 * H, 15 * H)]},
    "DEFAULT": {d: [(9 * H, 20 * H)] for d in range(6)},
}
NO_HOLIDAY_CALLS = {"FR", "CO", "DEFAULT"}
# (number prefix, rule, country, zones) — the zones phonenumbers gives those numbers
PLACES = [
    ("+1212555", "US", "US", ["America/New_York"]),
    ("+1305555", "US-FL", "US", ["America/New_York"]),
    ("+1602555", "US", "US", ["America/Phoenix"]),
    ("+1213555", "US", "US", ["America/Los_Angeles"]),
    ("+1907555", "US", "US", ["America/Adak", "America/Anchorage"]),  # one area code, two zones
    ("+3361234", "FR", "FR", ["Europe/Paris"]),
    ("+57300123", "CO", "CO", ["America/Bogota"]),
    ("+6129123", "DEFAULT", "AU", ["Australia/Sydney"]),
    ("+5622123", "DEFAULT", "CL", ["America/Santiago"]),
]
PER_PLACE = 4
# 2026's DST changes: US, EU, Sydney (both ways), Santiago (both ways)
TRANSITIONS = [datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC),
               datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC),
               datetime(2026, 4, 4, 16, tzinfo=UTC), datetime(2026, 10, 3, 16, tzinfo=UTC),
               datetime(2026, 4, 5, 3, tzinfo=UTC), datetime(2026, 9, 6, 4, tzinfo=UTC)]

instants = st.one_of(
    st.builds(lambda t, minutes: t + timedelta(minutes=minutes), st.sampled_from(TRANSITIONS),
              st.integers(-36 * H, 36 * H)),
    st.builds(lambda minutes: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
              st.integers(0, 365 * 24 * H)),
)


@lru_cache(maxsize=None)
def holiday_dates(country: str, year: int) -> frozenset:
    return frozenset(holidays.country_holidays(country, years=year))


def legal(rule: str, country: str, zones: list[str], now: datetime, horizon: timedelta = timedelta(0)) -> bool:
    """The oracle: open in every zone at every minute of [now, now + horizon) (the batch's last call comes
    before now + horizon: a window ending exactly then lets it through), not a holiday."""
    step = timedelta(minutes=1)
    last = now + horizon - timedelta(microseconds=1) if horizon else now
    t = now
    while True:
        for zone in zones:
            local = t.astimezone(ZoneInfo(zone))
            if rule in NO_HOLIDAY_CALLS and local.date() in holiday_dates(country, local.year):
                return False
            minute = local.hour * H + local.minute
            if not any(start <= minute < end for start, end in LAW[rule].get(local.weekday(), [])):
                return False
        if t >= last:
            return True
        t = min(t + step, last)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A campaign with contacts in nine places (resolved once); tests change it inside rolled-back transactions."""
    path = tmp_path_factory.mktemp("compliance") / "props.duckdb"
    init_db(path)
    campaign_id = make_campaign_db(path, time_zone="America/Phoenix", country="US")["campaign_id"]
    place_of = {}
    with transaction(path) as conn:
        for prefix, rule, country, zones in PLACES:
            for i in range(PER_PLACE):
                phone = f"{prefix}{i:04d}"
                contact_id = conn.execute("insert into contacts (phone_e164) values (?) returning contact_id",
                                          [phone]).fetchone()[0]
                conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [campaign_id, contact_id])
                place_of[contact_id] = (phone, rule, country, zones)
    with connect(path) as conn:
        plan = load_plans(conn, [campaign_id])[0]
        eligible_contacts(conn, plan, TRANSITIONS[0], 1)  # resolves every contact's zone once
        resolved = dict(conn.execute("select contact_id, zone_source from contacts").fetchall())
    assert set(resolved.values()) == {"phone"}, resolved
    return {"db": path, "plan": plan, "place_of": place_of}


@lru_cache(maxsize=1)
def shipped_rules():
    from tasks.compliance import read_rules_csv
    from tests.tasks.test_compliance import RULES_CSV

    return {r.rule_id: r for r in read_rules_csv(RULES_CSV)}


@settings(max_examples=150, deadline=None)
@given(now=instants, place=st.sampled_from(PLACES), horizon=st.sampled_from([0, 5, 25]))
def test_the_rule_functions_agree_with_the_law(now, place, horizon):
    rules = shipped_rules()
    _prefix, rule, country, zones = place
    blocked = zone_blocked(rules[rule], zones, country, None, now, timedelta(minutes=horizon))
    assert (blocked is None) == legal(rule, country, zones, now, timedelta(minutes=horizon))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(now=instants, enrolled=st.sets(st.integers(0, len(PLACES) * PER_PLACE - 1), min_size=1),
       listed=st.sets(st.integers(0, len(PLACES) * PER_PLACE - 1), max_size=4),
       wildcard=st.sampled_from([None, "+1305*", "+33*", "+57300*"]))
def test_no_offered_contact_is_outside_its_window_or_listed(world, now, enrolled, listed, wildcard):
    ids = sorted(world["place_of"])
    chosen = {ids[i] for i in enrolled}
    with connect(world["db"]) as conn:
        conn.execute("begin")
        try:
            conn.execute("update campaign_contacts set finished_at = case when list_contains(?, contact_id) then null"
                         " else now() end", [sorted(chosen)])
            dnc = [world["place_of"][ids[i]][0] for i in listed] + ([wildcard] if wildcard else [])
            for pattern in dnc:
                prefix = pattern.rstrip("*")
                conn.execute("insert into do_not_call (pattern, prefix, is_prefix, source, added_at)"
                             " values (?, ?, ?, 'test', ?)", [pattern, prefix, pattern.endswith("*"), now])
            offered = eligible_contacts(conn, world["plan"], now, 500)["contact_id"].to_list()
        finally:
            conn.execute("rollback")
    for contact_id in chosen:
        phone, rule, country, zones = world["place_of"][contact_id]
        on_list = any(phone == p or (p.endswith("*") and phone.startswith(p[:-1]))
                      for p in [world["place_of"][ids[i]][0] for i in listed] + ([wildcard] if wildcard else []))
        # offered exactly when the law allows it and nobody listed it
        assert (contact_id in offered) == (legal(rule, country, zones, now) and not on_list), (phone, now)


TUESDAY = datetime(2026, 6, 16, 17, 0, tzinfo=UTC)  # 13:00 Miami, 19:00 Paris: both open


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hours_ago=st.lists(st.floats(0.01, 40 * 24), max_size=8), place=st.sampled_from([1, 5]),
       refused=st.sets(st.integers(0, 7), max_size=2))
def test_no_offered_contact_is_over_a_rolling_cap(world, hours_ago, place, refused):
    ids = sorted(world["place_of"])
    contact_id = ids[place * PER_PLACE]
    phone, rule, _country, _zones = world["place_of"][contact_id]
    with connect(world["db"]) as conn:
        conn.execute("begin")
        try:
            for n, hours in enumerate(hours_ago):
                when = TUESDAY - timedelta(hours=hours)
                conn.execute(
                    "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt, phone_e164,"
                    " status, provider, queued_at, updated_at) values (77, ?, ?, 1, ?, ?, 'not_connected', 't', ?, ?)",
                    [contact_id, f"p.{n}", n not in refused, phone, when, when])
            rebuild_phone_attempts(conn, [contact_id])  # history written outside the claim
            offered = eligible_contacts(conn, world["plan"], TUESDAY, 500)["contact_id"].to_list()
        finally:
            conn.execute("rollback")
    counted = [h for n, h in enumerate(hours_ago) if n not in refused]
    if rule == "US-FL":
        allowed = sum(1 for h in counted if h < 24) < 3
    else:
        allowed = sum(1 for h in counted if h < 30 * 24) < 4
    assert (contact_id in offered) == allowed
