"""The dialing engine: eligibility rules, ordering, rotation, pacing, concurrency, manual runs."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from schemas.enums import DisconnectReason
from tasks.call_state import apply_provider_calls
from tasks.campaigns import duplicate_campaign
from tasks.clock import VirtualClock
from tasks.dialing import HOST, assign_numbers, dial_batch, eligible_contacts, load_plans, run_manual, run_tick
from tasks.store import connect, transaction
from tasks.telephony.base import ProviderUnavailable
from tests.factories import add_contacts, make_campaign_db
from tests.fakes import FakeProvider

UTC = timezone.utc
TUE_10_PHOENIX = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # Tuesday 10:00 in America/Phoenix (UTC-7)


def plan_of(db, campaign_id):
    with connect(db) as conn:
        return load_plans(conn, [campaign_id])[0]


def eligible_ids(db, campaign_id, now=TUE_10_PHOENIX, size=500):
    with connect(db) as conn:
        return eligible_contacts(conn, plan_of(db, campaign_id), now, size)["contact_id"].to_list()


def set_state(db, campaign_id, contact_id, **columns):
    with transaction(db) as conn:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        conn.execute(
            f"update campaign_contacts set {assignments} where campaign_id = ? and contact_id = ?",
            [*columns.values(), campaign_id, contact_id],
        )


@pytest.fixture
def enrolled(campaign_db):
    """The reference campaign (max 5 attempts, 1 per day) with three fresh contacts."""
    ids = add_contacts(campaign_db["db"], campaign_db["campaign_id"], 3)
    return {**campaign_db, "contacts": ids}


# ------------------------------------------------------------------ eligibility, one rule at a time


def test_fresh_contacts_are_all_eligible_in_enrollment_order(enrolled):
    assert eligible_ids(enrolled["db"], enrolled["campaign_id"]) == enrolled["contacts"]


@pytest.mark.parametrize(
    ("state", "why"),
    [
        ({"finished_at": TUE_10_PHOENIX, "finished_reason": "successful"}, "finished after a successful call"),
        ({"finished_at": TUE_10_PHOENIX, "finished_reason": "not_retryable"}, "invalid_destination is final"),
        ({"in_flight_call_id": 99}, "a call of theirs is still in flight"),
        ({"attempts": 5}, "max_attempts=5 reached"),
        ({"attempts": 1, "attempts_day": date(2026, 4, 28), "attempts_on_day": 1}, "attempts_per_day=1 used today"),
        ({"next_call_at": TUE_10_PHOENIX + timedelta(minutes=1)}, "retry not due yet"),
    ],
)
def test_each_rule_alone_excludes_the_contact(enrolled, state, why):
    blocked = enrolled["contacts"][0]
    set_state(enrolled["db"], enrolled["campaign_id"], blocked, **state)
    assert blocked not in eligible_ids(enrolled["db"], enrolled["campaign_id"]), why


def test_yesterdays_attempt_does_not_count_today(enrolled):
    contact = enrolled["contacts"][0]
    set_state(enrolled["db"], enrolled["campaign_id"], contact, attempts=1, attempts_day=date(2026, 4, 27), attempts_on_day=1)
    assert contact in eligible_ids(enrolled["db"], enrolled["campaign_id"])


def test_attempts_per_day_counts_the_campaign_local_day(enrolled):
    contact = enrolled["contacts"][0]
    # Called on the 28th local (Phoenix). At 2026-04-29 05:00 UTC it is still the 28th in Phoenix.
    set_state(enrolled["db"], enrolled["campaign_id"], contact, attempts=1, attempts_day=date(2026, 4, 28), attempts_on_day=1)
    late_evening = datetime(2026, 4, 29, 5, 0, tzinfo=UTC)
    assert contact not in eligible_ids(enrolled["db"], enrolled["campaign_id"], now=late_evening)
    next_morning = datetime(2026, 4, 29, 15, 0, tzinfo=UTC)  # 29th 08:00 Phoenix
    assert contact in eligible_ids(enrolled["db"], enrolled["campaign_id"], now=next_morning)


def test_a_contact_of_another_campaign_is_not_eligible(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        other = duplicate_campaign(conn, campaign_db["campaign_id"], TUE_10_PHOENIX)
    add_contacts(campaign_db["db"], other, 2, first=100)
    assert eligible_ids(campaign_db["db"], campaign_db["campaign_id"]) == []


def test_a_person_in_a_call_of_another_campaign_is_not_dialed_by_this_one(enrolled):
    # two campaigns with the same people: the second one's tick dialed those the first had just called
    db, first = enrolled["db"], enrolled["campaign_id"]
    with transaction(db) as conn:
        second = duplicate_campaign(conn, first, TUE_10_PHOENIX)
        conn.execute("update campaigns set active = true where campaign_id = ?", [second])
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) select ?, contact_id"
                     " from campaign_contacts where campaign_id = ?", [second, first])
    provider = FakeProvider()
    result = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    assert [(b.campaign_id, b.placed) for b in result.batches] == [(first, 3), (second, 0)]
    assert result.batches[1].held == "3 in a call of another campaign"
    assert sorted(provider.placed.values()) == [1, 1, 1]  # each person once
    assert eligible_ids(db, second) == []
    with transaction(db) as conn:  # the first campaign's calls ended: the second may call them now
        conn.execute("update campaign_contacts set in_flight_call_id = null where campaign_id = ?", [first])
        conn.execute("update calls set status = 'not_connected' where campaign_id = ?", [first])
    assert sorted(eligible_ids(db, second)) == sorted(enrolled["contacts"])


def test_order_is_fewest_attempts_then_longest_since_last_call_then_enrollment(enrolled):
    db, cid = enrolled["db"], enrolled["campaign_id"]
    a, b, c = enrolled["contacts"]
    extra = add_contacts(db, cid, 1, first=50)[0]
    set_state(db, cid, a, attempts=2, last_call_at=TUE_10_PHOENIX - timedelta(days=5), attempts_day=date(2026, 4, 23))
    set_state(db, cid, b, attempts=1, last_call_at=TUE_10_PHOENIX - timedelta(days=1), attempts_day=date(2026, 4, 27))
    set_state(db, cid, c, attempts=1, last_call_at=TUE_10_PHOENIX - timedelta(days=3), attempts_day=date(2026, 4, 25))
    # extra: never called (0 attempts) goes first; then c (called longer ago) before b; a has most attempts
    assert eligible_ids(db, cid) == [extra, c, b, a]


def test_batch_size_caps_the_claim(campaign_db):
    add_contacts(campaign_db["db"], campaign_db["campaign_id"], 7)
    assert len(eligible_ids(campaign_db["db"], campaign_db["campaign_id"], size=5)) == 5


# ------------------------------------------------------------------ ticks


def test_a_tick_outside_the_window_places_nothing(enrolled):
    saturday = datetime(2026, 5, 2, 17, 0, tzinfo=UTC)
    provider = FakeProvider()
    assert run_tick(enrolled["db"], provider, VirtualClock(saturday)).placed == 0
    assert provider.calls == {}


def test_a_tick_places_each_contact_once_and_stores_dynamic_variables(enrolled):
    provider = FakeProvider()
    result = run_tick(enrolled["db"], provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    assert result.placed == 3
    assert sorted(provider.placed.values()) == [1, 1, 1]
    with connect(enrolled["db"]) as conn:
        rows = conn.execute(
            "select status, attempt_number, from_number, dynamic_variables::varchar, provider_call_id is not null"
            " from calls order by call_id"
        ).fetchall()
        states = conn.execute("select attempts, attempts_on_day, in_flight_call_id is not null from campaign_contacts").fetchall()
    assert [r[0] for r in rows] == ["registered"] * 3
    assert {r[1] for r in rows} == {1} and {r[2] for r in rows} == {"+16025550100"} and all(r[4] for r in rows)
    assert json.loads(rows[0][3]) == {"contact_name": "Person 0", "company_name": "Acme", "email": "", "plan": "gold"}
    assert states == [(1, 1, True)] * 3
    # the same tick again: everyone is in flight, nobody is dialed twice
    assert run_tick(enrolled["db"], provider, VirtualClock(TUE_10_PHOENIX + timedelta(minutes=1))).placed == 0


def _finish_all(db, provider, now):
    with connect(db) as conn:
        rows = conn.execute("select call_id, provider_call_id from calls where status = 'registered'").fetchall()
    with transaction(db) as conn:
        apply_provider_calls(conn, [(cid, provider.get_call(pid, now)) for cid, pid in rows], now)


def test_a_batch_claimed_just_before_local_midnight_places_nothing_on_the_next_day(db):
    # a window running past midnight did not bound the batch: calls claimed at 23:59:50 were placed on the next
    # day but counted toward the claim's, and the next day gave every contact its whole allowance again
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    ids = make_campaign_db(db, time_zone="Europe/Madrid", country="ES", calling_days=every_day,
                           weekly_schedule={d: [["00:00", "24:00"]] for d in every_day}, batch_size=10,
                           attempts_per_day=1, max_attempts=5)
    add_contacts(db, ids["campaign_id"], 10)  # Phoenix callees: 14:59 there, inside their legal hours
    midnight = datetime(2026, 4, 28, 22, 0, tzinfo=timezone.utc)  # Wed Apr 29 00:00 in Madrid (CEST)
    provider = FakeProvider()
    first = run_tick(db, provider, VirtualClock(midnight - timedelta(seconds=10)), pace_seconds=3)
    assert (first.batches[0].claimed, first.placed) == (4, 4)  # 23:59:50, :53, :56, :59
    assert max(at for _, at in provider.calls.values()) < midnight
    _finish_all(db, provider, midnight + timedelta(minutes=5))
    run_tick(db, provider, VirtualClock(midnight + timedelta(minutes=5)), pace_seconds=3)
    with connect(db) as conn:
        per_day = conn.execute(
            "select contact_id, (registered_at at time zone 'Europe/Madrid')::date as day, count(*) from calls"
            " where registered_at is not null group by all having count(*) > 1").fetchall()
        days = conn.execute("select count(*), count(distinct contact_id) from calls").fetchone()
    assert per_day == []  # attempts per day (1) held on each Madrid day the calls were placed
    assert days == (10, 10)  # the six left went out after midnight, on their own day


def test_retries_on_later_days_until_max_attempts(campaign_db):
    db = campaign_db["db"]
    with transaction(db) as conn:
        conn.execute("update campaigns set max_attempts = 2 where campaign_id = ?", [campaign_db["campaign_id"]])
    add_contacts(db, campaign_db["campaign_id"], 1)
    provider = FakeProvider()  # always no answer
    for day in range(4):
        now = TUE_10_PHOENIX + timedelta(days=day)
        run_tick(db, provider, VirtualClock(now), pace_seconds=0)
        _finish_all(db, provider, now + timedelta(hours=1))
        # a second tick the same day: attempts_per_day=1 refuses
        assert run_tick(db, provider, VirtualClock(now + timedelta(hours=2))).placed == 0
    with connect(db) as conn:
        assert conn.execute("select count(*) from calls").fetchone()[0] == 2
        assert conn.execute("select finished_reason from campaign_contacts").fetchone()[0] == "max_attempts"


def test_success_and_invalid_destination_finish_the_contact(campaign_db):
    db = campaign_db["db"]
    ok, bad, retry = add_contacts(db, campaign_db["campaign_id"], 3)

    def outcome(request):
        if request.to_number.endswith("0000"):
            return DisconnectReason.agent_hangup, True
        if request.to_number.endswith("0001"):
            return DisconnectReason.invalid_destination, False
        return DisconnectReason.dial_busy, False

    provider = FakeProvider(outcome=outcome)
    run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    _finish_all(db, provider, TUE_10_PHOENIX + timedelta(hours=1))
    with connect(db) as conn:
        states = dict(conn.execute("select contact_id, finished_reason from campaign_contacts").fetchall())
    assert states == {ok: "successful", bad: "not_retryable", retry: None}
    assert eligible_ids(db, campaign_db["campaign_id"], now=TUE_10_PHOENIX + timedelta(days=1)) == [retry]


def test_pacing_and_the_provider_concurrency_limit(campaign_db):
    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 12)
    # every call rings 20 s and talks 60 s: at most 3 may be up at once
    provider = FakeProvider(concurrency_limit=3, outcome=lambda r: (DisconnectReason.agent_hangup, False))
    clock = VirtualClock(TUE_10_PHOENIX)
    result = dial_batch(db, provider, plan_of(db, campaign_db["campaign_id"]), clock, pace_seconds=3)
    assert result.placed == 12 and result.refused == 0
    placed_at = sorted(at for _, at in provider.calls.values())
    assert all(b - a >= timedelta(seconds=3) for a, b in zip(placed_at, placed_at[1:]))  # one call every 3 s at most
    for moment in placed_at:
        assert provider.active_calls(moment) <= 3


def test_provider_refusal_is_not_an_attempt(campaign_db):
    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 2)
    provider = FakeProvider(fail_with=ProviderUnavailable("down"))
    result = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    assert result.placed == 0
    with connect(db) as conn:
        assert conn.execute("select distinct attempts, attempts_on_day, in_flight_call_id from campaign_contacts").fetchall() == [(0, 0, None)]
        statuses = conn.execute("select status, disconnect_reason, counts_as_attempt from calls order by call_id").fetchall()
        run = conn.execute("select state, message from dial_runs").fetchone()
    # the first refusal is recorded as such; the rest of the batch was never sent
    assert statuses[0] == ("not_connected", "telephony_provider_unavailable", False)
    assert statuses[1] == ("error", "error_dapta", False)
    assert run[0] == "failed" and "unavailable" in run[1]
    with connect(db) as conn:  # neither rang: no placing time ("provider accepted"), the claim stays their time
        assert conn.execute("select count(*) from calls where registered_at is not null").fetchone()[0] == 0
    provider.fail_with = None
    assert run_tick(db, provider, VirtualClock(TUE_10_PHOENIX + timedelta(minutes=1))).placed == 2


def test_a_batch_claims_no_more_than_the_pace_lets_start_before_the_window_closes(campaign_db):
    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 10)
    provider = FakeProvider()
    just_before_six = datetime(2026, 4, 29, 0, 59, 50, tzinfo=UTC)  # Tue 17:59:50 Phoenix
    result = dial_batch(db, provider, plan_of(db, campaign_db["campaign_id"]), VirtualClock(just_before_six), pace_seconds=3)
    assert (result.claimed, result.placed, result.not_placed) == (4, 4, 0)  # 17:59:50, :53, :56, :59; 18:00:02 is closed
    with connect(db) as conn:
        assert conn.execute("select count(*), count(distinct contact_id) from calls").fetchone() == (4, 4)
        assert conn.execute("select count(*) from campaign_contacts where attempts = 0").fetchone()[0] == 6
    assert len(eligible_ids(db, campaign_db["campaign_id"], now=just_before_six + timedelta(days=1))) == 6
    # a manual run ignores the schedule, so nothing bounds its claim
    assert dial_batch(db, provider, plan_of(db, campaign_db["campaign_id"]), VirtualClock(just_before_six),
                      kind="manual", pace_seconds=3).claimed == 6


def test_window_closing_mid_batch_stops_placing(campaign_db):
    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 10)
    # one line, each unanswered call holds it 20 s: placing waits for it, so the close comes mid-batch
    provider = FakeProvider(concurrency_limit=1, ring_seconds=20)
    a_minute_before_six = datetime(2026, 4, 29, 0, 59, 0, tzinfo=UTC)  # Tue 17:59:00 Phoenix
    result = dial_batch(db, provider, plan_of(db, campaign_db["campaign_id"]), VirtualClock(a_minute_before_six),
                        pace_seconds=3)
    assert result.claimed == 10  # 20 calls fit the last minute at the pace
    assert (result.placed, result.not_placed) == (3, 7)  # 17:59:00, :21, :42; the line frees at 18:00:02
    assert all(at < a_minute_before_six + timedelta(minutes=1) for _, at in provider.calls.values())
    with connect(db) as conn:
        closed = conn.execute("select status, disconnect_reason, counts_as_attempt, error_message from calls"
                              " where provider_call_id is null").fetchall()
    assert len(closed) == 7
    assert {row[:3] for row in closed} == {("error", "error_dapta", False)}
    assert all("window closed" in row[3] for row in closed)
    assert len(eligible_ids(db, campaign_db["campaign_id"], now=a_minute_before_six + timedelta(days=1))) == 7


def test_placing_stops_at_the_horizon_its_callees_windows_were_checked_for(campaign_db):
    from tasks.dialing import HORIZON_PASSED, HORIZON_SLACK_SECONDS

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 10)
    with transaction(db) as conn:
        conn.execute("update campaigns set batch_size = 10")
    # one line, each unanswered call holds it a minute: ten calls would take ten minutes, far past the
    # 10 × 3 s + slack the claim checked the callees' windows for
    provider = FakeProvider(concurrency_limit=1, ring_seconds=60)
    result = dial_batch(db, provider, plan_of(db, campaign_db["campaign_id"]), VirtualClock(TUE_10_PHOENIX),
                        pace_seconds=3)
    deadline = TUE_10_PHOENIX + timedelta(seconds=10 * 3 + HORIZON_SLACK_SECONDS)
    placed_at = sorted(at for _, at in provider.calls.values())
    assert placed_at == [TUE_10_PHOENIX + timedelta(minutes=i) for i in range(7)]  # 10:07 is past 10:06:30
    assert all(at < deadline for at in placed_at)
    assert (result.claimed, result.placed, result.not_placed, result.message) == (10, 7, 3, HORIZON_PASSED)
    with connect(db) as conn:
        assert conn.execute("select count(*) from calls where status = 'error' and not counts_as_attempt"
                            " and error_message = ?", [HORIZON_PASSED]).fetchone()[0] == 3


def test_the_simulator_places_nothing_past_the_horizon_either(campaign_db, tmp_path):
    from tasks.dialing import HORIZON_SLACK_SECONDS
    from tasks.telephony.simulator import SimulatedProvider

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 40)
    with transaction(db) as conn:
        conn.execute("update campaigns set batch_size = 40")
    provider = SimulatedProvider(tmp_path / "simulator.sqlite", seed=3, concurrency_limit=1)
    result = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=3).batches[0]
    deadline = TUE_10_PHOENIX + timedelta(seconds=40 * 3 + HORIZON_SLACK_SECONDS)
    with connect(db) as conn:
        latest = conn.execute("select max(registered_at) from calls").fetchone()[0]
    assert result.claimed == 40 and 0 < result.placed and result.not_placed > 0
    assert latest < deadline
    provider.close()


# ------------------------------------------------------------------ rotation


def test_assign_numbers_spreads_calls_least_used_first():
    assert assign_numbers(["+1a", "+1b"], {"+1a": 2}, 4) == ["+1b", "+1b", "+1a", "+1b"]


def test_rotation_skips_numbers_whose_trunk_is_not_active(db):
    ids = make_campaign_db(db, rotation_enabled=True)
    with transaction(db) as conn:
        conn.execute("update phone_numbers set sip_trunk_status = 'inactive' where number_id = ?", [ids["number_ids"][0]])
    add_contacts(db, ids["campaign_id"], 4)
    run_tick(db, FakeProvider(), VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    with connect(db) as conn:
        assert conn.execute("select distinct from_number from calls").fetchall() == [("+16025550101",)]


def test_rotation_alternates_between_active_numbers(db):
    ids = make_campaign_db(db, rotation_enabled=True)
    add_contacts(db, ids["campaign_id"], 6)
    run_tick(db, FakeProvider(), VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    with connect(db) as conn:
        used = dict(conn.execute("select from_number, count(*) from calls group by 1").fetchall())
    assert used == {"+16025550100": 3, "+16025550101": 3}


def test_rotation_spreads_a_batch_by_the_numbers_use_today_not_the_last_24_hours(db):
    # last evening (Mon 17:00 Phoenix) the main number placed 4 calls; today the backup placed 1. Least used
    # today is the main number: a count over the last 24 hours (4 vs 1) gave the backup 3 of 4 calls
    ids = make_campaign_db(db, rotation_enabled=True)
    main, backup = "+16025550100", "+16025550101"
    with transaction(db) as conn:
        for i, (number, at) in enumerate([(main, TUE_10_PHOENIX - timedelta(hours=17))] * 4
                                         + [(backup, TUE_10_PHOENIX - timedelta(hours=1))]):
            conn.execute(
                "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, from_number,"
                " status, provider, queued_at, updated_at) values (99, ?, ?, 1, ?, ?, 'ended', 'fake', ?, ?)",
                [1000 + i, f"old.{i}", f"+1602555{9000 + i}", number, at, at])
    add_contacts(db, ids["campaign_id"], 4)
    run_tick(db, FakeProvider(), VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    with connect(db) as conn:
        used = dict(conn.execute("select from_number, count(*) from calls where campaign_id = ? group by 1",
                                 [ids["campaign_id"]]).fetchall())
    assert used == {main: 3, backup: 1}  # 3 + 0 and 1 + 1 today: 3 and 2 by the day's end, as even as it gets


@pytest.mark.parametrize("rotation", [False, True])
def test_no_usable_number_means_no_dialing_and_a_reason(db, rotation):
    ids = make_campaign_db(db, rotation_enabled=rotation)
    with transaction(db) as conn:
        conn.execute("update phone_numbers set sip_trunk_status = 'error'")
    add_contacts(db, ids["campaign_id"], 2)
    result = run_tick(db, FakeProvider(), VirtualClock(TUE_10_PHOENIX))
    assert result.placed == 0
    assert "SIP trunk" in result.batches[0].message or "active" in result.batches[0].message


# ------------------------------------------------------------------ manual runs


def test_run_dials_an_inactive_campaign_outside_its_schedule_within_limits(db):
    ids = make_campaign_db(db, active=False, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 2)
    # Saturday 10:00 in Phoenix: outside the campaign's Mon–Fri schedule, inside US legal hours
    saturday_morning = datetime(2026, 5, 2, 17, 0, tzinfo=UTC)
    provider = FakeProvider()
    result = run_manual(db, provider, ids["campaign_id"], VirtualClock(saturday_morning), pace_seconds=0)
    assert result.placed == 2
    with connect(db) as conn:
        assert conn.execute("select kind, state from dial_runs").fetchall() == [("manual", "completed")]
    _finish_all(db, provider, saturday_morning + timedelta(hours=1))
    # max_attempts=1 holds for manual runs too
    assert run_manual(db, provider, ids["campaign_id"], VirtualClock(saturday_morning + timedelta(days=1))).placed == 0


def test_a_run_that_finds_nobody_says_whom_the_callee_rules_held_back(db):
    # at 03:00 in Phoenix a Run ignores the campaign's hours, not the callees' legal ones: it said only
    # "no eligible contacts", as if nobody were left to call
    ids = make_campaign_db(db, active=False)
    add_contacts(db, ids["campaign_id"], 3)
    night = datetime(2026, 4, 28, 10, 0, tzinfo=UTC)
    result = run_manual(db, FakeProvider(), ids["campaign_id"], VirtualClock(night), pace_seconds=0)
    assert (result.placed, result.message, result.held) == (0, "no eligible contacts",
                                                          "3 outside their legal calling hours")
    assert result.line() == (f"campaign {ids['campaign_id']}: claimed 0, placed 0 (no eligible contacts; held back: "
                             "3 outside their legal calling hours)")


def test_held_text_sums_each_kind_of_rule_largest_first():
    from tasks.dialing import held_text

    assert held_text([("window:US-FL", 2), ("do_not_call", 5), ("window:DEFAULT", 4), ("cap_24h:US-FL", 1)]) == (
        "6 outside their legal calling hours, 5 on a do-not-call list, 1 at their legal cap of calls in 24 hours")
    assert held_text([]) is None


def test_one_batch_at_a_time_per_campaign_whoever_starts_it(db):
    # a Run click while a batch still places its calls (another click, a tick) claims nobody: the next
    # batch starts once every contact of the current one was attempted
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tasks.dialing import BUSY

    ids = make_campaign_db(db, batch_size=2)
    add_contacts(db, ids["campaign_id"], 6)
    entered, release = threading.Event(), threading.Event()

    class Slow(FakeProvider):
        def place_call(self, request, now):
            entered.set()
            assert release.wait(20)
            return super().place_call(request, now)

    provider = Slow()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(run_manual, db, provider, ids["campaign_id"], VirtualClock(TUE_10_PHOENIX), pace_seconds=3)
        assert entered.wait(20)
        with connect(db) as conn:
            (run_id,) = conn.execute("select run_id from dial_runs where state = 'running'").fetchone()
        again = run_manual(db, provider, ids["campaign_id"], VirtualClock(TUE_10_PHOENIX), pace_seconds=3)
        tick = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=3)
        # a campaign sharded over two workers may have two batches placing at once, not three
        shard = run_tick(db, FakeProvider(), VirtualClock(TUE_10_PHOENIX), pace_seconds=3, batches_at_once=2)
        release.set()
        assert first.result().placed == 2
    assert (again.claimed, again.message) == (0, BUSY.format(run_id=run_id))
    assert (tick.batches[0].claimed, tick.batches[0].message) == (0, BUSY.format(run_id=run_id))
    assert shard.placed == 2
    # once it has ended the next batch goes
    assert run_manual(db, provider, ids["campaign_id"], VirtualClock(TUE_10_PHOENIX), pace_seconds=3).placed == 2


def test_a_dead_batch_does_not_block_the_next(db):
    ids = make_campaign_db(db, batch_size=2)
    add_contacts(db, ids["campaign_id"], 2)
    with transaction(db) as conn:  # a run whose process is gone (no such pid on this host)
        conn.execute("insert into dial_runs (campaign_id, kind, state, started_at, owner_host, owner_pid, heartbeat_at)"
                     " values (?, 'manual', 'running', ?, ?, 2147483646, ?)",
                     [ids["campaign_id"], TUE_10_PHOENIX, HOST, TUE_10_PHOENIX])
    assert run_manual(db, FakeProvider(), ids["campaign_id"], VirtualClock(TUE_10_PHOENIX), pace_seconds=3).placed == 2
    with connect(db) as conn:
        assert conn.execute("select state from dial_runs order by run_id").fetchall() == [("failed",), ("completed",)]


def test_a_dead_batchs_pid_taken_by_another_process_does_not_block_the_next(db):
    # pids are reused: a stranger holding the dead owner's pid kept its run "placing its calls" and the campaign
    # blocked for as long as the stranger lived
    import subprocess
    import sys

    from tasks.dialing import run_is_dead

    ids = make_campaign_db(db, batch_size=2)
    add_contacts(db, ids["campaign_id"], 2)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        now = datetime.now(timezone.utc)
        # the owner's last heartbeat came before the process now holding its pid started: not the owner
        assert run_is_dead(HOST, stranger.pid, now - timedelta(minutes=5), 120)
        # a heartbeat after that process started is its own: alive, however old the run
        assert not run_is_dead(HOST, stranger.pid, now, 120)
        with transaction(db) as conn:
            conn.execute("insert into dial_runs (campaign_id, kind, state, started_at, owner_host, owner_pid, heartbeat_at)"
                         " values (?, 'manual', 'running', ?, ?, ?, ?)",
                         [ids["campaign_id"], TUE_10_PHOENIX, HOST, stranger.pid, now - timedelta(minutes=5)])
        clock = VirtualClock(TUE_10_PHOENIX)
        assert run_manual(db, FakeProvider(), ids["campaign_id"], clock, pace_seconds=3).placed == 2
        with connect(db) as conn:
            assert conn.execute("select state from dial_runs order by run_id").fetchall() == [("failed",), ("completed",)]
    finally:
        stranger.kill()
        stranger.wait()


def test_scheduled_ticks_skip_inactive_campaigns(db):
    ids = make_campaign_db(db, active=False)
    add_contacts(db, ids["campaign_id"], 2)
    assert run_tick(db, FakeProvider(), VirtualClock(TUE_10_PHOENIX)).placed == 0


def test_one_failing_campaign_does_not_keep_the_others_from_dialing(db):
    # A campaign whose claim fails (here an enrollment written by hand that restarts its attempt keys, so its
    # claim hits the unique key of an earlier call) used to end the tick before the campaigns after it.
    from tasks.dialing import TickError

    first = make_campaign_db(db)
    [contact] = add_contacts(db, first["campaign_id"], 1)
    with transaction(db) as conn:
        second = duplicate_campaign(conn, first["campaign_id"], TUE_10_PHOENIX)
        conn.execute("update campaigns set active = true, start_date = date '2026-04-27' where campaign_id = ?", [second])
    provider = FakeProvider()
    assert run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0).placed == 1
    [other] = add_contacts(db, second, 1)
    with transaction(db) as conn:
        conn.execute("delete from campaign_contacts where campaign_id = ?", [first["campaign_id"]])
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [first["campaign_id"], contact])
    with pytest.raises(TickError, match=rf"campaign {first['campaign_id']} \(.*ConstraintException") as failed:
        run_tick(db, provider, VirtualClock(TUE_10_PHOENIX + timedelta(days=1)), pace_seconds=0)
    assert failed.value.result.placed == 1
    with connect(db) as conn:
        assert conn.execute("select contact_id from calls where campaign_id = ?", [second]).fetchall() == [(other,)]
        assert conn.execute("select count(*) from calls where campaign_id = ?", [first["campaign_id"]]).fetchone()[0] == 1


def test_a_lost_placement_answer_is_reconciled_never_redialed_blindly(campaign_db, monkeypatch):
    from tasks.settings import reset_settings
    from tasks.telephony import make_provider
    from tasks.telephony.base import OutcomeUnknown
    from tests.invariants import check_invariants

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 4)
    provider = make_provider(db=db)
    provider.fail_next(OutcomeUnknown("read timeout on create-phone-call"))
    result = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=3)
    assert result.placed == 0 and "unavailable" in result.batches[0].message
    with connect(db) as conn:
        statuses = [r[0] for r in conn.execute("select status from calls order by call_id").fetchall()]
    assert statuses[0] == "created"  # may have reached the provider: kept for reconciliation
    assert statuses[1:] == ["error"] * 3  # never sent: closed, not attempts
    # within the grace period the unconfirmed contact stays in flight; after it, it is freed
    later = TUE_10_PHOENIX + timedelta(minutes=1)
    assert 1 not in eligible_ids(db, campaign_db["campaign_id"], now=later)
    monkeypatch.setenv("CAMPAIGNS_RECONCILE_GRACE_SECONDS", "0")
    reset_settings()
    run_tick(db, provider, VirtualClock(later + timedelta(days=1)), pace_seconds=3)
    check_invariants(db, provider)
    assert provider.duplicate_attempt_keys() == {}


def test_a_provider_that_cannot_answer_reconciliation_does_not_stop_the_tick(campaign_db, monkeypatch):
    # a Retell outage (or a refused key) while a `created` row waited: the whole tick failed with a traceback, and
    # no campaign dialed until the provider came back
    from tasks.settings import reset_settings
    from tasks.telephony import make_provider
    from tasks.telephony.base import OutcomeUnknown

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 4)
    provider = make_provider(db=db)
    provider.fail_next(OutcomeUnknown("read timeout on create-phone-call"))
    run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=3)
    monkeypatch.setenv("CAMPAIGNS_RECONCILE_GRACE_SECONDS", "0")
    reset_settings()

    asked = []

    def down(attempt_key, now, *, to_number=None, placed_after=None):
        asked.append(to_number)  # our row's phone: another store's call with the same key is not taken for ours
        raise ProviderUnavailable("Retell POST /v3/list-calls: HTTP 500 after 1 tries")

    monkeypatch.setattr(provider, "find_by_attempt_key", down)
    result = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX + timedelta(hours=1)), pace_seconds=3)
    assert result.reconciled == 0 and result.placed == 3  # the three others were called; the unknown one waits
    with connect(db) as conn:
        assert conn.execute("select status from calls where call_id = 1").fetchone()[0] == "created"
        assert asked == [conn.execute("select phone_e164 from calls where call_id = 1").fetchone()[0]]
        assert conn.execute("select in_flight_call_id from campaign_contacts where in_flight_call_id = 1").fetchone()


def test_a_run_of_another_container_with_the_same_host_name_is_judged_by_its_heartbeat():
    # its pid means nothing in this process-id namespace: looking it up would find it "dead" and reconcile
    # a batch that is still dialling
    import socket

    from tasks.dialing import HOST, run_is_dead

    assert HOST.startswith(socket.gethostname()) and HOST != socket.gethostname()
    gone_here = 2**22 + 7  # above any pid_max: no such process in this namespace
    fresh = datetime.now(UTC) - timedelta(seconds=10)
    assert not run_is_dead(socket.gethostname(), gone_here, fresh, lease_seconds=120)
    assert run_is_dead(socket.gethostname(), gone_here, fresh - timedelta(minutes=5), lease_seconds=120)
    assert run_is_dead(HOST, gone_here, fresh, lease_seconds=120)  # this namespace: its pid is looked up


class WallClockAt(VirtualClock):
    """A clock the dialer treats as real time (one call per transaction) that starts at a given moment."""

    virtual = False


def test_rows_closed_by_someone_else_mid_batch_are_never_dialled(campaign_db):
    # another machine's reconcile took this real-time batch for dead (its heartbeat looked stale) and closed
    # the rows not placed yet: this run must not dial them (their contacts are free to be claimed again)
    from tasks.dialing import mark_not_placed

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 3)

    class ReconciledMeanwhile(FakeProvider):
        def place_call(self, request, now):
            call_id = super().place_call(request, now)
            if len(self.calls) == 1:
                with transaction(db) as conn:
                    queued = [r[0] for r in conn.execute("select call_id from calls where status = 'queued'").fetchall()]
                    mark_not_placed(conn, queued, now, "dial run on another host died")
            return call_id

    provider = ReconciledMeanwhile()
    result = run_tick(db, provider, WallClockAt(TUE_10_PHOENIX), pace_seconds=0.6)
    assert (result.placed, len(provider.calls)) == (1, 1)
    with connect(db) as conn:
        assert [r[0] for r in conn.execute("select status from calls order by call_id").fetchall()] == [
            "registered", "error", "error"]


class ChangedAfterFirstCall(FakeProvider):
    """A provider during whose first call someone runs `sql` on the store (with the call's number when asked)."""

    def __init__(self, db, sql: str, with_number: bool = False):
        super().__init__()
        self.db, self.sql, self.with_number = db, sql, with_number

    def place_call(self, request, now):
        call_id = super().place_call(request, now)
        if len(self.calls) == 1:
            with transaction(self.db) as conn:
                conn.execute(self.sql, [request.from_number] if self.with_number else [])
        return call_id


@pytest.mark.parametrize(("change", "reason"), [
    ("rotation_paused_at = now(), rotation_paused_reason = 'paused by hand'", "was taken out of rotation"),
    ("sip_trunk_status = 'inactive'", "got SIP trunk status inactive"),
])
def test_a_number_paused_mid_batch_places_no_more_of_it(campaign_db, change, reason):
    # a real-time batch takes size x 3 s: a number paused meanwhile (by hand, by another campaign's health check)
    # must not keep dialing until the batch ends; the rest is not placed (not attempts) and claimed again later
    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 3)

    provider = ChangedAfterFirstCall(db, f"update phone_numbers set {change} where e164 = ?", with_number=True)
    result = run_tick(db, provider, WallClockAt(TUE_10_PHOENIX), pace_seconds=0.6)
    [batch] = result.batches
    assert (batch.placed, batch.not_placed, len(provider.calls)) == (1, 2, 1)
    assert reason in batch.message
    with connect(db) as conn:
        assert conn.execute("select count(*) from campaign_contacts where attempts = 0 and in_flight_call_id is null"
                            " and finished_at is null").fetchone()[0] == 2  # free to be claimed again


@pytest.mark.parametrize(("change", "reason"), [
    # the manager shortens today's hours so that they are over: no more calls under the old ones
    ("""weekly_schedule = '{"mon":[["08:00","09:00"]],"tue":[["08:00","09:00"]],"wed":[["08:00","09:00"]],"""
     """"thu":[["08:00","09:00"]],"fri":[["08:00","09:00"]]}'""", "calling hours or dates changed"),
    ("end_date = date '2026-04-27'", "calling hours or dates changed"),  # the end date moved to yesterday
    ("outbound_number_ids = [999]", "was taken off the campaign"),  # its numbers replaced
])
def test_a_campaign_edited_mid_batch_places_no_more_under_the_old_settings(campaign_db, change, reason):
    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 3)
    with transaction(db) as conn:
        conn.execute("update campaigns set rotation_enabled = false")  # one number: every call from it

    provider = ChangedAfterFirstCall(db, f"update campaigns set {change}")
    result = run_tick(db, provider, WallClockAt(TUE_10_PHOENIX), pace_seconds=0.6)
    [batch] = result.batches
    assert (batch.placed, batch.not_placed, len(provider.calls)) == (1, 2, 1)
    assert reason in batch.message


def test_a_wait_for_free_lines_keeps_the_run_alive(campaign_db):
    # up to 300 s a call: longer than the 120 s lease other machines judge a run by
    from tasks.dialing import _run_heartbeat, _wait_for_capacity

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 1)
    with transaction(db) as conn:
        conn.execute("insert into dial_runs (campaign_id, kind, state, started_at, heartbeat_at)"
                     " values (?, 'scheduled', 'running', ?, timestamptz '2000-01-01 00:00:00+00')",
                     [campaign_db["campaign_id"], TUE_10_PHOENIX])
        run_id = conn.execute("select max(run_id) from dial_runs").fetchone()[0]

    def heartbeat():
        with connect(db) as conn:
            return conn.execute("select heartbeat_at from dial_runs where run_id = ?", [run_id]).fetchone()[0]

    clock = VirtualClock(TUE_10_PHOENIX)
    beat = _run_heartbeat(db, run_id, clock)
    beat()
    assert heartbeat().year == 2000  # at most every 30 s of the clock
    full = FakeProvider(concurrency_limit=0)  # every line busy for the whole wait
    _wait_for_capacity(full, clock, 3.0, beat=beat)
    assert clock.now() - TUE_10_PHOENIX == timedelta(seconds=300)
    assert heartbeat().year > 2000


class BatchFakeProvider(FakeProvider):
    """FakeProvider with Retell's batch form: a virtual clock places a chunk in one `place_calls` (the path of
    `campaigns run ID --now` and `dial --now` against Retell), which ends at a refusal not about the callee."""

    def place_calls(self, requests, now, pace_seconds=0.0):
        from tasks.telephony.retell import RetellProvider

        return RetellProvider.place_calls(self, requests, now, pace_seconds)

    def _sleep(self, seconds):
        pass


@pytest.mark.parametrize("provider_class", [FakeProvider, BatchFakeProvider])
def test_a_setup_refusal_stops_the_batch_with_its_reason_and_never_loses_or_redials(campaign_db, monkeypatch,
                                                                                   provider_class):
    # an unknown agent or a refused key refuses every call: say so once, fail the run, raise nothing (the batch
    # form raised it as a traceback out of `campaigns run ID --now`)
    from tasks.settings import reset_settings
    from tasks.telephony.base import ProviderError
    from tests.invariants import check_invariants

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 3)
    provider = provider_class(fail_with=ProviderError("Retell POST /v2/create-phone-call: HTTP 404: agent not found"))
    result = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    batch = result.batches[0]
    assert (batch.placed, batch.message) == (0, "telephony provider refused the call: "
                                                "Retell POST /v2/create-phone-call: HTTP 404: agent not found")
    with connect(db) as conn:
        statuses = [r[0] for r in conn.execute("select status from calls order by call_id").fetchall()]
        run = conn.execute("select state, message from dial_runs").fetchone()
    assert statuses == ["created", "error", "error"]  # the refused one is settled by key; the rest never went
    assert run == ("failed", batch.message)
    provider.fail_with = None
    monkeypatch.setenv("CAMPAIGNS_RECONCILE_GRACE_SECONDS", "0")
    reset_settings()
    later = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX + timedelta(days=1)), pace_seconds=0)
    assert later.placed == 3  # the refused contact was freed (no call by its key), not lost or counted
    check_invariants(db, provider)
    assert max(provider.placed.values()) == 1  # no attempt key placed twice


@pytest.mark.parametrize("backup_usable", [True, False])
def test_a_contact_marked_as_spam_is_never_called_again_that_day_from_that_number(db, backup_usable):
    # the retry policy said "another number" (rotation on, two numbers); if the other one cannot dial now
    # (out of rotation here), the contact waits for the next local day rather than going out from the same one
    ids = make_campaign_db(db, rotation_enabled=True)
    add_contacts(db, ids["campaign_id"], 2)
    marked, backup = "+16025550101", "+16025550100"
    with transaction(db) as conn:
        conn.execute("update campaign_contacts set avoid_number = ? where contact_id = 1", [marked])
        if not backup_usable:
            conn.execute("update phone_numbers set rotation_paused_at = ?, rotation_paused_reason = 'spam marks'"
                         " where e164 = ?", [TUE_10_PHOENIX, backup])
    provider = FakeProvider()
    run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=0)
    with connect(db) as conn:
        called = conn.execute("select contact_id, from_number from calls order by contact_id").fetchall()
        held = conn.execute("select next_call_at, avoid_number from campaign_contacts where contact_id = 1").fetchone()
    if backup_usable:
        assert called == [(1, backup), (2, marked)]
    else:
        assert called == [(2, marked)]  # contact 1 is not claimed: only the number it must avoid can dial
        wed_midnight_phoenix = datetime(2026, 4, 29, 7, 0, tzinfo=UTC)
        assert held == (wed_midnight_phoenix, None)
        # the next day it may go out from the number that remains
        next_day = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX + timedelta(days=1)), pace_seconds=0)
        with connect(db) as conn:
            assert conn.execute("select from_number from calls where contact_id = 1").fetchall() == [(marked,)]
        assert next_day.placed >= 1


def test_dynamic_variables_of_a_batch_match_the_per_contact_encoding():
    from tasks.dialing import _dynamic_variables, dynamic_variables_column

    picked = pl.DataFrame({
        "name": ["Ana Díaz", None, "Bo \"Quote\"", "Cy"],
        "company": ["Acme", "Beta", None, "Delta"],
        "email": [None, "b@x.io", "", "c@x.io"],
        "properties": [None, '{"plan": "gold", "seats": 3}', "{}", '{"contact_name": "Override"}'],
    })
    encoded = dynamic_variables_column(picked).to_list()
    expected = [_dynamic_variables(*row) for row in picked.iter_rows()]
    assert [json.loads(e) for e in encoded] == [json.loads(e) for e in expected]
    assert json.loads(encoded[0]) == {"contact_name": "Ana Díaz", "company_name": "Acme", "email": ""}
    assert json.loads(encoded[1])["seats"] == "3" and json.loads(encoded[3])["contact_name"] == "Override"


def test_after_a_restored_backup_reconcile_does_not_take_an_older_call_with_the_same_key(campaign_db, monkeypatch, tmp_path):
    # A restored store makes its next attempts with the keys of the calls placed after its backup, and those calls are
    # still at the provider (and in the simulator's file beside the store, which a backup does not copy). A tick that
    # died after committing such an attempt used to adopt the older call as the attempt's: the contact was not called
    # and its row showed another day's outcome.
    import shutil

    from tasks.backup import run_backup
    from tasks.settings import reset_settings
    from tasks.store import forget_migrated
    from tasks.telephony import make_provider
    from tasks.telephony.base import OutcomeUnknown

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 2)
    run_backup(db, tmp_path / "backup.duckdb")
    provider = make_provider(db=db)
    assert run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=3).placed == 2
    with connect(db) as conn:
        [(key, older)] = conn.execute("select attempt_key, provider_call_id from calls where call_id = 1").fetchall()
    shutil.copy(tmp_path / "backup.duckdb", db)  # the restore the operations guide describes
    forget_migrated(db)
    provider.fail_next(OutcomeUnknown("read timeout on create-phone-call"))
    run_tick(db, provider, VirtualClock(TUE_10_PHOENIX + timedelta(hours=2)), pace_seconds=3)
    with connect(db) as conn:
        assert conn.execute("select attempt_key, status from calls where call_id = 1").fetchone() == (key, "created")
    assert provider.find_by_attempt_key(key, TUE_10_PHOENIX + timedelta(hours=2)).provider_call_id == older
    monkeypatch.setenv("CAMPAIGNS_RECONCILE_GRACE_SECONDS", "0")
    reset_settings()
    later = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX + timedelta(days=1)), pace_seconds=3)
    with connect(db) as conn:
        row = conn.execute("select status, provider_call_id, counts_as_attempt from calls where call_id = 1").fetchone()
        redialed = conn.execute(
            "select count(*) from calls where contact_id = (select contact_id from calls where call_id = 1)"
            " and call_id > 1 and provider_call_id is not null").fetchone()[0]
    assert later.reconciled == 1
    assert row == ("error", None, False)  # not placed, not an attempt: not the older call's outcome
    assert redialed == 1  # and the contact was called at the next tick


def test_a_row_a_failed_run_left_is_reconciled_after_later_runs_completed(campaign_db, monkeypatch):
    # reconcile reads only what running and failed runs left, from the oldest one's start on: the
    # failed run's unconfirmed row is found although a completed run came after it
    from tasks.settings import reset_settings
    from tasks.telephony import make_provider
    from tasks.telephony.base import OutcomeUnknown

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 4)
    provider = make_provider(db=db)
    provider.fail_next(OutcomeUnknown("read timeout on create-phone-call"))
    run_tick(db, provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=3)  # run 1 fails, call 1 stays created
    second = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX + timedelta(minutes=1)), pace_seconds=3)
    assert (second.reconciled, second.placed) == (0, 3)  # within the grace period: kept, the others dialed
    monkeypatch.setenv("CAMPAIGNS_RECONCILE_GRACE_SECONDS", "0")
    reset_settings()
    third = run_tick(db, provider, VirtualClock(TUE_10_PHOENIX + timedelta(minutes=2)), pace_seconds=3)
    with connect(db) as conn:
        runs = conn.execute("select state from dial_runs order by run_id").fetchall()
        first_call = conn.execute("select status from calls order by call_id limit 1").fetchone()[0]
    assert runs[:2] == [("failed",), ("completed",)]
    assert (third.reconciled, first_call) == (1, "error")


def test_the_dialer_tells_a_waiting_provider_the_last_moment_each_call_may_start(campaign_db):
    from tasks.dialing import HORIZON_SLACK_SECONDS
    from tasks.telephony.base import PLACING_DEADLINE

    class Recording(FakeProvider):
        def __init__(self):
            super().__init__()
            self.deadlines = []

        def place_call(self, request, now):
            self.deadlines.append(PLACING_DEADLINE.get())
            return super().place_call(request, now)

    db = campaign_db["db"]
    add_contacts(db, campaign_db["campaign_id"], 4)
    with transaction(db) as conn:
        conn.execute("update campaigns set batch_size = 2")
    provider, two_to_six = Recording(), datetime(2026, 4, 29, 0, 58, tzinfo=UTC)  # Tue 17:58 Phoenix
    dial_batch(db, provider, plan_of(db, campaign_db["campaign_id"]), VirtualClock(two_to_six), pace_seconds=3)
    # the window closes at 18:00, before the batch's deadline (17:58 + 2 × 3 s + 360 s)
    assert provider.deadlines == [datetime(2026, 4, 29, 1, 0, tzinfo=UTC)] * 2
    dial_batch(db, provider, plan_of(db, campaign_db["campaign_id"]), VirtualClock(two_to_six), kind="manual",
               pace_seconds=3)
    # a manual run ignores the schedule: the batch's deadline only
    assert provider.deadlines[2:] == [two_to_six + timedelta(seconds=2 * 3 + HORIZON_SLACK_SECONDS)] * 2
    assert PLACING_DEADLINE.get() is None  # reset after each call
