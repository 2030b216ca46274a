"""Call Logs reads on the hand-computed campaign of tabs_fixture (ids c1..c5, contacts A..D)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from dashboards.queries.calls import (
    CallFilters,
    call_detail,
    call_page,
    contact_history,
    count_calls,
    export_arguments,
    search_terms,
)
from tasks.errors import NotFoundError, ValidationError
from tasks.feedback import set_feedback
from tasks.store import connect, transaction
from tests.dashboards.tabs_fixture import NOW, make_tabs_db


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """The fixture campaign, built once for the tests that only read."""
    return make_tabs_db(tmp_path_factory.mktemp("tabs") / "tabs.duckdb")


@pytest.fixture
def tabs(db):
    """A fresh copy for the tests that write (feedback, other campaigns)."""
    return make_tabs_db(db)


def _ids(tabs, frame) -> list[str]:
    names = {v: k for k, v in tabs.items() if k in ("c1", "c2", "c3", "c4", "c5")}
    return [names[i] for i in frame["call_id"].to_list()]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (CallFilters(), ["c4", "c5", "c2", "c3", "c1"]),  # newest first by queue time
        (CallFilters(disconnect_reasons=("agent_hangup", "user_hangup")), ["c4", "c1"]),
        (CallFilters(call_successful=True), ["c1"]),
        # unknown success counts as No
        (CallFilters(call_successful=False), ["c4", "c5", "c2", "c3"]),
        (CallFilters(min_duration_seconds=30), ["c4", "c1"]),
        # no duration counts as 0 s
        (CallFilters(max_duration_seconds=30), ["c5", "c2", "c3"]),
        # campaign-local day: c4 is 06:30 UTC Apr 29 = 23:30 Apr 28 in Phoenix
        (CallFilters(date_from=date(2026, 4, 28), date_to=date(2026, 4, 28)), ["c4", "c5", "c2"]),
        (CallFilters(date_from=date(2026, 4, 29)), []),
        (CallFilters(search="person 1"), ["c4", "c3"]),
        (CallFilters(search="PERSON"), ["c4", "c5", "c2", "c3", "c1"]),
        (CallFilters(search="0001"), ["c4", "c3"]),
        (CallFilters(search="+1 (602) 555-0000"), ["c2", "c1"]),
        (CallFilters(search="person 1", call_successful=False, min_duration_seconds=1), ["c4"]),
    ],
)
def test_filters(shared, filters, expected):
    with connect(shared["db"]) as conn:
        page = call_page(conn, shared["campaign_id"], filters)
        assert _ids(shared, page) == expected
        assert count_calls(conn, shared["campaign_id"], filters) == len(expected)


def test_contact_filter(shared):
    with connect(shared["db"]) as conn:
        page = call_page(conn, shared["campaign_id"], CallFilters(contact_id=shared["A"]))
    assert _ids(shared, page) == ["c2", "c1"]


@pytest.mark.parametrize(
    ("page", "expected"),
    [(1, ["c4", "c5"]), (2, ["c2", "c3"]), (3, ["c1"]), (4, [])],
)
def test_paging(shared, page, expected):
    with connect(shared["db"]) as conn:
        frame = call_page(conn, shared["campaign_id"], page=page, page_size=2)
    assert _ids(shared, frame) == expected


@pytest.mark.parametrize(
    ("sort", "descending", "expected"),
    [
        ("duration", False, ["c3", "c2", "c4", "c1", "c5"]),  # unknown duration last either way
        ("duration", True, ["c1", "c4", "c2", "c3", "c5"]),
        ("credits", True, ["c1", "c4", "c2", "c5", "c3"]),  # ties (0 credits) by call id, same direction
        ("date", False, ["c1", "c3", "c2", "c5", "c4"]),
        ("phone", False, ["c1", "c2", "c3", "c4", "c5"]),
    ],
)
def test_sorting(shared, sort, descending, expected):
    with connect(shared["db"]) as conn:
        frame = call_page(conn, shared["campaign_id"], sort=sort, descending=descending)
    assert _ids(shared, frame) == expected


def test_page_columns_and_local_date(tabs):
    with connect() as conn:
        with transaction() as tx:
            set_feedback(tx, tabs["c1"], "up", "great close", NOW)
        row = call_page(conn, tabs["campaign_id"], CallFilters(call_successful=True)).row(0, named=True)
    assert row["Phone Number"] == "+16025550000"
    assert row["Contact"] == "Person 0"
    assert (row["Disconnect Reason"], row["Status"], row["Call Successful"]) == ("agent_hangup", "ended", True)
    assert (row["Duration"], row["Credits"], row["Tools"]) == (120.0, 100, 2)
    assert row["Feedback"] == "Good · great close"
    assert row["Date"] == datetime(2026, 4, 27, 9, 0)  # 16:00 UTC in Phoenix


@pytest.mark.parametrize(
    "hostile",
    [
        "'; drop table calls; --",
        "\" or 1=1 --",
        "' or '1'='1",
        "%",
        "_",
        "a" * 10_000,
        "0" * 10_000,
        "Person 0' union select * from contacts --",
    ],
)
def test_hostile_search_returns_nothing_it_should_not(shared, hostile):
    with connect(shared["db"]) as conn:
        page = call_page(conn, shared["campaign_id"], CallFilters(search=hostile))
        assert count_calls(conn, shared["campaign_id"], CallFilters(search=hostile)) == page.height
        assert conn.execute("select count(*) from calls").fetchone()[0] == 5
    assert page.height == 0


def test_other_campaigns_calls_never_show(tabs, db):
    from tests.factories import add_contacts

    with transaction() as conn:
        other = conn.execute(
            "insert into campaigns (name, agent_id, weekly_schedule, time_zone) values ('Other', 1, '{}', 'UTC')"
            " returning campaign_id"
        ).fetchone()[0]
    add_contacts(db, other, 1, first=50)
    with connect() as conn:
        assert call_page(conn, other).height == 0
        assert count_calls(conn, tabs["campaign_id"]) == 5


@pytest.mark.parametrize(("sort", "page", "size"), [("queued_at; drop table calls", 1, 50), ("date", 0, 50),
                                                    ("date", 1, 0), ("date", 1, 5000)])
def test_bad_sort_or_page_is_refused(shared, sort, page, size):
    with connect(shared["db"]) as conn, pytest.raises(ValidationError):
        call_page(conn, shared["campaign_id"], sort=sort, page=page, page_size=size)


def test_call_detail_decodes_json_and_feedback(tabs):
    with transaction() as conn:
        set_feedback(conn, tabs["c1"], "down", "too pushy", NOW)
        detail = call_detail(conn, tabs["campaign_id"], tabs["c1"])
    assert detail["dynamic_variables"] == {"plan": "gold"}
    assert detail["custom_analysis"] == {"interested": True}
    assert (detail["feedback_rating"], detail["feedback_comment"]) == ("down", "too pushy")
    assert detail["transcript"] == "Agent: Hello\nUser: Hi"
    assert detail["local_date"] == datetime(2026, 4, 27, 9, 0)
    assert detail["contact_name"] == "Person 0"


def test_call_detail_of_another_campaign_is_not_found(shared):
    with connect(shared["db"]) as conn, pytest.raises(NotFoundError):
        call_detail(conn, shared["campaign_id"] + 1, shared["c1"])


def test_contact_history_oldest_first(shared):
    with connect(shared["db"]) as conn:
        history = contact_history(conn, shared["campaign_id"], shared["B"])
    assert history["call_id"].to_list() == [shared["c3"], shared["c4"]]
    assert history["Date"].to_list() == [datetime(2026, 4, 27, 10, 0), datetime(2026, 4, 28, 23, 30)]


@pytest.mark.parametrize(
    ("search", "expected"),
    # a name is kept as typed: the SQL folds case and accents on both sides (Python's lower() is not DuckDB's)
    [("", (None, None)), ("  +1 (602) 555-0000 ", ("16025550000", None)), ("Ana María", (None, "Ana María")),
     ("+", (None, None)), ("a" * 500, (None, "a" * 200))],
)
def test_search_terms(search, expected):
    assert search_terms(search) == expected


def test_export_arguments_follow_the_filters():
    filters = CallFilters(search="555 0001", disconnect_reasons=("dial_busy",), call_successful=False,
                          min_duration_seconds=5, date_from=date(2026, 4, 27), contact_id=7)
    assert export_arguments(filters) == (
        date(2026, 4, 27), None,
        {"disconnect_reason": ["dial_busy"], "call_successful": False, "min_duration_seconds": 5,
         "contact_id": 7, "phone_contains": "5550001"},
    )
    assert export_arguments(CallFilters(search="Person 1"))[2] == {"name_contains": "Person 1"}


@pytest.mark.parametrize("search", ["0001", "person 1", "PERSON 1", "Person"])
def test_export_with_the_tabs_filters_writes_matching_rows(shared, tmp_path, search):
    # a search by contact name too: the download used to hold every name's calls
    from tasks.export_calls import export_calls

    filters = CallFilters(search=search, call_successful=False)
    with connect(shared["db"]) as conn:
        written = export_calls(conn, shared["campaign_id"], tmp_path / "x.xlsx", *export_arguments(filters))
        shown = count_calls(conn, shared["campaign_id"], filters)
        assert written == shown and 0 < shown
        if search != "Person":  # one contact's calls, fewer than everyone's
            assert shown < count_calls(conn, shared["campaign_id"], CallFilters(call_successful=False))


@pytest.mark.parametrize("hostile", ["%", "_", "\\", "' or 1=1 --", "\x00"])
def test_a_hostile_name_search_exports_nothing(shared, tmp_path, hostile):
    from tasks.export_calls import export_calls

    filters = CallFilters(search=hostile)
    with connect(shared["db"]) as conn:
        written = export_calls(conn, shared["campaign_id"], tmp_path / "x.xlsx", *export_arguments(filters))
        assert written == count_calls(conn, shared["campaign_id"], filters) == 0


@pytest.mark.parametrize(
    "hostile",
    [
        "\\",  # a LIKE escape character is only text
        "%_\\%",
        "\x00",
        "Person\x00 0",
        "person 0\\",
        "' || (select string_agg(name, ',') from contacts) || '",
        "🙂" * 3000,
        "\u202eperson",  # a right-to-left override is not stripped into a match
    ],
)
def test_more_hostile_searches_return_nothing(shared, hostile):
    with connect(shared["db"]) as conn:
        page = call_page(conn, shared["campaign_id"], CallFilters(search=hostile))
        assert (count_calls(conn, shared["campaign_id"], CallFilters(search=hostile)), page.height) == (0, 0)


def test_hostile_search_on_a_read_only_connection(shared):
    # the analyst snapshot and read-only sessions must search too (the match list is a connection variable)
    with connect(shared["db"], read_only=True) as conn:
        assert count_calls(conn, shared["campaign_id"], CallFilters(search="'; drop table calls; --")) == 0
        assert _ids(shared, call_page(conn, shared["campaign_id"], CallFilters(search="person 1"))) == ["c4", "c3"]


NAME_SEARCHES = [
    (CallFilters(search="person 1"), ["c4", "c3"]),
    (CallFilters(search="PERSON"), ["c4", "c5", "c2", "c3", "c1"]),
    (CallFilters(search="person 1", call_successful=False, min_duration_seconds=1), ["c4"]),
    (CallFilters(search="person", date_from=date(2026, 4, 28), date_to=date(2026, 4, 28)), ["c4", "c5", "c2"]),
    (CallFilters(search="person 9"), []),
]


@pytest.mark.parametrize(
    ("small_match", "max_span"),
    [
        (2000, 1 << 27),  # a few matching contacts: their id list
        (0, 1 << 27),  # many: the bitmap over contact ids
        (2000, 0),  # contact ids too far apart for a bitmap: the plain semi-join
    ],
)
@pytest.mark.parametrize(("filters", "expected"), NAME_SEARCHES)
def test_name_search_paths_agree(shared, monkeypatch, small_match, max_span, filters, expected):
    from dashboards.queries import calls

    monkeypatch.setattr(calls, "SMALL_MATCH", small_match)
    monkeypatch.setattr(calls, "MAX_BITMAP_SPAN", max_span)
    with connect(shared["db"]) as conn:
        assert _ids(shared, call_page(conn, shared["campaign_id"], filters)) == expected
        assert count_calls(conn, shared["campaign_id"], filters) == len(expected)


def test_name_search_sees_renamed_contacts_and_far_apart_ids(tabs, monkeypatch):
    from dashboards.queries import calls

    monkeypatch.setattr(calls, "SMALL_MATCH", 0)  # the bitmap, whose first bit is the lowest contact id
    with transaction() as conn:
        conn.execute("update contacts set name = 'Zoë Renamed' where contact_id = ?", [tabs["B"]])
        conn.execute("insert into contacts (contact_id, phone_e164, name) values (5000000, '+16025559999', 'Zed Far')")
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, 5000000)", [tabs["campaign_id"]])
        far_call = conn.execute(
            "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status, provider,"
            " queued_at, updated_at) values (?, 5000000, 'far', 1, '+16025559999', 'ended', 'simulator', ?, ?)"
            " returning call_id", [tabs["campaign_id"], NOW, NOW],
        ).fetchone()[0]
    with connect() as conn:
        assert _ids(tabs, call_page(conn, tabs["campaign_id"], CallFilters(search="zoë"))) == ["c4", "c3"]
        assert count_calls(conn, tabs["campaign_id"], CallFilters(search="person 1")) == 0  # the old name
        assert call_page(conn, tabs["campaign_id"], CallFilters(search="zed far"))["call_id"].to_list() == [far_call]


def test_date_is_when_the_call_was_placed_and_sorting_stays_on_the_claim(tabs):
    # c1 (claimed 16:00 UTC) registered 16:07; c3 (claimed 17:00) has only a start, 17:02; the rest
    # were never registered nor started, so their claim time stands in
    with transaction() as conn:
        conn.execute("update calls set registered_at = timestamptz '2026-04-27 16:07:00+00',"
                     " started_at = timestamptz '2026-04-27 16:08:00+00' where call_id = ?", [tabs["c1"]])
        conn.execute("update calls set started_at = timestamptz '2026-04-27 17:02:00+00' where call_id = ?",
                     [tabs["c3"]])
    with connect() as conn:
        page = call_page(conn, tabs["campaign_id"], sort="date", descending=False)
        detail = call_detail(conn, tabs["campaign_id"], tabs["c1"])
        history = contact_history(conn, tabs["campaign_id"], tabs["B"])
    assert _ids(tabs, page) == ["c1", "c3", "c2", "c5", "c4"]  # queue order
    assert page["Date"].to_list()[:2] == [datetime(2026, 4, 27, 9, 7), datetime(2026, 4, 27, 10, 2)]  # Phoenix
    assert page["Date"].to_list()[2] == datetime(2026, 4, 28, 9, 0)  # c2: never registered, its claim
    assert detail["local_date"] == datetime(2026, 4, 27, 9, 7)
    assert history["Date"].to_list() == [datetime(2026, 4, 27, 10, 2), datetime(2026, 4, 28, 23, 30)]


def test_tools_of_a_call_that_never_connected_read_zero(shared):
    # c3 (not connected) and c5 (refused) used no tools: 0, not an empty cell; stored counts as they are
    with connect(shared["db"]) as conn:
        frame = call_page(conn, shared["campaign_id"])
    tools = dict(zip(_ids(shared, frame), frame["Tools"].to_list()))
    assert (tools["c3"], tools["c5"], tools["c2"], tools["c1"]) == (0, 0, 0, 2)


# ----------------------------------------------------------------------------- accents and case

@pytest.fixture(scope="module")
def accented(tmp_path_factory):
    """The fixture campaign with names as a CRM holds them: A "Lucía López", B "LUCIA LOPEZ", D "Zoë Ñúñez" with
    its ë written decomposed (e + combining diaeresis, as some systems store it); C stays "Person 2"."""
    tabs = make_tabs_db(tmp_path_factory.mktemp("accents") / "tabs.duckdb")
    with transaction(tabs["db"]) as conn:
        for who, name in (("A", "Lucía López"), ("B", "LUCIA LOPEZ"), ("D", "Zoe\u0308 Ñúñez")):
            conn.execute("update contacts set name = ? where contact_id = ?", [name, tabs[who]])
    return tabs


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        # a manager typing without accents found only the unaccented spelling (A's 2 calls were missing)
        ("Lucia", ["c4", "c2", "c3", "c1"]),
        ("lopez", ["c4", "c2", "c3", "c1"]),
        # typed with accents, the unaccented spelling is found too, in any case
        ("Lucía", ["c4", "c2", "c3", "c1"]),
        ("LÓPEZ", ["c4", "c2", "c3", "c1"]),
        ("lucía lópez", ["c4", "c2", "c3", "c1"]),
        # a decomposed ë matches a typed ë (composed) and a plain e
        ("zoë", ["c5"]),
        ("ZOE", ["c5"]),
        ("nunez", ["c5"]),
        ("ÑÚÑEZ", ["c5"]),
        ("lucas", []),
    ],
)
def test_name_search_ignores_accents_and_case_and_the_export_matches(accented, tmp_path, search, expected):
    from tasks.export_calls import export_calls

    filters = CallFilters(search=search)
    with connect(accented["db"]) as conn:
        assert _ids(accented, call_page(conn, accented["campaign_id"], filters)) == expected
        assert count_calls(conn, accented["campaign_id"], filters) == len(expected)
        # the Excel download holds what the tab shows
        written = export_calls(conn, accented["campaign_id"], tmp_path / "x.xlsx", *export_arguments(filters))
    assert written == len(expected)


def test_name_search_over_a_wide_id_span_ignores_accents_too(accented, monkeypatch):
    # contact ids spread wider than a bitmap: the plain semi-join path matches the same way
    from dashboards.queries import calls

    monkeypatch.setattr(calls, "MAX_BITMAP_SPAN", 1)
    with connect(accented["db"]) as conn:
        assert _ids(accented, call_page(conn, accented["campaign_id"], CallFilters(search="lopez"))) == [
            "c4", "c2", "c3", "c1"]


@pytest.mark.parametrize(("seconds", "shown"), [(39.6, "40 sec"), (40.4, "40 sec"), (39.5, "40 sec"), (40.5, "40 sec"),
                                                 (38.5, "38 sec"), (41.5, "42 sec")])
def test_the_duration_filter_keeps_what_the_table_shows(tabs, tmp_path, seconds, shown):
    # a call of 39.6 s reads "40 sec" and was left out of "from 40 sec"; the export kept the same rows as the filter
    from dashboards.components import format_duration
    from tasks.export_calls import export_calls

    with transaction(tabs["db"]) as conn:
        conn.execute("update calls set duration_seconds = ? where call_id = ?", [seconds, tabs["c4"]])
    assert format_duration(seconds) == shown
    at_40 = shown == "40 sec"
    for filters in (CallFilters(min_duration_seconds=40), CallFilters(max_duration_seconds=40)):
        with connect(tabs["db"]) as conn:
            page = _ids(tabs, call_page(conn, tabs["campaign_id"], filters))
        inside = "c4" in page
        expected = at_40 or (seconds > 40 if filters.min_duration_seconds else seconds < 40)
        assert inside == expected, (filters, page)
        date_from, date_to, export_filters = export_arguments(filters)
        out = tmp_path / f"calls-{seconds}-{inside}.xlsx"
        with connect(tabs["db"]) as conn:
            written = export_calls(conn, tabs["campaign_id"], out, date_from, date_to, export_filters)
        assert written == len(page)
