"""Contact List reads on the hand-computed campaign of tabs_fixture (contacts A..D, C never called)."""

from __future__ import annotations

from datetime import datetime

import pytest

from dashboards.queries.contacts import contact_page, count_contacts
from tasks.contacts_import import remove_contact_from_campaign
from tasks.errors import NotFoundError, ValidationError
from tasks.store import connect, transaction
from tests.dashboards.tabs_fixture import make_tabs_db
from tests.factories import add_contacts


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """The fixture campaign, built once for the tests that only read."""
    return make_tabs_db(tmp_path_factory.mktemp("contacts") / "tabs.duckdb")


@pytest.fixture
def tabs(db):
    """A fresh copy for the tests that write."""
    return make_tabs_db(db)


def _names(frame) -> list[str]:
    return frame["Name"].to_list()


def test_every_enrolled_contact_with_its_stats(shared):
    with connect(shared["db"]) as conn:
        page = contact_page(conn, shared["campaign_id"], sort="phone", descending=False)
    rows = {r["Name"]: r for r in page.to_dicts()}
    assert list(rows) == ["Person 0", "Person 1", "Person 2", "Person 3"]
    a, b, c, d = rows.values()
    # A: c1 (connected, successful) + c2 (voicemail): 2 attempts, 1 connected, 1 successful
    assert (a["Attempts"], a["Connected"], a["Successful"], a["Credits"], a["Duration"]) == (2, 1, 1, 110, 140.0)
    assert a["Last Disconnection"] == "voicemail_reached"
    assert a["Last Call Date"] == datetime(2026, 4, 28, 9, 0)  # Phoenix time
    # B's last attempt is c4 (23:30 local on Apr 28)
    assert (b["Attempts"], b["Connected"], b["Successful"], b["Last Disconnection"]) == (2, 1, 0, "user_hangup")
    assert b["Last Call Date"] == datetime(2026, 4, 28, 23, 30)
    # C was never called: it is listed with zeros
    assert (c["Attempts"], c["Connected"], c["Credits"], c["Last Disconnection"], c["Last Call Date"]) == (
        0, 0, 0, None, None)
    # D's only call was a concurrency refusal: not an attempt
    assert (d["Attempts"], d["Last Disconnection"]) == (0, None)
    assert a["Phone Number"] == "+16025550000"


@pytest.mark.parametrize(
    ("sort", "descending", "expected"),
    [
        ("attempts", True, ["Person 1", "Person 0", "Person 3", "Person 2"]),  # ties by contact id, same direction
        ("credits", True, ["Person 0", "Person 1", "Person 3", "Person 2"]),
        ("last_call", True, ["Person 1", "Person 0", "Person 3", "Person 2"]),  # never called last
        ("name", False, ["Person 0", "Person 1", "Person 2", "Person 3"]),
    ],
)
def test_sorting(shared, sort, descending, expected):
    with connect(shared["db"]) as conn:
        assert _names(contact_page(conn, shared["campaign_id"], sort=sort, descending=descending)) == expected


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("person 2", ["Person 2"]),
        ("0003", ["Person 3"]),
        ("+1 602 555 0001", ["Person 1"]),
        ("acme", ["Person 3", "Person 2", "Person 1", "Person 0"]),  # company matches too
        ("", ["Person 3", "Person 2", "Person 1", "Person 0"]),
        ("'; delete from contacts; --", []),
        ("' or '1'='1", []),
        ("%", []),
        ("x" * 10_000, []),
    ],
)
def test_search(shared, search, expected):
    with connect(shared["db"]) as conn:
        page = contact_page(conn, shared["campaign_id"], search, sort="name", descending=True)
        assert _names(page) == expected
        assert count_contacts(conn, shared["campaign_id"], search) == len(expected)
        assert conn.execute("select count(*) from contacts").fetchone()[0] == 4


@pytest.mark.parametrize(("page", "expected"), [(1, ["Person 0", "Person 1", "Person 2"]), (2, ["Person 3"]), (3, [])])
def test_paging(shared, page, expected):
    with connect(shared["db"]) as conn:
        frame = contact_page(conn, shared["campaign_id"], page=page, page_size=3, sort="name", descending=False)
    assert _names(frame) == expected


@pytest.mark.parametrize(("sort", "page"), [('"Name"; drop table contacts', 1), ("name", 0)])
def test_bad_sort_or_page_is_refused(shared, sort, page):
    with connect(shared["db"]) as conn, pytest.raises(ValidationError):
        contact_page(conn, shared["campaign_id"], sort=sort, page=page)


def test_unknown_campaign(shared):
    with connect(shared["db"]) as conn, pytest.raises(NotFoundError):
        count_contacts(conn, 999)


def test_removed_contact_leaves_the_list_but_not_the_crm(tabs):
    with transaction() as conn:
        remove_contact_from_campaign(conn, tabs["campaign_id"], tabs["A"])
    with connect() as conn:
        assert _names(contact_page(conn, tabs["campaign_id"], sort="name", descending=False)) == [
            "Person 1", "Person 2", "Person 3"]
        assert count_contacts(conn, tabs["campaign_id"]) == 3
        assert conn.execute("select count(*) from contacts where contact_id = ?", [tabs["A"]]).fetchone()[0] == 1


def test_contact_enrolled_after_the_last_aggregation_shows_zeros(tabs, db):
    add_contacts(db, tabs["campaign_id"], 1, first=9)
    with connect() as conn:
        row = contact_page(conn, tabs["campaign_id"], "person 9").row(0, named=True)
    assert (row["Attempts"], row["Connected"], row["Successful"], row["Credits"], row["Duration"]) == (0, 0, 0, 0, 0.0)


@pytest.mark.parametrize(
    "hostile",
    ["_", "\\", "%_\\%", "\x00", "person\x00 2", "acme\\", "\" or 1=1 --", "🙂" * 3000, "0" * 10_000,
     "' || (select string_agg(name, ',') from contacts) || '"],
)
def test_hostile_search_returns_nothing(shared, hostile):
    with connect(shared["db"]) as conn:
        assert count_contacts(conn, shared["campaign_id"], hostile) == 0
        assert contact_page(conn, shared["campaign_id"], hostile).height == 0


@pytest.fixture(scope="module")
def accented(tmp_path_factory):
    """The fixture campaign with accented CRM fields: A "Lucía López", B "LUCIA LOPEZ", C's company "Café Olé",
    D "Zoë Ñúñez" (ë decomposed: e + combining diaeresis) with the e-mail "Zoe.Nunez@Example.com"."""
    tabs = make_tabs_db(tmp_path_factory.mktemp("accents") / "tabs.duckdb")
    with transaction(tabs["db"]) as conn:
        for who, name in (("A", "Lucía López"), ("B", "LUCIA LOPEZ"), ("D", "Zoe\u0308 Ñúñez")):
            conn.execute("update contacts set name = ? where contact_id = ?", [name, tabs[who]])
        conn.execute("update contacts set company = 'Café Olé' where contact_id = ?", [tabs["C"]])
        conn.execute("update contacts set email = 'Zoe.Nunez@Example.com' where contact_id = ?", [tabs["D"]])
    return tabs


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        # "lopez" found 0 of the accented spellings; "López" missed the plain ones
        ("lopez", ["LUCIA LOPEZ", "Lucía López"]),
        ("López", ["LUCIA LOPEZ", "Lucía López"]),
        ("LUCÍA", ["LUCIA LOPEZ", "Lucía López"]),
        ("zoë ñúñez", ["Zoe\u0308 Ñúñez"]),
        ("ZOE NUNEZ", ["Zoe\u0308 Ñúñez"]),
        # company and e-mail the same way
        ("cafe ole", ["Person 2"]),
        ("CAFÉ", ["Person 2"]),
        ("zoe.nunez@example.com", ["Zoe\u0308 Ñúñez"]),
        ("acme", ["LUCIA LOPEZ", "Lucía López", "Zoe\u0308 Ñúñez"]),
    ],
)
def test_search_ignores_accents_and_case(accented, search, expected):
    with connect(accented["db"]) as conn:
        page = contact_page(conn, accented["campaign_id"], search, sort="name", descending=False)
        assert sorted(_names(page)) == sorted(expected)
        assert count_contacts(conn, accented["campaign_id"], search) == len(expected)
