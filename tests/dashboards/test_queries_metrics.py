"""Metrics tab reads on the hand-computed campaign of tabs_fixture (Phoenix time, UTC-7)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dashboards.queries.metrics import (
    HINT_CONNECTED,
    HINT_SUCCESSFUL,
    calls_made,
    covers_whole_campaign,
    contact_funnel,
    default_range,
    funnel_frame,
    kpi_cards,
)
from tasks.errors import NotFoundError, ValidationError
from tasks.store import connect, transaction
from tests.dashboards.tabs_fixture import make_tabs_db

APR27, APR28, APR29 = date(2026, 4, 27), date(2026, 4, 28), date(2026, 4, 29)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return make_tabs_db(tmp_path_factory.mktemp("metrics") / "tabs.duckdb")


@pytest.mark.parametrize(
    ("date_from", "date_to", "expected"),
    [
        # all: 4 attempts (c5 is a refusal), A and B called, connected c1+c4 → avg (120+45)/2,
        # connected contacts A, B of 4 enrolled → 50 %
        (None, None, {"credits_used": 140, "total_calls": 4, "contacts_called": 2, "connection_rate": 50.0,
                      "avg_call_duration_seconds": 82.5}),
        (APR27, APR27, {"credits_used": 100, "total_calls": 2, "contacts_called": 2, "connection_rate": 25.0,
                        "avg_call_duration_seconds": 120.0}),
        # c4 (23:30 local on Apr 28) belongs to Apr 28
        (APR28, APR28, {"credits_used": 40, "total_calls": 2, "contacts_called": 2, "connection_rate": 25.0,
                        "avg_call_duration_seconds": 45.0}),
        (APR29, APR29, {"credits_used": 0, "total_calls": 0, "contacts_called": 0, "connection_rate": 0.0,
                        "avg_call_duration_seconds": 0.0}),
    ],
)
def test_kpi_cards(shared, date_from, date_to, expected):
    with connect(shared["db"]) as conn:
        cards = kpi_cards(conn, shared["campaign_id"], date_from, date_to)
    assert {k: cards[k] for k in expected} == expected


def test_calls_made_series_by_local_day_and_reason(shared):
    with connect(shared["db"]) as conn:
        series = calls_made(conn, shared["campaign_id"], APR27, APR29)
    assert series.rows() == [
        (APR27, "agent_hangup", 1),
        (APR27, "dial_no_answer", 1),
        (APR28, "user_hangup", 1),
        (APR28, "voicemail_reached", 1),
    ]  # the refusal c5 is not a call attempt: not drawn


def test_calls_made_range_narrows(shared):
    with connect(shared["db"]) as conn:
        assert calls_made(conn, shared["campaign_id"], APR28, APR28)["day"].unique().to_list() == [APR28]


@pytest.mark.parametrize(
    ("date_from", "date_to", "expected"),
    [
        # 2 of 4 connected (50 %: not a large gap), 1 of 2 connected successful (50 %: not large)
        (None, None, {"total_contacts": 4, "connected": 2, "connected_pct": 50.0, "successful": 1,
                      "successful_pct": 25.0, "hints": []}),
        # Apr 28: only B connected (c4), nobody successful → both hints
        (APR28, APR28, {"total_contacts": 4, "connected": 1, "connected_pct": 25.0, "successful": 0,
                        "successful_pct": 0.0, "hints": [HINT_CONNECTED, HINT_SUCCESSFUL]}),
        # nobody connected: only the first gap is shown (there is nothing to convert)
        (APR29, APR29, {"total_contacts": 4, "connected": 0, "connected_pct": 0.0, "successful": 0,
                        "successful_pct": 0.0, "hints": [HINT_CONNECTED]}),
    ],
)
def test_contact_funnel(shared, date_from, date_to, expected):
    with connect(shared["db"]) as conn:
        assert contact_funnel(conn, shared["campaign_id"], date_from, date_to) == expected


def test_funnel_frame_labels():
    frame = funnel_frame({"total_contacts": 1200, "connected": 300, "connected_pct": 25.0, "successful": 45,
                          "successful_pct": 3.75})
    assert frame["stage"].to_list() == ["Total Contacts", "Connected", "Successful"]
    assert frame["label"].to_list() == ["1,200 (100%)", "300 (25%)", "45 (3.75%)"]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 03:00 UTC on May 2 is still May 1 in Phoenix
        (datetime(2026, 5, 2, 3, 0, tzinfo=UTC), (date(2026, 4, 27), date(2026, 5, 1))),
        # before the start date: the range is just today
        (datetime(2026, 4, 1, 12, 0, tzinfo=UTC), (date(2026, 4, 1), date(2026, 4, 1))),
    ],
)
def test_default_range_from_start_date_to_local_today(shared, now, expected):
    with connect(shared["db"]) as conn:
        assert default_range(conn, shared["campaign_id"], now) == expected


def test_default_range_without_start_date_uses_creation_day(db):
    from tests.factories import make_campaign_db

    ids = make_campaign_db(db, start_date=None, active=False, created_at=datetime(2026, 3, 3, 5, 0, tzinfo=UTC))
    with connect() as conn:
        # 05:00 UTC Mar 3 is Mar 2 in Phoenix
        assert default_range(conn, ids["campaign_id"], datetime(2026, 3, 10, 18, 0, tzinfo=UTC)) == (
            date(2026, 3, 2), date(2026, 3, 10))


def test_reversed_range_and_unknown_campaign(shared):
    with connect(shared["db"]) as conn:
        with pytest.raises(ValidationError):
            kpi_cards(conn, shared["campaign_id"], APR29, APR27)
        with pytest.raises(NotFoundError):
            default_range(conn, 999, datetime(2026, 5, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [(None, None), (APR27, APR28), (date(2026, 4, 1), date(2026, 5, 1)), (None, APR28), (APR27, None)],
)
def test_whole_campaign_ranges_read_the_maintained_tables_and_agree_with_the_calls(shared, date_from, date_to):
    from tasks import metrics

    with connect(shared["db"]) as conn:
        assert covers_whole_campaign(conn, shared["campaign_id"], date_from, date_to)
        assert kpi_cards(conn, shared["campaign_id"], date_from, date_to) == metrics.kpis(
            conn, shared["campaign_id"], date_from, date_to)
        funnel = contact_funnel(conn, shared["campaign_id"], date_from, date_to)
        assert {k: v for k, v in funnel.items() if k != "hints"} == metrics.funnel(
            conn, shared["campaign_id"], date_from, date_to)


@pytest.mark.parametrize(("date_from", "date_to"), [(APR28, None), (None, APR27), (APR28, APR28)])
def test_narrower_ranges_do_not_cover_the_campaign(shared, date_from, date_to):
    with connect(shared["db"]) as conn:
        assert not covers_whole_campaign(conn, shared["campaign_id"], date_from, date_to)


def test_a_campaign_never_aggregated_counts_from_the_calls(db):
    from tests.dashboards.tabs_fixture import make_tabs_db as build

    ids = build(db)
    with transaction() as conn:
        conn.execute("delete from metrics_state")
        conn.execute("delete from metrics_daily")
        conn.execute("delete from contact_stats")
    with connect() as conn:
        assert not covers_whole_campaign(conn, ids["campaign_id"], None, None)
        assert kpi_cards(conn, ids["campaign_id"], None, None)["total_calls"] == 4


RANGES = [(None, None), (APR27, APR27), (APR28, APR28), (APR29, APR29), (APR27, APR28), (APR28, None)]


@pytest.fixture(scope="module")
def with_removed_and_far_contacts(tmp_path_factory):
    """The fixture campaign, plus: contact A removed (its calls stay), a far-apart contact id with a successful call."""
    built = make_tabs_db(tmp_path_factory.mktemp("metrics-removed") / "tabs.duckdb")
    with transaction(built["db"]) as conn:
        conn.execute("delete from campaign_contacts where contact_id = ?", [built["A"]])
        conn.execute("insert into contacts (contact_id, phone_e164, name) values (5000000, '+16025559999', 'Far')")
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, 5000000)",
                     [built["campaign_id"]])
        conn.execute(
            "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status,"
            " disconnect_reason, call_successful, duration_seconds, credits, provider, queued_at, updated_at)"
            " values (?, 5000000, 'far', 1, '+16025559999', 'ended', 'user_hangup', true, 30, 5, 'simulator', ?, ?)",
            [built["campaign_id"], datetime(2026, 4, 28, 20, 0, tzinfo=UTC), datetime(2026, 4, 28, 20, 0, tzinfo=UTC)],
        )
    return built


@pytest.mark.parametrize("max_span", [1 << 26, 0])  # the bitmaps, and the hash-based fallback
@pytest.mark.parametrize(("date_from", "date_to"), RANGES)
def test_range_totals_equal_the_metrics_task(with_removed_and_far_contacts, monkeypatch, max_span, date_from, date_to):
    from dashboards.queries import metrics as metric_queries
    from tasks import metrics

    monkeypatch.setattr(metric_queries, "MAX_BITMAP_SPAN", max_span)
    built = with_removed_and_far_contacts
    with connect(built["db"]) as conn:
        ours = metric_queries.range_totals(conn, built["campaign_id"], date_from, date_to)
        theirs = metrics._kpi_row(conn, built["campaign_id"], date_from, date_to)
    assert ours.keys() == theirs.keys()
    assert ours == pytest.approx(theirs)


@pytest.mark.parametrize(
    ("date_from", "date_to", "expected"),
    [
        # Apr 28: calls of removed A (c2) and of B (c4) and Far (successful): 3 contacts called; of the
        # 4 enrolled (B, C, D, Far) B and Far connected, Far successful
        (APR28, APR28, {"credits_used": 45, "total_calls": 3, "contacts_called": 3, "connected_contacts": 2,
                        "successful_contacts": 1, "total_contacts": 4}),
        # Apr 27: A (removed, connected, successful) and B (no answer): nobody enrolled connected
        (APR27, APR27, {"credits_used": 100, "total_calls": 2, "contacts_called": 2, "connected_contacts": 0,
                        "successful_contacts": 0, "total_contacts": 4}),
    ],
)
def test_range_totals_count_removed_contacts_as_called_not_in_the_funnel(with_removed_and_far_contacts, date_from,
                                                                       date_to, expected):
    from dashboards.queries.metrics import range_totals

    built = with_removed_and_far_contacts
    with connect(built["db"]) as conn:
        totals = range_totals(conn, built["campaign_id"], date_from, date_to)
    assert {k: totals[k] for k in expected} == expected


def test_range_totals_of_a_campaign_without_contacts_or_calls(db):
    from dashboards.queries.metrics import range_totals
    from tests.factories import make_campaign_db

    ids = make_campaign_db(db)
    with connect() as conn:
        totals = range_totals(conn, ids["campaign_id"], APR27, APR28)
    assert totals == {"credits_used": 0, "total_calls": 0, "contacts_called": 0, "connected_calls": 0,
                      "avg_call_duration_seconds": None, "connected_contacts": 0, "successful_contacts": 0,
                      "total_contacts": 0}
