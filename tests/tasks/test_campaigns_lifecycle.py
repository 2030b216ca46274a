"""The campaign lifecycle under edits: the status follows lowered limits, Active is refused past the end
date, and a campaign whose batch is placing calls is not deleted under it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dashboards.queries.campaigns import campaign_header, campaign_page
from schemas.enums import CampaignStatus
from tasks.campaigns import (
    activate_campaign, campaign_status, create_campaign, deactivate_campaign, delete_campaign, get_campaign,
    list_campaigns, update_campaign,
)
from tasks.compliance import add_dnc
from tasks.dialing import eligible_contacts, load_plans
from tasks.errors import UserError, ValidationError
from tasks.store import connect, transaction
from tests.factories import add_contacts

# Tuesday 2026-04-28, 11:00 in Phoenix (UTC-7 all year): inside the reference campaign's dates and hours
IN_RANGE = datetime(2026, 4, 28, 18, 0, tzinfo=UTC)


def statuses(conn, campaign_id: int, now: datetime) -> set[str]:
    """The status as `campaigns show`, `campaigns list`, the dashboard's list and the campaign header say it."""
    return {campaign_status(conn, campaign_id, now).value,
            next(r["status"] for r in list_campaigns(conn, now) if r["campaign_id"] == campaign_id),
            campaign_page(conn, now).filter(campaign_id=campaign_id)["status"].item(),
            campaign_header(conn, campaign_id, now)["status"]}


def called(db, campaign_id: int, attempts: int, *, in_flight: bool = False, count: int = 2) -> list[int]:
    """`count` enrolled contacts, each with `attempts` attempts made (the last one still in a call if `in_flight`)."""
    ids = add_contacts(db, campaign_id, count)
    with transaction(db) as conn:
        conn.execute("update campaign_contacts set attempts = ?, attempts_day = date '2026-04-27', attempts_on_day = 1,"
                     " in_flight_call_id = ? where campaign_id = ?", [attempts, 99 if in_flight else None, campaign_id])
    return ids


# --- the status follows an edit of max_attempts -------------------------------------------------


def test_lowering_max_attempts_below_every_contacts_attempts_completes_the_campaign(campaign_db):
    # nobody is eligible once attempts >= max_attempts: it used to stay Waiting for ever
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    called(db, campaign_id, attempts=3)
    with transaction(db) as conn:
        assert statuses(conn, campaign_id, IN_RANGE) == {"Waiting"}
        update_campaign(conn, campaign_id, {"max_attempts": 2}, IN_RANGE)
        assert statuses(conn, campaign_id, IN_RANGE) == {"Completed"}
        update_campaign(conn, campaign_id, {"max_attempts": 4}, IN_RANGE)  # raised again: they may be called again
        assert statuses(conn, campaign_id, IN_RANGE) == {"Waiting"}


@pytest.mark.parametrize("lowered_to, in_flight, expected", [
    (3, False, "Completed"),  # equal to the attempts made: used up as well
    (4, False, "Waiting"),  # one call left each
    (2, True, "Waiting"),  # a call is still on the line: its outcome is still to come
])
def test_contacts_out_of_attempts_count_as_processed(campaign_db, lowered_to, in_flight, expected):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    called(db, campaign_id, attempts=3, in_flight=in_flight)
    with transaction(db) as conn:
        update_campaign(conn, campaign_id, {"max_attempts": lowered_to, "attempts_per_day": 1}, IN_RANGE)
        assert statuses(conn, campaign_id, IN_RANGE) == {expected}


def test_a_listed_contact_out_of_attempts_is_not_counted_twice(campaign_db):
    # one contact out of attempts, one callable but on a do-not-call list, one callable: still Waiting
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    out, listed, _callable = add_contacts(db, campaign_id, 3)
    with transaction(db) as conn:
        conn.execute("update campaign_contacts set attempts = 3 where contact_id = ?", [out])
        phones = dict(conn.execute("select contact_id, phone_e164 from contacts").fetchall())
        add_dnc(conn, [phones[listed], phones[out]], IN_RANGE)
        update_campaign(conn, campaign_id, {"max_attempts": 2}, IN_RANGE)
        assert statuses(conn, campaign_id, IN_RANGE) == {"Waiting"}
        conn.execute("update campaign_contacts set finished_at = ? where contact_id = ?", [IN_RANGE, _callable])
        assert statuses(conn, campaign_id, IN_RANGE) == {"Completed"}


def test_raising_max_attempts_reopens_contacts_finished_out_of_attempts(campaign_db):
    # finished for using up Max Attempts, a contact stayed finished after the limit was raised: never called again
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    three, successful, four = add_contacts(db, campaign_id, 3)
    with transaction(db) as conn:
        update_campaign(conn, campaign_id, {"max_attempts": 3, "attempts_per_day": 1}, IN_RANGE)
        finished = "update campaign_contacts set attempts = ?, finished_at = ?, finished_reason = ? where contact_id = ?"
        conn.execute(finished, [3, IN_RANGE, "max_attempts", three])
        conn.execute(finished, [1, IN_RANGE, "successful", successful])
        conn.execute(finished, [4, IN_RANGE, "max_attempts", four])  # made under an earlier, higher limit
        assert statuses(conn, campaign_id, IN_RANGE) == {"Completed"}
        update_campaign(conn, campaign_id, {"max_attempts": 2}, IN_RANGE)  # lowered: nothing reopens
        assert statuses(conn, campaign_id, IN_RANGE) == {"Completed"}

        def state():
            return dict(conn.execute("select contact_id, (finished_at is null, finished_reason)"
                                     " from campaign_contacts where campaign_id = ?", [campaign_id]).fetchall())

        update_campaign(conn, campaign_id, {"max_attempts": 4}, IN_RANGE)  # one call left for the first only
        assert state() == {three: (True, None), successful: (False, "successful"), four: (False, "max_attempts")}
        assert statuses(conn, campaign_id, IN_RANGE) == {"Waiting"}
        update_campaign(conn, campaign_id, {"max_attempts": 5}, IN_RANGE)
        assert state() == {three: (True, None), successful: (False, "successful"), four: (True, None)}
    with connect(db) as conn:  # the claim picks them again, fewest attempts first
        plan = next(p for p in load_plans(conn) if p.campaign_id == campaign_id)
        assert eligible_contacts(conn, plan, IN_RANGE, 10)["contact_id"].to_list() == [three, four]


# --- activation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("turn_on", [
    lambda conn, cid, now: activate_campaign(conn, cid, now),
    lambda conn, cid, now: update_campaign(conn, cid, {"active": True}, now),  # campaigns edit --active
])
def test_active_cannot_be_turned_on_after_the_last_local_day(campaign_db, turn_on):
    # 2026-05-02 06:59 UTC is still May 1 in Phoenix, the last day; a minute later it is over there
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    with transaction(db) as conn:
        update_campaign(conn, campaign_id, {"end_date": date(2026, 5, 1)}, IN_RANGE)
        deactivate_campaign(conn, campaign_id, IN_RANGE)
        turn_on(conn, campaign_id, datetime(2026, 5, 2, 6, 59, tzinfo=UTC))
        deactivate_campaign(conn, campaign_id, IN_RANGE)
    with pytest.raises(ValidationError) as error:
        with transaction(db) as conn:
            turn_on(conn, campaign_id, datetime(2026, 5, 2, 7, 0, tzinfo=UTC))
    assert str(error.value) == (f"active: campaign {campaign_id}: cannot activate: its end date 2026-05-01 has passed "
                                "(America/Phoenix); set a later end date first")
    with transaction(db) as conn:
        assert get_campaign(conn, campaign_id)["active"] is False
        # a later end date in the same edit is fine: the result is judged as a whole
        update_campaign(conn, campaign_id, {"active": True, "end_date": date(2026, 6, 30)}, datetime(2026, 5, 2, 7, tzinfo=UTC))


def test_an_active_campaign_may_have_its_end_date_moved_into_the_past_and_completes(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    called(db, campaign_id, attempts=1)
    with transaction(db) as conn:
        update_campaign(conn, campaign_id, {"end_date": date(2026, 4, 27)}, IN_RANGE)
        assert statuses(conn, campaign_id, IN_RANGE) == {"Completed"}
        assert get_campaign(conn, campaign_id)["active"] is True


def test_activate_without_an_outbound_number_names_the_campaign(campaign_db):
    db = campaign_db["db"]
    with transaction(db) as conn:
        base = get_campaign(conn, campaign_db["campaign_id"])
        draft = create_campaign(conn, {k: base[k] for k in ("agent_id", "time_zone", "country", "start_date", "weekly_schedule")}
                                | {"name": "No number"}, IN_RANGE)
    with pytest.raises(ValidationError) as error:
        with transaction(db) as conn:
            activate_campaign(conn, draft, IN_RANGE)
    assert str(error.value) == f"active: campaign {draft}: cannot activate: choose an outbound number first"


def test_apply_turning_active_on_past_the_end_date_names_the_file(campaign_db, tmp_path):
    from tasks.campaigns import apply_yaml

    ids = campaign_db
    with transaction(ids["db"]) as conn:
        update_campaign(conn, ids["campaign_id"], {"end_date": date(2026, 5, 1), "active": False}, IN_RANGE)
    declared = tmp_path / "spring.yaml"
    declared.write_text(
        "name: Spring outreach\nagent: Ava\nstart_date: 2026-04-27\nend_date: 2026-05-01\ntime_zone: America/Phoenix\ncountry: US\n"
        'calling_days: [mon, tue, wed, thu, fri]\nhours: [["08:00", "18:00"]]\nmax_attempts: 5\nobjective: Book a demo\n'
        'outbound_numbers: ["+16025550100"]\nactive: true\n')
    with pytest.raises(UserError, match=rf"^{declared}: active: campaign {ids['campaign_id']}: cannot activate: its end date"):
        with transaction(ids["db"]) as conn:
            apply_yaml(conn, declared, datetime(2026, 6, 1, tzinfo=UTC))


# --- delete while a batch places its calls ------------------------------------------------------------


def test_a_campaign_is_not_deleted_under_a_batch_placing_its_calls(campaign_db):
    # The Run button's batch (manual: Active off does not stop it) went on dialing the deleted campaign's
    # contacts, and an outcome the provider gave at once (an invalid number) crashed it: "call 1 does not exist".
    from tasks.clock import VirtualClock
    from tasks.dialing import dial_batch, load_plans
    from tasks.telephony.base import InvalidNumber
    from tests.fakes import FakeProvider

    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    add_contacts(db, campaign_id, 3)
    refusals = []

    class DeletingMidBatch(FakeProvider):
        def place_call(self, request, now):
            if not self.calls and not refusals:  # someone deletes the campaign while its first call is placed
                with pytest.raises(UserError) as error:
                    with transaction(db) as conn:
                        delete_campaign(conn, campaign_id)
                refusals.append(str(error.value))
                raise InvalidNumber("no such number")
            return super().place_call(request, now)

    with connect(db) as conn:
        plan = load_plans(conn, [campaign_id])[0]
    result = dial_batch(db, DeletingMidBatch(), plan, VirtualClock(IN_RANGE), kind="manual", pace_seconds=1)
    assert refusals == [f"campaign {campaign_id}: batch {result.run_id} is placing its calls now; delete the campaign "
                        "once it has ended (turn Active off first, so that no new batch starts)"]
    assert (result.claimed, result.placed, result.failed) == (3, 2, 1)
    with transaction(db) as conn:  # the batch has ended: the delete goes through
        assert delete_campaign(conn, campaign_id)["calls"] == 3


def test_a_batch_whose_process_died_does_not_block_a_delete(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    with transaction(db) as conn:
        # a pid of this host that no process has (pid_max is at most 2**22)
        from tasks.dialing import HOST
        conn.execute("insert into dial_runs (campaign_id, kind, state, started_at, owner_host, owner_pid)"
                     " values (?, 'manual', 'running', ?, ?, ?)", [campaign_id, IN_RANGE, HOST, 2**22 + 1])
        assert delete_campaign(conn, campaign_id)["dial_runs"] == 1


def test_a_dead_batchs_unplaced_rows_leave_the_rolling_caps_with_the_campaign(campaign_db):
    # a batch killed after its claim leaves rows `queued` (never handed to the provider) and their attempts in
    # phone_attempts; the reconciliation would give them back, but not once the campaign and its calls are gone
    from tasks.dialing import claim_batch, load_plans

    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    add_contacts(db, campaign_id, 3)
    with transaction(db) as conn:
        plan = load_plans(conn, [campaign_id])[0]
        numbers = [r[0] for r in conn.execute("select e164 from phone_numbers order by number_id").fetchall()]
        run_id, claimed = claim_batch(conn, plan, IN_RANGE, kind="manual", from_numbers=numbers[:1],
                                      provider_name="simulator", size=3)
        # one of them was handed to the provider before the kill: its attempt stays (the person was called)
        conn.execute("update calls set status = 'registered' where call_id = ?", [int(claimed["call_id"][0])])
        conn.execute("update dial_runs set owner_pid = ? where run_id = ?", [2**22 + 1, run_id])  # its process died
    with transaction(db) as conn:
        assert conn.execute("select count(*) from phone_attempts").fetchone()[0] == 3
        delete_campaign(conn, campaign_id)
    with connect(db) as conn:
        assert conn.execute("select call_id from phone_attempts").fetchall() == [(int(claimed["call_id"][0]),)]
