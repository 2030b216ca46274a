"""`campaigns dashboard`: start the Streamlit dashboard on the chosen database."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from flows.cli.common import app, db, store_missing, store_origin
from tasks.settings import PROJECT_ROOT


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
    path = db()
    if store_missing(path):  # the app creates it on its first read (it writes too: wizard, settings, imports)
        typer.echo(f"warning: {store_origin(path)}: no database there yet; the dashboard starts on a new, empty one",
                   err=True)
    env = os.environ | {"CAMPAIGNS_DB": str(path.resolve())}
    typer.echo(f"dashboard on http://localhost:{port} (database {env['CAMPAIGNS_DB']})")
    try:
        code = subprocess.call(streamlit_command(port, headless), env=env, cwd=PROJECT_ROOT)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
