"""Metrics: KPIs, funnel and Calls Made on a hand-computed campaign; incremental = full rebuild."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest

from tasks.errors import NotFoundError, ValidationError
from tasks.metrics import aggregate, calls_per_day, funnel, kpis, local_day_bounds, offset_segments
from tasks.store import connect, transaction

UTC = timezone.utc
NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
# Phoenix is UTC-7 all year: 2026-05-01 03:00 UTC is still 2026-04-30 locally.
D1 = datetime(2026, 4, 30, 18, 0, tzinfo=UTC)  # local 2026-04-30 11:00
D2 = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)  # local 2026-04-30 20:00
D3 = datetime(2026, 5, 1, 17, 0, tzinfo=UTC)  # local 2026-05-01 10:00


def add_contact(conn, campaign_id: int, phone: str, added_at: datetime = D1 - timedelta(days=1)) -> int:
    contact_id = conn.execute(
        "insert into contacts (phone_e164) values (?) returning contact_id", [phone]
    ).fetchone()[0]
    conn.execute(
        "insert into campaign_contacts (campaign_id, contact_id, added_at) values (?, ?, ?)",
        [campaign_id, contact_id, added_at],
    )
    return contact_id


_seq = iter(range(1, 10**9))


def add_call(conn, campaign_id: int, contact_id: int, queued_at: datetime, status: str, reason: str | None = None,
             *, duration: float = 0.0, credits: int = 0, successful: bool | None = None,
             in_voicemail: bool | None = None, attempt: bool = True, updated_at: datetime | None = None) -> int:
    return conn.execute(
        """
        insert into calls (campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt, phone_e164,
            status, disconnect_reason, call_successful, in_voicemail, duration_seconds, credits, provider,
            queued_at, updated_at)
        values (?, ?, ?, 1, ?, '+10000000000', ?, ?, ?, ?, ?, ?, 'simulator', ?, ?)
        returning call_id
        """,
        [campaign_id, contact_id, f"k{next(_seq)}", attempt, status, reason, successful, in_voicemail, duration,
         credits, queued_at, updated_at or queued_at],
    ).fetchone()[0]


@pytest.fixture
def reference(campaign_db):
    """Four enrolled contacts; A answers twice, B gets voicemail, C never connects, D is not called."""
    cid = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        a, b, c, _d = (add_contact(conn, cid, f"+1602555000{i}") for i in range(4))
        add_call(conn, cid, a, D1, "ended", "user_hangup", duration=30, credits=333)
        add_call(conn, cid, a, D3, "ended", "agent_hangup", duration=90, credits=666, successful=True)
        add_call(conn, cid, b, D2, "ended", "voicemail_reached", duration=20, credits=75, in_voicemail=True)
        add_call(conn, cid, c, D2, "not_connected", "dial_no_answer")
        # a refusal for concurrency: not an attempt, never dialed
        add_call(conn, cid, c, D3, "failed_rate_limit", None, attempt=False)
        aggregate(conn, NOW)
    return {**campaign_db, "a": a, "b": b, "c": c, "d": _d}


def test_kpis_on_the_reference_campaign(reference):
    with connect(reference["db"]) as conn:
        assert kpis(conn, reference["campaign_id"]) == {
            "credits_used": 333 + 666 + 75,
            "total_calls": 4,  # the refusal is not an attempt
            "contacts_called": 3,
            "connection_rate": 25.0,  # only A answered, of 4 enrolled
            "avg_call_duration_seconds": 60.0,  # (30 + 90) / 2 connected calls; voicemail excluded
            "total_contacts": 4,
            "connected_contacts": 1,
        }


@pytest.mark.parametrize(
    ("date_from", "date_to", "credits", "calls", "contacts", "rate"),
    [
        (date(2026, 4, 30), date(2026, 4, 30), 333 + 75, 3, 3, 25.0),  # D2 is still Apr 30 in Phoenix
        (date(2026, 5, 1), date(2026, 5, 1), 666, 1, 1, 25.0),
        (date(2026, 5, 2), None, 0, 0, 0, 0.0),
        (None, date(2026, 4, 29), 0, 0, 0, 0.0),
    ],
)
def test_kpis_for_a_local_date_range(reference, date_from, date_to, credits, calls, contacts, rate):
    with connect(reference["db"]) as conn:
        got = kpis(conn, reference["campaign_id"], date_from, date_to)
    assert (got["credits_used"], got["total_calls"], got["contacts_called"], got["connection_rate"]) == (
        credits, calls, contacts, rate)


def test_funnel(reference):
    with connect(reference["db"]) as conn:
        assert funnel(conn, reference["campaign_id"]) == {
            "total_contacts": 4, "connected": 1, "connected_pct": 25.0, "successful": 1, "successful_pct": 25.0,
        }
        # A's successful call is on May 1 (local): on Apr 30 A connected but nobody succeeded
        assert funnel(conn, reference["campaign_id"], date(2026, 4, 30), date(2026, 4, 30))["successful"] == 0


def test_calls_per_day_by_local_day_and_reason(reference):
    with connect(reference["db"]) as conn:
        rows = calls_per_day(conn, reference["campaign_id"], None, None).rows()
    assert rows == [
        (date(2026, 4, 30), "dial_no_answer", 1),
        (date(2026, 4, 30), "user_hangup", 1),
        (date(2026, 4, 30), "voicemail_reached", 1),
        (date(2026, 5, 1), "agent_hangup", 1),  # the refusal the same day is not a call made
    ]


def test_contact_stats_rows(reference):
    with connect(reference["db"]) as conn:
        rows = conn.execute(
            "select contact_id, attempts, connected, successful, credits, total_duration_seconds,"
            " last_disconnect_reason, last_call_at from contact_stats order by contact_id"
        ).fetchall()
    assert rows == [
        (reference["a"], 2, 2, 1, 999, 120.0, "agent_hangup", D3),
        (reference["b"], 1, 0, 0, 75, 20.0, "voicemail_reached", D2),
        (reference["c"], 1, 0, 0, 0, 0.0, "dial_no_answer", D2),  # the later refusal is no call made
        (reference["d"], 0, 0, 0, 0, 0.0, None, None),  # enrolled, never called: still on the list
    ]


def test_last_call_date_is_when_the_last_attempt_was_placed(campaign_db):
    # a batch is claimed at D1 and its calls placed one after another: the Contact List shows the moment
    # the call was placed (as the Call Logs date), not the claim
    cid = campaign_db["campaign_id"]
    placed = D1 + timedelta(minutes=4, seconds=30)
    with transaction(campaign_db["db"]) as conn:
        contact = add_contact(conn, cid, "+16025559000")
        call = add_call(conn, cid, contact, D1, "ended", "agent_hangup", duration=60, credits=333)
        conn.execute("update calls set registered_at = ? where call_id = ?", [placed, call])
        unregistered = add_contact(conn, cid, "+16025559001")
        add_call(conn, cid, unregistered, D1, "not_connected", "dial_failed")
        aggregate(conn, NOW, full=True)
        rows = conn.execute("select contact_id, last_call_at from contact_stats order by contact_id").fetchall()
    assert rows == [(contact, placed), (unregistered, D1)]  # never registered: the claim time stands


def test_unknown_campaign_and_bad_range(reference):
    with connect(reference["db"]) as conn:
        with pytest.raises(NotFoundError):
            kpis(conn, 999)
        with pytest.raises(ValidationError, match="date_from"):
            funnel(conn, reference["campaign_id"], date(2026, 5, 2), date(2026, 5, 1))


@pytest.mark.parametrize(
    ("zone", "day", "start", "end"),
    [
        ("America/Phoenix", date(2026, 5, 1), datetime(2026, 5, 1, 7, tzinfo=UTC), datetime(2026, 5, 2, 7, tzinfo=UTC)),
        # spring forward: the day has 23 hours
        ("Europe/Paris", date(2026, 3, 29), datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC)),
        ("Asia/Kolkata", date(2026, 1, 1), datetime(2025, 12, 31, 18, 30, tzinfo=UTC), datetime(2026, 1, 1, 18, 30, tzinfo=UTC)),
    ],
)
def test_local_day_bounds(zone, day, start, end):
    assert local_day_bounds(day, zone) == (start, end)


def test_offset_segments_follow_dst():
    segments = offset_segments("Europe/Paris", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    hour = 3_600_000_000
    switch = int((datetime(2026, 3, 29, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000
    assert [(lo, off) for lo, _hi, off in segments] == [(-(2**63), hour), (switch, 2 * hour)]


# --- incremental == full ---------------------------------------------------------------------

TABLES = {
    "contact_stats": "select * from contact_stats order by all",
    "metrics_daily": "select * from metrics_daily order by all",
}
REASONS = [("ended", "user_hangup"), ("ended", "voicemail_reached"), ("not_connected", "dial_no_answer"),
           ("error", "error_asr"), ("ended", "agent_hangup"), ("queued", None), ("failed_rate_limit", None)]


def _snapshot(conn) -> dict:
    return {name: conn.execute(query).fetchall() for name, query in TABLES.items()}


def _random_step(conn, rng: random.Random, campaigns: list[int], clock: datetime) -> None:
    action = rng.random()
    cid = rng.choice(campaigns)
    enrolled = [r[0] for r in conn.execute(
        "select contact_id from campaign_contacts where campaign_id = ?", [cid]).fetchall()]
    if action < 0.15 or not enrolled:
        add_contact(conn, cid, f"+1{rng.randrange(10**9, 10**10)}", added_at=clock)
    elif action < 0.55:
        status, reason = rng.choice(REASONS)
        add_call(conn, cid, rng.choice(enrolled), clock - timedelta(hours=rng.randrange(0, 72)), status, reason,
                 duration=rng.choice([0, 30, 61]), credits=rng.choice([0, 75, 333]), successful=rng.random() < 0.2,
                 attempt=status != "failed_rate_limit", updated_at=clock)
    elif action < 0.8:
        call = conn.execute("select call_id from calls where campaign_id = ? order by random() limit 1", [cid]).fetchone()
        if call:
            status, reason = rng.choice(REASONS)
            conn.execute(
                "update calls set status = ?, disconnect_reason = ?, credits = ?, duration_seconds = ?,"
                " call_successful = ?, updated_at = ? where call_id = ?",
                [status, reason, rng.choice([0, 333]), rng.choice([5, 120]), rng.random() < 0.5, clock, call[0]],
            )
    elif action < 0.9:
        conn.execute("delete from campaign_contacts where campaign_id = ? and contact_id = ?",
                     [cid, rng.choice(enrolled)])
    elif action < 0.95:
        # re-enrol a removed contact (new added_at) or move the campaign to another time zone
        zone = rng.choice(["America/Phoenix", "Europe/Paris", "Asia/Kolkata"])
        conn.execute("update campaigns set time_zone = ? where campaign_id = ?", [zone, cid])
    else:
        conn.execute("update campaign_contacts set added_at = ? where campaign_id = ? and contact_id = ?",
                     [clock, cid, rng.choice(enrolled)])


@pytest.mark.parametrize("seed", range(3))
def test_incremental_equals_full_rebuild(campaign_db, seed):
    rng = random.Random(seed)
    db = campaign_db["db"]
    with transaction(db) as conn:
        second = conn.execute(
            "insert into campaigns (name, agent_id, weekly_schedule, time_zone) select 'Other', agent_id,"
            " weekly_schedule, 'Europe/Paris' from campaigns limit 1 returning campaign_id").fetchone()[0]
    campaigns = [campaign_db["campaign_id"], second]
    clock = datetime(2026, 3, 25, tzinfo=UTC)  # spans the Paris DST switch
    for run in range(10):
        with transaction(db) as conn:
            for _ in range(rng.randrange(1, 15)):
                clock += timedelta(minutes=rng.randrange(1, 600))
                _random_step(conn, rng, campaigns, clock)
            if run == 8 and seed % 2:
                # deleting a campaign removes its calls and enrollments (the product's rule)
                for table in ("calls", "campaign_contacts", "campaigns"):
                    conn.execute(f"delete from {table} where campaign_id = ?", [second])
                campaigns = campaigns[:1]
            aggregate(conn, clock, campaign_id=rng.choice([None, None, campaigns[0]]))
            aggregate(conn, clock)  # a scoped run must leave the other campaign to the next global run
            incremental = _snapshot(conn)
            aggregate(conn, clock, full=True)
            assert _snapshot(conn) == incremental, f"run {run}"
            assert conn.execute("select count(*) from contact_stats").fetchone()[0] == conn.execute(
                "select count(*) from campaign_contacts").fetchone()[0]


def test_a_removed_contact_leaves_the_contact_list(reference):
    with transaction(reference["db"]) as conn:
        conn.execute("delete from campaign_contacts where contact_id = ?", [reference["a"]])
        aggregate(conn, NOW)
        assert conn.execute("select count(*) from contact_stats where contact_id = ?", [reference["a"]]).fetchone()[0] == 0
        # its calls still count as calls made by the campaign
        assert kpis(conn, reference["campaign_id"])["total_calls"] == 4


def test_a_deleted_campaign_loses_its_metrics(reference):
    with transaction(reference["db"]) as conn:
        for table in ("calls", "campaign_contacts", "campaigns"):
            conn.execute(f"delete from {table} where campaign_id = ?", [reference["campaign_id"]])
        result = aggregate(conn, NOW)
        assert result["deleted_campaigns"] == [reference["campaign_id"]]
        assert conn.execute("select (select count(*) from contact_stats) + (select count(*) from metrics_daily)"
                            " + (select count(*) from metrics_state)").fetchone()[0] == 0
