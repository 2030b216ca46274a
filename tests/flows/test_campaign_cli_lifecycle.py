"""`campaigns activate / edit / delete / list / show` at the edges of the lifecycle: a refusal is one line,
exit 2, nothing changed; the status reads the same in `list` and `show`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.dialing import HOST
from tasks.store import transaction
from tests.factories import add_contacts, make_campaign_db
from tests.flows.cli_run import run
from tests.flows.test_campaign_cli import run_json


def show(capsys, db: Path, campaign_id: int) -> dict:
    return run_json(capsys, db, "show", str(campaign_id))


@pytest.mark.parametrize(("settings", "args", "message"), [
    # the CLI reads the wall clock: an end date in 2020 has passed
    ({"start_date": "2020-01-06", "end_date": "2020-01-31"}, ["activate", "{id}"],
     "error: active: campaign {id}: cannot activate: its end date 2020-01-31 has passed (America/Phoenix); "
     "set a later end date first"),
    ({"start_date": "2020-01-06", "end_date": "2020-01-31"}, ["edit", "{id}", "--active"],
     "error: --active: campaign {id}: cannot activate: its end date 2020-01-31 has passed (America/Phoenix); "
     "set a later end date first"),
    ({"outbound_number_ids": []}, ["activate", "{id}"],
     "error: active: campaign {id}: cannot activate: choose an outbound number first"),
    ({"start_date": None}, ["activate", "{id}"], "error: active: campaign {id}: cannot activate: set a start date first"),
])
def test_activate_refusals_are_one_line_exit_2_and_change_nothing(capsys, db, settings, args, message):
    from datetime import date

    overrides = {k: date.fromisoformat(v) if isinstance(v, str) else v for k, v in settings.items()}
    campaign_id = make_campaign_db(db, active=False, **overrides)["campaign_id"]
    before = show(capsys, db, campaign_id)
    code, out, err = run(capsys, db, *[a.replace("{id}", str(campaign_id)) for a in args])
    assert (code, out, err) == (2, "", message.replace("{id}", str(campaign_id)) + "\n")
    assert show(capsys, db, campaign_id) == before


def test_delete_is_refused_while_a_batch_places_calls_then_goes_through(capsys, campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    add_contacts(db, campaign_id, 2)
    with transaction(db) as conn:  # a batch of this (live) process
        run_id = conn.execute(
            "insert into dial_runs (campaign_id, kind, state, started_at, owner_host, owner_pid, heartbeat_at)"
            " values (?, 'manual', 'running', now(), ?, ?, now()) returning run_id",
            [campaign_id, HOST, os.getpid()]).fetchone()[0]
    code, out, err = run(capsys, db, "delete", str(campaign_id), "--yes")
    assert (code, out) == (2, "")
    assert err == (f"error: campaign {campaign_id}: batch {run_id} is placing its calls now; delete the campaign once "
                   "it has ended (turn Active off first, so that no new batch starts)\n")
    assert show(capsys, db, campaign_id)["status"] == "Manual Running"
    with transaction(db) as conn:
        conn.execute("update dial_runs set state = 'completed', ended_at = now() where run_id = ?", [run_id])
    deleted = run_json(capsys, db, "delete", str(campaign_id), "--yes")["deleted"]
    assert (deleted["campaigns"], deleted["campaign_contacts"], deleted["dial_runs"]) == (1, 2, 1)


def test_list_and_show_agree_once_max_attempts_is_lowered_below_the_attempts_made(capsys, campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    add_contacts(db, campaign_id, 2)
    with transaction(db) as conn:
        conn.execute("update campaign_contacts set attempts = 3")
    edited = run_json(capsys, db, "edit", str(campaign_id), "--max-attempts", "2")
    assert edited["status"] == show(capsys, db, campaign_id)["status"] == "Completed"
    assert [r["status"] for r in run_json(capsys, db, "list")] == ["Completed"]


def test_activate_past_the_end_date_exits_2_in_a_real_process(tmp_path):
    from datetime import date

    db = tmp_path / "t.duckdb"
    campaign_id = make_campaign_db(db, start_date=date(2020, 1, 6), end_date=date(2020, 1, 31), active=False)["campaign_id"]
    cli = [sys.executable, "-m", "flows.cli", "--db", str(db)]
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([*cli, "activate", str(campaign_id)], capture_output=True, text=True, timeout=120, cwd=root)
    assert (proc.returncode, proc.stdout, proc.stderr.count("\n")) == (2, "", 1)
    assert "cannot activate: its end date 2020-01-31 has passed" in proc.stderr
    shown = subprocess.run([*cli, "show", str(campaign_id), "--json"], capture_output=True, text=True, timeout=120, cwd=root)
    assert (json.loads(shown.stdout)["active"], json.loads(shown.stdout)["status"]) == (False, "Completed")
