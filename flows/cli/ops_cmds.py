"""`campaigns backup`: operations commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import JsonOpt, app, check_out_file, db, emit


@app.command()
def backup(
    out: Annotated[Path, typer.Option("--out", help=(
        "Backup file to write, ending in .duckdb; an existing DuckDB file there (the previous backup) or an empty "
        "file is replaced atomically, any other file is refused."))],
    as_json: JsonOpt = False,
) -> None:
    """Copy the database to a consistent backup file, safe while flows run."""
    from tasks.backup import run_backup

    result = run_backup(db(), check_out_file(out, ".duckdb", "campaigns-backup"))
    emit(result, as_json, f"backup written: {result['out']} ({result['bytes']:,} bytes, "
                          f"{result['tables']} tables, schema version {result['schema_version']})")
