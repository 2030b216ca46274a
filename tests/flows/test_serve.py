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


@pytest.mark.slow
@pytest.mark.prefect
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


def test_the_served_dashboard_listens_on_localhost_unless_told_otherwise():
    from flows.serve import dashboard_argv, dashboard_url

    argv = dashboard_argv(8601)
    assert argv[argv.index("--server.address") + 1] == "localhost"
    assert argv[argv.index("--server.port") + 1] == "8601"
    assert argv[argv.index("--client.toolbarMode") + 1] == "minimal"  # no Deploy button, as the demo's
    everywhere = dashboard_argv(8601, "0.0.0.0")
    assert everywhere[everywhere.index("--server.address") + 1] == "0.0.0.0"
    assert dashboard_url(8601, "localhost") == dashboard_url(8601, "0.0.0.0") == "http://localhost:8601"
    assert dashboard_url(8601, "10.0.0.5") == "http://10.0.0.5:8601"
    assert dashboard_url(8601, "::1") == "http://[::1]:8601"


def test_serve_takes_an_address_for_the_dashboard():
    from flows.serve import parse_args

    assert parse_args([]).address == "localhost"
    assert parse_args(["--address", "0.0.0.0", "--dashboard-port", "8601"]).address == "0.0.0.0"


def wait_until_gone(pid: int, seconds: float, message: str) -> None:
    """Wait until process `pid` has ended (gone, or a zombie), failing with `message` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def test_descendants_follow_the_process_tree_below_the_roots():
    from flows.serve import descendants

    # pid -> "ppid start": 10 the worker, 20 a flow run it started, 21 that run's child, 30 unrelated
    table = {10: "1 100", 20: "10 200", 21: "20 210", 30: "1 300", 31: "30 310"}
    assert descendants(table, [10]) == [20, 21]
    assert descendants(table, [10, 30]) == [20, 31, 21]
    assert descendants(table, [99]) == []


def test_stop_reaches_a_flow_run_started_in_a_session_of_its_own(tmp_path):
    """The process worker starts each flow run with start_new_session: a SIGTERM to the worker's group
    misses it. And Prefect's worker can linger long after SIGTERM: once nothing runs below it, it gets
    `settle` seconds. A stand-in worker that ignores SIGTERM starts such a run; both end."""
    from flows.serve import Services, stop_processes

    pid_file = tmp_path / "run.pid"
    worker = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "run = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True,\n"
        "                       preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))\n"
        f"open({str(pid_file)!r}, 'w').write(str(run.pid))\n"
        "time.sleep(300)\n"
    )
    services = Services(tmp_path / "logs", dict(os.environ))
    services.start("worker", [sys.executable, "-c", worker])
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "the stand-in worker did not start its run"
        time.sleep(0.1)
    run_pid = int(pid_file.read_text())
    assert os.getpgid(run_pid) == run_pid  # out of the worker's group, as the process worker's runs are
    started = time.monotonic()
    stop_processes(services.children, 60, settle=1)
    assert time.monotonic() - started < 15  # not the 60 s
    assert services.children[0][1].returncode == -signal.SIGKILL
    # reparented on the worker's end, the run is reaped by init (or a subreaper)
    wait_until_gone(run_pid, 5, f"the flow run process {run_pid} outlived the stop")


@pytest.mark.prefect
def test_a_start_closes_the_runs_a_previous_serve_left_running_and_frees_their_slots(prefect_harness):
    """A serve stopped outright leaves its runs Running and the server forgets the lease behind their
    deployment concurrency slot: every later run would end "Deployment concurrency limit reached"."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate, WorkPoolCreate
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions, StateType
    from prefect.states import Pending, Running

    from flows.serve import STALE_RUN_MESSAGE, close_stale_runs

    cancel_new = ConcurrencyOptions(collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
    with get_client(sync_client=True) as client:
        for pool in ("stale-test-pool", "stale-other-pool"):
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"), overwrite=True)
        flow_id = client.create_flow_from_name("stale-test-flow")
        tick = client.create_deployment(flow_id, "tick", work_pool_name="stale-test-pool",
                                        concurrency_limit=1, concurrency_options=cancel_new)
        manual = client.create_deployment(flow_id, "manual", work_pool_name="stale-test-pool",
                                          concurrency_limit=1, concurrency_options=cancel_new)
        other = client.create_deployment(flow_id, "other", work_pool_name="stale-other-pool")
        running = client.create_flow_run_from_deployment(tick)
        client.set_flow_run_state(running.id, Pending())  # takes the deployment's slot
        client.set_flow_run_state(running.id, Running())
        pending = client.create_flow_run_from_deployment(manual)
        client.set_flow_run_state(pending.id, Pending())
        scheduled = client.create_flow_run_from_deployment(tick)  # due later: left as it is
        elsewhere = client.create_flow_run_from_deployment(other)
        client.set_flow_run_state(elsewhere.id, Pending())
        client.set_flow_run_state(elsewhere.id, Running())
        manual_limit = client.read_deployment(manual).global_concurrency_limit
        assert client.read_deployment(tick).global_concurrency_limit.active_slots == manual_limit.active_slots == 1

        closed, slots = close_stale_runs(client, pool="stale-test-pool")

        assert (closed, slots) == (2, 2)
        for run_id in (running.id, pending.id):
            state = client.read_flow_run(run_id).state
            assert (state.type, state.message) == (StateType.CRASHED, STALE_RUN_MESSAGE)
        assert client.read_flow_run(scheduled.id).state.type == StateType.SCHEDULED
        assert client.read_flow_run(elsewhere.id).state.type == StateType.RUNNING  # not this project's pool
        for deployment in (tick, manual):
            assert client.read_deployment(deployment).global_concurrency_limit.active_slots == 0
        # a slot taken with no run holding it (its lease died with the server) is freed too
        client.update_global_concurrency_limit(str(manual_limit.id), GlobalConcurrencyLimitUpdate(active_slots=1))
        assert close_stale_runs(client, pool="stale-test-pool") == (0, 1)
        assert client.read_deployment(manual).global_concurrency_limit.active_slots == 0
        # the next run of the deployment takes the slot again instead of ending Cancelled
        again = client.create_flow_run_from_deployment(tick)
        client.set_flow_run_state(again.id, Pending())
        assert client.read_flow_run(again.id).state.type == StateType.PENDING
        assert close_stale_runs(client, pool="no-such-pool") == (0, 0)


def test_the_services_end_when_serve_is_killed_outright(tmp_path):
    # each service runs in a session of its own: a SIGKILLed serve left its Prefect server, worker, webhooks and
    # dashboard running, the worker dialing every minute, and the next start failed on the busy port
    pid_file = tmp_path / "service.pid"
    serve = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from flows.serve import Services\n"
        f"services = Services(Path({str(tmp_path / 'logs')!r}), dict(os.environ))\n"
        "child = services.start('worker', [sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"Path({str(pid_file)!r}).write_text(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", serve], cwd=Path(__file__).resolve().parents[2],
                              stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and parent.poll() is None, "the stand-in serve did not start its service"
        time.sleep(0.1)
    child_pid = int(pid_file.read_text())
    assert os.getpgid(child_pid) == child_pid  # a session of its own: no signal to serve's group reaches it
    parent.kill()
    parent.wait()
    wait_until_gone(child_pid, 10, f"the service {child_pid} outlived its killed serve")
