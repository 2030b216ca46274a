"""The campaign list, header and choice queries, without Streamlit."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

import pytest

from dashboards.queries.campaigns import (
    agent_choices,
    campaign_header,
    campaign_page,
    count_campaigns,
    number_choices,
)
from tasks.campaigns import create_campaign, get_campaign
from tasks.dialing import HOST
from tasks.errors import NotFoundError, ValidationError
from tasks.store import connect, transaction
from tests.factories import add_contacts, make_campaign_db

NOW = datetime(2026, 5, 4, 18, 0, tzinfo=UTC)  # a Monday, 11:00 in Phoenix


def _add(db, name: str, created: datetime, **changes) -> int:
    with transaction(db) as conn:
        base = get_campaign(conn, 1)
        data = {k: base[k] for k in ("agent_id", "time_zone", "country", "calling_days", "weekly_schedule",
                                     "outbound_number_ids")} | {"name": name} | changes
        campaign_id = create_campaign(conn, data, created)
    return campaign_id


@pytest.fixture
def three(db) -> dict:
    """Spring outreach (active, started), a draft "alpha", and "Zulu (Copy)"; created in that order."""
    ids = make_campaign_db(db, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    _add(db, "alpha draft", datetime(2026, 2, 1, tzinfo=UTC))
    _add(db, "Zulu (Copy)", datetime(2026, 3, 1, tzinfo=UTC), start_date=date(2026, 6, 1))
    return ids


def _names(frame) -> list[str]:
    return frame["name"].to_list()


def test_page_is_newest_first_by_default(three):
    with connect(three["db"]) as conn:
        frame = campaign_page(conn, NOW)
    assert _names(frame) == ["Zulu (Copy)", "alpha draft", "Spring outreach"]
    # derived statuses: future start, never activated → Draft; no start → Draft; active in range → Waiting
    assert frame["status"].to_list() == ["Draft", "Draft", "Waiting"]


def test_sort_by_name_ignores_case(three):
    with connect(three["db"]) as conn:
        assert _names(campaign_page(conn, NOW, sort="name")) == ["alpha draft", "Spring outreach", "Zulu (Copy)"]


@pytest.mark.parametrize(("search", "expected"), [
    ("SPRING", ["Spring outreach"]),  # case-insensitive
    ("(copy)", ["Zulu (Copy)"]),  # brackets are literal text, not a pattern
    ("%", []),  # LIKE wildcards are literal too
    ("'; drop table campaigns; --", []),  # a hostile string is only ever a bound value
    ("", ["Zulu (Copy)", "alpha draft", "Spring outreach"]),
    # spaces typed around the words are not part of any name (names are stored trimmed)
    ("outreach ", ["Spring outreach"]),
    ("   ", ["Zulu (Copy)", "alpha draft", "Spring outreach"]),
])
def test_search_by_name(three, search, expected):
    with connect(three["db"]) as conn:
        assert _names(campaign_page(conn, NOW, search=search)) == expected
        assert count_campaigns(conn, search) == len(expected)
        assert conn.execute("select count(*) from campaigns").fetchone()[0] == 3


@pytest.mark.parametrize("search", ["medellin", "MEDELLÍN", "medelli\u0301n"])
def test_search_ignores_accents_as_the_contact_search_does(three, search):
    # the list's rows match as tasks.export_calls.contains_folded does: case and accents aside, both ways
    _add(three["db"], "Medellín Q3", datetime(2026, 4, 1, tzinfo=UTC))
    with connect(three["db"]) as conn:
        assert _names(campaign_page(conn, NOW, search=search)) == ["Medellín Q3"]
        assert count_campaigns(conn, search) == 1  # the pager counts what the page lists


def test_paging_with_limit_and_offset(three):
    with connect(three["db"]) as conn:
        pages = [_names(campaign_page(conn, NOW, limit=2, offset=o)) for o in (0, 2, 4)]
    assert pages == [["Zulu (Copy)", "alpha draft"], ["Spring outreach"], []]


def test_unknown_sort_is_refused(three):
    with connect(three["db"]) as conn, pytest.raises(ValidationError, match="sort"):
        campaign_page(conn, NOW, sort="name; drop table campaigns")


def test_page_counts_contacts_and_names_the_agent(three):
    add_contacts(three["db"], three["campaign_id"], 4)
    with connect(three["db"]) as conn:
        frame = campaign_page(conn, NOW, sort="name")
    assert frame.select("name", "agent_name", "contacts").rows() == [
        ("alpha draft", "Ava", 0), ("Spring outreach", "Ava", 4), ("Zulu (Copy)", "Ava", 0)]


def test_header_shows_manual_running_while_a_run_button_batch_dials(campaign_db):
    cid = campaign_db["campaign_id"]
    with transaction(campaign_db["db"]) as conn:
        conn.execute("insert into dial_runs (campaign_id, kind, state, started_at, owner_host, owner_pid, heartbeat_at)"
                     " values (?, 'manual', 'running', ?, ?, ?, ?)", [cid, NOW, HOST, os.getpid(), NOW])
    with connect(campaign_db["db"]) as conn:
        head = campaign_header(conn, cid, NOW)
    assert (head["name"], head["status"], head["start_date"], head["active"]) == (
        "Spring outreach", "Manual Running", date(2026, 4, 27), True)


def test_header_of_a_missing_campaign(campaign_db):
    with connect(campaign_db["db"]) as conn, pytest.raises(NotFoundError):
        campaign_header(conn, 999, NOW)


def test_choices_label_numbers_with_nickname_e164_and_trunk_status(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        conn.execute("update phone_numbers set sip_trunk_status = 'error' where number_id = 2")
    with connect(campaign_db["db"]) as conn:
        assert agent_choices(conn) == {campaign_db["agent_id"]: "Ava"}
        assert number_choices(conn) == {1: "Phoenix main · +16025550100 · active",
                                        2: "Phoenix backup · +16025550101 · error"}
