"""The forecast: simulating a copy of the campaign predicts what the real simulated run does, and never writes the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flows.simulate import simulate
from tasks.errors import NotFoundError
from tasks.forecast import QUIET_STOP, _totals, copy_campaign, forecast, simulate_campaign
from tasks.settings import reset_settings
from tasks.store import connect, transaction
from tasks.telephony.simulator import SimulatedProvider
from tests.factories import add_contacts, make_campaign_db

MONDAY_MIDNIGHT_PHOENIX = datetime(2026, 4, 27, 7, 0, tzinfo=UTC)
# Stated tolerance: the forecast runs the same code on the same seed, so it should match exactly;
# 2% (and one day for the completion) leaves room for a run that stops at a different idle moment.
TOLERANCE = 0.02


def _store_fingerprint(db):
    with connect(db) as conn:
        return conn.execute(
            "select (select count(*) from calls), (select count(*) from dial_runs),"
            " (select count(*) filter (where finished_at is not null) from campaign_contacts),"
            " (select max(updated_at) from campaigns)"
        ).fetchone()


def test_the_forecast_matches_a_simulated_run_with_the_same_seed(db):
    ids = make_campaign_db(db, batch_size=20, max_attempts=2)
    add_contacts(db, ids["campaign_id"], 30)
    before = _store_fingerprint(db)
    predicted = forecast(db, ids["campaign_id"], MONDAY_MIDNIGHT_PHOENIX, seed=11, pace_seconds=3)
    assert _store_fingerprint(db) == before  # the real store was only read

    # the plain simulated run (flows.simulate, as `make demo` runs it) on the real store, same seed: the copy
    # must behave exactly like the campaign
    provider = SimulatedProvider(db.parent / "simulator.sqlite", seed=11, concurrency_limit=20)
    simulate(db, provider, MONDAY_MIDNIGHT_PHOENIX, 3, campaign_ids=[ids["campaign_id"]], pace_seconds=3.0)
    actual = _totals(db, ids["campaign_id"])
    with connect(db) as conn:
        last_call = conn.execute("select max(coalesce(ended_at, queued_at)) from calls").fetchone()[0]
    for key in ("calls", "connected_calls", "connected_contacts", "successful_contacts", "credits"):
        assert getattr(predicted, key) == pytest.approx(actual[key], rel=TOLERANCE), key
    assert actual["calls"] > 30  # retries happened: the comparison covers more than one pass
    assert abs(predicted.completion - last_call) <= timedelta(days=1)
    assert (predicted.contacts, predicted.remaining_contacts) == (30, 30)


def test_a_forecast_during_the_run_adds_what_was_already_done(db):
    ids = make_campaign_db(db, batch_size=20, max_attempts=2)
    add_contacts(db, ids["campaign_id"], 20)
    provider = SimulatedProvider(db.parent / "simulator.sqlite", seed=3, concurrency_limit=20)
    simulate_campaign(db, provider, MONDAY_MIDNIGHT_PHOENIX, 1, ids["campaign_id"], 3.0)
    done = _totals(db, ids["campaign_id"])
    assert done["calls"] > 0
    predicted = forecast(db, ids["campaign_id"], MONDAY_MIDNIGHT_PHOENIX + timedelta(days=1), seed=3, pace_seconds=3,
                         horizon_days=10)
    assert predicted.calls > done["calls"]
    assert predicted.credits >= done["credits"]
    assert predicted.observed_connection_rate == round(done["connected_calls"] / done["calls"], 4)


def test_a_draft_campaign_is_forecast_from_now_and_a_missing_one_is_refused(db, tmp_path):
    ids = make_campaign_db(db, start_date=None, active=False)
    target = tmp_path / "copy.duckdb"
    copy_campaign(db, target, ids["campaign_id"], MONDAY_MIDNIGHT_PHOENIX)
    with connect(target) as conn:
        assert conn.execute("select active, start_date from campaigns").fetchone() == (True, datetime(2026, 4, 27).date())  # the local day of `now`
    with pytest.raises(NotFoundError):
        forecast(db, 99, MONDAY_MIDNIGHT_PHOENIX)


def test_the_forecast_never_touches_the_analysts_snapshot(db, tmp_path, monkeypatch):
    # the simulation of the copy aggregates like production, but its snapshot would replace the analysts' one
    snapshot = tmp_path / "analysts" / "analytics.duckdb"
    monkeypatch.setenv("CAMPAIGNS_ANALYTICS_DB", str(snapshot))
    reset_settings()
    ids = make_campaign_db(db, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 5)
    predicted = forecast(db, ids["campaign_id"], MONDAY_MIDNIGHT_PHOENIX, seed=2, pace_seconds=3,
                         work_dir=tmp_path)
    assert predicted.calls == 5
    assert not snapshot.exists()
    assert list(tmp_path.glob("forecast-*")) == []  # the copy is gone too


def test_a_campaign_whose_only_number_is_paused_is_all_held_back(db):
    # a number taken out of rotation stays out in the copy (a person puts it back): nothing can be dialled,
    # and the run stops once nothing was placed for QUIET_STOP instead of walking to the horizon
    ids = make_campaign_db(db, max_attempts=3)
    add_contacts(db, ids["campaign_id"], 6)
    with transaction(db) as conn:
        conn.execute("update phone_numbers set rotation_paused_at = ?", [MONDAY_MIDNIGHT_PHOENIX])
    predicted = forecast(db, ids["campaign_id"], MONDAY_MIDNIGHT_PHOENIX, seed=2, pace_seconds=3)
    assert (predicted.calls, predicted.held_back_contacts, predicted.remaining_contacts) == (0, 6, 6)
    assert predicted.completion == predicted.start
    assert predicted.simulated_until < predicted.start + QUIET_STOP + timedelta(days=1)
    assert predicted.held_by is not None and predicted.held_by.startswith("outbound number 1 is out of rotation")


def test_the_copy_adds_rows_after_the_copied_keys(db, tmp_path):
    # the simulation of the copy adds do-not-call entries (callees asking not to be called): the copied
    # entries keep their keys, so a new one must not reuse key 1
    ids = make_campaign_db(db)
    add_contacts(db, ids["campaign_id"], 3)
    with transaction(db) as conn:
        for number in ("+16025559990", "+16025559991"):
            conn.execute("insert into do_not_call (pattern, prefix, is_prefix, source, added_at) values (?, ?, false,"
                         " 'test', ?)", [number, number, MONDAY_MIDNIGHT_PHOENIX])
    target = tmp_path / "copy.duckdb"
    copy_campaign(db, target, ids["campaign_id"], MONDAY_MIDNIGHT_PHOENIX)
    with transaction(target) as conn:
        added = conn.execute("insert into do_not_call (pattern, prefix, is_prefix, source, added_at) values"
                             " ('+16025559992', '+16025559992', false, 'analysis', ?) returning dnc_id",
                             [MONDAY_MIDNIGHT_PHOENIX]).fetchone()[0]
        contact = conn.execute("insert into contacts (phone_e164, name) values ('+16025559993', 'New')"
                               " returning contact_id").fetchone()[0]
    assert (added, contact) == (3, 4)


def test_the_copy_keeps_the_rolling_caps_of_its_contacts(db, tmp_path):
    # a French number called 4 times in 30 days by another campaign is at its cap: the forecast's copy must
    # hold it back as the real claim does, and a call refused in the copy must give back only its own attempt
    from tasks.compliance import rebuild_phone_attempts
    from tasks.dialing import eligible_contacts, load_plans

    monday_11_paris = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
    ids = make_campaign_db(db, time_zone="Europe/Paris", country="FR")
    with transaction(db) as conn:
        paris = conn.execute("insert into contacts (phone_e164) values ('+33612345678') returning contact_id").fetchone()[0]
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [ids["campaign_id"], paris])
        for days in (29, 20, 10, 3):
            when = monday_11_paris - timedelta(days=days)
            conn.execute(
                "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status, provider,"
                " queued_at, updated_at) values (99, ?, ?, 1, '+33612345678', 'not_connected', 'fake', ?, ?)",
                [paris, f"other.{days}", when, when])
        rebuild_phone_attempts(conn)

    def eligible(store, now):
        with connect(store) as conn:
            plan = load_plans(conn, [ids["campaign_id"]])[0]
            return eligible_contacts(conn, plan, now, 10)["contact_id"].to_list()

    assert eligible(db, monday_11_paris) == []
    target = tmp_path / "copy.duckdb"
    copy_campaign(db, target, ids["campaign_id"], monday_11_paris)
    assert eligible(target, monday_11_paris) == []
    # a day later the oldest call left the 30 days: callable in both
    assert eligible(db, monday_11_paris + timedelta(days=1, hours=1)) == [paris]
    assert eligible(target, monday_11_paris + timedelta(days=1, hours=1)) == [paris]
    with connect(db) as conn:
        copied = conn.execute("select max(call_id) from calls").fetchone()[0]
    with transaction(target) as conn:
        new_call = conn.execute(
            "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status, provider,"
            " queued_at, updated_at) values (?, ?, 'new', 1, '+33612345678', 'queued', 'fake', ?, ?) returning call_id",
            [ids["campaign_id"], paris, monday_11_paris, monday_11_paris]).fetchone()[0]
    assert new_call > copied  # never the id of a copied attempt
