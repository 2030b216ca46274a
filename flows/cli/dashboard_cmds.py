"""`campaigns dashboard`: start the Streamlit dashboard on the chosen database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import app, db, refuse_missing_store
from tasks.settings import PROJECT_ROOT, Settings

# The embedded default store (data/campaigns.duckdb): nothing there yet is a first start, not a typo.
DEFAULT_STORE: Path = Settings.model_fields["db"].default


def streamlit_command(port: int, headless: bool, address: str | None = None) -> list[str]:
    """The `streamlit run dashboards/app.py` command line for a port (and an interface, else Streamlit's: all)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "dashboards" / "app.py"),
        "--server.port", str(port), "--server.headless", str(headless).lower(),
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
        *(["--server.address", address] if address else []),
    ]


def dashboard_url(port: int, address: str | None) -> str:
    """The address to open: localhost unless the dashboard listens on one interface only."""
    host = "localhost" if address in (None, "", "0.0.0.0", "::") else address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Stopped(Exception):
    """A stop signal (SIGTERM, SIGHUP) reached the command while Streamlit ran."""


def _stop(signum: int, _frame) -> None:
    raise _Stopped(signum)


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise _Stopped instead of ending the process at once: the raise inside
    subprocess.call kills and reaps Streamlit (a dashboard stopped by a signal used to leave it running, adopted by
    PID 1, still holding the port)."""
    if threading.current_thread() is not threading.main_thread():  # signals can only be handled there
        yield
        return
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@app.command()
def dashboard(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve the dashboard on.")] = 8501,
    headless: Annotated[bool, typer.Option("--headless/--open-browser", help="Do not open a browser tab.")] = True,
    address: Annotated[str | None, typer.Option(
        "--address", help="Interface to listen on, e.g. 127.0.0.1 (default: every interface, as Streamlit).")] = None,
) -> None:
    """Start the Streamlit dashboard on the database chosen by --db (Ctrl+C stops it)."""
    from tasks.store import init_db, store_file_problem

    path = db()
    # The app never creates a store (a mistyped --db used to get a new, empty one): a missing or empty file
    # is refused as the reading commands refuse it, unless it is the default store's first start.
    if store_file_problem(path) is not None:
        if path.resolve() != DEFAULT_STORE.resolve():
            refuse_missing_store(path)
        init_db(path)
        typer.echo(f"first start: created a new, empty database at {path.resolve()} (the default store)")
    env = os.environ | {"CAMPAIGNS_DB": str(path.resolve())}
    typer.echo(f"dashboard on {dashboard_url(port, address)} (database {env['CAMPAIGNS_DB']})")
    try:
        with stopped_by_signals():
            code = subprocess.call(streamlit_command(port, headless, address), env=env, cwd=PROJECT_ROOT)
    except KeyboardInterrupt:
        code = 0
    except _Stopped as stop:
        code = 128 + stop.args[0]  # as a shell reports a process ended by that signal
    raise typer.Exit(code)
