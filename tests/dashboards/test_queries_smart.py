"""Smart-dialing reads of the dashboard (dashboards/queries/smart.py) on the hand-computed tabs campaign.

Campaign zone America/Phoenix (UTC-7), hours 08:00-18:00 Mon-Fri = 15:00-01:00 UTC; the US legal
window is 08:00-21:00 callee-local. NOW (tabs_fixture) is Friday May 1, 2026 12:00 UTC = 05:00 Phoenix.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from dashboards.queries import smart
from tasks.best_time import refresh_best_time_stats
from tasks.compliance import add_dnc, resolve_zones
from tasks.errors import NotFoundError
from tasks.number_health import calls_since, pause_number
from tasks.store import connect, transaction
from tests.dashboards.tabs_fixture import NOW, make_tabs_db


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture
def tabs(db) -> dict:
    return make_tabs_db(db)


def test_best_time_cells_cover_the_week_with_counts(tabs):
    with transaction(tabs["db"]) as conn:
        refresh_best_time_stats(conn, NOW, tabs["campaign_id"])
    with connect(tabs["db"]) as conn:
        cells = smart.best_time_cells(conn, tabs["campaign_id"])
        updated = smart.best_time_updated_at(conn, tabs["campaign_id"])
    assert cells.height == 7 * 24 and updated == NOW
    seen = cells.filter(cells["calls"] > 0).select("day", "hour_label", "calls", "connected", "rate_pct", "few_calls")
    # Phoenix local: c1 Mon 09:00 connected, c3 Mon 10:00 no answer, c2 Tue 09:00 voicemail (not connected),
    # c4 Tue 23:30 connected; c5 was not an attempt. One call a cell: every cell has too few calls.
    assert seen.rows() == [
        ("Mon", "09:00", 1, 1, 100.0, True),
        ("Mon", "10:00", 1, 0, 0.0, True),
        ("Tue", "09:00", 1, 0, 0.0, True),
        ("Tue", "23:00", 1, 1, 100.0, True),
    ]


def test_best_cells_need_enough_calls(tabs):
    # cells of (weekday, hour, calls, connected): the 1-call 100 % cell is too thin to be "best";
    # equal rates go to the cell with more calls
    stats = [(0, 9, 1, 1), (1, 10, 20, 10), (2, 11, 40, 20), (3, 12, 10, 9), (4, 13, 30, 3)]
    with transaction(tabs["db"]) as conn:
        conn.executemany("insert into best_time_stats values (?, ?, ?, ?, ?, ?)",
                         [[tabs["campaign_id"], *row, NOW] for row in stats])
    with connect(tabs["db"]) as conn:
        best = smart.best_cells(smart.best_time_cells(conn, tabs["campaign_id"]))
    assert best.select("day", "hour_label", "rate_pct").rows() == [
        ("Thu", "12:00", 90.0), ("Wed", "11:00", 50.0), ("Tue", "10:00", 50.0)]


def test_best_time_cells_without_calls_are_empty_not_missing(tabs):
    with connect(tabs["db"]) as conn:  # never aggregated
        cells = smart.best_time_cells(conn, tabs["campaign_id"])
        assert smart.best_time_updated_at(conn, tabs["campaign_id"]) is None
    assert cells.height == 168 and cells["calls"].sum() == 0 and cells["rate_pct"].null_count() == 168


def test_unknown_campaign_is_not_found(tabs):
    with connect(tabs["db"]) as conn, pytest.raises(NotFoundError):
        smart.best_time_cells(conn, 999)


def test_number_health_days_per_local_day_with_cap_use(tabs):
    with transaction(tabs["db"]) as conn:
        conn.execute("update calls set from_number = '+16025550100'")
        conn.execute("update campaigns set number_daily_cap = 4")
    with connect(tabs["db"]) as conn:
        days = smart.number_health_days(conn, tabs["campaign_id"], NOW)
        assert smart.number_daily_cap(conn, tabs["campaign_id"]) == 4
    # campaign-local days: Apr 28 holds c2 (voicemail), c4 (06:30 UTC Apr 29 = Apr 28 23:30, connected, 45 s)
    # and c5 (an error placed but not an attempt); Apr 27 holds c1 (connected) and c3 (no answer)
    assert days.select("e164", "day", "calls", "finished", "connected", "connection_rate", "short_share",
                       "spam_marks", "daily_cap", "cap_use").rows() == [
        ("+16025550100", date(2026, 4, 28), 3, 2, 1, 0.5, 0.0, 0, 4, 0.75),
        ("+16025550100", date(2026, 4, 27), 2, 2, 1, 0.5, 0.0, 0, 4, 0.5),
    ]


def test_number_health_days_count_placed_calls_as_the_daily_cap_does(tabs):
    # a row of a batch that was never sent (error_dapta, not an attempt: tasks.dialing.mark_not_placed) is no call
    with transaction(tabs["db"]) as conn:
        conn.execute("update calls set from_number = '+16025550100'")
        conn.execute("update calls set status = 'error', disconnect_reason = 'error_dapta', counts_as_attempt = false,"
                     " credits = 0 where call_id = (select max(call_id) from calls)")
    with connect(tabs["db"]) as conn:
        days = smart.number_health_days(conn, tabs["campaign_id"], NOW)
        start = datetime(2026, 4, 28, 7, tzinfo=UTC)  # Apr 28 00:00 in Phoenix
        assert days.filter(pl.col("day") == date(2026, 4, 28))["calls"].item() == \
            calls_since(conn, ["+16025550100"], start)["+16025550100"] == 2


def test_number_health_days_only_the_last_days(tabs):
    with transaction(tabs["db"]) as conn:
        conn.execute("update calls set from_number = '+16025550100'")
    with connect(tabs["db"]) as conn:
        # the 4 days up to Thu Apr 30 (local) start on Apr 27; the 2 days up to it start on Apr 29
        assert smart.number_health_days(conn, tabs["campaign_id"], utc(2026, 4, 30, 20), days=4).height == 2
        assert smart.number_health_days(conn, tabs["campaign_id"], utc(2026, 4, 30, 20), days=2).is_empty()


def test_campaign_numbers_show_the_pause_reason(tabs):
    with transaction(tabs["db"]) as conn:
        number_id = conn.execute("select outbound_number_ids[1] from campaigns").fetchone()[0]
        pause_number(conn, number_id, NOW, "12 spam marks in 40 calls in 24 h")
    with connect(tabs["db"]) as conn:
        numbers = smart.campaign_numbers(conn, tabs["campaign_id"], NOW)
    assert [(n["number_id"], n["in_rotation"], n["paused_reason"]) for n in numbers] == [
        (number_id, False, "12 spam marks in 40 calls in 24 h")]
    with connect(tabs["db"]) as conn:
        assert smart.paused_numbers(conn) == {number_id: "12 spam marks in 40 calls in 24 h"}


def _enrollment(conn, contact_id: int, **columns) -> None:
    sets = ", ".join(f"{name} = ?" for name in columns)  # names come from the test cases below
    conn.execute(f"update campaign_contacts set {sets} where contact_id = ?", [*columns.values(), contact_id])


SAT = utc(2026, 5, 2, 18)  # Saturday 11:00 Phoenix


@pytest.mark.parametrize(
    ("now", "enrollment", "expected"),
    [
        # before the campaign's hours: the 08:00 Phoenix opening
        (NOW, {}, (utc(2026, 5, 1, 15), "Campaign hours")),
        # inside the hours: now
        (utc(2026, 5, 1, 17), {}, (utc(2026, 5, 1, 17), "Now")),
        # a retry time inside the hours is kept as it is
        (NOW, {"next_call_at": utc(2026, 5, 1, 20, 30)}, (utc(2026, 5, 1, 20, 30), "Retry policy")),
        # a retry time on a Sunday moves to Monday 08:00
        (NOW, {"next_call_at": utc(2026, 5, 3, 18)}, (utc(2026, 5, 4, 15), "Retry policy, then campaign hours")),
        # attempts_per_day=1 used today (Friday, local): Monday 08:00
        (utc(2026, 5, 1, 17), {"attempts": 1, "attempts_day": date(2026, 5, 1), "attempts_on_day": 1},
         (utc(2026, 5, 4, 15), "Attempts per day used, then campaign hours")),
        # yesterday's attempt does not count today
        (utc(2026, 5, 1, 17), {"attempts": 1, "attempts_day": date(2026, 4, 30), "attempts_on_day": 1},
         (utc(2026, 5, 1, 17), "Now")),
        # max_attempts=5 reached
        (NOW, {"attempts": 5}, (None, "Max attempts reached")),
        (NOW, {"finished_at": NOW, "finished_reason": "successful"}, (None, "Finished: successful")),
        (SAT, {}, (utc(2026, 5, 4, 15), "Campaign hours")),
    ],
)
def test_next_allowed_times(tabs, now, enrollment, expected):
    contact_id = tabs["C"]
    with transaction(tabs["db"]) as conn:
        if enrollment:
            _enrollment(conn, contact_id, **enrollment)
    with connect(tabs["db"]) as conn:
        frame = smart.next_allowed_times(conn, tabs["campaign_id"], [contact_id], now)
    assert frame.select("next_allowed_at", "next_allowed_note").row(0) == expected
    assert frame["suppression"][0] is None


def test_next_allowed_waits_for_the_callee_legal_window(tabs):
    # a Honolulu contact (UTC-10): the campaign opens at 15:00 UTC, the US window there at 08:00 = 18:00 UTC
    with transaction(tabs["db"]) as conn:
        conn.execute("update contacts set time_zone_override = 'Pacific/Honolulu', region = 'US',"
                     " updated_at = now() where contact_id = ?", [tabs["C"]])
        resolve_zones(conn, [tabs["C"]])
    with connect(tabs["db"]) as conn:
        frame = smart.next_allowed_times(conn, tabs["campaign_id"], [tabs["C"]], utc(2026, 5, 1, 16))
    assert frame.select("next_allowed_at", "next_allowed_note").row(0) == (utc(2026, 5, 1, 18), "Callee's legal hours")


def test_next_allowed_reads_an_unresolved_zone_from_the_phone(tabs):
    # not resolved yet (no zone key): the phone's zones, as the claim will resolve them
    with transaction(tabs["db"]) as conn:
        conn.execute("update contacts set time_zones = ['Pacific/Honolulu'], region = 'US', zone_key = null"
                     " where contact_id = ?", [tabs["C"]])
    with connect(tabs["db"]) as conn:
        frame = smart.next_allowed_times(conn, tabs["campaign_id"], [tabs["C"]], utc(2026, 5, 1, 16))
    assert frame["next_allowed_at"][0] == utc(2026, 5, 1, 18)


def test_suppression_do_not_call_and_unknown_zone(tabs):
    with transaction(tabs["db"]) as conn:
        add_dnc(conn, ["+16025550002"], NOW, reason="asked not to be called")
        conn.execute("update contacts set zone_source = 'unknown' where contact_id = ?", [tabs["D"]])
    with connect(tabs["db"]) as conn:
        frame = smart.next_allowed_times(conn, tabs["campaign_id"], [tabs["C"], tabs["D"], tabs["A"]], NOW)
    assert frame.select("contact_id", "next_allowed_note", "suppression").rows() == [
        (tabs["A"], "Campaign hours", None),
        (tabs["C"], "Do not call", "Do not call (global list: asked not to be called)"),
        (tabs["D"], "Campaign hours", "Unknown time zone (called in the campaign's)"),
    ]
    assert frame.filter(frame["contact_id"] == tabs["C"])["next_allowed_at"][0] is None


def test_next_allowed_without_contacts_or_after_the_end_date(tabs):
    with connect(tabs["db"]) as conn:
        assert smart.next_allowed_times(conn, tabs["campaign_id"], [], NOW).is_empty()
    with transaction(tabs["db"]) as conn:
        conn.execute("update campaigns set end_date = date '2026-04-30'")
    with connect(tabs["db"]) as conn:
        frame = smart.next_allowed_times(conn, tabs["campaign_id"], [tabs["C"]], NOW)
    assert frame.select("next_allowed_at", "next_allowed_note").row(0) == (None, "No calling time left in the schedule")


def test_forecast_version_changes_with_the_data(tabs):
    with connect(tabs["db"]) as conn:
        before = smart.forecast_version(conn, tabs["campaign_id"])
        assert smart.forecast_version(conn, tabs["campaign_id"]) == before
    with transaction(tabs["db"]) as conn:
        conn.execute("update campaign_contacts set attempts = attempts + 1 where contact_id = ?", [tabs["C"]])
    with connect(tabs["db"]) as conn:
        assert smart.forecast_version(conn, tabs["campaign_id"]) != before
