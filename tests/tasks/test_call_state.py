"""apply_provider_calls: idempotent, order-free, credits stored, enrollments released exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.enums import CallStatus, DisconnectReason, Sentiment
from tasks.call_state import apply_provider_call, apply_provider_calls, find_call_id
from tasks.enrichment import pending_calls
from tasks.errors import NotFoundError
from tasks.store import connect, transaction
from tasks.telephony.base import ProviderCall
from tests.tasks.seeding import call_row, enrollment_row, seed_call

QUEUED = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # Tuesday 10:00 in Phoenix
LATER = QUEUED + timedelta(minutes=5)


def ended(seconds: float = 90.0, *, analyzed: bool = True, successful: bool | None = False, voicemail: bool = False,
          reason: DisconnectReason = DisconnectReason.agent_hangup) -> ProviderCall:
    call = ProviderCall(
        "pc_1", CallStatus.ended, disconnect_reason=reason, disconnect_reason_raw=reason.value,
        started_at=QUEUED + timedelta(seconds=10), ended_at=QUEUED + timedelta(seconds=10 + seconds),
        duration_seconds=seconds, transcript="Agent: Hi", recording_url="https://rec/1.wav", tools_count=1,
    )
    if analyzed:
        call.analyzed, call.call_successful, call.in_voicemail = True, successful, voicemail
        call.user_sentiment, call.summary, call.custom_analysis = Sentiment.Positive, "talked", {"interested": True}
    return call


@pytest.fixture
def call_id(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        return seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, provider_call_id="pc_1")


def apply(db, call_id, update, now=LATER) -> int:
    with transaction(db) as conn:
        return apply_provider_calls(conn, [(call_id, update)], now)


def test_a_final_analysed_update_fills_the_row_and_releases_the_contact(campaign_db, call_id):
    assert apply(campaign_db["db"], call_id, ended(90.0)) == 1
    with connect(campaign_db["db"]) as conn:
        row, enrollment = call_row(conn, call_id), enrollment_row(conn, call_id)
    assert (row["status"], row["disconnect_reason"], row["duration_seconds"], row["credits"]) == (
        "ended", "agent_hangup", 90.0, 666)
    assert (row["user_sentiment"], row["summary"], row["tools_count"], row["analyzed_at"]) == (
        "Positive", "talked", 1, LATER)
    assert (enrollment["in_flight_call_id"], enrollment["finished_at"], enrollment["attempts"]) == (None, None, 1)


def test_the_same_update_twice_changes_nothing_the_second_time(campaign_db, call_id):
    apply(campaign_db["db"], call_id, ended())
    with connect(campaign_db["db"]) as conn:
        first = call_row(conn, call_id), enrollment_row(conn, call_id)
    assert apply(campaign_db["db"], call_id, ended(), now=LATER + timedelta(minutes=1)) == 0
    with connect(campaign_db["db"]) as conn:
        assert (call_row(conn, call_id), enrollment_row(conn, call_id)) == first


def test_a_late_in_progress_update_never_moves_a_final_call_back(campaign_db, call_id):
    apply(campaign_db["db"], call_id, ended())
    late = ProviderCall("pc_1", CallStatus.in_progress, started_at=QUEUED + timedelta(seconds=10))
    assert apply(campaign_db["db"], call_id, late) == 0
    with connect(campaign_db["db"]) as conn:
        row = call_row(conn, call_id)
    assert (row["status"], row["summary"], row["credits"]) == ("ended", "talked", 666)


def test_an_analysis_on_an_unfinished_call_is_stamped_only_with_the_final_record(campaign_db, call_id):
    # `analyzed_at` stays null on unfinished calls (the pending-calls read relies on it): a record that
    # says "analysed" before the call is final keeps its data but not the stamp, which the final record sets
    early = ProviderCall("pc_1", CallStatus.in_progress, started_at=QUEUED + timedelta(seconds=10))
    early.analyzed, early.summary = True, "early"
    assert apply(campaign_db["db"], call_id, early) == 1
    with connect(campaign_db["db"]) as conn:
        row = call_row(conn, call_id)
        assert (row["status"], row["summary"], row["analyzed_at"]) == ("in_progress", "early", None)
        assert pending_calls(conn, LATER, 30.0)["call_id"].to_list() == [call_id]
    final = LATER + timedelta(minutes=2)
    apply(campaign_db["db"], call_id, ended(), now=final)
    with connect(campaign_db["db"]) as conn:
        assert (call_row(conn, call_id)["status"], call_row(conn, call_id)["analyzed_at"]) == ("ended", final)
        assert pending_calls(conn, final, 30.0).height == 0
        assert enrollment_row(conn, call_id)["in_flight_call_id"] is None


def test_missing_fields_never_erase_stored_ones(campaign_db, call_id):
    apply(campaign_db["db"], call_id, ended())
    # a call_ended-like record without analysis, transcript or recording
    bare = ProviderCall("pc_1", CallStatus.ended, disconnect_reason=DisconnectReason.agent_hangup)
    apply(campaign_db["db"], call_id, bare)
    with connect(campaign_db["db"]) as conn:
        row = call_row(conn, call_id)
    assert (row["transcript"], row["recording_url"], row["call_successful"], row["duration_seconds"]) == (
        "Agent: Hi", "https://rec/1.wav", False, 90.0)


def test_an_ended_call_without_analysis_keeps_the_contact_in_flight(campaign_db, call_id):
    apply(campaign_db["db"], call_id, ended(analyzed=False))
    with connect(campaign_db["db"]) as conn:
        # the success verdict may still come: the contact must not be redialled before it does
        assert enrollment_row(conn, call_id)["in_flight_call_id"] == call_id
        assert call_row(conn, call_id)["analyzed_at"] is None


def test_a_late_success_verdict_finishes_a_released_contact(campaign_db, call_id):
    # released without analysis (the stuck-call path), then the verdict arrives
    released = ended(analyzed=False)
    released.analyzed = True
    apply(campaign_db["db"], call_id, released)
    with connect(campaign_db["db"]) as conn:
        assert enrollment_row(conn, call_id)["finished_reason"] is None
    apply(campaign_db["db"], call_id, ended(successful=True), now=LATER + timedelta(hours=1))
    with connect(campaign_db["db"]) as conn:
        enrollment = enrollment_row(conn, call_id)
    assert (enrollment["finished_reason"], enrollment["finished_at"]) == ("successful", LATER + timedelta(hours=1))


@pytest.mark.parametrize(
    ("update", "finished_reason"),
    [
        (ended(successful=True), "successful"),  # objective met: never called again
        (ProviderCall("pc_1", CallStatus.not_connected, disconnect_reason=DisconnectReason.invalid_destination),
         "not_retryable"),  # a dead number is not redialled
        (ProviderCall("pc_1", CallStatus.not_connected, disconnect_reason=DisconnectReason.dial_no_answer), None),
    ],
)
def test_final_outcomes_finish_or_release_the_contact(campaign_db, call_id, update, finished_reason):
    apply(campaign_db["db"], call_id, update)
    with connect(campaign_db["db"]) as conn:
        enrollment = enrollment_row(conn, call_id)
    assert enrollment["in_flight_call_id"] is None
    assert enrollment["finished_reason"] == finished_reason


def test_the_last_allowed_attempt_finishes_the_contact_with_max_attempts(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        # the reference campaign allows 5 attempts; this is the 5th
        call_id = seed_call(conn, campaign_db["campaign_id"], "+16025551299", QUEUED, provider_call_id="pc_1",
                            attempts=5)
    apply(campaign_db["db"], call_id, ProviderCall("pc_1", CallStatus.not_connected,
                                                   disconnect_reason=DisconnectReason.dial_busy))
    with connect(campaign_db["db"]) as conn:
        assert enrollment_row(conn, call_id)["finished_reason"] == "max_attempts"


def test_a_concurrency_refusal_is_refunded_once(campaign_db, call_id):
    refusal = ProviderCall("pc_1", CallStatus.error, disconnect_reason=DisconnectReason.concurrency_limit_reached)
    apply(campaign_db["db"], call_id, refusal)
    apply(campaign_db["db"], call_id, refusal, now=LATER + timedelta(minutes=1))
    with connect(campaign_db["db"]) as conn:
        row, enrollment = call_row(conn, call_id), enrollment_row(conn, call_id)
    assert row["counts_as_attempt"] is False
    assert (enrollment["attempts"], enrollment["attempts_on_day"], enrollment["in_flight_call_id"]) == (0, 0, None)
    assert row["credits"] == 0


@pytest.mark.parametrize(
    ("update", "credits"),
    [
        (ended(59.0), 333),  # 0:59 is one started minute
        (ended(60.0), 333),  # 1:00 is still one
        (ended(61.0), 666),  # 1:01 starts the second
        (ended(25.0, voicemail=True, reason=DisconnectReason.voicemail_reached), 75),  # flat voicemail rate
        (ProviderCall("pc_1", CallStatus.not_connected, disconnect_reason=DisconnectReason.dial_no_answer,
                      duration_seconds=0.0), 0),  # never connected
        (ProviderCall("pc_1", CallStatus.in_progress), None),  # not finished: nothing billed yet
    ],
)
def test_credits_are_stored_per_call(campaign_db, call_id, update, credits):
    apply(campaign_db["db"], call_id, update)
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, call_id)["credits"] == credits


def test_a_greeting_talked_into_bills_as_answered_a_recognised_voicemail_flat(campaign_db, call_id):
    # call_ended carries no analysis: billed as answered minutes
    apply(campaign_db["db"], call_id, ended(100.0, analyzed=False, reason=DisconnectReason.agent_hangup))
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, call_id)["credits"] == 666
    # call_analyzed says it was a voicemail box: one with a personalised greeting the agent talked into for
    # 1:40 (the provider did not recognise it) bills as answered, as the product does (product-facts: Credits)
    apply(campaign_db["db"], call_id, ended(100.0, voicemail=True))
    with connect(campaign_db["db"]) as conn:
        row = call_row(conn, call_id)
    assert (row["in_voicemail"], row["credits"]) == (True, 666)


def test_a_recognised_voicemail_bills_the_flat_rate(campaign_db, call_id):
    apply(campaign_db["db"], call_id, ended(25.0, voicemail=True, reason=DisconnectReason.voicemail_reached))
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, call_id)["credits"] == 75


@pytest.mark.parametrize(("voicemail", "expected"), [
    # the agent left a message in the box (Retell: agent_hangup, in_voicemail): the voicemail rule, the
    # next calling day one band later (Tuesday 10:00 in Phoenix -> Wednesday 13:00)
    (True, datetime(2026, 4, 29, 20, 0, tzinfo=UTC)),
    (False, None),  # a conversation the agent ended: no rule, no wait
])
def test_a_message_left_in_a_voicemail_box_is_retried_as_a_voicemail(campaign_db, call_id, voicemail, expected):
    apply(campaign_db["db"], call_id, ended(35.0, voicemail=voicemail, reason=DisconnectReason.agent_hangup))
    with connect(campaign_db["db"]) as conn:
        enrollment = enrollment_row(conn, call_id)
    assert (enrollment["in_flight_call_id"], enrollment["finished_at"]) == (None, None)
    assert enrollment["next_call_at"] == expected


def test_another_band_is_counted_from_when_the_phone_rang_not_from_the_claim(campaign_db, call_id):
    # a batch claimed at 10:00 placed this call at 10:24:39 (a 500-call batch takes 25 minutes): retried at 13:00 the
    # next day, it came back less than a band (3 h) after its own time of day
    with transaction(campaign_db["db"]) as conn:
        conn.execute("update calls set registered_at = ? where call_id = ?", [QUEUED + timedelta(minutes=24, seconds=39),
                                                                             call_id])
    apply(campaign_db["db"], call_id, ended(35.0, voicemail=True, reason=DisconnectReason.agent_hangup),
          now=QUEUED + timedelta(minutes=30))
    with connect(campaign_db["db"]) as conn:
        enrollment = enrollment_row(conn, call_id)
    assert enrollment["next_call_at"] == datetime(2026, 4, 29, 20, 24, 39, tzinfo=UTC)  # Wed 13:24:39 in Phoenix


def test_an_unknown_call_id_is_refused_and_nothing_is_written(campaign_db, call_id):
    with pytest.raises(NotFoundError, match="call 999"):
        with transaction(campaign_db["db"]) as conn:
            apply_provider_calls(conn, [(call_id, ended()), (999, ended())], LATER)
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, call_id)["status"] == "registered"


def test_find_call_id_by_attempt_key_or_provider_id(campaign_db, call_id):
    with connect(campaign_db["db"]) as conn:
        key = call_row(conn, call_id)["attempt_key"]
        assert find_call_id(conn, attempt_key=key) == call_id
        assert find_call_id(conn, provider_call_id="pc_1") == call_id
        assert find_call_id(conn, attempt_key="nope", provider_call_id="pc_1") == call_id
        assert find_call_id(conn, attempt_key="nope", provider_call_id="nope") is None
        assert apply_provider_call(conn, call_id, ProviderCall("pc_1", CallStatus.in_progress), LATER) is True


def second_call(conn, call_id: int, *, attempts: int) -> int:
    """Another call of the same contact, now the one in flight (the contact has `attempts` today)."""
    new_id = conn.execute(
        "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, from_number, status,"
        " provider, queued_at, updated_at) select campaign_id, contact_id, attempt_key || '.2', 2, phone_e164,"
        " from_number, 'created', provider, queued_at, updated_at from calls where call_id = ? returning call_id",
        [call_id],
    ).fetchone()[0]
    conn.execute(
        "update campaign_contacts set in_flight_call_id = ?, attempts = ?, call_seq = ?, attempts_on_day = ?"
        " where contact_id = (select contact_id from calls where call_id = ?)",
        [new_id, attempts, attempts, attempts, call_id],
    )
    return new_id


def test_two_refusals_of_one_contact_in_one_batch_give_both_attempts_back(campaign_db, call_id):
    with transaction(campaign_db["db"]) as conn:
        newer = second_call(conn, call_id, attempts=2)  # both counted, both on the same local day
    refusal = ProviderCall(None, CallStatus.failed_rate_limit,
                           disconnect_reason=DisconnectReason.concurrency_limit_reached)
    with transaction(campaign_db["db"]) as conn:
        apply_provider_calls(conn, [(call_id, refusal), (newer, refusal)], LATER)
    with connect(campaign_db["db"]) as conn:
        enrollment = enrollment_row(conn, newer)
    assert (enrollment["attempts"], enrollment["attempts_on_day"], enrollment["in_flight_call_id"]) == (0, 0, None)


def test_a_late_success_beside_the_in_flight_calls_outcome_finishes_the_contact(campaign_db, call_id):
    released = ended(analyzed=False)
    released.analyzed = True  # the first call was released without a verdict
    apply(campaign_db["db"], call_id, released)
    with transaction(campaign_db["db"]) as conn:
        newer = second_call(conn, call_id, attempts=2)
    busy = ProviderCall("pc_2", CallStatus.not_connected, disconnect_reason=DisconnectReason.dial_busy)
    with transaction(campaign_db["db"]) as conn:
        apply_provider_calls(conn, [(newer, busy), (call_id, ended(successful=True))], LATER + timedelta(hours=1))
    with connect(campaign_db["db"]) as conn:
        enrollment = enrollment_row(conn, newer)
    # the busy signal released the contact (no retry wait kept: it is finished), the verdict finished it
    assert (enrollment["in_flight_call_id"], enrollment["finished_reason"]) == (None, "successful")
    assert enrollment["finished_at"] == LATER + timedelta(hours=1)


@pytest.mark.parametrize(("custom_analysis", "listed"), [
    ({"do_not_call": True}, True),
    ({"interested": True, "do_not_call": "Yes"}, True),  # the analysis may answer in words
    ({"interested": True, "do_not_call": False}, False),  # the key named, but not asked: no statement needed
    ({"notes": "do_not_call: true"}, False),  # the words inside another field are no request
])
def test_a_request_not_to_be_called_puts_the_number_on_the_list(campaign_db, call_id, custom_analysis, listed):
    update = ended()
    update.custom_analysis = custom_analysis
    apply(campaign_db["db"], call_id, update)
    with connect(campaign_db["db"]) as conn:
        on_list = conn.execute("select count(*) from do_not_call where pattern = '+16025551234'").fetchone()[0]
    assert on_list == int(listed)


def test_a_non_finite_duration_bills_as_none_and_does_not_fail_the_batch(campaign_db, call_id):
    # NaN > 0 is true in Polars and ceil(NaN) cannot become an integer: the whole merge failed
    call = ended(30.0, voicemail=True)
    call.duration_seconds = float("nan")
    apply(campaign_db["db"], call_id, call)
    with connect(campaign_db["db"]) as conn:
        assert call_row(conn, call_id)["credits"] == 75  # a voicemail without a usable duration: the flat rate
