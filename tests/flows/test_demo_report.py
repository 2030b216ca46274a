"""The demo: its report (attempts as the Metrics tab counts them, the calls that are not attempts named), and its options."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest

from flows.demo import attempts_line, report
from tasks.store import transaction
from tests.factories import make_campaign_db
from tests.tasks.test_metrics import add_call, add_contact

QUEUED = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)


def test_attempts_line_names_what_is_not_counted():
    assert attempts_line(1263, {"provider unavailable": 4}) == (
        "  call attempts             1263   (4 not counted: provider unavailable)")
    assert attempts_line(12, {}) == "  call attempts               12"


def test_report_counts_this_campaigns_attempts_per_number(db):
    ids = make_campaign_db(db)
    with transaction(db) as conn:
        other = conn.execute(
            "insert into campaigns (name, agent_id, weekly_schedule, time_zone) select 'Other', agent_id,"
            " weekly_schedule, time_zone from campaigns limit 1 returning campaign_id").fetchone()[0]
        me, them = add_contact(conn, ids["campaign_id"], "+16025550001"), add_contact(conn, other, "+16025550002")
        for reason in ("user_hangup", "dial_no_answer"):
            add_call(conn, ids["campaign_id"], me, QUEUED, "ended", reason)
        # the provider could not place it, and a concurrency refusal: no attempts
        add_call(conn, ids["campaign_id"], me, QUEUED, "not_connected", "telephony_provider_unavailable", attempt=False)
        add_call(conn, ids["campaign_id"], me, QUEUED, "failed_rate_limit", "concurrency_limit_reached", attempt=False)
        add_call(conn, other, them, QUEUED, "ended", "user_hangup")  # another campaign's call
        conn.execute("update calls set from_number = '+16025550100'")
    figures = report(db, ids["campaign_id"])
    assert figures["kpis"]["total_calls"] == 2
    assert figures["numbers"] == [("+16025550100", 2)]
    assert figures["not_counted"] == {"provider unavailable": 1, "rate/concurrency refusal": 1}


def test_the_snapshot_command_opens_the_demo_snapshot_read_only_from_where_make_demo_runs(tmp_path):
    from flows.demo import open_snapshot_command

    snapshot = tmp_path / "data" / "demo.analytics.duckdb"
    # `make demo` runs in the checkout: a bare file name there would create a new, empty database
    assert open_snapshot_command(snapshot, tmp_path).endswith(" -readonly data/demo.analytics.duckdb")
    assert open_snapshot_command(snapshot, tmp_path / "elsewhere").endswith(f" -readonly {snapshot}")


def test_the_printed_snapshot_command_runs_with_what_the_project_installs(tmp_path):
    # the demo prints it for analysts to paste: the shell must be there (duckdb-cli), read-only, on the file
    import duckdb

    from flows.demo import open_snapshot_command

    (tmp_path / "data").mkdir()
    snapshot = tmp_path / "data" / "demo.analytics.duckdb"
    with duckdb.connect(str(snapshot)) as conn:
        conn.execute("create table calls as select 7 as n")
    command = open_snapshot_command(snapshot, tmp_path).split()
    ran = subprocess.run([*command, "-csv", "-c", "select n from calls"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert (ran.returncode, ran.stdout.split()) == (0, ["n", "7"]), ran.stderr
    ran = subprocess.run([*command, "-c", "create table t (n int)"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode != 0 and "read-only" in (ran.stdout + ran.stderr)


@pytest.mark.parametrize("argv, code", [(["--help"], 0), (["--port", "0"], 2), (["--dashboard"], 2)])
def test_demo_help_and_bad_options_stop_before_the_demo_store_is_replaced(monkeypatch, capsys, argv, code):
    # `python -m flows.demo --help` used to delete data/demo.duckdb and run the whole demo
    import flows.demo as demo

    def replaced(db):
        raise AssertionError("the demo store was replaced")

    monkeypatch.setattr(demo, "fresh_store", replaced)
    with pytest.raises(SystemExit) as stopped:
        demo.main(argv)
    assert stopped.value.code == code
    out, err = capsys.readouterr()
    assert ("--no-dashboard" in out) if code == 0 else ("error:" in err and err.count("\n") == 2)
