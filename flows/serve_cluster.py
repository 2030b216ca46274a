"""`make serve-cluster`: the scale-out mode on one machine — PostgreSQL as the shared store, a Prefect
server, the global call limit, the deployments, THREE process workers and the dashboard.

PostgreSQL (the Debian package, tasks/pgserver.py) keeps its data in data/pg/ (--pg-dir) on a free
local port (--pg-port); the store settings point every process at it (CAMPAIGNS_STORE=postgres,
CAMPAIGNS_STORE_URL). Dialing runs as `fan-out-dialing` (every minute) submitting one `dial-campaign`
run per open campaign for the workers to share, each call holding a slot of the `provider-calls`
global concurrency limit (= --call-limit, default the provider's concurrent-call limit). Logs go to
data/logs/cluster/. Ctrl-C (or SIGTERM) stops everything, PostgreSQL last. --seconds N stops by
itself after N seconds (scripted checks). On more machines: docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from flows.serve import Services, dashboard_argv, wait_http, watch
from tasks.settings import DATA_DIR, PROJECT_ROOT, get_settings

# Every deployment of prefect.yaml but the single-process dialing tick, which the fan-out replaces.
CLUSTER_DEPLOYMENTS = ("fan-out-dialing", "dial-campaign", "run-campaign", "enrich-calls", "aggregate-metrics",
                       "import-contacts")


def cluster_env(base: dict[str, str], *, store_url: str, prefect_api: str) -> dict[str, str]:
    """The environment of every cluster process: the shared store, the Prefect server, this checkout."""
    env = {
        **base,
        "CAMPAIGNS_STORE": "postgres",
        "CAMPAIGNS_STORE_URL": store_url,
        "PREFECT_HOME": base.get("PREFECT_HOME", str(DATA_DIR / "prefect-cluster")),
        "PREFECT_API_URL": prefect_api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "CAMPAIGNS_HOME": str(PROJECT_ROOT),
        "CAMPAIGNS_PREFECT_DEPLOYMENTS": "true",
    }
    env.pop("PREFECT_API_KEY", None)
    return env


def deploy_argv(prefect: str) -> list[str]:
    """`prefect deploy` of the cluster's deployments by name."""
    argv = [prefect, "--no-prompt", "deploy"]
    for name in CLUSTER_DEPLOYMENTS:
        argv += ["--name", name]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--dashboard-port", type=int, default=8501)
    parser.add_argument("--pg-port", type=int, default=None, help="default: a free port")
    parser.add_argument("--pg-dir", type=Path, default=DATA_DIR / "pg")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--call-limit", type=int, default=None,
                        help="calls in flight across all workers; default CAMPAIGNS_PROVIDER_CONCURRENCY_LIMIT")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--no-dashboard", action="store_true")
    args = parser.parse_args(argv)

    from tasks.pgserver import PgServer, PgServerError, PostgresMissingError

    try:
        pg = PgServer(args.pg_dir / "data", port=args.pg_port, durable=True)  # the kept store: fsync on
    except PostgresMissingError as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    bin_dir = Path(sys.executable).parent
    prefect = str(bin_dir / "prefect")
    api = f"http://127.0.0.1:{args.prefect_port}/api"
    log_dir = Path(os.environ.get("CAMPAIGNS_LOG_DIR", DATA_DIR / "logs" / "cluster"))
    call_limit = args.call_limit or get_settings().provider_concurrency_limit
    stop_requested = False

    def request_stop(*_):
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    services: Services | None = None
    try:
        print("voice-campaigns: starting the cluster mode", flush=True)
        pg.start()
        print(f"  PostgreSQL {pg.url} (data {pg.data_dir}, log {pg.log_file})", flush=True)
        env = cluster_env(dict(os.environ), store_url=pg.url, prefect_api=api)
        services = Services(log_dir, env)
        services.run("init", [sys.executable, "-m", "flows.cli", "init"])  # migrates the shared store
        services.env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        services.start("prefect-server", [prefect, "server", "start", "--host", "127.0.0.1",
                                          "--port", str(args.prefect_port)])
        services.env = env
        wait_http(f"{api}/health", 120)
        services.run("work-pool", [prefect, "work-pool", "create", "campaigns", "--type", "process"], check=False)
        services.run("deploy", deploy_argv(prefect))
        services.run("cluster-setup", [sys.executable, "-m", "flows.cluster", "setup", "--call-limit", str(call_limit)])
        print(f"  deployed {', '.join(CLUSTER_DEPLOYMENTS)} to {api}; global limit provider-calls = {call_limit}",
              flush=True)
        for index in range(1, args.workers + 1):
            services.start(f"worker-{index}", [prefect, "worker", "start", "--pool", "campaigns",
                                               "--name", f"campaigns-worker-{index}"])
        if not args.no_dashboard:
            services.start("dashboard", dashboard_argv(args.dashboard_port))
        print(f"ready: Prefect UI http://127.0.0.1:{args.prefect_port} · {args.workers} workers · store {pg.url}"
              + ("" if args.no_dashboard else f" · dashboard http://localhost:{args.dashboard_port}")
              + " · Ctrl-C stops everything", flush=True)
        if watch(services, args.seconds, lambda: stop_requested):
            return 1
    except KeyboardInterrupt:
        pass
    except PgServerError as failed:  # the port taken, a second serve on the same folder: one line, not a traceback
        print(f"error: {' '.join(str(failed).split())}", file=sys.stderr)
        return 2
    except SystemExit as failed:  # a setup step failed: say which, then stop what was started
        if failed.code not in (None, 0):
            print(f"error: {failed.code}", file=sys.stderr)
            return 1
    finally:
        print("stopping…", flush=True)
        if services is not None:
            services.stop()
        pg.stop()  # last: the workers and the dashboard are gone
    return 0


if __name__ == "__main__":
    sys.exit(main())
