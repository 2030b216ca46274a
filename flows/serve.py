"""`make serve`: production mode on one machine — Prefect server, work pool and worker, the
deployments from prefect.yaml, the dashboard and the webhook endpoint, as separate processes.

Logs go to data/logs/. Ctrl-C (or SIGTERM, or SIGHUP: the terminal closed) stops them all: the
flow runs the worker started first, then the worker, the dashboard and the webhooks, while the
Prefect server can still record how the runs ended, then the server. A start finds the runs a
previous serve left Running or Pending (killed outright, say) and closes them as Crashed, freeing
their deployment concurrency slots. Ports:
--prefect-port (4200), --dashboard-port (8501), --webhook-port (8787); the dashboard listens on
--address (localhost). --seconds N stops by itself after N seconds (scripted checks);
--no-dashboard / --no-webhooks leave those out.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.settings import DATA_DIR, PROJECT_ROOT

POOL = "campaigns"  # prefect.yaml's work pool: its deployments are this project's
STALE_RUN_MESSAGE = "left running when serve stopped"
STOP_SECONDS = 15  # the flow runs get this long after SIGTERM, then the worker, dashboard and webhooks too
SERVER_STOP_SECONDS = 15  # then the Prefect server
# Prefect's worker answers SIGTERM by stopping "gracefully", which can take it the whole STOP_SECONDS after its
# flow runs ended (and it may even submit another run meanwhile): once no process below the children is left,
# they get this long, then SIGKILL (the runs are over and recorded by then).
STOP_SETTLE_SECONDS = 5


def _proc_table() -> dict[int, str]:
    """pid -> "parent pid, start time" of every live process /proc shows (zombies left out); {} without /proc."""
    table: dict[int, str] = {}
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return table
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat_file:
                stat = stat_file.read()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the command name, in parentheses, may hold spaces
        if fields[0] not in ("Z", "X"):
            table[int(entry.name)] = f"{fields[1]} {fields[19]}"  # ppid, start time (clock ticks after boot)
    return table


def descendants(table: dict[int, str], roots: list[int]) -> list[int]:
    """Every process below `roots` in `table` (from _proc_table), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for pid, parent_and_start in table.items():
        children.setdefault(int(parent_and_start.split()[0]), []).append(pid)
    found: list[int] = []
    queue = list(roots)
    while queue:
        for child in children.get(queue.pop(0), []):
            if child not in found and child not in roots:
                found.append(child)
                queue.append(child)
    return found


def _signal_process(pid: int, signum: int) -> None:
    """Send `signum` to `pid`, and to its whole group when it leads one (the worker starts each flow run
    in a session of its own); a process already gone is no error."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel send the child SIGTERM when serve dies (Linux `PR_SET_PDEATHSIG`), or None
    where there is no prctl.

    Each child runs in a session of its own (so a Ctrl-C reaches serve alone, which stops them in order): a serve killed
    outright (SIGKILL, the OOM killer) left its Prefect server, worker, webhooks and dashboard running, and the worker
    kept dialing every minute with nobody supervising it; the next start then failed on the busy port and left them
    there. libc is loaded here, in serve, so the child only makes the call between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # serve died before the call: the kernel will not tell this child
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class Services:
    """The child processes, each logging to its own file; stopped together, and ended by the kernel if serve dies."""

    def __init__(self, log_dir: Path, env: dict[str, str]):
        self.log_dir, self.env = log_dir, env
        self.children: list[tuple[str, subprocess.Popen]] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's life
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=PROJECT_ROOT,
                                 start_new_session=True, preexec_fn=_die_with_parent())
        self.children.append((name, child))
        print(f"  started {name} (pid {child.pid}), log {self.log_dir / (name + '.log')}", flush=True)
        return child

    def run(self, name: str, argv: list[str], check: bool = True) -> int:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=PROJECT_ROOT)
        if check and code != 0:
            raise SystemExit(f"{name} failed (exit {code}); see {self.log_dir / (name + '.log')}")
        return code

    def failed(self) -> str | None:
        for name, child in self.children:
            if child.poll() is not None:
                return f"{name} exited with {child.returncode}; see {self.log_dir / (name + '.log')}"
        return None

    def stop(self) -> None:
        """Stop everything: first every child but the Prefect server, with the processes they started (the
        worker's flow runs live in sessions of their own, out of the worker's process group), so a run
        ends while the server can still record it and free its concurrency slot; then the server."""
        first = [(name, child) for name, child in self.children if name != "prefect-server"]
        last = [(name, child) for name, child in self.children if name == "prefect-server"]
        # the flow runs before the worker: it relays their output and reports a run that ended without
        # saying so; a worker gone first can leave its run Running
        stop_processes(first, STOP_SECONDS, below_only=True)
        stop_processes(first, STOP_SECONDS, settle=STOP_SETTLE_SECONDS)
        stop_processes(last, SERVER_STOP_SECONDS)


def stop_processes(children: list[tuple[str, subprocess.Popen]], seconds: float, settle: float | None = None,
                   below_only: bool = False) -> None:
    """SIGTERM `children` (their process groups) and every process below them, wait up to `seconds` for
    all to end, then SIGKILL what is left. Processes the children start meanwhile are stopped too. With
    `settle`, the children are SIGKILLed sooner: `settle` seconds after the last process below them ended.
    `below_only`: only the processes below the children (the children go on)."""
    if not children:
        return
    roots = [child.pid for _name, child in children]
    table = _proc_table()
    below = {pid: table[pid] for pid in descendants(table, roots)}  # pid -> identity, against pid reuse
    for _name, child in children:
        if child.poll() is None and not below_only:
            _signal_process(child.pid, signal.SIGTERM)
    for pid in below:
        _signal_process(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    quiet_since = None  # when no process below the children was left
    while True:
        table = _proc_table()
        # a flow run the worker started just before its SIGTERM: stop it too
        alive_roots = [child.pid for _name, child in children if child.poll() is None]
        for pid in descendants(table, alive_roots + [pid for pid in below if table.get(pid) == below[pid]]):
            if pid not in below and pid not in roots:
                below[pid] = table[pid]
                _signal_process(pid, signal.SIGTERM)
        left = [pid for pid in below if table.get(pid) == below[pid]]
        if not left and (below_only or not alive_roots):
            return
        quiet_since = (quiet_since or time.monotonic()) if not left else None
        if time.monotonic() >= deadline or (settle is not None and quiet_since
                                            and time.monotonic() - quiet_since >= settle):
            break
        time.sleep(0.2)
    for _name, child in children:
        if child.poll() is None and not below_only:
            _signal_process(child.pid, signal.SIGKILL)
    table = _proc_table()
    for pid in below:
        if table.get(pid) == below[pid]:
            _signal_process(pid, signal.SIGKILL)
    if not below_only:
        for _name, child in children:
            child.wait()


def wait_http(url: str, seconds: float) -> None:
    """Poll a URL until it answers 200 or the time is up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own local server
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def dashboard_argv(port: int, address: str = "localhost") -> list[str]:
    """The command that serves the Streamlit dashboard, headless, on `port` of `address` (localhost: this
    machine only; 0.0.0.0 every interface)."""
    return [sys.executable, "-m", "streamlit", "run", "dashboards/app.py", "--server.headless", "true",
            "--server.address", address, "--server.port", str(port), "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal"]  # as `make demo` and `campaigns dashboard`: no Deploy button


def dashboard_url(port: int, address: str) -> str:
    """The address to open: localhost unless the dashboard listens on one other interface only."""
    host = "localhost" if address in ("", "localhost", "0.0.0.0", "::") else address  # noqa: S104 - compared, not bound
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def close_stale_runs(client: Any, pool: str = POOL) -> tuple[int, int]:
    """Close the flow runs of `pool`'s deployments a previous serve left Pending, Running or Cancelling
    (Crashed, or Cancelled for a Cancelling one, with STALE_RUN_MESSAGE) and free the deployment
    concurrency slots still taken; (runs closed, slots that were taken). Call it before a worker of
    `pool` starts: no run of it can be in progress then.

    A serve stopped outright (SIGKILL, a power cut) leaves its runs Running for ever; and the server
    keeps concurrency leases in memory, so a restarted one cannot release the slot a run took: every
    new run of a deployment with `limit: 1, CANCEL_NEW` then ends "Deployment concurrency limit
    reached". `client` is a SyncPrefectClient.
    """
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.client.schemas.filters import (
        DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType,
        WorkPoolFilter, WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled, Crashed

    in_pool = WorkPoolFilter(name=WorkPoolFilterName(any_=[pool]))
    deployments = client.read_deployments(work_pool_filter=in_pool)
    if not deployments:
        return 0, 0
    taken = sum(d.global_concurrency_limit.active_slots for d in deployments if d.global_concurrency_limit)
    of_pool = DeploymentFilter(id=DeploymentFilterId(any_=[d.id for d in deployments]))
    unfinished = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
        any_=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING])))
    closed: set = set()
    while True:
        runs = [run for run in client.read_flow_runs(flow_run_filter=unfinished, deployment_filter=of_pool, limit=200)
                if run.id not in closed]
        if not runs:
            break
        for run in runs:
            end = Cancelled if run.state_type == StateType.CANCELLING else Crashed
            # force: no orchestration rule refuses it; releasing the deployment's slot still runs
            client.set_flow_run_state(run.id, end(message=STALE_RUN_MESSAGE), force=True)
            closed.add(run.id)
    for deployment in client.read_deployments(work_pool_filter=in_pool):
        limit = deployment.global_concurrency_limit
        if limit and limit.active_slots:  # the lease behind it died with the previous server
            client.update_global_concurrency_limit(str(limit.id), GlobalConcurrencyLimitUpdate(active_slots=0))
    return len(closed), taken


def say(text: str) -> None:
    """Print a line; a terminal already closed (SIGHUP) is no reason to leave the services running."""
    try:
        print(text, flush=True)
    except OSError:
        pass


class _Stopped(Exception):  # noqa: N818 - a signal, not an error
    """SIGTERM or SIGHUP reached serve."""


def watch(services: Services, seconds: float | None, stopped: Callable[[], bool]) -> int:
    """Watch the services until `seconds` pass or `stopped()`; 1 (the failure said on stderr) when one dies."""
    deadline = time.monotonic() + seconds if seconds else None
    while not stopped() and (deadline is None or time.monotonic() < deadline):
        problem = services.failed()
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--dashboard-port", type=int, default=8501)
    parser.add_argument("--webhook-port", type=int, default=8787)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument("--no-webhooks", action="store_true")
    parser.add_argument("--address", default="localhost",
                        help="interface the dashboard listens on (default localhost: this machine only; "
                             "0.0.0.0 for every interface)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bin_dir = Path(sys.executable).parent
    prefect = str(bin_dir / "prefect")
    api = f"http://127.0.0.1:{args.prefect_port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(DATA_DIR / "prefect")),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "CAMPAIGNS_HOME": str(PROJECT_ROOT),
        "CAMPAIGNS_PREFECT_DEPLOYMENTS": "true",
    }
    env.pop("PREFECT_API_KEY", None)
    services = Services(Path(os.environ.get("CAMPAIGNS_LOG_DIR", DATA_DIR / "logs")), env)

    def request_stop(signum, _frame):
        raise _Stopped(signum)  # out of whatever step runs (a start-up step's child is killed), to the stop

    for signum in (signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed; the children outlive it
        signal.signal(signum, request_stop)
    try:
        print("voice-campaigns: starting the served mode", flush=True)
        services.run("init", [sys.executable, "-m", "flows.cli", "init"])
        server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        services.env = server_env
        services.start("prefect-server", [prefect, "server", "start", "--host", "127.0.0.1",
                                          "--port", str(args.prefect_port)])
        services.env = env
        wait_http(f"{api}/health", 120)
        closed, slots = stale_runs_closed(api, env)
        print(f"  closed {closed} flow run(s) a previous serve left running (now Crashed: {STALE_RUN_MESSAGE}), "
              f"freed {slots} deployment concurrency slot(s)", flush=True)
        services.run("work-pool", [prefect, "work-pool", "create", "campaigns", "--type", "process"], check=False)
        services.run("deploy", [prefect, "--no-prompt", "deploy", "--all"])
        print(f"  deployed prefect.yaml to {api}", flush=True)
        services.start("worker", [prefect, "worker", "start", "--pool", "campaigns"])
        if not args.no_webhooks:
            services.start("webhooks", [sys.executable, "-m", "flows.cli", "webhooks", "serve",
                                        "--port", str(args.webhook_port)])
        if not args.no_dashboard:
            services.start("dashboard", dashboard_argv(args.dashboard_port, args.address))
        print(f"ready: Prefect UI http://127.0.0.1:{args.prefect_port}"
              + ("" if args.no_dashboard else f" · dashboard {dashboard_url(args.dashboard_port, args.address)}")
              + ("" if args.no_webhooks else f" · webhooks http://127.0.0.1:{args.webhook_port}/webhooks/retell")
              + " · Ctrl-C stops everything", flush=True)
        if watch(services, args.seconds, lambda: False):
            return 1
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not cut the stop short
            signal.signal(signum, signal.SIG_IGN)
        say(f"stopping… (the flow runs, the worker, then the Prefect server; at most "
            f"{2 * STOP_SECONDS + SERVER_STOP_SECONDS} s)")
        services.stop()
    return 0


def stale_runs_closed(api: str, env: dict[str, str]) -> tuple[int, int]:
    """close_stale_runs against the server at `api`, from this process (Prefect imported here, with
    serve's PREFECT_HOME)."""
    for key in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED"):
        os.environ[key] = env[key]
    from prefect.client.orchestration import SyncPrefectClient

    try:
        with SyncPrefectClient(api) as client:
            return close_stale_runs(client)
    except Exception as error:  # noqa: BLE001 - said in one line; serve then stops what it started
        raise SystemExit(f"closing the flow runs a previous serve left running failed: {error}") from error


if __name__ == "__main__":
    sys.exit(main())
