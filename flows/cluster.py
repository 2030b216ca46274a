"""Dialing spread over several Prefect workers: a fan-out flow and a per-campaign flow under a global call limit.

Every minute `fan-out-dialing` submits one `dial-campaign` flow run per campaign open now (more per
campaign with `shards`), skipping campaigns whose previous run is still going, so the workers of
the `campaigns` pool share the campaigns between them. Each `dial-campaign` run is one scheduled
tick for its campaign (reconcile, claim, place: `tasks.dialing.run_tick`, whose batch holds only its
campaign's lock on the shared store, `store.lock_scope`), and every call
it places holds one slot of the Prefect global concurrency limit `provider-calls` (limit = the
provider's concurrent-call limit) from placing until the call ends, so all workers together never
have more calls in flight than the provider allows.

Why not `run-campaign` (the Run button's flow): it dials whatever the schedule says (Manual Running)
and builds its own provider, which leaves nowhere to hold the global slots.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import duckdb
from prefect import flow, get_run_logger

from schemas.enums import FINAL_STATUSES
from tasks.clock import Clock, VirtualClock, WallClock
from tasks.dialing import load_plans, run_tick
from tasks.settings import get_settings
from tasks.telephony.base import (
    PLACING_DEADLINE, CallRequest, ConcurrencyLimitReached, OutcomeUnknown, ProviderCall, TelephonyProvider,
)

DIAL_DEPLOYMENT = "dial-campaign/dial-campaign"
# Flow runs in these states are a campaign's run "still going": the fan-out does not add another.
BUSY_STATES = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")


# ---------------------------------------------------------------- which runs to submit


def dialable_campaigns(conn: duckdb.DuckDBPyConnection, now: datetime) -> list[int]:
    """Active campaigns with a start date whose calling window is open at `now`, by id."""
    return sorted(
        p.campaign_id for p in load_plans(conn)
        if p.active and p.schedule.start_date is not None and p.schedule.is_open(now)
    )


def runs_to_submit(dialable: Iterable[int], busy: Counter[int] | dict[int, int], shards: int = 1) -> list[tuple[int, int]]:
    """(campaign id, shard) pairs to submit: each dialable campaign topped up to `shards` runs in flight."""
    wanted = []
    for campaign_id in dialable:
        for shard in range(busy.get(campaign_id, 0), shards):
            wanted.append((campaign_id, shard))
    return wanted


def idempotency_key(campaign_id: int, shard: int, now: datetime) -> str:
    """One submission per campaign, shard and minute, even if the fan-out itself is retried."""
    return f"dial-campaign:{campaign_id}:{shard}:{now.astimezone(timezone.utc):%Y-%m-%dT%H:%M}"


# ---------------------------------------------------------------- the global call slots


Acquire = Callable[[int], Any]  # slots -> lease id; raises TimeoutError when not granted within a short wait
Release = Callable[[Any], None]


def prefect_slots(limit_name: str, lease_seconds: float, timeout_seconds: float | None = 2.0) -> tuple[Acquire, Release]:
    """Acquire/release of leased slots of a Prefect global concurrency limit (which must exist)."""
    # The public `concurrency()` block releases at its end; a call outlives the code that places it,
    # so the slot is taken and given back with the lease functions underneath it (Prefect 3.9).
    from prefect.concurrency._sync import acquire_concurrency_slots_with_lease, release_concurrency_slots_with_lease

    def acquire(slots: int) -> UUID:
        # strict: a missing limit must stop dialing, not silently let every worker dial freely
        answer = acquire_concurrency_slots_with_lease(
            [limit_name], slots, timeout_seconds=timeout_seconds, lease_duration=lease_seconds, strict=True,
        )
        return answer.lease_id

    return acquire, release_concurrency_slots_with_lease


def prefect_renew(lease_seconds: float) -> Callable[[Any], None]:
    """Renew a held slot's lease for another `lease_seconds`: a call may outlast one lease."""
    from prefect.client.orchestration import get_client

    def renew(lease_id: UUID) -> None:
        with get_client(sync_client=True) as client:
            client.renew_concurrency_lease(lease_id, lease_duration=lease_seconds)

    return renew


class CallSlots:
    """A provider that holds one global slot per call from placing until the call ends.

    Slots of calls this process saw end are given back before each placement (the dialing loop asks
    `active_calls` before every call), between short waits for a slot (so workers waiting for each
    other's slots never deadlock) and by `drain`; a worker that dies leaves its slots to expire with
    their lease. No slot within `wait_seconds` = the provider's own refusal (ConcurrencyLimitReached:
    not an attempt, the contact is re-queued). Batch placement (`place_calls`) is not offered, so
    every call goes one by one through `place_call`.
    """

    def __init__(self, provider: TelephonyProvider, acquire: Acquire, release: Release, *,
                 clock: Clock | None = None, wait_seconds: float = 300.0,
                 heartbeat: Callable[[], None] | None = None, heartbeat_seconds: float = 30.0,
                 renew: Callable[[Any], None] | None = None, renew_seconds: float = 400.0):
        self.inner, self._acquire, self._release = provider, acquire, release
        # A held slot's lease is renewed every `renew_seconds` (a third of the lease) while this process
        # watches its call: a call longer than one lease would otherwise lose its slot and let the cluster
        # place a call over the limit.
        self._renew, self.renew_seconds = renew, renew_seconds
        self._renewed: dict[str, float] = {}  # provider call id -> when its lease was last taken or renewed
        self.clock, self.wait_seconds = clock, wait_seconds
        self.held: dict[str, Any] = {}  # provider call id -> lease
        self.acquired = self.released = self.waits = self.left_to_expire = self.renewed = 0
        # Waiting for a slot (up to `wait_seconds` per call) or for free lines happens between the dialer's
        # own heartbeats; a worker on another machine judges this batch by its heartbeat (older than
        # CAMPAIGNS_RUN_LEASE_SECONDS = dead: reconciled, its contacts released and dialled again), so
        # the waits beat every `heartbeat_seconds` of real time.
        self._heartbeat, self.heartbeat_seconds = heartbeat, heartbeat_seconds
        self._beaten = time.monotonic()  # no earlier than the claim's own heartbeat

    def _beat(self) -> None:
        if self._heartbeat is not None and time.monotonic() - self._beaten >= self.heartbeat_seconds:
            self._heartbeat()
            self._beaten = time.monotonic()

    def __getattr__(self, name: str):
        if name == "place_calls":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _now(self, fallback: datetime) -> datetime:
        return max(fallback, self.clock.now()) if self.clock is not None else fallback

    def _take_slot(self, now: datetime) -> Any:
        started = time.monotonic()
        not_after = PLACING_DEADLINE.get()  # the window's close or the batch's deadline: no call starts later

        def too_late() -> bool:
            moment = self.clock.now() if self.clock is not None else now + timedelta(seconds=time.monotonic() - started)
            return not_after is not None and moment >= not_after

        while True:
            self._beat()
            self.release_ended(self._now(now))
            if too_late():
                raise ConcurrencyLimitReached(f"no slot of the global call limit before {not_after.isoformat()}"
                                              " (the calling window's close or the batch's deadline)")
            try:
                lease = self._acquire(1)
            except TimeoutError as full:
                self.waits += 1
                if time.monotonic() - started >= self.wait_seconds:
                    raise ConcurrencyLimitReached(
                        f"no slot of the global call limit for {self.wait_seconds:g}s") from full
                continue
            if too_late():  # granted, but only after the last moment this call may start
                self._release(lease)
                raise ConcurrencyLimitReached(f"the slot of the global call limit came after {not_after.isoformat()}"
                                              " (the calling window's close or the batch's deadline)")
            return lease

    def place_call(self, request: CallRequest, now: datetime) -> str:
        """Wait for a global slot, then place the call; a refused call gives its slot back.

        A call whose placing has an unknown outcome may be ringing: its slot is kept until the lease
        expires (`call_slot_lease_seconds`), so the global limit is never exceeded meanwhile.
        """
        lease = self._take_slot(now)
        self.acquired += 1
        try:
            # stamped when the slot was granted: after the call that gave it back had ended
            provider_call_id = self.inner.place_call(request, self._now(now))
        except OutcomeUnknown:
            self.left_to_expire += 1
            raise
        except BaseException:
            self._give_back(lease)
            raise
        self.held[provider_call_id] = lease
        self._renewed[provider_call_id] = time.monotonic()
        return provider_call_id

    def active_calls(self, now: datetime) -> int:
        """The provider's count of calls in progress (after giving back the slots of ended ones)."""
        self._beat()  # the dialer asks while it waits for free lines, too
        self.release_ended(now)
        return self.inner.active_calls(now)

    def release_ended(self, now: datetime) -> int:
        """Give back the slots of this process's calls that have ended; returns how many."""
        if not self.held:
            return 0
        ids = list(self.held)
        calls: list[ProviderCall] = self.inner.get_calls(ids, now) if hasattr(self.inner, "get_calls") \
            else [self.inner.get_call(i, now) for i in ids]
        ended = [i for i, call in zip(ids, calls) if call.status in FINAL_STATUSES]
        for provider_call_id in ended:
            self._give_back(self.held.pop(provider_call_id))
            self._renewed.pop(provider_call_id, None)
        if self._renew is not None:
            moment = time.monotonic()
            for provider_call_id, lease in self.held.items():
                if moment - self._renewed.get(provider_call_id, moment) >= self.renew_seconds:
                    self._renew(lease)
                    self._renewed[provider_call_id] = moment
                    self.renewed += 1
        return len(ended)

    def _give_back(self, lease: Any) -> None:
        self._release(lease)
        self.released += 1

    def drain(self, clock: Clock, max_wait_seconds: float, poll_seconds: float = 5.0) -> int:
        """Wait (bounded) for this process's calls to end, giving their slots back; returns slots still held."""
        waited = 0.0
        while self.held:
            self.release_ended(clock.now())
            if not self.held or waited >= max_wait_seconds:
                break
            clock.sleep(poll_seconds)
            waited += poll_seconds
        return len(self.held)


def run_heartbeat(db: str | None) -> Callable[[], None]:
    """Refresh the heartbeat of this process's running dial runs: how workers on other machines tell a
    batch waiting for call slots from a dead one (`tasks.dialing.run_is_dead`)."""
    from tasks.dialing import HOST
    from tasks.errors import StoreLockedError
    from tasks.store import transaction

    owner = [HOST, os.getpid()]

    def beat() -> None:
        try:
            with transaction(db) as conn:
                conn.execute("update dial_runs set heartbeat_at = ? where state = 'running' and owner_host = ?"
                             " and owner_pid = ?", [datetime.now(timezone.utc), *owner])
        except StoreLockedError:
            pass  # the store is busy: the next wait beats again, well within the lease

    return beat


# ---------------------------------------------------------------- flows


def _clock(now: datetime | None) -> Clock:
    return VirtualClock(now) if now is not None else WallClock()


@flow(name="dial-campaign", persist_result=False)
def dial_campaign(
    campaign_id: int,
    now: datetime | None = None,
    db: str | None = None,
    call_limit: str | None = None,
    slot_timeout_seconds: float = 300.0,
    drain_seconds: float = 600.0,
    shards: int = 1,
) -> dict:
    """One scheduled tick for one campaign; each call holds a slot of the global call limit until it ends.

    `shards`: how many batches of the campaign may place at once (the fan-out's shards); else one.
    """
    from tasks.telephony import make_provider

    settings = get_settings()
    limit = call_limit or settings.call_slots_limit_name
    clock = _clock(now)
    slots = CallSlots(make_provider(db=db), *prefect_slots(limit, settings.call_slot_lease_seconds),
                      clock=clock, wait_seconds=slot_timeout_seconds,
                      heartbeat=run_heartbeat(db), heartbeat_seconds=settings.run_lease_seconds / 4,
                      renew=prefect_renew(settings.call_slot_lease_seconds),
                      renew_seconds=settings.call_slot_lease_seconds / 3)
    try:
        tick = run_tick(db, slots, clock, campaign_ids=[campaign_id], batches_at_once=shards).as_dict()
    finally:
        left = slots.drain(clock, drain_seconds)
    return {**tick, "slots_acquired": slots.acquired, "slots_released": slots.released,
            "slots_left_to_expire": left + slots.left_to_expire}


BUSY_PAGE = 200  # runs read per request (the Prefect server's default page, PREFECT_SERVER_API_DEFAULT_LIMIT)


def _busy_campaigns(client, deployment_id: UUID) -> Counter[int]:
    """How many `dial-campaign` runs of each campaign are still going, read page by page: one page would
    leave out the campaigns past its end, and the fan-out would add a run for each of them every minute."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    busy: Counter[int] = Counter()
    offset = 0
    while True:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType(s) for s in BUSY_STATES]))),
            sort=FlowRunSort.ID_DESC, limit=BUSY_PAGE, offset=offset,
        )
        busy.update(int(r.parameters["campaign_id"]) for r in runs if "campaign_id" in r.parameters)
        if len(runs) < BUSY_PAGE:
            return busy
        offset += len(runs)


@flow(name="fan-out-dialing", persist_result=False)
def fan_out_dialing(
    db: str | None = None,
    now: datetime | None = None,
    shards: int = 1,
    deployment: str = DIAL_DEPLOYMENT,
) -> dict:
    """Submit one `dial-campaign` run per campaign open now (up to `shards` each) for the pool's workers."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from tasks.store import connect

    moment = now or datetime.now(timezone.utc)
    with connect(db) as conn:
        dialable = dialable_campaigns(conn, moment)
    with get_client(sync_client=True) as client:
        target = client.read_deployment_by_name(deployment)
        busy = _busy_campaigns(client, target.id)
    submitted = []
    for campaign_id, shard in runs_to_submit(dialable, busy, shards):
        parameters: dict[str, Any] = {"campaign_id": campaign_id}
        if shards > 1:
            parameters["shards"] = shards
        if db is not None:
            parameters["db"] = db
        run = run_deployment(
            deployment, parameters=parameters, timeout=0, as_subflow=False,
            idempotency_key=idempotency_key(campaign_id, shard, moment),
            flow_run_name=f"campaign-{campaign_id}-{shard}",
        )
        submitted.append({"campaign_id": campaign_id, "shard": shard, "flow_run_id": str(run.id)})
    get_run_logger().info("dialable %s, still running %s, submitted %s", dialable, dict(busy), len(submitted))
    return {"dialable": dialable, "busy": dict(busy), "submitted": submitted}


def ensure_call_limit(limit: int, name: str | None = None) -> str:
    """Create (or set) the global concurrency limit of calls in flight to `limit`; returns its name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    name = name or get_settings().call_slots_limit_name
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        else:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, active=True))
    return name


def set_schedules_active(deployment: str, active: bool) -> int:
    """Turn a deployment's schedules on or off (prefect.yaml ships the fan-out's off); returns how many."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        target = client.read_deployment_by_name(deployment)
        schedules = client.read_deployment_schedules(target.id)
        for schedule in schedules:
            client.update_deployment_schedule(target.id, schedule.id, active=active)
    return len(schedules)


def main(argv: list[str] | None = None) -> int:
    """`python -m flows.cluster setup --call-limit N`: the global call limit, and the fan-out's schedule on.

    The single-process tick (`dial-campaigns`) is not turned off here: serve_cluster never deploys it.
    """
    import argparse

    parser = argparse.ArgumentParser(description="Prepare a Prefect server for cluster dialing.")
    parser.add_argument("command", choices=("setup",))
    parser.add_argument("--call-limit", type=int, default=None, help="default: CAMPAIGNS_PROVIDER_CONCURRENCY_LIMIT")
    args = parser.parse_args(argv)
    if args.call_limit is not None and args.call_limit < 1:  # 0 became the default (20) without a word
        print(f"error: --call-limit: must be 1 or more, got {args.call_limit}", file=sys.stderr)
        return 2
    if not os.environ.get("PREFECT_API_URL"):  # it set the limit on a temporary server of its own, then forgot it
        print("error: PREFECT_API_URL is not set: name the Prefect server the workers use", file=sys.stderr)
        return 2
    limit = args.call_limit or get_settings().provider_concurrency_limit
    try:
        name = ensure_call_limit(limit)
        turned_on = set_schedules_active("fan-out-dialing/fan-out-dialing", True)
    except Exception as error:  # unreachable server, deployments not deployed yet: one line, not a traceback
        print(f"error: cluster setup against {os.environ['PREFECT_API_URL']}: {type(error).__name__}: "
              f"{' '.join(str(error).split()) or 'no details'} (is the server up, and `prefect deploy --all` done?)",
              file=sys.stderr)
        return 2
    print(f"global concurrency limit {name} = {limit}; fan-out-dialing schedules on: {turned_on}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
