"""`make serve`: production mode on one machine — Prefect server, work pool and worker, the
deployments from prefect.yaml, the dashboard and the webhook endpoint, as separate processes.

Logs go to data/logs/. Ctrl-C (or SIGTERM) stops them all. Ports: --prefect-port (4200),
--dashboard-port (8501), --webhook-port (8787). --seconds N stops by itself after N seconds
(scripted checks); --no-dashboard / --no-webhooks leave those out.
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

from tasks.settings import DATA_DIR, PROJECT_ROOT


class Services:
    """The child processes, each logging to its own file; stopped together."""

    def __init__(self, log_dir: Path, env: dict[str, str]):
        self.log_dir, self.env = log_dir, env
        self.children: list[tuple[str, subprocess.Popen]] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's life
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=PROJECT_ROOT,
                                 start_new_session=True)
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
        for _name, child in reversed(self.children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, child in reversed(self.children):
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
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



def dashboard_argv(port: int) -> list[str]:
    """The command that serves the Streamlit dashboard, headless, on `port`."""
    return [sys.executable, "-m", "streamlit", "run", "dashboards/app.py", "--server.headless", "true",
            "--server.port", str(port), "--browser.gatherUsageStats", "false"]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--dashboard-port", type=int, default=8501)
    parser.add_argument("--webhook-port", type=int, default=8787)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument("--no-webhooks", action="store_true")
    args = parser.parse_args(argv)

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
    stop_requested = False

    def request_stop(*_):
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        print("voice-campaigns: starting the served mode", flush=True)
        services.run("init", [sys.executable, "-m", "flows.cli", "init"])
        server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        services.env = server_env
        services.start("prefect-server", [prefect, "server", "start", "--host", "127.0.0.1",
                                          "--port", str(args.prefect_port)])
        services.env = env
        wait_http(f"{api}/health", 120)
        services.run("work-pool", [prefect, "work-pool", "create", "campaigns", "--type", "process"], check=False)
        services.run("deploy", [prefect, "--no-prompt", "deploy", "--all"])
        print(f"  deployed prefect.yaml to {api}", flush=True)
        services.start("worker", [prefect, "worker", "start", "--pool", "campaigns"])
        if not args.no_webhooks:
            services.start("webhooks", [sys.executable, "-m", "flows.cli", "webhooks", "serve",
                                        "--port", str(args.webhook_port)])
        if not args.no_dashboard:
            services.start("dashboard", dashboard_argv(args.dashboard_port))
        print(f"ready: Prefect UI http://127.0.0.1:{args.prefect_port}"
              + ("" if args.no_dashboard else f" · dashboard http://localhost:{args.dashboard_port}")
              + ("" if args.no_webhooks else f" · webhooks http://127.0.0.1:{args.webhook_port}/webhooks/retell")
              + " · Ctrl-C stops everything", flush=True)
        if watch(services, args.seconds, lambda: stop_requested):
            return 1
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping…", flush=True)
        services.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
