"""Campaigns in the store: create/edit validation, status, list, duplicate, delete, agents, numbers, YAML."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from schemas.enums import CampaignStatus
from tasks.campaigns import (
    StatusFacts,
    activate_campaign,
    add_agent,
    add_number,
    apply_yaml,
    campaign_status,
    create_campaign,
    deactivate_campaign,
    delete_campaign,
    derive_status,
    duplicate_campaign,
    get_campaign,
    list_agents,
    list_campaigns,
    list_numbers,
    set_number_status,
    update_campaign,
    validate_campaign,
)
from tasks.compliance import add_dnc, listed_numbers
from tasks.dialing import HOST
from tasks.errors import NotFoundError, UserError, ValidationError
from tasks.store import connect, transaction

NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 4, 21, 9, 30, tzinfo=UTC)
EXAMPLE_YAML = Path(__file__).resolve().parents[2] / "data" / "example_campaign.yaml"


def new_settings(ids: dict, **changes) -> dict:
    data = {"name": "Autumn", "agent_id": ids["agent_id"], "start_date": date(2026, 9, 1), "time_zone": "America/Bogota",
            "calling_days": ["mon", "tue"], "same_hours": [["09:00", "17:00"]], "outbound_number_ids": ids["number_ids"][:1]}
    data.update(changes)
    return data


def count(conn, table: str, where: str = "true", params=()) -> int:
    return conn.execute(f"select count(*) from {table} where {where}", list(params)).fetchone()[0]


# --- create / edit ---------------------------------------------------------------------------


def test_create_stores_validated_settings_with_both_timestamps(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        campaign_id = create_campaign(conn, new_settings(campaign_db), NOW)
        row = get_campaign(conn, campaign_id)
    assert row["weekly_schedule"] == {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]}
    assert (row["country"], row["agent_name"], row["active"]) == ("CO", "Ava", False)
    assert row["created_at"] == row["updated_at"] == NOW


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"agent_id": 999}, "agent_id: agent 999 does not exist"),
        ({"outbound_number_ids": [998]}, "outbound_number_ids: number(s) 998 do not exist"),
        ({"batch_size": 0}, "batch_size: must be between 1 and 500, got 0"),
    ],
)
def test_create_refuses_bad_settings_and_writes_nothing(campaign_db, changes, message):
    with pytest.raises(UserError) as error:
        with transaction(campaign_db["db"]) as conn:
            create_campaign(conn, new_settings(campaign_db, **changes), NOW)
    assert str(error.value) == message
    with connect(campaign_db["db"]) as conn:
        assert count(conn, "campaigns") == 1


def test_a_name_another_campaign_has_is_refused_on_create_and_rename(campaign_db):
    # `apply` finds a campaign by its name: a second "Autumn" made the YAML of the first one unusable
    with transaction(campaign_db["db"]) as conn:
        first = create_campaign(conn, new_settings(campaign_db), NOW)
        second = create_campaign(conn, new_settings(campaign_db, name="Winter"), NOW)
        update_campaign(conn, first, {"name": "Autumn", "batch_size": 50}, LATER)  # its own name: fine
    for act in (lambda conn: create_campaign(conn, new_settings(campaign_db), NOW),
                lambda conn: update_campaign(conn, second, {"name": "Autumn"}, LATER)):
        with pytest.raises(ValidationError) as error:
            with transaction(campaign_db["db"]) as conn:
                act(conn)
        assert (error.value.field, str(error.value)) == (
            "name", f'name: campaign {first} is already named "Autumn"; choose another name')
    with connect(campaign_db["db"]) as conn:
        assert conn.execute("select name from campaigns order by campaign_id").fetchall()[1:] == [("Autumn",), ("Winter",)]


def test_validate_campaign_lists_model_and_store_errors_for_forms(campaign_db):
    with connect(campaign_db["db"]) as conn:
        assert [e.field for e in validate_campaign(conn, new_settings(campaign_db, agent_id=999))] == ["agent_id"]
        assert [e.field for e in validate_campaign(conn, new_settings(campaign_db, batch_size=0, max_attempts=0))] == [
            "max_attempts", "batch_size"]
        assert validate_campaign(conn, new_settings(campaign_db)) == []


def test_update_validates_the_whole_result_and_sets_updated_at(campaign_db):
    campaign_id = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        update_campaign(conn, campaign_id, {"batch_size": 250, "objective": "Renewals"}, LATER)
        row = get_campaign(conn, campaign_id)
    assert (row["batch_size"], row["objective"], row["updated_at"]) == (250, "Renewals", LATER)
    assert row["created_at"] != LATER
    with pytest.raises(ValidationError, match="attempts_per_day: 9 per day is more than max_attempts"):
        with transaction(campaign_db["db"]) as conn:
            update_campaign(conn, campaign_id, {"attempts_per_day": 9}, LATER)


def test_changing_calling_days_alone_keeps_the_shared_hours(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        settings = update_campaign(conn, campaign_db["campaign_id"], {"calling_days": ["mon", "sat"]}, LATER)
    assert settings.weekly_schedule == {"mon": [["08:00", "18:00"]], "sat": [["08:00", "18:00"]]}


def test_changing_days_of_a_per_day_schedule_needs_the_schedule_too(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        update_campaign(conn, campaign_db["campaign_id"], {"weekly_schedule": {
            "mon": [["08:00", "12:00"]], "tue": [["09:00", "18:00"]], "wed": [["08:00", "18:00"]],
            "thu": [["08:00", "18:00"]], "fri": [["08:00", "18:00"]]}}, LATER)
    with pytest.raises(ValidationError, match="sat have no calling window"):
        with transaction(campaign_db["db"]) as conn:
            update_campaign(conn, campaign_db["campaign_id"], {"calling_days": ["mon", "tue", "sat"]}, LATER)
    with transaction(campaign_db["db"]) as conn:  # dropping a day drops its windows
        settings = update_campaign(conn, campaign_db["campaign_id"], {"calling_days": ["mon", "tue"]}, LATER)
    assert settings.weekly_schedule == {"mon": [["08:00", "12:00"]], "tue": [["09:00", "18:00"]]}


def test_unknown_campaign_is_not_found(campaign_db):
    with connect(campaign_db["db"]) as conn:
        with pytest.raises(NotFoundError, match="campaign 42 does not exist"):
            get_campaign(conn, 42)
        with pytest.raises(NotFoundError):
            campaign_status(conn, 42, NOW)


# --- activate / duplicate ----------------------------------------------------------------------


def test_activate_refuses_without_a_start_date(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        draft_id = create_campaign(conn, new_settings(campaign_db, start_date=None), NOW)
    with pytest.raises(ValidationError) as error:
        with transaction(campaign_db["db"]) as conn:
            activate_campaign(conn, draft_id, LATER)
    assert str(error.value) == f"active: campaign {draft_id}: cannot activate: set a start date first"


def test_deactivate_then_activate_toggles_active_and_status(campaign_db):
    campaign_id, at = campaign_db["campaign_id"], datetime(2026, 4, 28, 18, tzinfo=UTC)
    with transaction(campaign_db["db"]) as conn:
        deactivate_campaign(conn, campaign_id, at)
        assert campaign_status(conn, campaign_id, at) == CampaignStatus.paused
        activate_campaign(conn, campaign_id, at)
        assert campaign_status(conn, campaign_id, at) == CampaignStatus.waiting
        assert get_campaign(conn, campaign_id)["updated_at"] == at
        # a copy was never activated: Draft, not Paused; deactivating it again changes nothing
        copy = duplicate_campaign(conn, campaign_id, at)
        assert campaign_status(conn, copy, at) == CampaignStatus.draft
        deactivate_campaign(conn, copy, at)
        assert campaign_status(conn, copy, at) == CampaignStatus.draft
        activate_campaign(conn, copy, at)
        deactivate_campaign(conn, copy, at)
        assert campaign_status(conn, copy, at) == CampaignStatus.paused


def test_duplicate_copies_settings_without_contacts_inactive_and_new_creation_date(campaign_db):
    campaign_id = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        enroll(conn, campaign_id, "+16025551000")
        copy_id = duplicate_campaign(conn, campaign_id, LATER)
        original, copy = get_campaign(conn, campaign_id), get_campaign(conn, copy_id)
        assert count(conn, "campaign_contacts", "campaign_id = ?", [copy_id]) == 0
    assert copy["name"] == "Spring outreach (Copy)"
    assert (copy["active"], copy["created_at"]) == (False, LATER)
    same = ["agent_id", "start_date", "calling_days", "weekly_schedule", "time_zone", "country", "max_attempts",
            "attempts_per_day", "batch_size", "rotation_enabled", "outbound_number_ids", "objective"]
    assert {k: copy[k] for k in same} == {k: original[k] for k in same}


def test_duplicating_again_numbers_the_copies_so_names_stay_unique(campaign_db):
    # two "Spring outreach (Copy)" made `campaigns apply` (matched by name) refuse both
    campaign_id = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        copies = [duplicate_campaign(conn, campaign_id, LATER) for _ in range(3)]
        names = [get_campaign(conn, copy)["name"] for copy in copies]
        copy_of_copy = get_campaign(conn, duplicate_campaign(conn, copies[0], LATER))["name"]
        update_campaign(conn, campaign_id, {"name": "N" * 200}, NOW)
        long_names = [get_campaign(conn, duplicate_campaign(conn, campaign_id, LATER))["name"] for _ in range(2)]
    assert names == ["Spring outreach (Copy)", "Spring outreach (Copy 2)", "Spring outreach (Copy 3)"]
    assert copy_of_copy == "Spring outreach (Copy) (Copy)"
    assert long_names == ["N" * 193 + " (Copy)", "N" * 191 + " (Copy 2)"]


def test_duplicate_keeps_the_campaigns_own_do_not_call_entries(campaign_db):
    # a person who asked this campaign not to call was callable again by its copy
    campaign_id = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        add_dnc(conn, ["+16025551000", "+1602555*"], NOW, campaign_id=campaign_id, reason="asked on the phone")
        add_dnc(conn, ["+16025552000"], NOW)  # global: applies to every campaign already, not copied
        copy_id = duplicate_campaign(conn, campaign_id, LATER)
        rows = conn.execute("select campaign_id, pattern, is_prefix, reason, added_at from do_not_call"
                            " order by campaign_id nulls first, pattern").fetchall()
        assert listed_numbers(conn, copy_id, ["+16025551000", "+16025559999", "+14805550000"]) == {
            "+16025551000", "+16025559999"}
    own = [(pattern, is_prefix, reason, added_at) for cid, pattern, is_prefix, reason, added_at in rows if cid == campaign_id]
    assert [(cid, pattern) for cid, pattern, *_ in rows] == [
        (None, "+16025552000"), (campaign_id, "+1602555*"), (campaign_id, "+16025551000"),
        (copy_id, "+1602555*"), (copy_id, "+16025551000")]
    assert [(pattern, is_prefix, reason, added_at) for cid, pattern, is_prefix, reason, added_at in rows
            if cid == copy_id] == own


def test_duplicate_of_a_name_at_the_length_limit_keeps_the_copy_suffix(campaign_db):
    campaign_id = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        update_campaign(conn, campaign_id, {"name": "N" * 200}, NOW)
        copy = get_campaign(conn, duplicate_campaign(conn, campaign_id, LATER))
    assert copy["name"] == "N" * 193 + " (Copy)"


# --- delete ----------------------------------------------------------------------------------


def enroll(conn, campaign_id: int, phone: str, finished: bool = False) -> int:
    row = conn.execute("select contact_id from contacts where phone_e164 = ?", [phone]).fetchone()
    contact_id = row[0] if row else conn.execute(
        "insert into contacts (phone_e164) values (?) returning contact_id", [phone]).fetchone()[0]
    conn.execute("insert into campaign_contacts (campaign_id, contact_id, finished_at) values (?, ?, ?)",
                 [campaign_id, contact_id, NOW if finished else None])
    return contact_id


def add_call(conn, campaign_id: int, contact_id: int, key: str) -> int:
    call_id = conn.execute(
        "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status, provider,"
        " queued_at, updated_at) values (?, ?, ?, 1, '+16025551000', 'ended', 'simulator', ?, ?) returning call_id",
        [campaign_id, contact_id, key, NOW, NOW]).fetchone()[0]
    conn.execute("insert into call_feedback (call_id, rating) values (?, 'up')", [call_id])
    return call_id


def add_run(conn, campaign_id: int, kind: str, state: str, started_at: datetime, owner_pid: int | None = None) -> None:
    """A dial run as the dialer writes it: owned by a process of this host (this live one unless told)."""
    conn.execute("insert into dial_runs (campaign_id, kind, state, started_at, owner_host, owner_pid, heartbeat_at)"
                 " values (?, ?, ?, ?, ?, ?, ?)",
                 [campaign_id, kind, state, started_at, HOST, owner_pid or os.getpid(), started_at])


def test_delete_removes_everything_of_the_campaign_but_keeps_crm_contacts_and_other_campaigns(campaign_db):
    doomed = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        kept = create_campaign(conn, new_settings(campaign_db), NOW)
        # a metrics table added by a later migration is cleared too, by its campaign_id column
        conn.execute("create table if not exists metrics_extra (campaign_id bigint, calls integer)")
        for campaign_id in (doomed, kept):
            contact_id = enroll(conn, campaign_id, "+16025551000")
            add_call(conn, campaign_id, contact_id, f"key-{campaign_id}")
            add_run(conn, campaign_id, "scheduled", "completed", NOW)
            conn.execute("insert into metrics_extra values (?, 3)", [campaign_id])
    with transaction(campaign_db["db"]) as conn:
        deleted = delete_campaign(conn, doomed)
    assert {t: deleted[t] for t in ("campaigns", "calls", "call_feedback", "campaign_contacts", "dial_runs", "metrics_extra")} == {
        "campaigns": 1, "calls": 1, "call_feedback": 1, "campaign_contacts": 1, "dial_runs": 1, "metrics_extra": 1}
    with connect(campaign_db["db"]) as conn:
        for table in ("campaigns", "calls", "campaign_contacts", "dial_runs", "metrics_extra"):
            assert count(conn, table, "campaign_id = ?", [doomed]) == 0, table
            assert count(conn, table, "campaign_id = ?", [kept]) == 1, table
        assert count(conn, "call_feedback") == 1
        assert count(conn, "contacts") == 1  # the CRM keeps the person


def test_delete_unknown_campaign_is_not_found(campaign_db):
    with pytest.raises(NotFoundError):
        with transaction(campaign_db["db"]) as conn:
            delete_campaign(conn, 77)


# --- status ----------------------------------------------------------------------------------


def facts(**changes) -> StatusFacts:
    values = dict(start_date=date(2026, 4, 27), end_date=None, time_zone="America/Phoenix", active=True, paused=True,
                  manual_running=False, scheduled_running=False, latest_run_state=None, contacts=10, unfinished=4)
    values.update(changes)
    return StatusFacts(**values)


IN_RANGE = datetime(2026, 4, 28, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "changes, now, expected",
    [
        ({"start_date": None, "manual_running": True}, IN_RANGE, CampaignStatus.draft),  # no start date wins
        ({"manual_running": True, "end_date": date(2026, 4, 1)}, IN_RANGE, CampaignStatus.manual_running),
        # 2026-05-02 06:59 UTC is still May 1 in Phoenix (UTC-7): the end date has not passed there
        ({"end_date": date(2026, 5, 1)}, datetime(2026, 5, 2, 6, 59, tzinfo=UTC), CampaignStatus.waiting),
        ({"end_date": date(2026, 5, 1)}, datetime(2026, 5, 2, 7, 0, tzinfo=UTC), CampaignStatus.completed),
        ({"unfinished": 0}, IN_RANGE, CampaignStatus.completed),  # every enrolled contact finished
        ({"unfinished": 3, "listed": 3}, IN_RANGE, CampaignStatus.completed),  # the rest on do-not-call lists
        ({"unfinished": 4, "listed": 3}, IN_RANGE, CampaignStatus.waiting),
        ({"contacts": 0, "unfinished": 0}, IN_RANGE, CampaignStatus.waiting),  # nothing enrolled is not "done"
        ({"unfinished": 0, "latest_run_state": "failed"}, IN_RANGE, CampaignStatus.completed),
        ({"latest_run_state": "failed", "active": False}, IN_RANGE, CampaignStatus.failed),
        ({"active": False}, IN_RANGE, CampaignStatus.paused),
        ({"active": False, "start_date": date(2026, 6, 1)}, IN_RANGE, CampaignStatus.paused),
        # Active off and never turned off by hand: never activated (a new campaign, a duplicate)
        ({"active": False, "paused": False}, IN_RANGE, CampaignStatus.draft),
        ({"active": False, "paused": False, "latest_run_state": "failed"}, IN_RANGE, CampaignStatus.failed),
        ({"active": False, "paused": False, "manual_running": True}, IN_RANGE, CampaignStatus.manual_running),
        # 2026-04-27 06:59 UTC is April 26 in Phoenix: start still ahead
        ({}, datetime(2026, 4, 27, 6, 59, tzinfo=UTC), CampaignStatus.scheduled),
        ({}, datetime(2026, 4, 27, 7, 0, tzinfo=UTC), CampaignStatus.waiting),
        ({"scheduled_running": True}, IN_RANGE, CampaignStatus.running),
        ({"latest_run_state": "completed"}, IN_RANGE, CampaignStatus.waiting),
    ],
)
def test_derive_status_precedence(changes, now, expected):
    assert derive_status(facts(**changes), now) == expected


@pytest.mark.parametrize(
    "runs, expected",
    [
        ([], CampaignStatus.waiting),
        ([("scheduled", "failed", 1), ("scheduled", "completed", 2)], CampaignStatus.waiting),  # only the latest run counts
        ([("scheduled", "completed", 1), ("scheduled", "failed", 2)], CampaignStatus.failed),
        ([("scheduled", "running", 1)], CampaignStatus.running),
        ([("scheduled", "running", 1), ("manual", "running", 2)], CampaignStatus.manual_running),
        ([("manual", "completed", 1)], CampaignStatus.waiting),
    ],
)
def test_campaign_status_reads_runs_from_the_store(campaign_db, runs, expected):
    campaign_id = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        enroll(conn, campaign_id, "+16025551000")
        for kind, state, hour in runs:
            add_run(conn, campaign_id, kind, state, datetime(2026, 4, 28, hour, tzinfo=UTC))
        assert campaign_status(conn, campaign_id, IN_RANGE) == expected
        assert list_campaigns(conn, IN_RANGE)[0]["status"] == expected.value


@pytest.mark.parametrize("kind, alive", [("manual", CampaignStatus.manual_running), ("scheduled", CampaignStatus.running)])
def test_a_run_whose_process_died_is_not_running(campaign_db, kind, alive):
    # `campaigns run` killed mid-batch left its row running: the campaign read Manual Running until the next tick
    campaign_id = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        enroll(conn, campaign_id, "+16025551000")
        add_run(conn, campaign_id, kind, "running", datetime(2026, 4, 28, 1, tzinfo=UTC))
        assert campaign_status(conn, campaign_id, IN_RANGE) == alive
        # a pid of this host that no process has (pid_max is at most 2**22)
        conn.execute("update dial_runs set owner_pid = ?", [2**22 + 1])
        assert campaign_status(conn, campaign_id, IN_RANGE) == CampaignStatus.waiting
        assert list_campaigns(conn, IN_RANGE)[0]["status"] == "Waiting"


def test_campaign_is_completed_when_every_enrolled_contact_is_finished(campaign_db):
    campaign_id = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        enroll(conn, campaign_id, "+16025551000", finished=True)
        enroll(conn, campaign_id, "+16025551001", finished=False)
        assert campaign_status(conn, campaign_id, IN_RANGE) == CampaignStatus.waiting
        conn.execute("update campaign_contacts set finished_at = ? where campaign_id = ?", [NOW, campaign_id])
        assert campaign_status(conn, campaign_id, IN_RANGE) == CampaignStatus.completed


@pytest.mark.parametrize("entry, scope", [("+16025551001", "global"), ("+1602555100*", "global"),
                                          ("+16025551001", "campaign")])
def test_contacts_left_only_on_a_do_not_call_list_complete_the_campaign(campaign_db, entry, scope):
    # nobody will call them, so every contact is processed; taking the number off the list resumes it
    from dashboards.queries.campaigns import campaign_page
    from tasks.compliance import add_dnc, remove_dnc

    campaign_id = campaign_db["campaign_id"]
    list_of = campaign_id if scope == "campaign" else None
    with transaction(campaign_db["db"]) as conn:
        enroll(conn, campaign_id, "+16025551000", finished=True)
        enroll(conn, campaign_id, "+16025551001", finished=False)
        enroll(conn, campaign_id, "+16025552002", finished=False)
        add_dnc(conn, [entry], NOW, campaign_id=list_of)
        assert campaign_status(conn, campaign_id, IN_RANGE) == CampaignStatus.waiting  # +16025552002 is callable
        conn.execute("update campaign_contacts cc set finished_at = ? from contacts k where k.contact_id = cc.contact_id"
                     " and k.phone_e164 = '+16025552002'", [NOW])
        assert campaign_status(conn, campaign_id, IN_RANGE) == CampaignStatus.completed
        assert list_campaigns(conn, IN_RANGE)[0]["status"] == "Completed"
        assert campaign_page(conn, IN_RANGE)["status"].to_list() == ["Completed"]
        remove_dnc(conn, entry, campaign_id=list_of)
        assert campaign_status(conn, campaign_id, IN_RANGE) == CampaignStatus.waiting


def test_another_campaigns_list_does_not_complete_this_one(campaign_db):
    campaign_id = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        other = duplicate_campaign(conn, campaign_id, NOW)
        enroll(conn, campaign_id, "+16025551001", finished=False)
        from tasks.compliance import add_dnc
        add_dnc(conn, ["+16025551001"], NOW, campaign_id=other)
        assert campaign_status(conn, campaign_id, IN_RANGE) == CampaignStatus.waiting


# --- list ------------------------------------------------------------------------------------


def make_three(ids: dict) -> list[int]:
    with transaction(ids["db"]) as conn:
        return [create_campaign(conn, new_settings(ids, name=name), at) for name, at in (
            ("beta Leads", datetime(2026, 4, 21, tzinfo=UTC)),
            ("Alpha renewals", datetime(2026, 4, 22, tzinfo=UTC)),
            ("50% off promo", datetime(2026, 4, 23, tzinfo=UTC)),
        )]


@pytest.mark.parametrize(
    "search, sort, expected",
    [
        # newest first (the factory's campaign was created at the wall-clock time, after the others)
        (None, "created", ["Spring outreach", "50% off promo", "Alpha renewals", "beta Leads"]),
        (None, "name", ["50% off promo", "Alpha renewals", "beta Leads", "Spring outreach"]),
        ("LEADS", "created", ["beta Leads"]),  # case-insensitive
        ("re", "name", ["Alpha renewals", "Spring outreach"]),  # substring anywhere
        ("%", "name", ["50% off promo"]),  # taken literally, not as a LIKE wildcard
        ("%' or 1=1 --", "name", []),  # hostile text is just text
        ("", "name", ["50% off promo", "Alpha renewals", "beta Leads", "Spring outreach"]),
        (" renewals ", "name", ["Alpha renewals"]),  # spaces around the words are not part of a name
        ("  ", "name", ["50% off promo", "Alpha renewals", "beta Leads", "Spring outreach"]),
    ],
)
def test_list_search_and_sort(campaign_db, search, sort, expected):
    make_three(campaign_db)
    with connect(campaign_db["db"]) as conn:
        assert [r["name"] for r in list_campaigns(conn, NOW, search=search, sort=sort)] == expected


@pytest.mark.parametrize(
    "search, expected",
    [
        # case and accents aside, both ways, as the Contact List search (tasks.export_calls.contains_folded)
        ("medellin", ["Medellín Q3", "MEDELLIN renewals"]),
        ("MEDELLÍN", ["Medellín Q3", "MEDELLIN renewals"]),
        ("rene\u0301e", ["Renée_2026"]),  # a decomposed é typed finds the composed one stored
        ("zoë", ["Zoe\u0308 (50%)"]),  # and the other way round
        ("renee", ["Renée_2026"]),
        ("ÉÉ", ["Renée_2026"]),  # an accent typed on a letter stored plain, in capitals
        ("e_2", ["Renée_2026"]),  # _ is itself, not LIKE's any character
        ("e_", ["Renée_2026"]),
        ("0%", ["Zoe\u0308 (50%)"]),  # % is itself too
        ("straße", []),  # ß is a letter of its own, not folded to "ss"
    ],
)
def test_list_search_ignores_case_and_accents(campaign_db, search, expected):
    with transaction(campaign_db["db"]) as conn:
        for name in ("Medellín Q3", "MEDELLIN renewals", "Renée_2026", "Zoe\u0308 (50%)", "Strasse"):
            create_campaign(conn, new_settings(campaign_db, name=name), NOW)
        assert sorted(r["name"] for r in list_campaigns(conn, NOW, search=search, sort="name")) == sorted(expected)


def test_list_sorts_by_name_alphabetically_ignoring_case(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        for name in ("zeta", "Beta", "alpha"):
            create_campaign(conn, new_settings(campaign_db, name=name), NOW)
        assert [r["name"] for r in list_campaigns(conn, NOW, sort="name")] == ["alpha", "Beta", "Spring outreach", "zeta"]


def test_list_rows_carry_status_agent_contacts_and_creation(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        draft_id = create_campaign(conn, new_settings(campaign_db, start_date=None), NOW)
        enroll(conn, campaign_db["campaign_id"], "+16025551000")
        enroll(conn, campaign_db["campaign_id"], "+16025551001")
        rows = {r["campaign_id"]: r for r in list_campaigns(conn, IN_RANGE)}
    assert rows[draft_id] == {"campaign_id": draft_id, "name": "Autumn", "status": "Draft", "agent_name": "Ava",
                              "contacts": 0, "created_at": NOW}
    assert (rows[campaign_db["campaign_id"]]["status"], rows[campaign_db["campaign_id"]]["contacts"]) == ("Waiting", 2)


def test_list_refuses_an_unknown_sort(campaign_db):
    with connect(campaign_db["db"]) as conn, pytest.raises(ValidationError, match='sort: "created_at; drop" is not one of'):
        list_campaigns(conn, NOW, sort="created_at; drop")


# --- agents and numbers ----------------------------------------------------------------------


def test_agents_and_numbers_are_added_and_listed(db):
    with transaction(db) as conn:
        agent_id = add_agent(conn, " Ava ", "agent_1", NOW)
        number_id = add_number(conn, "+1 602 555 0100", "main", "active", NOW)
        set_number_status(conn, number_id, "error")
        assert list_agents(conn) == [{"agent_id": agent_id, "name": "Ava", "provider_agent_id": "agent_1", "created_at": NOW}]
        assert list_numbers(conn) == [{"number_id": number_id, "e164": "+16025550100", "nickname": "main",
                                       "sip_trunk_status": "error", "created_at": NOW}]


@pytest.mark.parametrize(
    "e164, status, message",
    [
        ("6025550100", "active", 'e164: "6025550100" is not in E.164 (it must start with + and the country code)'),
        ("+1602555", "active", 'e164: "+1602555" is not a valid phone number'),
        ("+16025550100", "broken", 'sip_trunk_status: "broken" is not one of active, inactive, error'),
    ],
)
def test_bad_numbers_are_refused(db, e164, status, message):
    with transaction(db) as conn, pytest.raises(ValidationError) as error:
        add_number(conn, e164, None, status, NOW)
    assert str(error.value) == message


def test_a_number_cannot_be_added_twice_and_unknown_ids_are_not_found(db):
    with transaction(db) as conn:
        add_number(conn, "+16025550100", None, "active", NOW)
        with pytest.raises(ValidationError, match=r"\+16025550100 is already an outbound number"):
            add_number(conn, "+1 (602) 555-0100", None, "active", NOW)
        with pytest.raises(NotFoundError, match="number 9 does not exist"):
            set_number_status(conn, 9, "inactive")


# --- YAML apply ------------------------------------------------------------------------------


def test_apply_example_on_a_fresh_database_creates_agent_numbers_and_campaign(db):
    with transaction(db) as conn:
        result = apply_yaml(conn, EXAMPLE_YAML, NOW)
        row = get_campaign(conn, result["campaign_id"])
        assert (count(conn, "agents"), count(conn, "phone_numbers")) == (1, 1)
    assert result == {"campaign_id": row["campaign_id"], "created": True, "changed": True}
    assert (row["name"], row["time_zone"], row["start_date"], row["max_attempts"], row["batch_size"]) == (
        "Spring outreach", "America/Phoenix", date(2026, 4, 27), 5, 100)


def test_apply_again_updates_by_name_and_leaves_an_unchanged_campaign_alone(db, tmp_path):
    with transaction(db) as conn:
        first = apply_yaml(conn, EXAMPLE_YAML, NOW)
    with transaction(db) as conn:
        assert apply_yaml(conn, EXAMPLE_YAML, LATER) == {"campaign_id": first["campaign_id"], "created": False, "changed": False}
        assert get_campaign(conn, first["campaign_id"])["updated_at"] == NOW
    edited = tmp_path / "c.yaml"
    edited.write_text(EXAMPLE_YAML.read_text().replace("batch_size: 100", "batch_size: 250"))
    with transaction(db) as conn:
        assert apply_yaml(conn, edited, LATER)["changed"] is True
        row = get_campaign(conn, first["campaign_id"])
        assert (row["batch_size"], row["updated_at"], count(conn, "campaigns"), count(conn, "agents")) == (250, LATER, 1, 1)


@pytest.mark.parametrize(
    "replace, append, message",
    [
        (("batch_size: 100", "batch_size: 0"), "", "batch_size: must be between 1 and 500, got 0"),
        (("batch_size: 100", "batch_size: lots"), "", "batch_size: Input should be a valid integer"),
        # YAML reads yes/on/true as a boolean, which pydantic alone would take for 1
        (("batch_size: 100", "batch_size: yes"), "", "batch_size: expected a number, got the yes/no value true"),
        (("max_attempts: 5 ", "max_attempts: on "), "", "max_attempts: expected a number, got the yes/no value true"),
        (("", ""), "colour: blue\n", "unknown key 'colour' (allowed: name, objective, agent,"),
        (("time_zone: America/Phoenix", "time_zone: Mars/Base"), "", 'time_zone: unknown time zone "Mars/Base"'),
        (('hours: [["08:00", "18:00"]]', "hours: [[08:00, 18:00]]"), "",
         'weekly_schedule: mon: times must be quoted text like "18:00", got the number 1080'),
        (("  provider_agent_id: agent_sim_1", "  provider_agent_id: agent_sim_1\n  colour: red"), "",
         "agent: unknown key 'colour' (allowed: name, provider_agent_id)"),
        (("rotation_enabled: false", "rotation_enabled: true"), "",
         "outbound_number_ids: rotation is on: choose two or more numbers (got 1)"),
        (("end_date: null", "end_date: 2026-04-01"), "", "end_date: end date 2026-04-01 is before the start date 2026-04-27"),
        (('  - e164: "+16025550100"', '  - e164: "+1602"'), "", 'outbound_numbers[0]: "+1602" is not a valid phone number'),
        (("outbound_numbers:\n", 'outbound_numbers:\n  - "+16025550199"\n'), "", "outbound_numbers[0]: no outbound number +16025550199"),
        (("name: Spring outreach ", "name: [1, 2] "), "", "name: Input should be a valid string"),
        (("calling_days: [mon", "calling_days: [mon, mon"), "batch_size: {", "not valid YAML"),
        # a control character: PyYAML's message ran over two lines
        (("name: Spring outreach ", "name: Spring\x1boutreach "), "", "not valid YAML: unacceptable character #x001b"),
    ],
)
def test_apply_bad_yaml_is_one_error_naming_file_and_key_and_writes_nothing(db, tmp_path, replace, append, message):
    bad = tmp_path / "bad.yaml"
    text = EXAMPLE_YAML.read_text()
    if replace[0]:
        assert replace[0] in text
        text = text.replace(replace[0], replace[1])
    bad.write_text(text + append)
    with pytest.raises(UserError) as error:
        with transaction(db) as conn:
            apply_yaml(conn, bad, NOW)
    assert str(error.value).startswith(f"{bad}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    with connect(db) as conn:  # the agent and number it declares were rolled back too
        assert (count(conn, "campaigns"), count(conn, "agents"), count(conn, "phone_numbers")) == (0, 0, 0)


def test_apply_creating_a_campaign_active_past_its_end_date_names_the_file(db, tmp_path):
    # the error named the file only when the YAML updated a campaign
    bad = tmp_path / "ended.yaml"
    bad.write_text(EXAMPLE_YAML.read_text().replace("end_date: null", "end_date: 2026-04-30"))
    with pytest.raises(UserError) as error:
        with transaction(db) as conn:
            apply_yaml(conn, bad, datetime(2026, 6, 1, tzinfo=UTC))
    assert str(error.value).startswith(f"{bad}: active: cannot create it active: its end date 2026-04-30 has passed")
    with connect(db) as conn:
        assert (count(conn, "campaigns"), count(conn, "agents")) == (0, 0)


def alias_bomb(levels: int) -> str:
    """A retry_policy whose aliases expand to 9**levels texts: a few hundred bytes of YAML."""
    value = '["x", "x", "x", "x", "x", "x", "x", "x", "x"]'
    for level in range(levels - 1):
        value = f"[&a{level} {value}" + f", *a{level}" * 8 + "]"
    return f"retry_policy: {value}\n"


def test_apply_an_alias_bomb_is_one_short_error_in_little_memory(db, tmp_path):
    import tracemalloc

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(EXAMPLE_YAML.read_text() + alias_bomb(7))  # 4.8 million values once expanded
    tracemalloc.start()
    try:
        with pytest.raises(UserError) as error:
            with transaction(db) as conn:
                apply_yaml(conn, bomb, NOW)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # it used to expand every alias into the error message (33 MB here; 2 GB and 14 GB of memory at 9 levels)
    assert "anchors (&) and aliases (*)" in str(error.value) and len(str(error.value)) < 300
    assert peak < 20 * 2**20
    with connect(db) as conn:
        assert count(conn, "campaigns") == 0


def test_apply_a_file_sharing_hours_through_an_anchor_works(db, tmp_path):
    shared = tmp_path / "shared.yaml"
    shared.write_text(EXAMPLE_YAML.read_text().replace('hours: [["08:00", "18:00"]]', (
        'weekly_schedule:\n  mon: &day [["08:00", "12:00"], ["13:00", "18:00"]]\n  tue: *day\n  wed: *day\n'
        '  thu: *day\n  fri: *day')))
    with transaction(db) as conn:
        row = get_campaign(conn, apply_yaml(conn, shared, NOW)["campaign_id"])
    assert row["weekly_schedule"]["fri"] == [["08:00", "12:00"], ["13:00", "18:00"]]


@pytest.mark.parametrize("number", ["9" * 5000, "0b" + "1" * 20000, "-" + "1" * 101])
def test_apply_an_absurdly_long_number_is_one_error(db, tmp_path, number):
    # Python refuses int() of more than 4,300 digits and printing one: both were tracebacks
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE_YAML.read_text().replace("max_attempts: 5 ", f"max_attempts: {number} "))
    with pytest.raises(UserError, match=r"\(line \d+\): a number [\d,]+ characters long is no setting"):
        with transaction(db) as conn:
            apply_yaml(conn, bad, NOW)


def test_apply_with_agent_by_name_requires_an_existing_agent(db, tmp_path):
    by_name = tmp_path / "by_name.yaml"
    by_name.write_text(EXAMPLE_YAML.read_text().replace("agent:\n  name: Ava\n  provider_agent_id: agent_sim_1", "agent: Ava"))
    with pytest.raises(UserError, match='agent: no agent named "Ava"'):
        with transaction(db) as conn:
            apply_yaml(conn, by_name, NOW)
    with transaction(db) as conn:
        agent_id = add_agent(conn, "Ava", None, NOW)
        assert get_campaign(conn, apply_yaml(conn, by_name, NOW)["campaign_id"])["agent_id"] == agent_id


def test_an_agent_name_already_in_use_is_refused(db):
    with transaction(db) as conn:
        first = add_agent(conn, "Bob", "agent_x", NOW)
        # the same name once trimmed; compared exactly, as campaign names are matched by `apply`
        with pytest.raises(ValidationError, match=f'^name: agent {first} is already named "Bob"; choose another name$'):
            add_agent(conn, " Bob ", None, NOW)
        add_agent(conn, "Bobby", None, NOW)
        assert [a["name"] for a in list_agents(conn)] == ["Bob", "Bobby"]


def _two_agents_named_bob(db) -> list[int]:
    """A store from before agent names were unique: two agents share a name."""
    with transaction(db) as conn:
        return [conn.execute("insert into agents (name, created_at) values ('Bob', ?) returning agent_id",
                             [NOW]).fetchone()[0] for _ in range(2)]


@pytest.mark.parametrize("agent", [
    "agent: Bob",  # refers to an agent by name
    "agent:\n  name: Bob\n  provider_agent_id: agent_y",  # declares (upserts) one by name
])
def test_apply_refuses_an_agent_name_several_agents_share_and_writes_nothing(db, tmp_path, agent):
    # it used to take the lowest id silently (and the mapping form updated that agent's provider id)
    first, second = _two_agents_named_bob(db)
    shared = tmp_path / "shared.yaml"
    shared.write_text(EXAMPLE_YAML.read_text().replace("agent:\n  name: Ava\n  provider_agent_id: agent_sim_1", agent))
    with pytest.raises(UserError) as error:
        with transaction(db) as conn:
            apply_yaml(conn, shared, NOW)
    assert str(error.value) == (f'{shared}: agent: 2 agents are named "Bob" (ids {first}, {second}); '
                                f"give the id of the one to use instead, e.g. agent: {first}")
    with connect(db) as conn:
        assert (count(conn, "campaigns"), count(conn, "phone_numbers")) == (0, 0)
        assert count(conn, "agents", "provider_agent_id is null") == 2


def test_apply_with_an_agent_id_picks_one_of_agents_sharing_a_name(db, tmp_path):
    _, second = _two_agents_named_bob(db)
    by_id = tmp_path / "by_id.yaml"
    by_id.write_text(EXAMPLE_YAML.read_text().replace("agent:\n  name: Ava\n  provider_agent_id: agent_sim_1",
                                                      f"agent: {second}"))
    with transaction(db) as conn:
        assert get_campaign(conn, apply_yaml(conn, by_id, NOW)["campaign_id"])["agent_id"] == second


@pytest.mark.parametrize("agent_id", ["99", "0", "9" * 30])
def test_apply_with_an_unknown_agent_id_is_one_error(db, tmp_path, agent_id):
    by_id = tmp_path / "by_id.yaml"
    by_id.write_text(EXAMPLE_YAML.read_text().replace("agent:\n  name: Ava\n  provider_agent_id: agent_sim_1",
                                                      f"agent: {agent_id}"))
    with pytest.raises(UserError, match=f"^{by_id}: agent: no agent with id {agent_id} "):
        with transaction(db) as conn:
            apply_yaml(conn, by_id, NOW)


def test_apply_missing_file_is_a_user_error(db, tmp_path):
    with pytest.raises(UserError, match="file not found"):
        with transaction(db) as conn:
            apply_yaml(conn, tmp_path / "nope.yaml", NOW)


def test_stored_schedule_is_json_readable_by_sql(campaign_db):
    with connect(campaign_db["db"]) as conn:
        raw = conn.execute("select weekly_schedule from campaigns").fetchone()[0]
    assert json.loads(raw)["mon"] == [["08:00", "18:00"]]
