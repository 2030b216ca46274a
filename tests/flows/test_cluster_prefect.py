"""flows/cluster.py against a real Prefect server: the global call limit, the per-campaign flow, the fan-out."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from tasks.store import connect
from tests.factories import add_contacts, make_campaign_db
from tests.flows.test_cluster import FakeProvider, _request

pytestmark = pytest.mark.prefect

OPEN = datetime(2026, 4, 28, 17, 0, tzinfo=timezone.utc)  # Tuesday 10:00 in Phoenix


def test_three_placers_together_never_hold_more_than_the_global_limit(prefect_harness):
    from schemas.enums import CallStatus
    from flows.cluster import CallSlots, ensure_call_limit, prefect_slots

    name = ensure_call_limit(2, "test-calls-three-placers")
    provider = FakeProvider()  # one provider account shared by three placers (threads here)
    guard = threading.Lock()
    in_flight, most = [0], [0]

    def placer(index: int) -> None:
        slots = CallSlots(provider, *prefect_slots(name, lease_seconds=60, timeout_seconds=60))
        for n in range(2):
            call_id = slots.place_call(_request(f"+{index}{n}"), OPEN)  # blocks while the limit is full
            with guard:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            time.sleep(0.3)  # the call talks for a while, then ends
            with guard:
                provider.status[call_id] = CallStatus.ended
                in_flight[0] -= 1
            slots.release_ended(OPEN)

    threads = [threading.Thread(target=placer, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert len(provider.status) == 6  # everybody got to dial in the end
    assert most[0] <= 2


def test_a_missing_limit_stops_dialing_instead_of_ignoring_it(prefect_harness):
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError

    from flows.cluster import prefect_slots

    acquire, _ = prefect_slots("no-such-limit", lease_seconds=60, timeout_seconds=5)
    with pytest.raises(ConcurrencySlotAcquisitionError, match="must be created"):
        acquire(1)


def test_a_held_slot_lease_is_renewed_on_the_server(prefect_harness):
    # a call longer than one lease keeps its slot: the renewal moves the lease's expiry forward
    from prefect.client.orchestration import get_client

    from flows.cluster import ensure_call_limit, prefect_renew, prefect_slots

    name = ensure_call_limit(1, "test-calls-renew")
    acquire, release = prefect_slots(name, lease_seconds=60, timeout_seconds=10)  # the server's shortest lease
    lease = acquire(1)
    try:
        with get_client(sync_client=True) as client:
            before = client.read_global_concurrency_limit_by_name(name).active_slots
        prefect_renew(3600)(lease)
        with get_client(sync_client=True) as client:
            assert client.read_global_concurrency_limit_by_name(name).active_slots == before == 1
    finally:
        release(lease)
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(name).active_slots == 0


def test_dial_campaign_flow_places_a_batch_holding_one_slot_per_call(db, prefect_harness):
    from flows.cluster import dial_campaign, ensure_call_limit

    ids = make_campaign_db(db, batch_size=5)
    add_contacts(db, ids["campaign_id"], 8)
    name = ensure_call_limit(20, "test-calls-flow")
    result = dial_campaign(ids["campaign_id"], now=OPEN, db=str(db), call_limit=name, drain_seconds=3600)
    assert result["placed"] == 5
    assert result["slots_acquired"] == 5 and result["slots_released"] == 5  # all calls ended on the virtual clock
    assert result["slots_left_to_expire"] == 0
    with connect(db) as conn:
        assert conn.execute("select kind, state, calls_placed from dial_runs").fetchall() == [("scheduled", "completed", 5)]


def test_fan_out_submits_one_run_per_open_campaign_and_not_twice(db, prefect_harness):
    from prefect.client.orchestration import get_client

    from flows.cluster import dial_campaign, fan_out_dialing

    ids = make_campaign_db(db, batch_size=5)
    add_contacts(db, ids["campaign_id"], 3)
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(dial_campaign.name)
        client.create_deployment(flow_id=flow_id, name="fan-out-test", entrypoint="flows/cluster.py:dial_campaign")
    first = fan_out_dialing(db=str(db), now=OPEN, deployment="dial-campaign/fan-out-test")
    assert [(s["campaign_id"], s["shard"]) for s in first["submitted"]] == [(ids["campaign_id"], 0)]
    # no worker picks it up here, so it stays scheduled: the next minute adds nothing for the campaign
    again = fan_out_dialing(db=str(db), now=OPEN.replace(minute=1), deployment="dial-campaign/fan-out-test")
    assert again["busy"] == {ids["campaign_id"]: 1} and again["submitted"] == []
    closed = fan_out_dialing(db=str(db), now=OPEN.replace(hour=3), deployment="dial-campaign/fan-out-test")
    assert closed["dialable"] == [] and closed["submitted"] == []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    submitted = [r for r in runs if r.name.startswith("campaign-")]
    assert len(submitted) == 1 and submitted[0].parameters == {"campaign_id": ids["campaign_id"], "db": str(db)}
