"""`make serve-cluster`: PostgreSQL, a Prefect server, three workers; a dial-campaign run dials through them."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pytest

from flows.serve_cluster import CLUSTER_DEPLOYMENTS, cluster_env, deploy_argv
from tasks.settings import reset_settings
from tasks.store import connect
from tests.factories import add_contacts, make_campaign_db

BIN = Path(sys.executable).parent


def test_deploy_names_every_cluster_deployment_but_the_single_process_tick():
    argv = deploy_argv("prefect")
    names = [argv[i + 1] for i, word in enumerate(argv) if word == "--name"]
    assert names == list(CLUSTER_DEPLOYMENTS)
    assert "dial-campaigns" not in names  # the fan-out replaces it: both would dial the same campaigns


def test_every_cluster_process_gets_the_shared_store_and_the_prefect_server():
    env = cluster_env({"PREFECT_API_KEY": "cloud-key", "PATH": "/bin", "CAMPAIGNS_STORE": "duckdb-file"},
                      store_url="postgresql://postgres@127.0.0.1:5999/campaigns", prefect_api="http://127.0.0.1:4200/api")
    assert (env["CAMPAIGNS_STORE"], env["CAMPAIGNS_STORE_URL"]) == ("postgres", "postgresql://postgres@127.0.0.1:5999/campaigns")
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api" and env["PATH"] == "/bin"
    assert "PREFECT_API_KEY" not in env  # a Prefect Cloud key must not follow the local server's processes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.prefect
def test_serve_cluster_starts_everything_dials_through_a_worker_and_stops_cleanly(pg_server, tmp_path, monkeypatch):
    # pg_server: only to skip when PostgreSQL is absent; serve-cluster starts its own
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import (
        FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    folder = Path(tempfile.mkdtemp(prefix="vc-cluster-"))
    os.chmod(folder, 0o755)  # the postgres user must reach the data folder
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "CAMPAIGNS_LOG_DIR": str(tmp_path / "logs"),
           "CAMPAIGNS_DIAL_PACE_SECONDS": "0", "CAMPAIGNS_DB": str(tmp_path / "campaigns.duckdb"),
           "PREFECT_WORKER_QUERY_SECONDS": "2",  # workers pick runs up sooner (default every 10 s)
           # the server schedules the fan-out's runs within 5 s of its schedule being switched on, not up to
           # a minute later (its first run then starts at the next minute: the test waited ~35 s longer)
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"}
    env.pop("PREFECT_API_URL", None)
    serve = subprocess.Popen(
        [sys.executable, "-m", "flows.serve_cluster", "--prefect-port", str(port), "--no-dashboard",
         "--pg-dir", str(folder / "pg"), "--call-limit", "5", "--seconds", "400"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        for line in serve.stdout:
            lines.append(line)
            if line.startswith("ready:") or time.monotonic() > deadline:
                break
        assert serve.poll() is None and lines[-1].startswith("ready:"), "".join(lines)
        store_url = re.search(r"store (postgresql://\S+)", lines[-1]).group(1)
        api = f"http://127.0.0.1:{port}/api"
        client_env = {**env, "PREFECT_API_URL": api, "COLUMNS": "250"}
        # read through the API client: each `prefect` command is a new interpreter importing Prefect
        with SyncPrefectClient(api) as client:
            assert {d.name for d in client.read_deployments()} == set(CLUSTER_DEPLOYMENTS)
            limit = client.read_global_concurrency_limit_by_name("provider-calls")
            assert (limit.limit, limit.active) == (5, True)
            assert client.read_work_pool("campaigns").type == "process"

        # a campaign in the shared store, dialled by a dial-campaign run on one of the workers
        monkeypatch.setenv("CAMPAIGNS_STORE", "postgres")
        monkeypatch.setenv("CAMPAIGNS_STORE_URL", store_url)
        monkeypatch.setenv("CAMPAIGNS_DB", env["CAMPAIGNS_DB"])
        reset_settings()
        # ended in May: the fan-out's wall-clock minutes find it closed; the triggered run is in April
        ids = make_campaign_db(tmp_path / "campaigns.duckdb", batch_size=4, end_date=date(2026, 5, 29))
        add_contacts(tmp_path / "campaigns.duckdb", ids["campaign_id"], 6)
        tuesday_10_phoenix = "2026-04-28T17:00:00+00:00"
        run = subprocess.run([str(BIN / "prefect"), "deployment", "run", "dial-campaign/dial-campaign",
                              "--param", f"campaign_id={ids['campaign_id']}",
                              "--param", f"now={json.dumps(tuesday_10_phoenix)}",
                              "--watch", "--watch-timeout", "200"],
                             env=client_env, capture_output=True, text=True, timeout=260)
        assert run.returncode == 0, run.stdout + run.stderr
        with connect() as conn:
            placed = conn.execute("select count(*) from calls where provider_call_id is not null").fetchone()[0]
        assert placed == 4  # one batch, through the worker, into the shared store
        # the fan-out runs every minute on a worker (and finds nothing open)
        fan_out = FlowFilter(name=FlowFilterName(any_=["fan-out-dialing"]))
        completed = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED])))
        deadline = time.monotonic() + 240
        with SyncPrefectClient(api) as client:
            while not client.read_flow_runs(flow_filter=fan_out, flow_run_filter=completed):
                assert time.monotonic() < deadline, "no fan-out-dialing run completed"
                time.sleep(1)
    finally:
        reset_settings()
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGTERM)
        rest = serve.communicate(timeout=120)[0]
        shutil.rmtree(folder, ignore_errors=True)
    assert serve.returncode == 0, "".join(lines) + rest
    assert "stopping" in rest
