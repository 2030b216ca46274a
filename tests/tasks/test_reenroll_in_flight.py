"""A contact removed and enrolled again while its ended call waits for its analysis stays in flight."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl

from flows.enrich_calls import run_enrichment
from schemas.enums import DisconnectReason
from tasks.clock import VirtualClock
from tasks.contacts_import import enroll_contacts, remove_contact_from_campaign
from tasks.dialing import eligible_contacts, load_plans, run_tick
from tasks.store import connect, transaction
from tests.factories import add_contacts, make_campaign_db, open_the_us_rule_all_day
from tests.fakes import FakeProvider

MONDAY_NOON_PHOENIX = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)


class LateAnalysis(FakeProvider):
    """Calls end at once, and their analysis (the success verdict) arrives an hour after placing."""

    def get_call(self, provider_call_id, now):
        call = super().get_call(provider_call_id, now)
        _request, placed = self.calls[provider_call_id]
        return replace(call, analyzed=False, call_successful=None) if call.analyzed and now < placed + timedelta(
            hours=1) else call


def test_a_contact_re_enrolled_before_its_calls_analysis_is_not_called_again(db):
    # an ended call keeps its contact in flight until analysed (call_state); enrolled again in that gap, the contact
    # was free at once: the next tick called them again, and the late analysis then made both calls successful
    ids = make_campaign_db(db, max_attempts=5, attempts_per_day=3, batch_size=1)
    open_the_us_rule_all_day(db)
    [contact] = add_contacts(db, ids["campaign_id"], 1)
    provider = LateAnalysis(outcome=lambda request: (DisconnectReason.agent_hangup, True), ring_seconds=5)
    clock = VirtualClock(MONDAY_NOON_PHOENIX)
    assert run_tick(db, provider, clock, pace_seconds=0).placed == 1
    now = MONDAY_NOON_PHOENIX + timedelta(minutes=5)
    run_enrichment(db, provider, now)
    with transaction(db) as conn:
        [(status, analyzed, in_flight)] = conn.execute(
            "select k.status, k.analyzed_at, e.in_flight_call_id from calls k join campaign_contacts e using (contact_id)"
        ).fetchall()
        assert (status, analyzed, in_flight) == ("ended", None, 1)  # ended, its analysis still to come
        remove_contact_from_campaign(conn, ids["campaign_id"], contact)
        phone = conn.execute("select phone_e164 from contacts where contact_id = ?", [contact]).fetchone()[0]
        enroll_contacts(conn, ids["campaign_id"], pl.DataFrame({"phone_e164": [phone], "row": [1]}), now)
        assert conn.execute("select in_flight_call_id from campaign_contacts").fetchone() == (1,)
        assert eligible_contacts(conn, load_plans(conn, [ids["campaign_id"]])[0], now, 10).is_empty()
    clock.advance_to(now + timedelta(minutes=5))
    assert run_tick(db, provider, clock, pace_seconds=0).placed == 0
    run_enrichment(db, provider, MONDAY_NOON_PHOENIX + timedelta(hours=2))
    with connect(db) as conn:
        assert conn.execute("select finished_reason, in_flight_call_id from campaign_contacts").fetchone() == (
            "successful", None)
        assert conn.execute("select count(*) from calls").fetchone()[0] == 1


import pytest  # noqa: E402


@pytest.mark.parametrize(("reason", "policy", "expected"), [
    (DisconnectReason.user_declined, None, "wait"),  # the default rule: next day
    (DisconnectReason.dial_no_answer, {"dial_no_answer": "1d"}, "wait"),
    (DisconnectReason.marked_as_spam, {"marked_as_spam": "never"}, "never"),
])
def test_a_contact_re_enrolled_keeps_its_retry_wait_or_its_never(db, reason, policy, expected):
    # re-enrolling restored the counters from the calls but not what the last call's release set: a contact who
    # declined was free at once, and one whose spam mark's rule is `never` was called again
    ids = make_campaign_db(db, max_attempts=5, attempts_per_day=3, retry_policy=policy, batch_size=1)
    open_the_us_rule_all_day(db)
    [contact] = add_contacts(db, ids["campaign_id"], 1)
    provider = FakeProvider(outcome=lambda request: (reason, False), ring_seconds=20)
    assert run_tick(db, provider, VirtualClock(MONDAY_NOON_PHOENIX), pace_seconds=0).placed == 1
    now = MONDAY_NOON_PHOENIX + timedelta(minutes=5)
    run_enrichment(db, provider, now)
    read = ("select next_call_at, avoid_number, finished_reason, finished_at is not null from campaign_contacts"
            " where contact_id = ?")
    with transaction(db) as conn:
        before = conn.execute(read, [contact]).fetchone()
        assert (before[0] is not None, before[2]) == ((True, None) if expected == "wait" else (False, "not_retryable"))
        remove_contact_from_campaign(conn, ids["campaign_id"], contact)
        phone = conn.execute("select phone_e164 from contacts where contact_id = ?", [contact]).fetchone()[0]
        enroll_contacts(conn, ids["campaign_id"], pl.DataFrame({"phone_e164": [phone], "row": [1]}), now)
        assert conn.execute(read, [contact]).fetchone() == before
        assert eligible_contacts(conn, load_plans(conn, [ids["campaign_id"]])[0], now, 10).is_empty()
