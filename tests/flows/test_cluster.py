"""flows/cluster.py: which runs the fan-out submits, and global call slots held from placing to the call's end."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from schemas.enums import CallStatus
from tasks.clock import VirtualClock
from tasks.store import connect, transaction
from tasks.telephony.base import CallRequest, ConcurrencyLimitReached, ProviderCall

from flows.cluster import CallSlots, dialable_campaigns, idempotency_key, runs_to_submit

OPEN = datetime(2026, 4, 27, 15, 0, tzinfo=timezone.utc)  # Monday 08:00 in Phoenix: inside 08:00-18:00
CLOSED = datetime(2026, 4, 27, 2, 0, tzinfo=timezone.utc)  # Sunday 19:00 in Phoenix


@pytest.mark.parametrize(
    ("dialable", "busy", "shards", "expected"),
    [
        ([1, 2], {}, 1, [(1, 0), (2, 0)]),
        ([1, 2], {1: 1}, 1, [(2, 0)]),  # campaign 1's previous run is still going: not doubled
        ([1], {1: 1}, 3, [(1, 1), (1, 2)]),  # a large campaign in 3 shards, one already running
        ([1], {1: 4}, 3, []),  # more in flight than wanted (shards lowered): none added, none cancelled
        ([], {7: 1}, 1, []),  # busy but no longer dialable: nothing
    ],
)
def test_runs_to_submit_tops_each_campaign_up_to_its_shards(dialable, busy, shards, expected):
    assert runs_to_submit(dialable, Counter(busy), shards) == expected


def test_idempotency_key_is_per_campaign_shard_and_utc_minute():
    later_same_minute = OPEN + timedelta(seconds=59)
    assert idempotency_key(3, 0, OPEN) == "dial-campaign:3:0:2026-04-27T15:00"
    assert idempotency_key(3, 0, later_same_minute) == idempotency_key(3, 0, OPEN)
    assert idempotency_key(3, 1, OPEN) != idempotency_key(3, 0, OPEN)


@pytest.mark.parametrize(
    ("now", "active", "expected_open"),
    [
        (OPEN, True, True),
        (CLOSED, True, False),  # outside the weekly schedule
        (OPEN, False, False),  # paused by hand
    ],
)
def test_dialable_campaigns_are_active_and_open_now(campaign_db, db, now, active, expected_open):
    with transaction(db) as conn:
        conn.execute("update campaigns set active = ?", [active])
    with connect(db) as conn:
        found = dialable_campaigns(conn, now)
    assert found == ([campaign_db["campaign_id"]] if expected_open else [])


class FakeProvider:
    """Calls that last until the test ends them; refuses numbers in `refuse`."""

    name = "fake"
    concurrency_limit = 20

    def __init__(self, refuse=()):
        self.status: dict[str, CallStatus] = {}
        self.refuse = set(refuse)

    def place_call(self, request: CallRequest, now: datetime) -> str:
        if request.to_number in self.refuse:
            raise ConcurrencyLimitReached("full")
        call_id = f"c{len(self.status)}"
        self.status[call_id] = CallStatus.registered
        return call_id

    def place_calls(self, requests, now, pace_seconds=0.0):  # pragma: no cover - must stay hidden
        raise AssertionError("CallSlots must place one by one")

    def get_calls(self, ids, now):
        return [ProviderCall(i, self.status[i]) for i in ids]

    def active_calls(self, now):
        return sum(1 for s in self.status.values() if s not in (CallStatus.ended, CallStatus.not_connected))


class FakeLimit:
    """A global limit's ledger: leases handed out and given back; a full limit times out."""

    def __init__(self, limit=100):
        self.next, self.out, self.most, self.limit = 0, set(), 0, limit

    def acquire(self, slots):
        assert slots == 1
        if len(self.out) >= self.limit:
            raise TimeoutError("full")
        self.next += 1
        self.out.add(self.next)
        self.most = max(self.most, len(self.out))
        return self.next

    def release(self, lease):
        self.out.remove(lease)  # releasing a lease twice would raise here


def _request(number: str) -> CallRequest:
    return CallRequest(to_number=number, from_number="+16025550100", provider_agent_id="a",
                       attempt_key=number, dynamic_variables={}, metadata={})


def test_each_placed_call_holds_a_slot_until_it_ends():
    provider, limit = FakeProvider(), FakeLimit()
    slots = CallSlots(provider, limit.acquire, limit.release)
    first = slots.place_call(_request("+1"), OPEN)
    slots.place_call(_request("+2"), OPEN)
    assert len(limit.out) == 2  # both calls are in progress
    provider.status[first] = CallStatus.ended
    assert slots.active_calls(OPEN) == 1  # the dialing loop asks this before each call
    assert len(limit.out) == 1 and first not in slots.held


def test_a_refused_call_gives_its_slot_back_and_the_refusal_propagates():
    provider, limit = FakeProvider(refuse={"+9"}), FakeLimit()
    slots = CallSlots(provider, limit.acquire, limit.release)
    with pytest.raises(ConcurrencyLimitReached):
        slots.place_call(_request("+9"), OPEN)
    assert limit.out == set() and slots.acquired == slots.released == 1


def test_a_call_whose_placing_outcome_is_unknown_keeps_its_slot_until_the_lease_expires():
    # it may be ringing: giving the slot back would let the cluster place one call over the global limit
    from tasks.telephony.base import OutcomeUnknown

    class Unanswered(FakeProvider):
        def place_call(self, request, now):
            raise OutcomeUnknown("read timeout on create-phone-call")

    limit = FakeLimit()
    slots = CallSlots(Unanswered(), limit.acquire, limit.release)
    with pytest.raises(OutcomeUnknown):
        slots.place_call(_request("+1"), OPEN)
    assert len(limit.out) == 1 and (slots.released, slots.left_to_expire, slots.held) == (0, 1, {})


def test_the_slot_of_a_call_longer_than_its_lease_is_renewed_while_it_lasts():
    # a lease of 20 min against a 35-minute conversation: without renewal the slot expires mid-call
    provider, limit, renewed = FakeProvider(), FakeLimit(), []
    slots = CallSlots(provider, limit.acquire, limit.release, renew=renewed.append, renew_seconds=0.0)
    long_call = slots.place_call(_request("+1"), OPEN)
    short_call = slots.place_call(_request("+2"), OPEN)
    provider.status[short_call] = CallStatus.ended
    renewed.clear()
    slots.active_calls(OPEN)  # the dialing loop, between calls: ended slots back, the others renewed
    assert renewed == [slots.held[long_call]]
    assert short_call not in slots.held and len(limit.out) == 1
    # not before `renew_seconds` have passed since the last renewal
    slots.renew_seconds = 3600.0
    renewed.clear()
    slots.active_calls(OPEN)
    assert renewed == []


def test_batch_placement_is_hidden_and_other_attributes_pass_through():
    slots = CallSlots(FakeProvider(), FakeLimit().acquire, FakeLimit().release)
    assert not hasattr(slots, "place_calls")  # dial_batch then places one by one through place_call
    assert slots.name == "fake" and slots.concurrency_limit == 20


def test_drain_waits_for_calls_to_end_and_stops_at_its_bound():
    provider, limit = FakeProvider(), FakeLimit()
    slots = CallSlots(provider, limit.acquire, limit.release)
    ids = [slots.place_call(_request(f"+{n}"), OPEN) for n in range(3)]
    provider.status[ids[0]] = CallStatus.not_connected
    clock = VirtualClock(OPEN)
    assert slots.drain(clock, max_wait_seconds=30, poll_seconds=10) == 2  # two never end: left to expire
    assert clock.now() == OPEN + timedelta(seconds=30)
    for call_id in ids[1:]:
        provider.status[call_id] = CallStatus.ended
    assert slots.drain(clock, max_wait_seconds=30) == 0 and limit.out == set()


def test_waiting_for_a_slot_gives_back_this_workers_ended_calls_first():
    # the limit is full of this worker's own calls: one ends, so its slot serves the next call
    provider, limit = FakeProvider(), FakeLimit(limit=2)
    slots = CallSlots(provider, limit.acquire, limit.release, wait_seconds=60)
    first = slots.place_call(_request("+1"), OPEN)
    slots.place_call(_request("+2"), OPEN)
    ended_on_first_wait = {"done": False}
    real_acquire = limit.acquire

    def acquire_then_end_one(n):
        try:
            return real_acquire(n)
        except TimeoutError:
            provider.status[first] = CallStatus.ended  # meanwhile the first call hangs up
            ended_on_first_wait["done"] = True
            raise

    slots._acquire = acquire_then_end_one
    slots.place_call(_request("+3"), OPEN)
    assert ended_on_first_wait["done"] and slots.waits == 1
    assert len(limit.out) == 2 and limit.most == 2


def test_no_slot_within_the_wait_is_the_providers_concurrency_refusal():
    provider, limit = FakeProvider(), FakeLimit(limit=0)  # other workers hold every slot
    slots = CallSlots(provider, limit.acquire, limit.release, wait_seconds=0)
    with pytest.raises(ConcurrencyLimitReached, match="global call limit"):
        slots.place_call(_request("+1"), OPEN)
    assert provider.status == {}  # nothing was dialled


def test_a_call_is_stamped_when_its_slot_was_granted():
    class Recording(FakeProvider):
        def place_call(self, request, now):
            self.stamped = now
            return super().place_call(request, now)

    provider, limit = Recording(), FakeLimit()
    clock = VirtualClock(OPEN + timedelta(seconds=40))  # the wait for the slot took 40 s
    CallSlots(provider, limit.acquire, limit.release, clock=clock).place_call(_request("+1"), OPEN)
    assert provider.stamped == OPEN + timedelta(seconds=40)


def test_no_call_starts_after_the_deadline_the_dialer_set_while_waiting_for_a_slot():
    from tasks.telephony.base import placing_deadline

    provider, limit = FakeProvider(), FakeLimit(limit=0)  # every slot held by other workers
    clock = VirtualClock(OPEN)
    slots = CallSlots(provider, limit.acquire, limit.release, clock=clock, wait_seconds=600)
    real_acquire = limit.acquire

    def acquire_as_time_passes(n):
        clock.sleep(20)  # a slot frees only a minute later, after the deadline
        if clock.now() >= OPEN + timedelta(minutes=1):
            limit.limit = 1
        return real_acquire(n)

    slots._acquire = acquire_as_time_passes
    with placing_deadline(OPEN + timedelta(seconds=30)), pytest.raises(ConcurrencyLimitReached, match="before"):
        slots.place_call(_request("+1"), OPEN)
    assert provider.status == {} and limit.out == set()  # nothing dialled, no slot kept
    # granted exactly at the deadline: given back, not used
    limit.limit, clock = 1, VirtualClock(OPEN)
    slots = CallSlots(provider, limit.acquire, limit.release, clock=clock)
    slots._acquire = lambda n: (clock.sleep(30), real_acquire(n))[1]
    with placing_deadline(OPEN + timedelta(seconds=30)), pytest.raises(ConcurrencyLimitReached, match="came after"):
        slots.place_call(_request("+2"), OPEN)
    assert provider.status == {} and limit.out == set()
    # without a deadline (or before it) the call is placed as before
    assert slots.place_call(_request("+3"), OPEN) in provider.status
