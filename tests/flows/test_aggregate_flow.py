"""The aggregate_metrics flow fills the metrics tables and refreshes the analyst snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from flows.aggregate_metrics import aggregate_metrics, run_aggregation
from tasks.store import connect, transaction
from tests.flows.cli_run import run as _cli

NOW = datetime(2026, 5, 1, 20, tzinfo=UTC)


@pytest.fixture
def called(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        contact = conn.execute("insert into contacts (phone_e164) values ('+16025551234') returning contact_id").fetchone()[0]
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)",
                     [campaign_db["campaign_id"], contact])
        conn.execute(
            "insert into calls (campaign_id, contact_id, attempt_key, attempt_number, phone_e164, status,"
            " disconnect_reason, duration_seconds, credits, provider, queued_at, updated_at)"
            " values (?, ?, 'k1', 1, '+16025551234', 'ended', 'user_hangup', 61, 666, 'simulator', ?, ?)",
            [campaign_db["campaign_id"], contact, NOW, NOW],
        )
    return campaign_db


def test_run_aggregation_is_incremental_and_refreshes_the_snapshot(called):
    db = called["db"]
    first = run_aggregation(db, now=NOW)
    assert (first["campaigns"], first["rebuilt"], first["contact_rows"], first["day_rows"]) == (1, 1, 1, 1)
    again = run_aggregation(db, now=NOW, snapshot=False)
    assert again["rebuilt"] == 0  # already aggregated: only what changed since the watermark
    snapshot = duckdb.connect(first["snapshot"], read_only=True)
    try:
        assert snapshot.execute("select attempts, credits from contact_stats").fetchall() == [(1, 666)]
    finally:
        snapshot.close()


@pytest.mark.prefect
def test_the_prefect_flow_runs(called, prefect_harness):
    result = aggregate_metrics(db=str(called["db"]), full=True)
    assert result["rebuilt"] == 1
    with connect(called["db"]) as conn:
        assert conn.execute("select calls, credits from metrics_daily").fetchall() == [(1, 666)]


# --- the CLI commands ---------------------------------------------------------------------------

def test_cli_aggregate_metrics_and_export(called, tmp_path, capsys):
    import json

    db = called["db"]
    code, out, err = _cli(capsys, db, "aggregate", "--no-snapshot", "--json")
    assert (code, err, json.loads(out)["contact_rows"]) == (0, "", 1)
    code, out, err = _cli(capsys, db, "metrics", str(called["campaign_id"]), "--from", "2026-05-01", "--json")
    data = json.loads(out)
    assert (code, data["kpis"]["credits_used"], data["funnel"]["connected_pct"]) == (0, 666, 100.0)
    assert data["calls_per_day"] == [{"day": "2026-05-01", "disconnect_reason": "user_hangup", "calls": 1}]
    code, out, _ = _cli(capsys, db, "metrics", str(called["campaign_id"]))
    assert "Connection Rate     100.00 %" in out
    target = tmp_path / "calls.xlsx"
    code, out, err = _cli(capsys, db, "export", "calls", str(called["campaign_id"]), "--out", str(target))
    assert (code, out.strip()) == (0, f"1 call(s) written to {target}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["metrics", "1", "--from", "May 1"], "error: --from: 'May 1' is not a date (YYYY-MM-DD)"),
        (["metrics", "99"], "error: campaign 99 does not exist"),
        (["metrics", "1", "--from", "2026-05-02", "--to", "2026-05-01"], "error: --from: 2026-05-02 is after --to 2026-05-01"),
        (["export", "calls", "1", "--out", "calls.csv"], "error: --out calls.csv: must end in .xlsx"),
    ],
)
def test_cli_bad_input_is_one_line(called, capsys, args, message):
    code, out, err = _cli(capsys, called["db"], *args)
    assert (code, err.strip()) == (2, message)
