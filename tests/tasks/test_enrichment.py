"""Enrichment by polling: pending calls, provider answers (simulator and Retell), stuck calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas.enums import CallStatus, DisconnectReason
from tasks.credits import call_credits
from tasks.enrichment import MAX_CALL_MINUTES, apply_plan, collect_updates, pending_calls
from tasks.store import connect, migrations, transaction
from tasks.telephony.base import CallNotFound, CallRequest, ProviderCall, ProviderUnavailable
from tasks.telephony.retell import RetellProvider
from tasks.telephony.simulator import SimulatedProvider
from tests.tasks.seeding import call_row, enrollment_row, seed_call
from tests.tasks.telephony.retell_server import FakeRetell

QUEUED = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # Tuesday 10:00 in Phoenix
STUCK_MINUTES = 30.0


def enrich(db, provider, now, stuck_minutes: float = STUCK_MINUTES):
    """One pass the way the flow does it: read, close, ask, write in one transaction."""
    with connect(db) as conn:
        pending = pending_calls(conn, now, stuck_minutes)
    plan = collect_updates(provider, pending, now, stuck_minutes)
    with transaction(db) as conn:
        apply_plan(conn, plan, now)
    return plan


class FakeProvider:
    """A provider whose answers the test sets per call id (a value, or an error to raise)."""

    name = "fake"
    concurrency_limit = 20

    def __init__(self, answers: dict):
        self.answers = answers
        self.asked: list[str] = []

    def get_call(self, provider_call_id, now):
        self.asked.append(provider_call_id)
        answer = self.answers.get(provider_call_id, CallNotFound(provider_call_id))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def find_by_attempt_key(self, attempt_key, now, *, to_number=None, placed_after=None):
        return None

    def list_calls(self, since, now):
        return []

    def place_call(self, request, now):
        raise NotImplementedError

    def active_calls(self, now):
        return 0


# -- which calls are pending -------------------------------------------------------------------

def test_pending_calls_are_in_flight_or_awaiting_analysis(campaign_db):
    cid = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        ids = {
            status: seed_call(conn, cid, f"+1602555{n:04d}", QUEUED, status=status, provider_call_id=f"pc_{n}")
            for n, status in enumerate(["queued", "created", "registered", "in_progress", "ended", "not_connected"])
        }
        analysed_ended = seed_call(conn, cid, "+16025559999", QUEUED, status="ended", provider_call_id="pc_x")
        conn.execute("update calls set analyzed_at = ? where call_id = ?", [QUEUED, analysed_ended])
        pending = pending_calls(conn, QUEUED + timedelta(minutes=31), STUCK_MINUTES)
    # queued/created belong to the dialer's crash reconciliation; final+analysed calls are done
    assert pending["call_id"].to_list() == [ids["registered"], ids["in_progress"], ids["ended"]]
    assert pending["stuck"].to_list() == [True, True, True]
    with connect(campaign_db["db"]) as conn:
        assert pending_calls(conn, QUEUED + timedelta(minutes=29), STUCK_MINUTES)["stuck"].to_list() == [False] * 3


def test_pending_calls_follow_the_rule_for_every_status_and_analysis_time(campaign_db):
    # Every status with and without an analysis time, written by hand in an order that puts pending
    # calls below, between and above settled ones: an old call made pending again (a late real outcome
    # replacing a synthetic `error`) must be read like any other, so no shortcut by call id may hold.
    # An unfinished call never carries an analysis time (stamped with the final record; migration 008
    # cleared older ones): the rule's `analyzed_at is null` test relies on it.
    cid = campaign_db["campaign_id"]
    statuses = ["ended", "not_connected", "registered", "error", "in_progress", "queued", "failed_rate_limit",
                "created"]
    unfinished = {"registered", "in_progress", "queued", "created"}
    expected = []
    with transaction(campaign_db["db"]) as conn:
        for n, (analysed, status) in enumerate((a, s) for a in (False, True) for s in statuses):
            if analysed and status in unfinished:
                continue
            call_id = seed_call(conn, cid, f"+1602556{n:04d}", QUEUED, status=status, provider_call_id=f"pc_{n}")
            if analysed:
                conn.execute("update calls set analyzed_at = ? where call_id = ?", [QUEUED, call_id])
            if status in ("registered", "in_progress") or (status == "ended" and not analysed):
                expected.append(call_id)
        pending = pending_calls(conn, QUEUED, STUCK_MINUTES)
    assert pending["call_id"].to_list() == expected
    assert pending["stuck"].to_list() == [False] * len(expected)


def test_migration_008_clears_analysis_times_of_unfinished_calls(campaign_db):
    # stamps the earlier code wrote on calls still in flight: cleared, so those calls read as pending
    cid = campaign_db["campaign_id"]
    sql = next(text for version, _name, text in migrations() if version == 8)
    with transaction(campaign_db["db"]) as conn:
        ids = {status: seed_call(conn, cid, f"+1602557{n:04d}", QUEUED, status=status, provider_call_id=f"pc_{n}")
               for n, status in enumerate(["registered", "in_progress", "ended", "not_connected"])}
        conn.execute("update calls set analyzed_at = ?", [QUEUED])
        assert pending_calls(conn, QUEUED, STUCK_MINUTES).height == 0
        conn.execute(sql)
        assert pending_calls(conn, QUEUED, STUCK_MINUTES)["call_id"].to_list() == [ids["registered"], ids["in_progress"]]
        assert conn.execute("select count(*) from calls where analyzed_at is not null").fetchone()[0] == 2


# -- the simulator -------------------------------------------------------------------------------

@pytest.fixture
def simulator(tmp_path):
    provider = SimulatedProvider(tmp_path / "sim.sqlite", seed=7, concurrency_limit=100)
    yield provider
    provider.close()


def place(conn, provider, campaign_id, count, now):
    """Dial ``count`` contacts through the simulator and seed their call rows as the dialer would."""
    call_ids = []
    for n in range(count):
        phone = f"+1602555{n:04d}"
        call_id = seed_call(conn, campaign_id, phone, now, provider_call_id=None)
        key = conn.execute("select attempt_key from calls where call_id = ?", [call_id]).fetchone()[0]
        provider_call_id = provider.place_call(
            CallRequest(phone, "+16025550100", "agent_sim_1", key, {"contact_name": "Test Person"}), now
        )
        conn.execute("update calls set provider_call_id = ? where call_id = ?", [provider_call_id, call_id])
        call_ids.append(call_id)
    return call_ids


def test_simulator_calls_are_enriched_once_they_end_and_are_analysed(campaign_db, simulator):
    with transaction(campaign_db["db"]) as conn:
        call_ids = place(conn, simulator, campaign_db["campaign_id"], 40, QUEUED)

    # one second after dialing nothing has ended: every call stays pending and no contact is released
    early = enrich(campaign_db["db"], simulator, QUEUED + timedelta(seconds=1))
    assert (early.asked, early.stuck_errors, early.unknown) == (40, 0, 0)
    with connect(campaign_db["db"]) as conn:
        assert conn.execute("select count(*) from campaign_contacts where in_flight_call_id is null").fetchone()[0] == 0

    # twenty minutes later every call has ended and been analysed (under the stuck limit)
    later = QUEUED + timedelta(minutes=20)
    plan = enrich(campaign_db["db"], simulator, later)
    assert (plan.asked, plan.stuck_errors, plan.analysis_missing) == (40, 0, 0)
    with connect(campaign_db["db"]) as conn:
        rows = [call_row(conn, i) for i in call_ids]
        assert conn.execute("select count(*) from campaign_contacts where in_flight_call_id is not null").fetchone()[0] == 0
        assert pending_calls(conn, later, STUCK_MINUTES).height == 0
    truth = simulator.get_calls([r["provider_call_id"] for r in rows], later)
    for row, expected in zip(rows, truth):
        assert row["status"] == expected.status.value
        assert row["disconnect_reason"] == expected.disconnect_reason.value
        assert row["duration_seconds"] == expected.duration_seconds
        assert row["call_successful"] == expected.call_successful
        assert row["in_voicemail"] == expected.in_voicemail
        assert row["summary"] == expected.summary
        assert row["transcript"] == expected.transcript
        assert row["analyzed_at"] == later
        assert row["credits"] == call_credits(
            expected.status, expected.disconnect_reason, expected.duration_seconds, expected.in_voicemail)
    # the sample holds both answered and unanswered calls, so both branches were exercised
    assert {r["status"] for r in rows} >= {"ended", "not_connected"}


def test_a_second_pass_changes_nothing(campaign_db, simulator):
    with transaction(campaign_db["db"]) as conn:
        call_ids = place(conn, simulator, campaign_db["campaign_id"], 10, QUEUED)
    enrich(campaign_db["db"], simulator, QUEUED + timedelta(minutes=20))
    with connect(campaign_db["db"]) as conn:
        before = [call_row(conn, i) for i in call_ids]
    assert enrich(campaign_db["db"], simulator, QUEUED + timedelta(minutes=25)).asked == 0
    with connect(campaign_db["db"]) as conn:
        assert [call_row(conn, i) for i in call_ids] == before


# -- Retell (the real adapter against the local fake Retell server) ----------------------------

@pytest.fixture
def fake_retell():
    with FakeRetell(api_key="key_test") as server:
        yield server


def retell_provider(server: FakeRetell) -> RetellProvider:
    return RetellProvider(server.url, "key_test", max_tries=2, backoff_seconds=0)


def test_retell_calls_are_enriched_from_get_call(campaign_db, fake_retell):
    start_ms = int(QUEUED.timestamp() * 1000) + 5000
    a = fake_retell.add_call(
        call_status="ended", start_timestamp=start_ms, end_timestamp=start_ms + 61_000, duration_ms=61_000,
        disconnection_reason="agent_hangup", transcript="Agent: Hello", recording_url="https://r/a.wav",
        call_cost={"combined_cost": 12.5},
        transcript_with_tool_calls=[{"role": "tool_call_invocation"}, {"role": "agent"}],
        call_analysis={"call_successful": True, "call_summary": "Booked a demo", "user_sentiment": "Positive",
                       "in_voicemail": False, "custom_analysis_data": {"demo_day": "Friday"}},
    )
    b = fake_retell.add_call(
        call_status="ended", start_timestamp=start_ms, end_timestamp=start_ms + 20_000, duration_ms=20_000,
        disconnection_reason="voicemail_reached",
        call_analysis={"call_successful": False, "in_voicemail": True, "user_sentiment": "Unknown"},
    )
    c = fake_retell.add_call(call_status="not_connected", disconnection_reason="dial_busy")
    d = fake_retell.add_call(call_status="ongoing", start_timestamp=start_ms)
    with transaction(campaign_db["db"]) as conn:
        ids = [seed_call(conn, campaign_db["campaign_id"], f"+160255510{n:02d}", QUEUED, provider="retell",
                         provider_call_id=call["call_id"]) for n, call in enumerate((a, b, c, d))]
    plan = enrich(campaign_db["db"], retell_provider(fake_retell), QUEUED + timedelta(minutes=3))
    assert (plan.asked, plan.unknown, plan.provider_errors) == (4, 0, 0)
    assert fake_retell.count("GET", "/v2/get-call/") == 4
    with connect(campaign_db["db"]) as conn:
        answered, voicemail, busy, ongoing = (call_row(conn, i) for i in ids)
        in_flight = [enrollment_row(conn, i)["in_flight_call_id"] for i in ids]
    assert (answered["status"], answered["duration_seconds"], answered["credits"], answered["call_successful"]) == (
        "ended", 61.0, 666, True)  # 1:01 bills two started minutes
    assert (answered["summary"], answered["tools_count"], answered["cost_cents"]) == ("Booked a demo", 1, 12.5)
    assert json.loads(answered["custom_analysis"]) == {"demo_day": "Friday"}
    assert (voicemail["status"], voicemail["in_voicemail"], voicemail["credits"]) == ("ended", True, 75)
    assert (busy["status"], busy["disconnect_reason"], busy["credits"]) == ("not_connected", "dial_busy", 0)
    assert (ongoing["status"], ongoing["started_at"], ongoing["credits"]) == (
        "in_progress", QUEUED + timedelta(seconds=5), None)
    assert in_flight == [None, None, None, ids[3]]


def test_retell_failures_leave_young_calls_for_the_next_pass(campaign_db, fake_retell):
    known = fake_retell.add_call(call_status="not_connected", disconnection_reason="dial_no_answer")
    with transaction(campaign_db["db"]) as conn:
        gone = seed_call(conn, campaign_db["campaign_id"], "+16025551001", QUEUED, provider="retell",
                         provider_call_id="call_gone")
        kept = seed_call(conn, campaign_db["campaign_id"], "+16025551002", QUEUED, provider="retell",
                         provider_call_id=known["call_id"])
    fake_retell.fail(503, times=2, path_prefix=f"/v2/get-call/{known['call_id']}")  # every try of this call
    plan = enrich(campaign_db["db"], retell_provider(fake_retell), QUEUED + timedelta(minutes=3))
    assert (plan.unknown, plan.provider_errors, plan.updates.height) == (1, 1, 0)
    # next minute Retell answers again: the call gets its outcome
    plan = enrich(campaign_db["db"], retell_provider(fake_retell), QUEUED + timedelta(minutes=4))
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, kept)["status"] == "not_connected"
        assert call_row(conn, gone)["status"] == "registered"


# -- stuck calls ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (CallNotFound("no such call"), "provider does not know this call"),
        (ProviderUnavailable("HTTP 503"), "provider unreachable: HTTP 503"),
    ],
)
def test_a_call_stuck_past_the_limit_is_marked_error_unknown(campaign_db, answer, why):
    with transaction(campaign_db["db"]) as conn:
        call_id = seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, provider_call_id="pc_1")
    now = QUEUED + timedelta(minutes=31)
    plan = enrich(campaign_db["db"], FakeProvider({"pc_1": answer}), now)
    assert plan.stuck_errors == 1
    with connect(campaign_db["db"]) as conn:
        row, enrollment = call_row(conn, call_id), enrollment_row(conn, call_id)
    assert (row["status"], row["disconnect_reason"], row["ended_at"], row["credits"]) == (
        "error", "error_unknown", now, 0)
    assert row["error_message"] == f"stuck in flight for more than 30 minutes; {why}"
    assert enrollment["in_flight_call_id"] is None  # the contact can be dialled again


@pytest.mark.parametrize("status", [CallStatus.in_progress, CallStatus.registered])
def test_a_call_the_provider_still_reports_in_flight_is_believed_until_the_longest_call(campaign_db, status):
    # a 35-minute conversation: releasing the contact at 30 minutes would let the next tick dial them again
    with transaction(campaign_db["db"]) as conn:
        call_id = seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, provider_call_id="pc_1")
    provider = FakeProvider({"pc_1": ProviderCall("pc_1", status)})
    plan = enrich(campaign_db["db"], provider, QUEUED + timedelta(minutes=35))
    assert plan.stuck_errors == 0
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, call_id)["status"] == status.value
        assert enrollment_row(conn, call_id)["in_flight_call_id"] == call_id  # still not callable
    later = QUEUED + timedelta(minutes=MAX_CALL_MINUTES + 1)
    assert enrich(campaign_db["db"], provider, later).stuck_errors == 1
    with connect(campaign_db["db"]) as conn:
        row = call_row(conn, call_id)
        assert enrollment_row(conn, call_id)["in_flight_call_id"] is None
    assert (row["status"], row["disconnect_reason"]) == ("error", "error_unknown")
    assert row["error_message"] == f"stuck in flight for more than 120 minutes; provider still reports {status.value}"


def test_a_stuck_call_the_provider_has_finished_gets_the_real_outcome(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        call_id = seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, provider_call_id="pc_1")
    answer = ProviderCall("pc_1", CallStatus.not_connected, disconnect_reason=DisconnectReason.dial_no_answer)
    plan = enrich(campaign_db["db"], FakeProvider({"pc_1": answer}), QUEUED + timedelta(hours=2))
    assert plan.stuck_errors == 0
    with connect(campaign_db["db"]) as conn:
        row = call_row(conn, call_id)
    assert (row["status"], row["disconnect_reason"], row["error_message"]) == ("not_connected", "dial_no_answer", None)


def test_a_young_call_the_provider_cannot_answer_is_left_for_the_next_pass(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        call_id = seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, provider_call_id="pc_1")
    plan = enrich(campaign_db["db"], FakeProvider({"pc_1": ProviderUnavailable("down")}), QUEUED + timedelta(minutes=5))
    assert (plan.provider_errors, plan.stuck_errors, plan.updates.height) == (1, 0, 0)
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, call_id)["status"] == "registered"
        assert enrollment_row(conn, call_id)["in_flight_call_id"] == call_id


@pytest.mark.parametrize("provider_knows_it", [True, False])
def test_an_ended_call_whose_analysis_never_came_is_released_as_is(campaign_db, provider_knows_it):
    with transaction(campaign_db["db"]) as conn:
        call_id = seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, provider_call_id="pc_1")
    ended = ProviderCall("pc_1", CallStatus.ended, disconnect_reason=DisconnectReason.user_hangup,
                         duration_seconds=42.0)
    provider = FakeProvider({"pc_1": ended})
    enrich(campaign_db["db"], provider, QUEUED + timedelta(minutes=2))
    with connect(campaign_db["db"]) as conn:
        assert enrollment_row(conn, call_id)["in_flight_call_id"] == call_id  # waiting for the verdict
    if not provider_knows_it:
        provider.answers.clear()
    now = QUEUED + timedelta(minutes=31)
    plan = enrich(campaign_db["db"], provider, now)
    assert (plan.analysis_missing, plan.stuck_errors) == (1, 0)
    with connect(campaign_db["db"]) as conn:
        row, enrollment = call_row(conn, call_id), enrollment_row(conn, call_id)
    assert (row["status"], row["disconnect_reason"], row["credits"], row["call_successful"]) == (
        "ended", "user_hangup", 333, None)
    assert row["analyzed_at"] == now  # analysis given up on: stored as done, with no verdict
    assert row["error_message"] == "analysis not received within 30 minutes of queueing"
    assert enrollment["in_flight_call_id"] is None


def test_the_provider_is_asked_once_per_pending_call(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        for n in range(3):
            seed_call(conn, campaign_db["campaign_id"], f"+1602555100{n}", QUEUED, provider_call_id=f"pc_{n}")
    provider = FakeProvider({f"pc_{n}": ProviderCall(f"pc_{n}", CallStatus.registered) for n in range(3)})
    enrich(campaign_db["db"], provider, QUEUED + timedelta(minutes=1))
    assert sorted(provider.asked) == ["pc_0", "pc_1", "pc_2"]


def test_a_call_without_a_stored_provider_id_is_found_by_attempt_key(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        found = seed_call(conn, campaign_db["campaign_id"], "+16025551001", QUEUED, attempt_key="1.1.1")
        lost = seed_call(conn, campaign_db["campaign_id"], "+16025551002", QUEUED, attempt_key="1.2.1")
    provider, floors = FakeProvider({}), []

    def find_by_attempt_key(key, now, *, to_number=None, placed_after=None):
        floors.append(placed_after)  # our row's queue time: an older call with a reused key is not ours
        return (ProviderCall("pc_found", CallStatus.not_connected, disconnect_reason=DisconnectReason.dial_busy)
                if key == "1.1.1" else None)

    provider.find_by_attempt_key = find_by_attempt_key
    plan = enrich(campaign_db["db"], provider, QUEUED + timedelta(minutes=31))
    assert (plan.unknown, plan.stuck_errors) == (1, 1)
    with connect(campaign_db["db"]) as conn:
        found_row, lost_row = call_row(conn, found), call_row(conn, lost)
    assert (found_row["status"], found_row["provider_call_id"]) == ("not_connected", "pc_found")
    # the synthetic error must not invent a provider id
    assert (lost_row["status"], lost_row["provider_call_id"]) == ("error", None)
    assert floors == [QUEUED, QUEUED]


# -- a provider that is down ---------------------------------------------------------------------

def test_once_the_provider_is_down_the_rest_of_the_pass_is_not_asked(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        stuck = seed_call(conn, campaign_db["campaign_id"], "+16025551000", QUEUED, provider_call_id="pc_0")
        young = [seed_call(conn, campaign_db["campaign_id"], f"+1602555100{n}", QUEUED + timedelta(minutes=20),
                           provider_call_id=f"pc_{n}") for n in range(1, 5)]
    provider = FakeProvider({**{f"pc_{n}": ProviderUnavailable("HTTP 503 after 4 tries") for n in range(3)},
                             **{f"pc_{n}": ProviderCall(f"pc_{n}", CallStatus.in_progress) for n in range(3, 5)}})
    now = QUEUED + timedelta(minutes=31)
    plan = enrich(campaign_db["db"], provider, now)
    # each read of a down provider spends its own retries and timeouts: three failures in a row stop the pass
    assert provider.asked == ["pc_0", "pc_1", "pc_2"]
    assert (plan.asked, plan.provider_errors, plan.stuck_errors) == (5, 5, 1)
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, stuck)["error_message"] == (
            "stuck in flight for more than 30 minutes; provider unreachable: HTTP 503 after 4 tries")
        # the young calls are asked again next pass
        assert [call_row(conn, i)["status"] for i in young] == ["registered"] * 4
    # up again: the next pass asks every call
    provider.asked.clear()
    enrich(campaign_db["db"], provider, now + timedelta(minutes=1))
    assert provider.asked == ["pc_1", "pc_2", "pc_3", "pc_4"]


def test_a_stuck_call_left_unasked_on_an_outage_says_why(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        calls = [seed_call(conn, campaign_db["campaign_id"], f"+1602555100{n}", QUEUED, provider_call_id=f"pc_{n}")
                 for n in range(4)]
    provider = FakeProvider({f"pc_{n}": ProviderUnavailable("HTTP 503") for n in range(4)})
    plan = enrich(campaign_db["db"], provider, QUEUED + timedelta(minutes=31))
    assert (provider.asked, plan.stuck_errors) == (["pc_0", "pc_1", "pc_2"], 4)
    with connect(campaign_db["db"]) as conn:
        rows = [call_row(conn, i) for i in calls]
    assert {row["status"] for row in rows} == {"error"}
    assert rows[2]["error_message"] == "stuck in flight for more than 30 minutes; provider unreachable: HTTP 503"
    assert rows[3]["error_message"] == ("stuck in flight for more than 30 minutes; provider unreachable: "
                                        "not asked: an earlier read of this pass failed (HTTP 503)")


def test_one_call_whose_reads_keep_failing_does_not_starve_the_others(campaign_db):
    # the oldest pending call is read first in every pass: stopping at its failure would never read the rest
    with transaction(campaign_db["db"]) as conn:
        for n in range(4):
            seed_call(conn, campaign_db["campaign_id"], f"+1602555100{n}", QUEUED + timedelta(minutes=n),
                      provider_call_id=f"pc_{n}")
    provider = FakeProvider({"pc_0": ProviderUnavailable("HTTP 503"),
                             **{f"pc_{n}": ProviderCall(f"pc_{n}", CallStatus.in_progress) for n in range(1, 4)}})
    plan = enrich(campaign_db["db"], provider, QUEUED + timedelta(minutes=10))
    assert provider.asked == ["pc_0", "pc_1", "pc_2", "pc_3"]
    assert plan.provider_errors == 1


def test_a_retell_outage_costs_a_few_calls_of_retries_not_one_per_pending_call(campaign_db, fake_retell):
    with transaction(campaign_db["db"]) as conn:
        for n in range(6):
            call = fake_retell.add_call(call_status="ongoing")
            seed_call(conn, campaign_db["campaign_id"], f"+160255510{n:02d}", QUEUED, provider="retell",
                      provider_call_id=call["call_id"])
    fake_retell.fail(503, times=1000)
    plan = enrich(campaign_db["db"], retell_provider(fake_retell), QUEUED + timedelta(minutes=3))
    assert (plan.provider_errors, plan.updates.height) == (6, 0)
    # DOWN_STREAK calls' tries (it could have been those calls only); not two tries for each of the six
    assert fake_retell.count("GET", "/v2/get-call/") == 2 * 3


def test_a_call_retell_does_not_know_costs_no_second_read_of_the_others(campaign_db, fake_retell):
    # Retell has no batch read: a batch of one-call requests stopping at an unknown id was read twice
    with transaction(campaign_db["db"]) as conn:
        for n in range(6):
            provider_call_id = "gone" if n == 2 else fake_retell.add_call(call_status="ongoing")["call_id"]
            seed_call(conn, campaign_db["campaign_id"], f"+160255510{n:02d}", QUEUED, provider="retell",
                      provider_call_id=provider_call_id)
    plan = enrich(campaign_db["db"], retell_provider(fake_retell), QUEUED + timedelta(minutes=3))
    assert (plan.unknown, plan.provider_errors) == (1, 0)
    assert fake_retell.count("GET", "/v2/get-call/") == 6


def test_a_call_deleted_with_its_campaign_during_a_pass_is_left_out_and_the_rest_written(campaign_db):
    # the pass reads its calls, asks the provider (slow), then writes in a new transaction: a campaign
    # deleted in between must not fail the pass for every other campaign's calls
    from tasks.campaigns import delete_campaign, duplicate_campaign

    db, cid = campaign_db["db"], campaign_db["campaign_id"]
    with transaction(db) as conn:
        other = duplicate_campaign(conn, cid, QUEUED)
        kept = seed_call(conn, cid, "+16025550101", QUEUED, provider_call_id="pc_1")
        gone = seed_call(conn, other, "+16025550102", QUEUED, provider_call_id="pc_2")
    no_answer = {f"pc_{n}": ProviderCall(f"pc_{n}", CallStatus.not_connected,
                                         disconnect_reason=DisconnectReason.dial_no_answer) for n in (1, 2)}
    now = QUEUED + timedelta(minutes=2)
    with connect(db) as conn:
        pending = pending_calls(conn, now, STUCK_MINUTES)
    plan = collect_updates(FakeProvider(no_answer), pending, now, STUCK_MINUTES)
    with transaction(db) as conn:
        delete_campaign(conn, other)
    with transaction(db) as conn:
        assert apply_plan(conn, plan, now) == 1
    with connect(db) as conn:
        assert call_row(conn, kept)["status"] == "not_connected"
        assert conn.execute("select count(*) from calls where call_id = ?", [gone]).fetchone()[0] == 0
