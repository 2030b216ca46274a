"""The forecast starts from where the campaign really is: calls ringing now, what its numbers already
placed today, a campaign already finished, and a horizon shorter than the idle stops."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tasks.campaigns import duplicate_campaign
from tasks.clock import VirtualClock
from tasks.dialing import run_tick
from tasks.forecast import forecast, simulate_campaign
from tasks.number_health import pause_number, restore_number
from tasks.store import connect, transaction
from tasks.telephony.simulator import SimulatedProvider
from tests.factories import add_contacts, make_campaign_db

PHOENIX = ZoneInfo("America/Phoenix")
MONDAY_MIDNIGHT_PHOENIX = datetime(2026, 4, 27, 7, 0, tzinfo=UTC)
MONDAY_9_PHOENIX = datetime(2026, 4, 27, 16, 0, tzinfo=UTC)
MONDAY_10_PHOENIX = datetime(2026, 4, 27, 17, 0, tzinfo=UTC)
MAIN_NUMBER = "+16025550100"  # the factory campaign's only outbound number


def _fingerprint(db):
    with connect(db) as conn:
        return conn.execute(
            "select (select count(*) from calls), (select count(*) from phone_attempts),"
            " (select list((attempts, attempts_on_day, in_flight_call_id) order by contact_id) from campaign_contacts),"
            " (select count(*) from number_status_changes)"
        ).fetchone()


def _other_campaign_calls(db, campaign_id: int, at: datetime, count: int, reason: str) -> int:
    """A second campaign on the same number, with `count` ended calls from it at `at`; returns its id."""
    with transaction(db) as conn:
        other = duplicate_campaign(conn, campaign_id, at)
        for i in range(count):
            conn.execute(
                "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, from_number,"
                " status, disconnect_reason, provider, queued_at, ended_at, analyzed_at, updated_at)"
                " values (?, ?, ?, 1, ?, ?, 'not_connected', ?, 'simulator', ?, ?, ?, ?)",
                [other, 9000 + i, f"other.{i}", f"+1602777{i:04d}", MAIN_NUMBER, reason, at, at, at, at])
    return other


def test_calls_placed_today_from_the_number_use_up_its_daily_cap(db):
    # another campaign placed 10 calls from the number this morning and the cap is 10 a campaign-local day:
    # nothing more is placed from it today, so the 10 contacts are called on Tuesday (the copy used to start
    # with no calls at all and called them on Monday afternoon)
    ids = make_campaign_db(db, max_attempts=1, number_daily_cap=10)
    add_contacts(db, ids["campaign_id"], 10)
    _other_campaign_calls(db, ids["campaign_id"], MONDAY_9_PHOENIX, 10, "dial_no_answer")
    before = _fingerprint(db)
    predicted = forecast(db, ids["campaign_id"], MONDAY_10_PHOENIX, seed=2, pace_seconds=3)
    assert _fingerprint(db) == before  # the real store was only read
    assert predicted.calls == 10  # the other campaign's calls are not this campaign's
    assert predicted.completion.astimezone(PHOENIX).date() == date(2026, 4, 28)
    assert predicted.held_back_contacts == 0


def test_a_number_put_back_in_rotation_is_judged_from_then_on(db):
    # 3 spam marks paused the number and a person put it back: its health counts calls since the restore
    # (the copy now holds the number's recent calls, so it needs the restore too, or it pauses the number again)
    ids = make_campaign_db(db, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 5)
    _other_campaign_calls(db, ids["campaign_id"], MONDAY_9_PHOENIX, 3, "marked_as_spam")
    with transaction(db) as conn:
        pause_number(conn, ids["number_ids"][0], MONDAY_9_PHOENIX + timedelta(minutes=5), "3 spam marks")
        restore_number(conn, ids["number_ids"][0], MONDAY_9_PHOENIX + timedelta(minutes=10))
    predicted = forecast(db, ids["campaign_id"], MONDAY_10_PHOENIX, seed=2, pace_seconds=3)
    assert (predicted.calls, predicted.held_back_contacts) == (5, 0)


def test_calls_in_flight_are_placed_again_in_the_copy(db):
    # a batch of 10 rings now (one attempt each, the contacts' only one): the copy gives the attempt back and
    # places them again, so they finish today instead of counting as never finishing, and each is one call
    ids = make_campaign_db(db, batch_size=10, max_attempts=1)
    cid = ids["campaign_id"]
    add_contacts(db, cid, 30)
    provider = SimulatedProvider(db.parent / "simulator.sqlite", seed=5, concurrency_limit=20)
    clock = VirtualClock(MONDAY_10_PHOENIX)
    run_tick(db, provider, clock, campaign_ids=[cid], pace_seconds=3.0)
    provider.close()
    with connect(db) as conn:
        assert conn.execute("select count(*) from campaign_contacts where in_flight_call_id is not null").fetchone() == (10,)
    before = _fingerprint(db)
    predicted = forecast(db, cid, clock.now(), seed=5, pace_seconds=3)
    assert _fingerprint(db) == before
    assert (predicted.calls, predicted.remaining_contacts, predicted.held_back_contacts) == (30, 30, 0)
    # the attempt of the day was given back too (attempts_per_day=1): all 30 are called on Monday
    assert predicted.completion.astimezone(PHOENIX).date() == date(2026, 4, 27)
    assert predicted.observed_connection_rate is None  # no call has ended yet


def test_a_finished_campaign_completed_with_its_last_call(db):
    ids = make_campaign_db(db, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 5)
    provider = SimulatedProvider(db.parent / "simulator.sqlite", seed=2, concurrency_limit=20)
    simulate_campaign(db, provider, MONDAY_MIDNIGHT_PHOENIX, 2, ids["campaign_id"], 3.0)
    provider.close()
    with connect(db) as conn:
        last_call = conn.execute("select max(coalesce(ended_at, queued_at)) from calls").fetchone()[0]
    predicted = forecast(db, ids["campaign_id"], MONDAY_MIDNIGHT_PHOENIX + timedelta(days=5), seed=2, pace_seconds=3)
    # not "today": nothing is left to call, the campaign completed on Monday
    assert (predicted.completion, predicted.calls, predicted.remaining_contacts) == (last_call, 5, 0)


@pytest.mark.parametrize(("start_day", "cap", "days", "completion_day"), [
    (0, None, 2, date(2026, 4, 27)),  # all 8 called on Monday: done within a 2-day horizon
    (0, None, 7, date(2026, 4, 27)),
    (0, 5, 3, date(2026, 4, 28)),     # 5 a day from the one number: the last 3 on Tuesday
    (0, 5, 1, None),                  # ... which a 1-day horizon does not reach: still calling at its end
    (5, None, 1, None),               # from Saturday, 1 day: nobody is called before the horizon, not "done"
])
def test_a_horizon_shorter_than_the_idle_stop_still_gives_the_completion(db, start_day, cap, days, completion_day):
    ids = make_campaign_db(db, max_attempts=1, number_daily_cap=cap)
    add_contacts(db, ids["campaign_id"], 8)
    now = MONDAY_MIDNIGHT_PHOENIX + timedelta(days=start_day)
    predicted = forecast(db, ids["campaign_id"], now, seed=3, pace_seconds=3, horizon_days=days)
    completion = predicted.completion and predicted.completion.astimezone(PHOENIX).date()
    assert completion == completion_day
