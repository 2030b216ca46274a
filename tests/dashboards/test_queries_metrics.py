"""Metrics tab reads on the hand-computed campaign of tabs_fixture (Phoenix time, UTC-7)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from dashboards.queries.metrics import (
    HINT_CONNECTED,
    HINT_SUCCESSFUL,
    calls_made,
    calls_not_counted,
    contact_funnel,
    default_range,
    funnel_frame,
    kpi_cards,
    kpis_and_funnel,
    not_counted_note,
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
    assert series.filter(pl.col("calls") > 0).rows() == [
        (APR27, "agent_hangup", 1),
        (APR27, "dial_no_answer", 1),
        (APR28, "user_hangup", 1),
        (APR28, "voicemail_reached", 1),
    ]  # the refusal c5 is not a call attempt: not drawn


def test_calls_made_spans_the_days_with_calls_every_reason_each_day(shared):
    # Apr 26 (before the first call) and Apr 29-30 (after the last): outside the span of calls
    with connect(shared["db"]) as conn:
        series = calls_made(conn, shared["campaign_id"], date(2026, 4, 26), date(2026, 4, 30))
    days = [date(2026, 4, 27), date(2026, 4, 28)]
    reasons = ["agent_hangup", "dial_no_answer", "user_hangup", "voicemail_reached"]
    assert series.select("day", "reason").rows() == [(d, r) for d in days for r in reasons]
    assert series.group_by("day").agg(pl.col("calls").sum()).sort("day").rows() == [(days[0], 2), (days[1], 2)]


def test_a_day_without_calls_inside_the_span_is_drawn_as_zero():
    # Friday and Monday with calls: the weekend between has 0 for every reason (the line drops, it does
    # not join Friday to Monday)
    from dashboards.queries.metrics import every_day

    friday, monday = date(2026, 5, 1), date(2026, 5, 4)
    series = pl.DataFrame({"day": [friday, friday, monday], "reason": ["dial_busy", "agent_hangup", "dial_busy"],
                           "calls": [3, 1, 2]})
    filled = every_day(series)
    per_day = filled.group_by("day").agg(pl.col("calls").sum()).sort("day").rows()
    assert per_day == [(friday, 4), (date(2026, 5, 2), 0), (date(2026, 5, 3), 0), (monday, 2)]
    assert filled.filter(pl.col("day") == date(2026, 5, 2))["reason"].sort().to_list() == ["agent_hangup", "dial_busy"]


def test_calls_made_names_attempts_without_a_reason_as_in_flight_not_refused(db):
    # Apr 29: a call still ringing (an attempt, no reason yet) and a rate-limit refusal (no reason either, but
    # no attempt): the chart draws the ringing call alone, and its line must not say "refused"
    from tasks.metrics import aggregate

    built = make_tabs_db(db)
    with transaction() as conn:
        for key, status, attempt in [("ringing", "registered", True), ("refused", "failed_rate_limit", False)]:
            conn.execute(
                "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt,"
                " phone_e164, status, provider, queued_at, updated_at)"
                " values (?, ?, ?, 1, ?, '+16025550002', ?, 'simulator', ?, ?)",
                [built["campaign_id"], built["C"], key, attempt, status, datetime(2026, 4, 29, 17, 0, tzinfo=UTC),
                 datetime(2026, 4, 29, 17, 0, tzinfo=UTC)])
        aggregate(conn, datetime(2026, 4, 29, 18, 0, tzinfo=UTC))
    with connect() as conn:
        assert calls_made(conn, built["campaign_id"], APR29, APR29).rows() == [(APR29, "in flight / no reason", 1)]


def test_calls_made_of_a_range_without_calls_is_empty(shared):
    with connect(shared["db"]) as conn:
        assert calls_made(conn, shared["campaign_id"], APR29, APR29).is_empty()


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
        # nobody called that day: no hint, as none of the calls' faults (bad hours, invalid numbers) can apply
        (APR29, APR29, {"total_contacts": 4, "connected": 0, "connected_pct": 0.0, "successful": 0,
                        "successful_pct": 0.0, "hints": []}),
        # Apr 27: A connected, B did not, C and D were not called: 1 of 4 is a large gap, nothing to convert
        # beyond A's success
        (APR27, APR27, {"total_contacts": 4, "connected": 1, "connected_pct": 25.0, "successful": 1,
                        "successful_pct": 25.0, "hints": [HINT_CONNECTED]}),
    ],
)
def test_contact_funnel(shared, date_from, date_to, expected):
    with connect(shared["db"]) as conn:
        assert contact_funnel(conn, shared["campaign_id"], date_from, date_to) == expected


def test_no_connection_hint_while_every_call_of_the_range_is_in_flight(db):
    # Apr 30, right after a Run: C and D are ringing (attempts, no outcome yet); none connected, but there is
    # nothing to blame on the calling hours or the numbers yet. Once one of them ends unanswered, the hint shows.
    built = make_tabs_db(db)
    with transaction() as conn:
        for key, who in [("run1", "C"), ("run2", "D")]:
            conn.execute(
                "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt,"
                " phone_e164, status, provider, queued_at, updated_at)"
                " values (?, ?, ?, 1, true, '+16025550002', 'registered', 'simulator', ?, ?)",
                [built["campaign_id"], built[who], key, datetime(2026, 4, 30, 17, 0, tzinfo=UTC),
                 datetime(2026, 4, 30, 17, 0, tzinfo=UTC)])
    apr30 = date(2026, 4, 30)
    with connect() as conn:
        cards, funnel = kpis_and_funnel(conn, built["campaign_id"], apr30, apr30)
        assert (cards["total_calls"], funnel["connected"], funnel["hints"]) == (2, 0, [])
        assert contact_funnel(conn, built["campaign_id"], apr30, apr30)["hints"] == []
    with transaction() as conn:
        conn.execute("update calls set status = 'not_connected', disconnect_reason = 'dial_no_answer'"
                     " where attempt_key = 'run1'")
    with connect() as conn:
        assert kpis_and_funnel(conn, built["campaign_id"], apr30, apr30)[1]["hints"] == [HINT_CONNECTED]


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
    [(None, None), (APR27, APR28), (date(2026, 4, 1), date(2026, 5, 1)), (None, APR28), (APR27, None), (APR28, APR28)],
)
def test_the_cards_and_funnel_are_those_of_campaigns_metrics(shared, date_from, date_to):
    from tasks import metrics

    with connect(shared["db"]) as conn:
        cards, funnel = kpis_and_funnel(conn, shared["campaign_id"], date_from, date_to)
        assert cards == kpi_cards(conn, shared["campaign_id"], date_from, date_to) == metrics.kpis(
            conn, shared["campaign_id"], date_from, date_to)
        assert funnel == contact_funnel(conn, shared["campaign_id"], date_from, date_to)
        assert {k: v for k, v in funnel.items() if k != "hints"} == metrics.funnel(
            conn, shared["campaign_id"], date_from, date_to)


def test_the_cards_are_current_between_aggregations(db):
    # a call stored after the last aggregation counts at once (the default range covers the campaign)
    ids = make_tabs_db(db)
    with transaction() as conn:
        conn.execute(
            "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status,"
            " disconnect_reason, duration_seconds, credits, provider, queued_at, updated_at)"
            " values (?, ?, 'late', 2, '+16025550103', 'ended', 'user_hangup', 30, 7, 'simulator', ?, ?)",
            [ids["campaign_id"], ids["C"], datetime(2026, 4, 28, 17, 0, tzinfo=UTC),
             datetime(2026, 4, 28, 17, 0, tzinfo=UTC)])
    with connect() as conn:
        cards, funnel = kpis_and_funnel(conn, ids["campaign_id"], APR27, date(2026, 5, 1))
    assert (cards["total_calls"], cards["contacts_called"], cards["credits_used"]) == (5, 3, 147)
    assert funnel["connected"] == 3  # A, B and now C of 4 enrolled


def test_a_campaign_never_aggregated_counts_from_the_calls(db):
    ids = make_tabs_db(db)
    with transaction() as conn:
        conn.execute("delete from metrics_state")
        conn.execute("delete from metrics_daily")
        conn.execute("delete from contact_stats")
    with connect() as conn:
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


@pytest.mark.parametrize(("date_from", "date_to"), RANGES + [(APR27, date(2026, 5, 1))])
def test_removed_contacts_count_the_same_on_the_dashboard_and_in_campaigns_metrics(with_removed_and_far_contacts,
                                                                                  date_from, date_to):
    # the fixture was aggregated before A was removed: the dashboard's whole-campaign range used to read
    # contact_stats (A gone: 1 contact called fewer) while `campaigns metrics` counted A's calls
    from tasks import metrics

    built = with_removed_and_far_contacts
    with connect(built["db"]) as conn:
        cards, funnel = kpis_and_funnel(conn, built["campaign_id"], date_from, date_to)
        assert cards == metrics.kpis(conn, built["campaign_id"], date_from, date_to)
        assert {k: v for k, v in funnel.items() if k != "hints"} == metrics.funnel(
            conn, built["campaign_id"], date_from, date_to)


def test_the_default_range_counts_removed_contacts_as_called(with_removed_and_far_contacts):
    built = with_removed_and_far_contacts
    with connect(built["db"]) as conn:
        start, today = default_range(conn, built["campaign_id"], datetime(2026, 5, 1, 18, 0, tzinfo=UTC))
        cards = kpi_cards(conn, built["campaign_id"], start, today)
    # A (removed), B and Far were dialed; of the 4 enrolled (B, C, D, Far) B and Far connected
    assert (cards["contacts_called"], cards["total_calls"], cards["connection_rate"]) == (3, 5, 50.0)


def test_a_day_with_calls_and_no_enrolled_contact_connected_shows_the_connection_hint(with_removed_and_far_contacts):
    # Apr 27: A (since removed) connected and B did not: calls were made and none of the 4 enrolled connected
    built = with_removed_and_far_contacts
    with connect(built["db"]) as conn:
        _cards, funnel = kpis_and_funnel(conn, built["campaign_id"], APR27, APR27)
    assert (funnel["connected"], funnel["hints"]) == (0, [HINT_CONNECTED])  # nothing to convert: one hint


@pytest.mark.parametrize("max_span", [1 << 26, 0])  # the bitmaps, and the hash-based fallback
@pytest.mark.parametrize(("date_from", "date_to"), RANGES)
def test_bitmap_and_hash_totals_agree(with_removed_and_far_contacts, monkeypatch, max_span, date_from, date_to):
    from tasks import metrics

    built = with_removed_and_far_contacts
    with connect(built["db"]) as conn:
        bitmaps = metrics.totals(conn, built["campaign_id"], date_from, date_to)
        monkeypatch.setattr(metrics, "MAX_BITMAP_SPAN", max_span)
        chosen = metrics.totals(conn, built["campaign_id"], date_from, date_to)
        monkeypatch.setattr(metrics, "MAX_BITMAP_SPAN", 0)
        hashed = metrics.totals(conn, built["campaign_id"], date_from, date_to)
    assert bitmaps.keys() == hashed.keys() == chosen.keys()
    assert bitmaps == pytest.approx(hashed)


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
    from tasks.metrics import totals as range_totals

    built = with_removed_and_far_contacts
    with connect(built["db"]) as conn:
        totals = range_totals(conn, built["campaign_id"], date_from, date_to)
    assert {k: totals[k] for k in expected} == expected


def test_range_totals_of_a_campaign_without_contacts_or_calls(db):
    from tasks.metrics import totals as range_totals
    from tests.factories import make_campaign_db

    ids = make_campaign_db(db)
    with connect() as conn:
        totals = range_totals(conn, ids["campaign_id"], APR27, APR28)
    assert totals == {"credits_used": 0, "total_calls": 0, "contacts_called": 0, "connected_calls": 0,
                      "avg_call_duration_seconds": None, "connected_contacts": 0, "successful_contacts": 0,
                      "total_contacts": 0}


# ----------------------------------------------------------------------------- Total Calls beside the Call Logs

@pytest.fixture(scope="module")
def with_refusals(tmp_path_factory):
    """The fixture campaign (c5: a concurrency refusal on Apr 28) plus three more calls that never rang: a
    rate-limit refusal and a provider outage on Apr 28, a call of an interrupted batch on Apr 27."""
    built = make_tabs_db(tmp_path_factory.mktemp("metrics-refusals") / "tabs.duckdb")
    with transaction(built["db"]) as conn:
        for key, queued, status, reason in [
            ("rate", datetime(2026, 4, 28, 19, 0, tzinfo=UTC), "failed_rate_limit", None),
            ("outage", datetime(2026, 4, 28, 19, 5, tzinfo=UTC), "not_connected", "telephony_provider_unavailable"),
            ("stopped", datetime(2026, 4, 27, 19, 0, tzinfo=UTC), "error", "error_dapta"),
        ]:
            conn.execute(
                "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt,"
                " phone_e164, status, disconnect_reason, credits, provider, queued_at, updated_at)"
                " values (?, ?, ?, 2, false, '+16025550002', ?, ?, 0, 'simulator', ?, ?)",
                [built["campaign_id"], built["C"], key, status, reason, queued, queued],
            )
    return built


@pytest.mark.parametrize(
    ("date_from", "date_to", "expected"),
    [
        # 8 calls listed, 4 attempts: c5 and the rate refusal refused at a limit, a provider outage, a stopped batch
        (None, None, {"not_counted": 4, "limit": 2, "outage": 1, "interrupted": 1}),
        (APR27, APR27, {"not_counted": 1, "limit": 0, "outage": 0, "interrupted": 1}),
        (APR28, APR28, {"not_counted": 3, "limit": 2, "outage": 1, "interrupted": 0}),
        (APR29, APR29, {"not_counted": 0, "limit": 0, "outage": 0, "interrupted": 0}),
    ],
)
def test_calls_not_counted_explain_the_call_logs_count(with_refusals, date_from, date_to, expected):
    from dashboards.queries.calls import CallFilters, count_calls

    built = with_refusals
    with connect(built["db"]) as conn:
        counts = calls_not_counted(conn, built["campaign_id"], date_from, date_to)
        total_calls = kpi_cards(conn, built["campaign_id"], date_from, date_to)["total_calls"]
        listed = count_calls(conn, built["campaign_id"], CallFilters(date_from=date_from, date_to=date_to))
    assert counts == expected
    # what Call Logs shows for the same range = Total Calls + the calls that never rang
    assert listed == total_calls + counts["not_counted"]


@pytest.mark.parametrize(
    ("total_calls", "counts", "note"),
    [
        (1263, {"not_counted": 4, "limit": 3, "outage": 1, "interrupted": 0},
         "Call Logs lists 1,267 calls in this date range; 4 of them never rang, so Total Calls does not count them "
         "as attempts: 3 refused at the rate or concurrency limit, 1 not placed while the telephony provider was "
         "unavailable."),
        (4, {"not_counted": 1, "limit": 0, "outage": 0, "interrupted": 1},
         "Call Logs lists 5 calls in this date range; 1 of them never rang, so Total Calls does not count it as an "
         "attempt: 1 never handed to the provider (the batch stopped, or the number was put on a do-not-call list "
         "after the claim)."),
        (0, {"not_counted": 1, "limit": 1, "outage": 0, "interrupted": 0},
         "Call Logs lists 1 call in this date range; 1 never rang, so Total Calls does not count it as an attempt: "
         "1 refused at the rate or concurrency limit."),
        # the two counts agree: nothing to explain
        (1263, {"not_counted": 0, "limit": 0, "outage": 0, "interrupted": 0}, None),
    ],
)
def test_not_counted_note(total_calls, counts, note):
    assert not_counted_note(total_calls, counts) == note
