"""Provider faults end to end: the dialer and enrichment with the Retell adapter against FakeRetell.

The adapter's own retry rules are tested in tests/tasks/telephony/test_retell.py and webhook order
and repeats in tests/tasks/test_webhooks.py; here a whole batch meets 429s, 500s, timeouts,
connection resets and malformed JSON, and afterwards no contact was dialed twice, every call the
provider placed has exactly one row, and the contacts refused or left unplaced are dialed later.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from schemas.enums import CallStatus
from tasks.clock import VirtualClock
from tasks.dialing import run_manual
from tasks.settings import reset_settings
from tasks.store import connect, transaction
from tasks.telephony.retell import RetellProvider, sign_retell_payload
from tasks.webhooks import apply_event, parse_event
from tests.factories import add_contacts
from tests.invariants import check_invariants
from tests.tasks.telephony.retell_server import FakeRetell

KEY = "sk-faults-KEY-0042"
NOW = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # Tuesday 10:00 in Phoenix
CREATE = "/v2/create-phone-call"
GET = "/v2/get-call/"


class ResettingRetell(FakeRetell):
    """FakeRetell that can also drop the connection (TCP reset) instead of answering."""

    def __init__(self, api_key: str):
        super().__init__(api_key)
        self.resets: dict[str, int] = {}

    def reset(self, path_prefix: str, times: int = 1) -> None:
        self.resets[path_prefix] = self.resets.get(path_prefix, 0) + times

    def _handle(self, handler, method):
        prefix = next((p for p, n in self.resets.items() if n > 0 and handler.path.startswith(p)), None)
        if prefix is None:
            return super()._handle(handler, method)
        self.resets[prefix] -= 1
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        # SO_LINGER 0: close() sends RST, the client sees "connection reset by peer"
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True


class SteppingClock(VirtualClock):
    """A real-time-style clock (one call at a time, capacity checks) whose sleeps cost nothing."""

    virtual = False


@pytest.fixture
def server():
    with ResettingRetell(api_key=KEY) as fake:
        fake.clock_ms = int(NOW.timestamp() * 1000)
        yield fake


@pytest.fixture
def provider(server):
    client = RetellProvider(server.url, KEY, max_tries=2, backoff_seconds=0, read_timeout=0.3, sleep=lambda s: None)
    yield client
    client.close()


@pytest.fixture
def enrolled(campaign_db, monkeypatch):
    monkeypatch.setenv("CAMPAIGNS_RECONCILE_GRACE_SECONDS", "0")
    reset_settings()
    add_contacts(campaign_db["db"], campaign_db["campaign_id"], 4)
    return campaign_db


def inject(server: ResettingRetell, fault: str) -> None:
    """The first create-phone-call of the batch meets `fault` (on every try when it is retried)."""
    if fault == "429":
        server.fail(429, times=2, path_prefix=CREATE)
    elif fault == "500":
        server.fail(500, path_prefix=CREATE)
    elif fault == "reset":
        server.reset(CREATE)
    elif fault == "malformed":
        server.malformed(path_prefix=CREATE)
    elif fault == "timeout_processed":
        server.hang(0.6, path_prefix=CREATE, then_process=True)


def provider_ledger(server: FakeRetell) -> list[tuple[str, str, str]]:
    """(call id, attempt key, to number) of every call the provider placed."""
    return [(c["call_id"], c["metadata"].get("attempt_key"), c["to_number"]) for c in server.calls.values()]


def assert_nothing_lost_nothing_twice(db, server: FakeRetell) -> None:
    ledger = provider_ledger(server)
    assert Counter(to for _, _, to in ledger).most_common(1)[0][1] == 1, "a contact was dialed twice"
    with connect(db) as conn:
        rows = dict(conn.execute(
            "select provider_call_id, attempt_key from calls where provider_call_id is not null").fetchall())
    assert rows == {call_id: key for call_id, key, _ in ledger}, "placed calls and rows differ"
    check_invariants(db)


@pytest.mark.parametrize("clock_kind", [VirtualClock, SteppingClock])
@pytest.mark.parametrize(
    "fault, first_status",
    [
        ("429", CallStatus.failed_rate_limit),  # retried, then refused: not an attempt
        ("500", CallStatus.created),  # may have dialed: not retried, kept for reconciliation
        ("reset", CallStatus.created),
        ("malformed", CallStatus.created),
        ("timeout_processed", CallStatus.created),  # it did dial: reconciliation must find it
    ],
)
def test_a_batch_meeting_a_provider_fault_loses_nothing_and_dials_nobody_twice(
    enrolled, server, provider, fault, first_status, clock_kind
):
    db, campaign_id = enrolled["db"], enrolled["campaign_id"]
    inject(server, fault)
    first = run_manual(db, provider, campaign_id, clock_kind(NOW), pace_seconds=0)
    with connect(db) as conn:
        statuses = [r[0] for r in conn.execute("select status from calls order by call_id").fetchall()]
    assert statuses[0] == first_status
    if fault == "429":
        assert (first.refused, first.placed) == (1, 3)  # the other calls of the batch went out
    else:
        assert first.placed == 0  # the provider looks down: the rest of the batch waits
    if fault == "timeout_processed":
        deadline = time.monotonic() + 5
        while not server.calls and time.monotonic() < deadline:
            time.sleep(0.05)  # the fake finishes creating the call after the client gave up
    # the next run reconciles first, then dials whoever is still owed a call
    later = NOW + timedelta(hours=1)
    run_manual(db, provider, campaign_id, clock_kind(later), pace_seconds=0)
    assert_nothing_lost_nothing_twice(db, server)
    dialed = {to for _, _, to in provider_ledger(server)}
    assert len(dialed) == 4  # every contact was eventually dialed, exactly once
    with connect(db) as conn:
        not_attempts = conn.execute("select count(*) from calls where not counts_as_attempt").fetchone()[0]
        attempts = conn.execute("select sum(attempts) from campaign_contacts").fetchone()[0]
    assert attempts == 4  # refusals and unplaced rows never counted as attempts
    # the faulted call (unless it did dial) and the rest of the batch were closed as not attempts
    assert not_attempts == {"429": 1, "timeout_processed": 3}.get(fault, 4)


def test_provider_down_for_the_whole_run_leaves_everyone_for_later(enrolled, server, provider):
    db, campaign_id = enrolled["db"], enrolled["campaign_id"]
    server.fail(503, times=100, path_prefix=CREATE)  # never processed: safe to retry, then gives up
    result = run_manual(db, provider, campaign_id, VirtualClock(NOW), pace_seconds=0)
    assert (result.placed, len(server.calls)) == (0, 0)
    with connect(db) as conn:
        in_flight = conn.execute("select count(*) from campaign_contacts where in_flight_call_id is not null").fetchone()[0]
        state = conn.execute("select state from dial_runs").fetchone()[0]
    assert (in_flight, state) == (0, "failed")
    server.faults.clear()
    run_manual(db, provider, campaign_id, VirtualClock(NOW + timedelta(hours=1)), pace_seconds=0)
    assert_nothing_lost_nothing_twice(db, server)
    assert len(server.calls) == 4


@pytest.mark.parametrize("fault", ["timeout", "500", "reset", "malformed"])
def test_enrichment_retries_reads_and_a_failed_pass_loses_nothing(enrolled, server, provider, fault):
    from flows.enrich_calls import run_enrichment

    db, campaign_id = enrolled["db"], enrolled["campaign_id"]
    run_manual(db, provider, campaign_id, VirtualClock(NOW), pace_seconds=0)
    for call_id in list(server.calls):
        server.update_call(call_id, call_status="not_connected", disconnection_reason="dial_no_answer",
                           start_timestamp=server.clock_ms, end_timestamp=server.clock_ms + 20_000)

    def break_reads(times: int, path: str = GET) -> None:
        for _ in range(times):
            if fault == "timeout":
                server.hang(0.6, path_prefix=path)
            elif fault == "500":
                server.fail(500, path_prefix=path)
            elif fault == "reset":
                server.reset(path)
            else:
                server.malformed(path_prefix=path)

    at = NOW + timedelta(minutes=5)
    break_reads(1)  # one fault, then the retry succeeds
    assert run_enrichment(db, provider, at)["changed"] == 4
    # every try of one read fails: that call stays pending (not lost, not marked) until the next pass
    with transaction(db) as conn:
        conn.execute("update calls set status = 'registered', ended_at = null, disconnect_reason = null")
    # both tries of that call's read (Retell is read call by call: tasks/enrichment, `reads_one_by_one`)
    break_reads(2, GET + next(iter(server.calls)))
    second = run_enrichment(db, provider, at)
    assert (second["provider_errors"], second["changed"]) == (1, 3)
    third = run_enrichment(db, provider, at)
    assert third["changed"] == 1
    with connect(db) as conn:
        assert conn.execute("select count(*) from calls where status = 'not_connected'").fetchone()[0] == 4


def test_a_webhook_arriving_after_the_call_was_given_up_replaces_the_synthetic_outcome(enrolled, server, provider):
    """Late delivery: enrichment closed the call as stuck; the real outcome still lands once."""
    from flows.enrich_calls import run_enrichment

    db, campaign_id = enrolled["db"], enrolled["campaign_id"]
    run_manual(db, provider, campaign_id, VirtualClock(NOW), pace_seconds=0)
    call_id = next(iter(server.calls))
    server.calls.clear()  # the provider forgets them: polling cannot learn the outcome
    run_enrichment(db, provider, NOW + timedelta(hours=2))
    with connect(db) as conn:
        assert conn.execute("select status from calls where provider_call_id = ?", [call_id]).fetchone()[0] == "error"
    late = NOW + timedelta(hours=3)
    event = {"event": "call_analyzed", "call": {
        "call_id": call_id, "call_status": "ended", "disconnection_reason": "user_hangup",
        "start_timestamp": int(NOW.timestamp() * 1000), "end_timestamp": int(NOW.timestamp() * 1000) + 60_000,
        "duration_ms": 60_000, "metadata": {},
        "call_analysis": {"call_successful": True, "call_summary": "Booked", "user_sentiment": "Positive"}}}
    body = json.dumps(event).encode()
    for _ in range(2):  # delivered twice: the second changes nothing
        parsed = parse_event(body, sign_retell_payload(body, KEY, late), KEY, late)
        with transaction(db) as conn:
            apply_event(conn, parsed, late)
    with connect(db) as conn:
        row = conn.execute("select status, call_successful, counts_as_attempt from calls where provider_call_id = ?",
                           [call_id]).fetchone()
        finished = conn.execute(
            "select finished_at is not null from campaign_contacts cc join calls c using (campaign_id, contact_id)"
            " where c.provider_call_id = ?", [call_id]).fetchone()[0]
    assert row == ("ended", True, True)
    assert finished  # a late success still finishes the contact
    check_invariants(db)
