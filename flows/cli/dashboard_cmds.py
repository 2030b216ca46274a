"""`campaigns dashboard`: start the Streamlit dashboard on the chosen database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import app, db, refuse_missing_store
from tasks.settings import PROJECT_ROOT, Settings

# The embedded default store (data/campaigns.duckdb): nothing there yet is a first start, not a typo.
DEFAULT_STORE: Path = Settings.model_fields["db"].default


def streamlit_command(port: int, headless: bool) -> list[str]:
    """The `streamlit run dashboards/app.py` command line for a port."""
    return [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "dashboards" / "app.py"),
        "--server.port", str(port), "--server.headless", str(headless).lower(),
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
    ]


@app.command()
def dashboard(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve the dashboard on.")] = 8501,
    headless: Annotated[bool, typer.Option("--headless/--open-browser", help="Do not open a browser tab.")] = True,
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
    typer.echo(f"dashboard on http://localhost:{port} (database {env['CAMPAIGNS_DB']})")
    try:
        code = subprocess.call(streamlit_command(port, headless), env=env, cwd=PROJECT_ROOT)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
