"""`dial-campaign` on the shared PostgreSQL store, as workers on several machines run it."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

from schemas.enums import CallStatus
from tasks.settings import reset_settings
from tasks.store import connect, init_db
from tasks.telephony.base import CallRequest, ProviderCall
from tests.factories import add_contacts, make_campaign_db, open_the_us_rule_all_day

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
LEASE_SECONDS = 3.0  # CAMPAIGNS_RUN_LEASE_SECONDS: a remote run without a heartbeat this long is dead


@pytest.fixture
def shared_store(pg_server, monkeypatch, tmp_path):
    name = f"dial_{uuid.uuid4().hex[:12]}"
    pg_server.execute(f'create database "{name}"')
    env = {"CAMPAIGNS_STORE": "postgres", "CAMPAIGNS_STORE_URL": f"{pg_server.url.rsplit('/', 1)[0]}/{name}",
           "CAMPAIGNS_DB": str(tmp_path / "campaigns.duckdb"), "CAMPAIGNS_LOCK_TIMEOUT_SECONDS": "60",
           "CAMPAIGNS_RUN_LEASE_SECONDS": str(LEASE_SECONDS), "CAMPAIGNS_DIAL_PACE_SECONDS": "0.5"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    init_db()
    yield
    reset_settings()


class Provider:
    """Calls that ring until the test ends; knows its calls by attempt key (for reconciliation)."""

    name = "fake"
    concurrency_limit = 100

    def __init__(self):
        self.placed: dict[str, CallRequest] = {}

    def place_call(self, request: CallRequest, now: datetime) -> str:
        call_id = f"p{len(self.placed) + 1}"
        self.placed[call_id] = request
        return call_id

    def get_call(self, provider_call_id: str, now: datetime) -> ProviderCall:
        return ProviderCall(provider_call_id, CallStatus.registered)

    def find_by_attempt_key(self, attempt_key: str, now: datetime, *, to_number: str | None = None,
                            placed_after: datetime | None = None) -> ProviderCall | None:
        return next((self.get_call(i, now) for i, r in self.placed.items() if r.attempt_key == attempt_key), None)

    def active_calls(self, now: datetime) -> int:
        return len(self.placed)


@pytest.mark.slow
def test_a_batch_waiting_for_call_slots_is_not_taken_for_dead_by_another_machine(shared_store, monkeypatch):
    # The global limit is full for longer than the run lease: the batch's first call waits for a slot.
    # Meanwhile a worker on another machine ticks (any campaign's tick reconciles every run) and judges
    # this run by its heartbeat. Taken for dead, its queued contacts were released as "not placed" while
    # this worker went on to dial them: calls without a row (their answers matched no `created` row) to
    # people another batch may claim again.
    import flows.cluster as cluster
    import tasks.dialing as dialing
    import tasks.telephony as telephony

    campaign = make_campaign_db(None, batch_size=3, calling_days=list(ALL_DAY), weekly_schedule=ALL_DAY,
                                number_daily_cap=None)["campaign_id"]
    open_the_us_rule_all_day(None)  # dialled on the wall clock: the law's hours must not depend on the hour
    add_contacts(None, campaign, 3)
    provider = Provider()
    monkeypatch.setattr(telephony, "make_provider", lambda db=None: provider)
    other_machine: dict = {}

    def the_other_machine_ticks():
        # a fresh thread: outside this batch's lock scope, as another process would be
        with monkeypatch.context() as patch:
            patch.setattr(dialing, "HOST", "another-machine")
            other_machine["reconciled"] = dialing.reconcile(None, provider, datetime.now(timezone.utc))
            with connect() as conn:
                other_machine["busy"] = dialing._running_batch(conn, campaign)

    first_wait_ends = time.monotonic() + LEASE_SECONDS + 1.5

    def acquire(slots: int) -> str:
        if time.monotonic() < first_wait_ends:
            time.sleep(0.2)  # the limit is full: every slot held by other workers' calls
            raise TimeoutError("all slots held")
        if "reconciled" not in other_machine:
            meanwhile = threading.Thread(target=the_other_machine_ticks)
            meanwhile.start()
            meanwhile.join(60)
        return f"lease-{uuid.uuid4().hex[:6]}"

    monkeypatch.setattr(cluster, "prefect_slots", lambda name, lease: (acquire, lambda lease_id: None))
    result = cluster.dial_campaign.fn(campaign, slot_timeout_seconds=60, drain_seconds=0)

    assert other_machine["reconciled"] == 0  # the live batch was left alone
    assert other_machine["busy"] is not None  # and still held the campaign: no second batch meanwhile
    assert result["batches"][0]["placed"] == len(provider.placed) == 3
    with connect() as conn:
        recorded = conn.execute("select provider_call_id, status from calls order by call_id").fetchall()
        run = conn.execute("select state from dial_runs").fetchall()
    # every call the provider placed has its row, registered
    assert sorted(recorded) == sorted((i, "registered") for i in provider.placed)
    assert run == [("completed",)]
