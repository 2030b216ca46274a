"""A simulated week through the real tick/enrichment code: schedule and limits hold, runs repeat."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone

import pytest

from flows.simulate import simulate
from tasks.telephony import make_provider
from tasks.store import connect
from tasks.telephony.simulator import SimulatedProvider
from tests.factories import add_contacts, make_campaign_db
from tests.invariants import check_invariants

UTC = timezone.utc
MONDAY_MIDNIGHT_PHOENIX = datetime(2026, 4, 27, 7, 0, tzinfo=UTC)


def _simulated_week(db, seed=7, days=7, contacts=80):
    ids = make_campaign_db(db, batch_size=20, max_attempts=3)
    add_contacts(db, ids["campaign_id"], contacts)
    provider = SimulatedProvider(db.parent / "simulator.sqlite", seed=seed, concurrency_limit=5)
    result = simulate(db, provider, MONDAY_MIDNIGHT_PHOENIX, days, pace_seconds=3)
    return ids, provider, result


def test_a_simulated_week_stays_inside_the_schedule_and_the_limits(db):
    ids, provider, result = _simulated_week(db)
    assert result.placed > 80  # everyone called at least once, some retried
    check_invariants(db, provider)
    with connect(db) as conn:
        outside = conn.execute(
            """
            select count(*) from calls
            where registered_at is not null and not (
                isodow(registered_at at time zone 'America/Phoenix') between 1 and 5
                and (registered_at at time zone 'America/Phoenix')::time >= '08:00'
                and (registered_at at time zone 'America/Phoenix')::time < '18:00')
            """
        ).fetchone()[0]
        pending = conn.execute("select count(*) from calls where status in ('registered', 'in_progress')").fetchone()[0]
        finished = conn.execute("select count(*) from campaign_contacts where finished_at is not null").fetchone()[0]
        reasons = {r[0] for r in conn.execute("select distinct disconnect_reason from calls").fetchall()}
    assert outside == 0
    assert pending == 0  # every call was enriched to a final status
    assert finished > 0
    assert {"dial_no_answer", "voicemail_reached"} <= reasons


def _fingerprint(db):
    with connect(db) as conn:
        return conn.execute(
            "select attempt_key, status, disconnect_reason, duration_seconds, credits, call_successful, queued_at"
            " from calls order by attempt_key"
        ).fetchall()


def test_the_same_seed_gives_the_same_simulation(tmp_path, monkeypatch):
    from tasks.store import init_db

    prints = []
    for name in ("a", "b"):
        path = tmp_path / name / "campaigns.duckdb"
        path.parent.mkdir()
        init_db(path)
        _simulated_week(path, seed=11, days=2, contacts=30)
        prints.append(_fingerprint(path))
    assert prints[0] == prints[1] and len(prints[0]) > 0


OVERLAP = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime
    from pathlib import Path
    from tasks.clock import VirtualClock
    from tasks.dialing import run_tick
    from tasks.telephony import make_provider
    db, go, start = sys.argv[1], Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
    provider = make_provider(db=db)
    while not go.exists():
        time.sleep(0.005)
    print(run_tick(db, provider, VirtualClock(start), pace_seconds=3).placed)
    """
)


def test_two_overlapping_ticks_never_dial_anyone_twice(db, tmp_path):
    ids = make_campaign_db(db, batch_size=30)
    add_contacts(db, ids["campaign_id"], 40)
    go = tmp_path / "go"
    start = datetime(2026, 4, 28, 17, 0, tzinfo=UTC).isoformat()
    workers = [
        subprocess.Popen([sys.executable, "-c", OVERLAP, str(db), str(go), start], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    go.touch()
    placed = [int(w.communicate(timeout=120)[0].strip()) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    # one batch of 30; the other tick claims the remaining 10 if the batch was placed by then, or nobody while it
    # is still placing (one batch at a time per campaign): which one depends on how the two processes interleave
    assert sorted(placed) in ([0, 30], [10, 30])
    check_invariants(db, make_provider(db=db))


def test_retries_later_the_same_day_are_placed_the_same_day(db):
    # every call goes unanswered; the default policy retries no-answers after 2 h, 3 attempts a day:
    # the idle jump must stop at the retry times, not skip to the next day's opening
    from tests.fakes import FakeProvider

    ids = make_campaign_db(db, max_attempts=3, attempts_per_day=3)
    add_contacts(db, ids["campaign_id"], 4)
    simulate(db, FakeProvider(), MONDAY_MIDNIGHT_PHOENIX, 3, pace_seconds=3)
    with connect(db) as conn:
        days = conn.execute(
            "select contact_id, list(strftime(queued_at at time zone 'America/Phoenix', '%a %H') order by queued_at)"
            " from calls group by contact_id order by contact_id"
        ).fetchall()
    assert [calls for _, calls in days] == [["Mon 08", "Mon 10", "Mon 12"]] * 4


def test_a_run_whose_remaining_contacts_are_all_on_a_do_not_call_list_stops(db):
    from tasks.compliance import add_dnc
    from tasks.store import transaction
    from tests.fakes import FakeProvider

    ids = make_campaign_db(db, max_attempts=3)
    add_contacts(db, ids["campaign_id"], 2)
    with transaction(db) as conn:
        add_dnc(conn, ["+16025550000", "+16025550001"], MONDAY_MIDNIGHT_PHOENIX)
    result = simulate(db, FakeProvider(), MONDAY_MIDNIGHT_PHOENIX, 30, pace_seconds=3)
    # nothing will ever release them: the run ends at once instead of waking every day for a month
    assert result.placed == 0 and result.ticks == 1


def _plans():
    from tasks.dialing import CampaignPlan
    from tasks.schedule import Schedule

    week = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    schedule = Schedule.from_row("America/Phoenix", list(week), json.dumps(week), date(2026, 4, 27), None)
    return [CampaignPlan(1, "c", True, schedule, 5, 1, 100, False, (1,), "agent")]


def _phoenix(day, hour, minute=0):
    return datetime(2026, 4, day, hour, minute, tzinfo=UTC) + timedelta(hours=7)  # Phoenix is UTC-7 all year


@pytest.mark.parametrize("now, held, waiting, retry, expected", [
    # closed (Monday 06:00): the opening, whatever is pending
    (_phoenix(27, 6), 5, 0, None, _phoenix(27, 8)),
    # open, someone held by a rule (a callee window opening later): the next quarter hour
    (_phoenix(27, 9, 7), 1, 3, None, _phoenix(27, 9, 15)),
    # open, everyone done for the day: tomorrow's opening, not the next minute
    (_phoenix(27, 9, 7), 0, 3, None, _phoenix(28, 8)),
    # open, a retry due at 11:30 today: then (the bug was jumping to tomorrow)
    (_phoenix(27, 9, 7), 0, 3, _phoenix(27, 11, 30), _phoenix(27, 11, 30)),
    # a retry due after the close: the next opening after it
    (_phoenix(27, 16), 0, 0, _phoenix(27, 19), _phoenix(28, 8)),
    # Friday, everyone done for the day: Monday's opening
    (datetime(2026, 5, 1, 17, tzinfo=UTC), 0, 2, None, datetime(2026, 5, 4, 15, tzinfo=UTC)),
])
def test_the_idle_jump_goes_to_the_first_moment_someone_may_be_callable(now, held, waiting, retry, expected):
    from flows.simulate import idle_until

    assert idle_until(_plans(), now, held, waiting, retry) == expected


def test_contacts_held_only_by_rolling_caps_wake_the_run_when_an_attempt_leaves_the_window():
    from flows.simulate import idle_until

    # open Monday 09:07; the only held contacts wait for a cap: no quarter-hour polling, the expiry
    assert idle_until(_plans(), _phoenix(27, 9, 7), 2, 0, None, _phoenix(27, 13, 40)) == _phoenix(27, 13, 40)
    # an expiry at night: the next opening after it
    assert idle_until(_plans(), _phoenix(27, 9, 7), 2, 0, None, _phoenix(27, 23)) == _phoenix(28, 8)
