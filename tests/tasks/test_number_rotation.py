"""Outbound number rotation by hand: the campaign-local day of a number's use, least used first, ties,
the daily cap across campaigns, and the reason given when no number can dial."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from types import SimpleNamespace

import pytest

from tasks.dialing import _day_start, assign_numbers, load_plans, usable_numbers
from tasks.number_health import numbers_overview, remaining_capacity
from tasks.schedule import Schedule
from tasks.store import connect, transaction
from tests.factories import make_campaign_db

MAIN, BACKUP = "+16025550100", "+16025550101"
_keys = count(1)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def add_calls(db, campaign_id, from_number, at, n=1, status="ended", reason="agent_hangup"):
    with transaction(db) as conn:
        for _ in range(n):
            key = next(_keys)
            conn.execute(
                "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, from_number,"
                " status, disconnect_reason, duration_seconds, provider, queued_at, updated_at)"
                " values (?, ?, ?, 1, ?, ?, ?, ?, 60, 'fake', ?, ?)",
                [campaign_id, key, f"r.{key}", f"+1602555{key:04d}", from_number, status, reason, at, at],
            )


def plan_of(db, campaign_id):
    with connect(db) as conn:
        return load_plans(conn, [campaign_id])[0]


@pytest.mark.parametrize(("time_zone", "now", "expected"), [
    ("America/Phoenix", utc(2026, 4, 28, 17, 0), utc(2026, 4, 28, 7, 0)),
    # New York's 25-hour Sunday 2026-11-01 began at 00:00 EDT, even late in the evening (23:30 EST)
    ("America/New_York", utc(2026, 11, 2, 4, 30), utc(2026, 11, 1, 4, 0)),
    # a minute before midnight EDT is still Saturday
    ("America/New_York", utc(2026, 11, 1, 3, 59), utc(2026, 10, 31, 4, 0)),
    # the 23-hour Sunday 2026-03-08 began at 00:00 EST
    ("America/New_York", utc(2026, 3, 9, 3, 30), utc(2026, 3, 8, 5, 0)),
    # Havana skips 2026-03-08 00:00 (the day begins at 01:00 CDT) and repeats 2026-11-01 00:00 (the first counts)
    ("America/Havana", utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 5, 0)),
    ("America/Havana", utc(2026, 11, 1, 17, 0), utc(2026, 11, 1, 4, 0)),
])
def test_a_numbers_day_begins_at_the_campaign_local_midnight(time_zone, now, expected):
    plan = SimpleNamespace(schedule=Schedule.from_row(time_zone, [], {}, None, None))
    # compared in UTC: Python calls a local time a DST change skips or repeats unequal to every other zone's
    assert _day_start(plan, now).astimezone(UTC) == expected


def test_the_cap_and_the_order_count_the_campaign_local_day_of_25_hours(db):
    # New York, now Sun 2026-11-01 23:30 EST (the day began 25.5 h ago, at 00:00 EDT = 04:00 UTC).
    # MAIN placed 2 calls at Sat 23:50 EDT: yesterday. BACKUP placed 1 at Sun 00:10 EDT: today, though more
    # than 24 h ago. A UTC day (from 00:00 UTC Nov 2) or a rolling 24 h would see no call today from either.
    ids = make_campaign_db(db, rotation_enabled=True, number_daily_cap=2, time_zone="America/New_York")
    add_calls(db, ids["campaign_id"], MAIN, utc(2026, 11, 1, 3, 50), n=2)
    add_calls(db, ids["campaign_id"], BACKUP, utc(2026, 11, 1, 4, 10))
    now = utc(2026, 11, 2, 4, 30)
    plan = plan_of(db, ids["campaign_id"])
    with transaction(db) as conn:
        assert usable_numbers(conn, plan, now) == ([MAIN, BACKUP], None)  # least used today first
        assert remaining_capacity(conn, [MAIN, BACKUP], _day_start(plan, now), 2) == {MAIN: 2, BACKUP: 1}


def test_another_campaigns_calls_from_a_number_count_towards_its_cap(db):
    # numbers are shared: the carrier sees every call from them (docs/dashboard.md), so the cap counts them all
    ids = make_campaign_db(db, rotation_enabled=True, number_daily_cap=2)
    other_campaign = ids["campaign_id"] + 1
    now = utc(2026, 4, 28, 17, 0)  # Tue 10:00 Phoenix
    add_calls(db, other_campaign, MAIN, now - timedelta(hours=2), n=2)
    add_calls(db, other_campaign, BACKUP, now - timedelta(hours=2))
    with transaction(db) as conn:
        assert usable_numbers(conn, plan_of(db, ids["campaign_id"]), now) == ([BACKUP], None)


def test_equal_use_is_ordered_by_number_whatever_the_campaigns_order(db):
    ids = make_campaign_db(db, rotation_enabled=True)
    with transaction(db) as conn:
        conn.execute("update campaigns set outbound_number_ids = ?", [list(reversed(ids["number_ids"]))])
    with transaction(db) as conn:
        assert usable_numbers(conn, plan_of(db, ids["campaign_id"]), utc(2026, 4, 28, 17, 0)) == ([MAIN, BACKUP], None)


@pytest.mark.parametrize(("numbers", "used", "count_", "avoid", "remaining", "expected"), [
    # equal use: the earlier number of the list (least used today, then e164) first
    (["+1a", "+1b"], {}, 3, None, None, ["+1a", "+1b", "+1a"]),
    # the cap left +1a one call: the rest go to +1b
    (["+1a", "+1b"], {}, 4, None, {"+1a": 1, "+1b": 3}, ["+1a", "+1b", "+1b", "+1b"]),
    # the first call must avoid +1a (spam) and takes +1b; the second is free to take +1a
    (["+1a", "+1b"], {}, 2, ["+1a", None], None, ["+1b", "+1a"]),
    # only the number to avoid has capacity left: it is assigned, and the claim holds that contact back
    (["+1a", "+1b"], {}, 2, ["+1a", None], {"+1a": 2, "+1b": 0}, ["+1a", "+1a"]),
    # one number takes every call
    (["+1a"], {"+1a": 9}, 2, ["+1a", None], {"+1a": 2}, ["+1a", "+1a"]),
])
def test_assign_numbers(numbers, used, count_, avoid, remaining, expected):
    assert assign_numbers(numbers, used, count_, avoid=avoid, remaining=remaining) == expected


def test_capped_numbers_are_named_when_what_is_left_has_no_active_trunk(db):
    # MAIN (trunk active) used its cap of 2; BACKUP is under it but its trunk is inactive. Nothing can dial
    # because of the cap: it was reported as "no outbound number in rotation has an active SIP trunk"
    ids = make_campaign_db(db, rotation_enabled=True, number_daily_cap=2)
    now = utc(2026, 4, 28, 17, 0)
    with transaction(db) as conn:
        conn.execute("update phone_numbers set sip_trunk_status = 'inactive' where e164 = ?", [BACKUP])
    add_calls(db, ids["campaign_id"], MAIN, now - timedelta(hours=1), n=2)
    with transaction(db) as conn:
        assert usable_numbers(conn, plan_of(db, ids["campaign_id"]), now) == (
            [], "every outbound number in rotation with an active SIP trunk reached its daily cap of 2 calls")


def test_without_any_active_trunk_the_trunks_are_named_even_when_one_is_capped(db):
    ids = make_campaign_db(db, rotation_enabled=True, number_daily_cap=2)
    now = utc(2026, 4, 28, 17, 0)
    with transaction(db) as conn:
        conn.execute("update phone_numbers set sip_trunk_status = 'inactive'")
    add_calls(db, ids["campaign_id"], MAIN, now - timedelta(hours=1), n=2)
    with transaction(db) as conn:
        assert usable_numbers(conn, plan_of(db, ids["campaign_id"]), now) == (
            [], "no outbound number in rotation has an active SIP trunk")


def test_a_paused_numbers_overview_shows_the_calls_that_paused_it(db):
    # `campaigns numbers health` showed 0 calls and 0 spam marks in 24 h beside "3 spam marks in 4 calls"
    ids = make_campaign_db(db, rotation_enabled=True)
    now = utc(2026, 4, 28, 17, 0)
    add_calls(db, ids["campaign_id"], BACKUP, now - timedelta(hours=1), n=3, status="not_connected",
              reason="marked_as_spam")
    add_calls(db, ids["campaign_id"], BACKUP, now - timedelta(hours=1))
    with transaction(db) as conn:
        assert usable_numbers(conn, plan_of(db, ids["campaign_id"]), now) == ([MAIN], None)  # pauses BACKUP
        overview = {r["e164"]: r for r in numbers_overview(conn, now)}
    backup = overview[BACKUP]
    assert (backup["in_rotation"], backup["paused_reason"]) == (
        False, "3 spam marks in 4 calls in 24 h (limit: 3 and 2% of calls)")
    assert (backup["calls_24h"], backup["connected_24h"], backup["connection_rate_24h"], backup["spam_marks_24h"]) == (
        4, 1, 0.25, 3)
    assert (overview[MAIN]["in_rotation"], overview[MAIN]["calls_24h"]) == (True, 0)
