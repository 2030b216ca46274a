"""The served mode: a real Prefect server and worker run the deployments from prefect.yaml."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from tasks.store import connect
from tests.factories import add_contacts, make_campaign_db

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pause_the_cron_tick_and_wait_for_its_runs(api: str, seconds: float = 120) -> None:
    """Pause dial-campaigns' every-minute schedule, then wait until none of its runs is due or active.

    prefect.yaml gives dial-campaigns concurrency 1 with CANCEL_NEW, so two ticks never overlap: a
    triggered tick asking for the slot while a cron tick holds it ends Cancelled. That is the product
    working (the next minute's tick dials); the test must trigger when no cron tick can hold the slot.
    """
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import (
        DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with SyncPrefectClient(api) as client:
        deployment = client.read_deployment_by_name("dial-campaigns/dial-campaigns")
        crons = [s for s in deployment.schedules if getattr(s.schedule, "cron", None) == "* * * * *" and s.active]
        assert len(crons) == 1, deployment.schedules  # prefect.yaml's schedule arrived, switched on
        # pausing deletes the runs scheduled ahead; one already due or started is waited for
        client.update_deployment_schedule(deployment.id, crons[0].id, active=False)
        unfinished = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
            any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.CANCELLING])))
        of_the_tick = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        deadline = time.monotonic() + seconds
        while client.read_flow_runs(flow_run_filter=unfinished, deployment_filter=of_the_tick):
            assert time.monotonic() < deadline, "a cron tick did not finish"
            time.sleep(1)


def test_serve_deploys_prefect_yaml_and_a_triggered_tick_writes_calls(db, tmp_path):
    # Ended in May: the cron ticks on the wall clock find it closed; the triggered tick runs in April.
    ids = make_campaign_db(db, batch_size=4, end_date=date(2026, 5, 29))
    add_contacts(db, ids["campaign_id"], 6)
    port = free_port()
    env = {**os.environ, "CAMPAIGNS_DB": str(db), "PREFECT_HOME": str(tmp_path / "prefect"),
           "CAMPAIGNS_LOG_DIR": str(tmp_path / "logs"), "CAMPAIGNS_DIAL_PACE_SECONDS": "0",
           "PREFECT_WORKER_QUERY_SECONDS": "2"}  # the worker picks the triggered run up sooner (default 10 s)
    env.pop("PREFECT_API_URL", None)
    serve = subprocess.Popen(
        [sys.executable, "-m", "flows.serve", "--prefect-port", str(port), "--no-dashboard",
         "--webhook-port", str(free_port()), "--seconds", "240"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        for line in serve.stdout:
            if line.startswith("ready:") or time.monotonic() > deadline:
                break
        assert serve.poll() is None, f"serve stopped: see {tmp_path / 'logs'}"
        api = f"http://127.0.0.1:{port}/api"
        client_env = {**env, "PREFECT_API_URL": api, "COLUMNS": "250"}
        from prefect.client.orchestration import SyncPrefectClient

        with SyncPrefectClient(api) as client:  # not `prefect deployment ls`: a new interpreter importing Prefect
            names = {deployment.name for deployment in client.read_deployments()}
        assert {"dial-campaigns", "enrich-calls", "aggregate-metrics", "import-contacts", "run-campaign"} <= names, names
        _pause_the_cron_tick_and_wait_for_its_runs(api)
        tuesday_10_phoenix = "2026-04-28T17:00:00+00:00"
        run = subprocess.run(
            [str(BIN / "prefect"), "deployment", "run", "dial-campaigns/dial-campaigns",
             "--param", f"now={json.dumps(tuesday_10_phoenix)}", "--watch", "--watch-timeout", "150"],
            env=client_env, capture_output=True, text=True, timeout=200,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Completed" in run.stdout, run.stdout
        with connect(db) as conn:
            assert conn.execute("select count(*), count(distinct contact_id) from calls").fetchone() == (4, 4)
            assert conn.execute("select kind, state from dial_runs").fetchall() == [("scheduled", "completed")]
        # The dashboard's Run in served mode: a run of the run-campaign deployment, followed to its result line.
        cid = ids["campaign_id"]
        follow = (
            "import sys, time\n"
            "from dashboards import state\n"
            f"print(state.start_manual_run({cid}), flush=True)\n"
            "deadline = time.monotonic() + 150\n"
            f"while state.run_in_progress({cid}):\n"
            "    assert time.monotonic() < deadline, 'the deployment run did not end'\n"
            "    time.sleep(1)\n"
            f"print(repr(state.manual_run({cid}).outcome()))\n"
        )
        watched = subprocess.run([sys.executable, "-c", follow], env={**client_env, "CAMPAIGNS_PREFECT_DEPLOYMENTS": "1"},
                                 capture_output=True, text=True, timeout=200, cwd=Path(__file__).parents[2])
        assert watched.returncode == 0, watched.stdout + watched.stderr
        started, outcome = watched.stdout.strip().splitlines()[-2:]
        assert started.startswith("Prefect flow run ") and started.endswith(" started"), started
        completed, line = eval(outcome)  # the repr of a (bool, str) this test printed
        with connect(db) as conn:
            placed = conn.execute("select count(*) from calls").fetchone()[0] - 4
            runs = conn.execute("select kind, count(*) from dial_runs group by kind order by kind").fetchall()
        assert completed, line
        assert line.startswith(f"campaign {cid}: claimed ") and f", placed {placed}" in line, (line, placed)
        assert runs[0][0] == "manual" or placed == 0, runs  # the batch, when it claimed anyone, ran as manual
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=60)
