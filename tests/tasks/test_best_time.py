"""Best time to call: the weekday × hour table, the heatmap, zone ranking and the opt-in smart ordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.best_time import exploration_split, heatmap, refresh_best_time_stats, zone_ranking, zone_scores
from tasks.dialing import eligible_contacts, load_plans
from tasks.store import connect, transaction
from tests.factories import add_contacts, make_campaign_db

TUE_10_PHOENIX = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # 13:00 in New York, 10:00 in Los Angeles


def add_call(conn, campaign_id, contact_id, queued_at, connected, key):
    status, reason = ("ended", "agent_hangup") if connected else ("not_connected", "dial_no_answer")
    conn.execute(
        "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status,"
        " disconnect_reason, provider, queued_at, updated_at) values (?, ?, ?, 1, '+1', ?, ?, 'fake', ?, ?)",
        [campaign_id, contact_id, key, status, reason, queued_at, queued_at],
    )


@pytest.fixture
def zoned(campaign_db):
    """Four contacts: two in New York, two in Los Angeles (by their time_zones)."""
    ids = add_contacts(campaign_db["db"], campaign_db["campaign_id"], 4)
    with transaction(campaign_db["db"]) as conn:
        for contact_id, zone in zip(ids, ["America/New_York", "America/Los_Angeles"] * 2):
            conn.execute("update contacts set time_zones = [?] where contact_id = ?", [zone, contact_id])
    return {**campaign_db, "contacts": ids}


def test_stats_count_attempts_by_callee_local_weekday_and_hour(zoned):
    db, cid, (ny, la, *_rest) = zoned["db"], zoned["campaign_id"], zoned["contacts"]
    with transaction(db) as conn:
        add_call(conn, cid, ny, TUE_10_PHOENIX, True, "a")                       # Tue 13:00 New York
        add_call(conn, cid, ny, TUE_10_PHOENIX + timedelta(minutes=20), False, "b")  # Tue 13:20 New York
        add_call(conn, cid, la, TUE_10_PHOENIX, False, "c")                      # Tue 10:00 Los Angeles
        assert refresh_best_time_stats(conn, TUE_10_PHOENIX) == 2
        cells = conn.execute("select weekday, hour, calls, connected from best_time_stats order by hour").fetchall()
        grid = heatmap(conn, cid)
    assert cells == [(1, 10, 1, 0), (1, 13, 2, 1)]
    assert grid.height == 7 * 24
    assert grid.filter((grid["weekday"] == 1) & (grid["hour"] == 13)).row(0)[2:] == (2, 1, 0.5)
    assert grid["connection_rate"].null_count() == 7 * 24 - 2  # unseen cells have no rate


def test_a_call_counts_in_the_hour_it_was_placed_not_the_hour_its_batch_was_claimed(zoned):
    # a batch claimed at 12:50 New York and placed at its pace: this call rang at 13:05, answered
    db, cid, ny = zoned["db"], zoned["campaign_id"], zoned["contacts"][0]
    claimed = TUE_10_PHOENIX - timedelta(minutes=10)
    with transaction(db) as conn:
        add_call(conn, cid, ny, claimed, True, "a")
        conn.execute("update calls set registered_at = ? where attempt_key = 'a'", [claimed + timedelta(minutes=15)])
        add_call(conn, cid, ny, claimed, False, "b")  # never registered: counted at its claim time
        refresh_best_time_stats(conn, TUE_10_PHOENIX)
        cells = conn.execute("select weekday, hour, calls, connected from best_time_stats order by hour").fetchall()
    assert cells == [(1, 12, 1, 0), (1, 13, 1, 1)]


def test_rebuilding_replaces_the_rows(zoned):
    with transaction(zoned["db"]) as conn:
        add_call(conn, zoned["campaign_id"], zoned["contacts"][0], TUE_10_PHOENIX, True, "a")
        refresh_best_time_stats(conn, TUE_10_PHOENIX)
        refresh_best_time_stats(conn, TUE_10_PHOENIX, zoned["campaign_id"])
        assert conn.execute("select count(*), sum(calls) from best_time_stats").fetchone() == (1, 1)


def test_scores_are_shrunk_toward_the_overall_rate():
    # Tue 13:00 NY: 10 calls, 8 connected; Tue 10:00 LA: 10 calls, 0 connected; overall 0.4
    stats = {(1, 13): (10, 8), (1, 10): (10, 0)}
    scores = zone_scores(stats, ["America/New_York", "America/Los_Angeles", "America/Chicago"], TUE_10_PHOENIX)
    assert scores == pytest.approx({
        "America/New_York": (8 + 0.4 * 20) / 30,
        "America/Los_Angeles": (0 + 0.4 * 20) / 30,
        "America/Chicago": 0.4,  # unseen cell: the overall rate
    })


@pytest.mark.parametrize(("size", "share", "expected"), [
    (100, 0.2, (80, 20)),
    (10, 0.05, (9, 1)),   # at least one explorer
    (1, 0.2, (1, 0)),
    (10, 0.0, (10, 0)),
])
def test_exploration_split(size, share, expected):
    assert exploration_split(size, share) == expected


def _learn_new_york_answers_at_13(db, cid, ny, la):
    with transaction(db) as conn:
        for i in range(10):
            add_call(conn, cid, ny, TUE_10_PHOENIX - timedelta(days=7), True, f"ny{i}")
            add_call(conn, cid, la, TUE_10_PHOENIX - timedelta(days=7), False, f"la{i}")
        refresh_best_time_stats(conn, TUE_10_PHOENIX)


def test_ranking_puts_the_zone_with_the_best_rate_now_first(zoned):
    db, cid, (ny, la, *_rest) = zoned["db"], zoned["campaign_id"], zoned["contacts"]
    with connect(db) as conn:
        assert zone_ranking(conn, cid, "America/Phoenix", TUE_10_PHOENIX) == []  # nothing observed yet
    _learn_new_york_answers_at_13(db, cid, ny, la)
    with connect(db) as conn:
        assert zone_ranking(conn, cid, "America/Phoenix", TUE_10_PHOENIX) == ["America/New_York", "America/Los_Angeles"]


def test_a_hand_set_zone_is_the_zone_stats_ranking_and_smart_order_go_by(zoned):
    # contact `moved`: a New York phone whose owner lives in Los Angeles (set by hand): its calls count
    # in Los Angeles hours, it ranks under Los Angeles and is ordered with the Los Angeles contacts
    from tasks.best_time import smart_options
    from tasks.compliance import set_contact_zone

    db, cid, (ny, la, ny2, la2) = zoned["db"], zoned["campaign_id"], zoned["contacts"]
    moved = ny2
    with transaction(db) as conn:
        conn.execute("update contacts set zone_resolved_at = null")
        set_contact_zone(conn, moved, TUE_10_PHOENIX, time_zone="America/Los_Angeles")
        add_call(conn, cid, moved, TUE_10_PHOENIX, True, "m")  # 13:00 on its phone's zone, 10:00 where it is
        refresh_best_time_stats(conn, TUE_10_PHOENIX)
        assert conn.execute("select weekday, hour, calls from best_time_stats").fetchall() == [(1, 10, 1)]
    _learn_new_york_answers_at_13(db, cid, ny, la)
    with transaction(db) as conn:
        conn.execute("update campaigns set smart_ordering = true, exploration_share = 0")
    with connect(db) as conn:
        assert zone_ranking(conn, cid, "America/Phoenix", TUE_10_PHOENIX) == ["America/New_York", "America/Los_Angeles"]
        plan = load_plans(conn, [cid])[0]
        picked = eligible_contacts(conn, plan, TUE_10_PHOENIX, 2, options=smart_options(conn, cid))["contact_id"].to_list()
    assert sorted(picked) == sorted([ny, la])  # New York first: only `ny` is still there; `moved` ranks as LA


@pytest.mark.parametrize(("smart", "share", "expected"), [
    (False, 0.2, "plain"),
    (True, 0.0, "ny first"),
    (True, 0.5, "one each"),  # the explorer half is taken in plain order
])
def test_smart_ordering_calls_the_best_zone_first_with_an_exploration_share(zoned, smart, share, expected):
    db, cid, contacts = zoned["db"], zoned["campaign_id"], zoned["contacts"]
    ny, la, ny2, la2 = contacts
    _learn_new_york_answers_at_13(db, cid, ny, la)
    with transaction(db) as conn:
        conn.execute("update campaigns set smart_ordering = ?, exploration_share = ?", [smart, share])
    from tasks.best_time import smart_options

    with connect(db) as conn:
        plan = load_plans(conn, [cid])[0]
        picked = eligible_contacts(conn, plan, TUE_10_PHOENIX, 2, options=smart_options(conn, cid))["contact_id"].to_list()
    assert sorted(picked) == {"plain": [ny, la], "ny first": [ny, ny2], "one each": sorted([ny, la])}[expected]
