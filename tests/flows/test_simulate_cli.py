"""`campaigns simulate`: the summary tells the span the simulated clock really covered, and whether it completed."""

from __future__ import annotations

import json

from flows.cli import main
from tests.factories import add_contacts, make_campaign_db


def simulate_cli(capsys, db, *args: str) -> str:
    assert main(["--db", str(db), "simulate", *args]) == 0
    return capsys.readouterr().out


def test_a_campaign_that_completes_on_its_first_day_does_not_claim_the_days_asked_for(db, capsys):
    # one attempt each: every contact is finished on Monday, April 27 (the campaign's start date)
    ids = make_campaign_db(db, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 5)
    out = simulate_cli(capsys, db, str(ids["campaign_id"]), "--days", "14")
    assert "simulated 14 day(s)" not in out
    assert "hour(s) (2026-04-27 07:00 to 2026-04-27 " in out  # local midnight to the same afternoon, UTC
    assert "14 day(s) requested), completed: every contact finished" in out


def test_the_json_result_has_the_covered_span_and_the_outcome(db, capsys):
    ids = make_campaign_db(db, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 5)
    result = json.loads(simulate_cli(capsys, db, str(ids["campaign_id"]), "--days", "14", "--json"))
    assert result["requested_days"] == 14
    assert 0 < result["simulated_days"] < 1
    assert (result["completed"], result["contacts_left"]) == (True, 0)


def test_a_run_held_by_a_paused_number_says_so(db, capsys):
    # the campaign's only number was taken out of rotation (as the health check does after spam marks):
    # nothing is placed, and the summary says why instead of only "still to dial"
    from datetime import UTC, datetime

    from tasks.number_health import pause_number
    from tasks.store import transaction

    ids = make_campaign_db(db)
    add_contacts(db, ids["campaign_id"], 5)
    with transaction(db) as conn:
        number_id = conn.execute("select outbound_number_ids[1] from campaigns").fetchone()[0]
        pause_number(conn, number_id, datetime(2026, 4, 26, tzinfo=UTC), "3 spam marks in 81 calls in 24 h")
    out = simulate_cli(capsys, db, str(ids["campaign_id"]), "--days", "2")
    assert "5 contact(s) still to dial" in out and "0 calls placed" in out
    # with when it was last seen: the run may end days later (a weekend) with the hold of its last calling tick
    import re

    assert re.search(rf"; dialing held at the end: outbound number {number_id} is out of rotation: 3 spam marks in 81 "
                     r"calls in 24 h \(last seen 2026-04-2[78] \d\d:\d\d UTC\)$", out.strip()), out
    result = json.loads(simulate_cli(capsys, db, str(ids["campaign_id"]), "--days", "1", "--json"))
    assert result["held_by"] == f"outbound number {number_id} is out of rotation: 3 spam marks in 81 calls in 24 h"


def test_a_completed_run_names_no_hold(db, capsys):
    ids = make_campaign_db(db, max_attempts=1)
    add_contacts(db, ids["campaign_id"], 5)
    result = json.loads(simulate_cli(capsys, db, str(ids["campaign_id"]), "--days", "3", "--json"))
    assert (result["completed"], result["held_by"]) == (True, None)


def test_a_simulation_goes_on_after_the_campaigns_calls_and_refuses_to_start_before_them(db, capsys):
    # a simulation writes into the campaign: started at its start date under calls already made, it dated a
    # simulated attempt 2 before the real attempt 1
    import duckdb

    ids = make_campaign_db(db, max_attempts=3)
    campaign = str(ids["campaign_id"])
    add_contacts(db, ids["campaign_id"], 5)
    simulate_cli(capsys, db, campaign, "--days", "1")
    with duckdb.connect(str(db)) as conn:
        last = conn.execute("select max(queued_at) from calls").fetchone()[0]
    assert main(["--db", str(db), "simulate", campaign, "--days", "1", "--start", "2026-04-27"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --start 2026-04-27: campaign {campaign} already has calls until ") and "forecast" in err
    simulate_cli(capsys, db, campaign, "--days", "3")
    with duckdb.connect(str(db)) as conn:
        later = conn.execute("select min(queued_at), count(*) from calls where queued_at > ?", [last]).fetchone()
        earlier = conn.execute("select count(*) from calls where call_id > (select max(call_id) from calls"
                               " where queued_at <= ?) and queued_at < ?", [last, last]).fetchone()[0]
    assert later[1] > 0 and earlier == 0  # the second run's calls all come after the first run's


def test_a_run_whose_contacts_a_rolling_cap_holds_says_so(db, capsys):
    # French contacts at their 4 calls in 30 days past the end date: the run ended "still to dial" with no why
    from dataclasses import replace
    from datetime import UTC, datetime

    from tasks.compliance import load_rules, replace_rules
    from tasks.store import transaction

    ids = make_campaign_db(db, max_attempts=5)
    add_contacts(db, ids["campaign_id"], 3)
    with transaction(db) as conn:
        rules = load_rules(conn)
        rules["US"] = replace(rules["US"], max_calls_30d=1)
        replace_rules(conn, list(rules.values()), datetime(2026, 4, 20, tzinfo=UTC))
    result = json.loads(simulate_cli(capsys, db, str(ids["campaign_id"]), "--days", "3", "--json"))
    assert result["contacts_left"] == 3
    assert result["held_by"] == "no eligible contacts; held back: 3 at their legal cap of calls in 30 days"


def test_whole_days_end_at_the_campaign_local_midnight_across_a_dst_change(db, capsys):
    # `--days 3` over the fall-back counted 72 hours: it ended at 23:00 local, an hour before the third midnight
    from datetime import datetime

    import duckdb

    ids = make_campaign_db(db, max_attempts=20)
    late = {day: [["23:00", "24:00"]] for day in ("sat", "sun", "mon")}
    with duckdb.connect(str(db)) as conn:
        conn.execute("update campaigns set time_zone = 'America/New_York', calling_days = ['sat', 'sun', 'mon'],"
                     " weekly_schedule = ?, attempts_per_day = 20", [json.dumps(late)])
    add_contacts(db, ids["campaign_id"], 2)
    result = json.loads(simulate_cli(capsys, db, str(ids["campaign_id"]), "--days", "3", "--start", "2027-11-06",
                                     "--json"))
    assert result["requested_days"] == 3 and result["simulated_days"] > 3  # the 25-hour Sunday counted whole
    assert datetime.fromisoformat(str(result["end"])) >= datetime.fromisoformat("2027-11-09T05:00:00+00:00")


def test_whole_days_in_two_runs_cover_the_days_of_one_run(tmp_path, capsys):
    """`--days 3` then `--days 2` went on from the last call (Wednesday's 08:00 batch): it replayed Wednesday and
    stopped at 08:00 on Friday, before its batch, so the five days had four calling days. They now match one
    `--days 5`."""
    import duckdb

    def calling_days(db) -> list[str]:
        with duckdb.connect(str(db)) as conn:
            return [str(r[0]) for r in conn.execute(
                "select distinct (queued_at at time zone 'America/Phoenix')::date from calls order by 1").fetchall()]

    split, whole = tmp_path / "split.duckdb", tmp_path / "whole.duckdb"
    morning = {day: [["08:00", "08:30"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    for db in (split, whole):
        ids = make_campaign_db(db, max_attempts=5)
        with duckdb.connect(str(db)) as conn:  # one batch a day, at 08:00: the last call is Wednesday's 08:00
            conn.execute("update campaigns set weekly_schedule = ?", [json.dumps(morning)])
        add_contacts(db, ids["campaign_id"], 8)
    campaign = str(ids["campaign_id"])
    simulate_cli(capsys, split, campaign, "--days", "3")
    second = json.loads(simulate_cli(capsys, split, campaign, "--days", "2", "--json"))
    simulate_cli(capsys, whole, campaign, "--days", "5")
    assert calling_days(split) == calling_days(whole) == [f"2026-04-{d}" for d in (27, 28, 29, 30)] + ["2026-05-01"]
    assert second["start"].startswith("2026-04-30T07:00")  # Thursday's local midnight
