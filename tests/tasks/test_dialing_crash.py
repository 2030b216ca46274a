"""Kill the dialing process at each step of the call lifecycle: no double dial, no lost row."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from tasks.clock import VirtualClock
from tasks.dialing import run_manual, run_tick
from tasks.settings import reset_settings
from tasks.store import connect
from tasks.telephony import make_provider
from tests.factories import add_contacts, make_campaign_db, open_the_us_rule_all_day
from tests.invariants import check_invariants

UTC = timezone.utc
TUE_10_PHOENIX = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)

CHILD = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime
    from tasks import dialing
    from tasks.clock import VirtualClock, WallClock
    from tasks.telephony import make_provider

    db, step, mode, start = sys.argv[1:5]
    provider = make_provider(db=db)

    def die(*args, **kwargs):
        os._exit(9)

    from contextlib import contextmanager
    real_transaction, placed = dialing.transaction, [False]

    def die_after_commit(when):
        @contextmanager
        def transaction_then_die(*args, **kwargs):
            with real_transaction(*args, **kwargs) as conn:
                yield conn
            if when():
                os._exit(9)
        dialing.transaction = transaction_then_die

    if step == "after_claim":
        # the claim committed (queued rows; created too when the batch is placed in one request), nothing more
        die_after_commit(lambda: True)
    elif step == "after_created":  # created committed; the provider was never asked
        provider.place_call = die
        provider.place_calls = die
        provider.place_call_batch = die
        provider.place_call_batch_waiting = die
    elif step == "after_place":  # the provider accepted calls; their registration never committed
        place_call, place_calls, count = provider.place_call, provider.place_calls, [0]
        def place_call_then_die(request, now):
            answer = place_call(request, now)
            count[0] += 1
            if count[0] == 3:
                os._exit(9)
            return answer
        def place_calls_then_die(requests, now, pace_seconds=0.0):
            place_calls(requests, now, pace_seconds)
            os._exit(9)
        place_call_batch = provider.place_call_batch
        def place_call_batch_then_die(batch, now, pace_seconds=0.0):
            place_call_batch(batch, now, pace_seconds=pace_seconds)
            os._exit(9)
        place_call_batch_waiting = provider.place_call_batch_waiting
        def place_call_batch_waiting_then_die(batch, now, pace_seconds, wait):
            place_call_batch_waiting(batch, now, pace_seconds, wait)
            os._exit(9)
        provider.place_call = place_call_then_die
        provider.place_calls = place_calls_then_die
        provider.place_call_batch = place_call_batch_then_die
        provider.place_call_batch_waiting = place_call_batch_waiting_then_die
    elif step == "after_register":  # the registration transaction committed, then the process died
        place_call, place_calls = provider.place_call, provider.place_calls
        def place_call_noted(request, now):
            placed[0] = True
            return place_call(request, now)
        def place_calls_noted(requests, now, pace_seconds=0.0):
            placed[0] = True
            return place_calls(requests, now, pace_seconds)
        place_call_batch = provider.place_call_batch
        def place_call_batch_noted(batch, now, pace_seconds=0.0):
            placed[0] = True
            return place_call_batch(batch, now, pace_seconds=pace_seconds)
        place_call_batch_waiting = provider.place_call_batch_waiting
        def place_call_batch_waiting_noted(batch, now, pace_seconds, wait):
            placed[0] = True
            return place_call_batch_waiting(batch, now, pace_seconds, wait)
        provider.place_call, provider.place_calls = place_call_noted, place_calls_noted
        provider.place_call_batch = place_call_batch_noted
        provider.place_call_batch_waiting = place_call_batch_waiting_noted
        die_after_commit(lambda: placed[0])  # the first commit after placing: the registration
    if mode == "virtual":
        dialing.run_tick(db, provider, VirtualClock(datetime.fromisoformat(start)), pace_seconds=3)
    else:
        dialing.run_manual(db, provider, 1, WallClock(), pace_seconds=0)
    print("finished without crashing")
    """
)


@pytest.fixture
def crash_db(db, monkeypatch):
    monkeypatch.setenv("CAMPAIGNS_RECONCILE_GRACE_SECONDS", "0")
    reset_settings()
    ids = make_campaign_db(db, batch_size=8)
    add_contacts(db, ids["campaign_id"], 12)
    open_the_us_rule_all_day(db)  # the "wall" runs dial on the wall clock (the Run button skips the schedule)
    return ids


@pytest.mark.parametrize("mode", ["virtual", "wall"])
@pytest.mark.parametrize("step", ["after_claim", "after_created", "after_place", "after_register"])
def test_kill_at_each_step_then_restart(crash_db, step, mode):
    db = crash_db["db"]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), step, mode, TUE_10_PHOENIX.isoformat()],
        capture_output=True, text=True, timeout=120,
    )
    assert child.returncode == 9, child.stdout + child.stderr
    provider = make_provider(db=db)
    placed_before = provider.total_placed()
    if mode == "virtual":
        later = TUE_10_PHOENIX + timedelta(minutes=30)
        result = run_tick(db, provider, VirtualClock(later), pace_seconds=3)
    else:
        later = datetime.now(UTC)
        result = run_manual(db, provider, crash_db["campaign_id"], VirtualClock(later), pace_seconds=0)
    check_invariants(db, provider)
    with connect(db) as conn:
        runs = conn.execute("select state from dial_runs order by run_id").fetchall()
        rows = conn.execute("select count(*) from calls where provider_call_id is not null").fetchone()[0]
    # the dead run is closed as interrupted (after_register: its last commit had already closed it)
    assert runs[0] == (("completed",) if step == "after_register" else ("failed",))
    assert rows == provider.total_placed()  # every placed call has its row
    if step in ("after_claim", "after_created"):
        assert placed_before == 0
    # the restart dialed only contacts that had no call placed yet: nobody twice
    assert provider.total_placed() == placed_before + result.placed
