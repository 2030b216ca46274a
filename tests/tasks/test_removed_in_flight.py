"""A person whose call rings in a campaign they were just removed from is not called by another campaign meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.enums import DisconnectReason
from tasks.campaigns import create_campaign
from tasks.clock import VirtualClock
from tasks.contacts_import import remove_contact_from_campaign
from tasks.dialing import eligible_contacts, load_plans, run_tick
from tasks.store import connect, transaction
from tests.factories import REFERENCE_SCHEDULE, add_contacts, make_campaign_db, open_the_us_rule_all_day
from tests.fakes import FakeProvider

NOON = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)  # Monday 12:00 in Phoenix


def test_a_contact_removed_from_a_campaign_while_its_call_rings_is_not_called_by_another(db):
    # in_call read the enrollments only: removed from B while B's call rang, the person was offered to A at once, and
    # A called them (two calls up at a time)
    ids = make_campaign_db(db, name="A", batch_size=1)
    open_the_us_rule_all_day(db)
    with transaction(db) as conn:
        b = create_campaign(conn, {
            "name": "B", "agent_id": ids["agent_id"], "time_zone": "America/Phoenix", "country": "US",
            "calling_days": ["mon", "tue", "wed", "thu", "fri"], "weekly_schedule": REFERENCE_SCHEDULE,
            "start_date": NOON.date() - timedelta(days=7), "batch_size": 1,
            "outbound_number_ids": ids["number_ids"][1:2], "active": False}, NOON)
        conn.execute("update campaigns set active = (campaign_id = ?)", [b])  # only B dials first
    [person] = add_contacts(db, b, 1)
    with transaction(db) as conn:
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [ids["campaign_id"], person])
    provider = FakeProvider(ring_seconds=600, outcome=lambda r: (DisconnectReason.user_hangup, False), talk_seconds=1200)
    assert run_tick(db, provider, VirtualClock(NOON), pace_seconds=0).placed == 1
    later = NOON + timedelta(minutes=2)
    with transaction(db) as conn:
        remove_contact_from_campaign(conn, b, person)
        conn.execute("update campaigns set active = (campaign_id = ?)", [ids["campaign_id"]])
    with connect(db) as conn:
        plan = load_plans(conn, [ids["campaign_id"]])[0]
        assert eligible_contacts(conn, plan, later, 10)["contact_id"].to_list() == []
    assert run_tick(db, provider, VirtualClock(later), pace_seconds=0).placed == 0
    assert provider.active_calls(later) == 1
    # once B's call is over and analysed, A may call them
    with transaction(db) as conn:
        conn.execute("update calls set status = 'ended', analyzed_at = ? where campaign_id = ?", [later, b])
    with connect(db) as conn:
        assert eligible_contacts(conn, plan, later, 10)["contact_id"].to_list() == [person]
