"""`campaigns init` and `campaigns version`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as package_version

from flows.cli.common import JsonOpt, app, db, emit


@app.command()
def init(as_json: JsonOpt = False) -> None:
    """Create or upgrade the database; print its path and schema version."""
    from tasks.store import _hidden, init_db, shared_store_url

    path, schema_version = init_db(db())
    url = shared_store_url()
    # the shared store has no file: name the server (password hidden), not a DuckDB path nobody created
    where = str(path.resolve()) if url is None else f"shared store {_hidden(url)}"
    emit({"db": where, "schema_version": schema_version}, as_json,
         f"database ready: {where} (schema version {schema_version})")


@app.command()
def version(as_json: JsonOpt = False) -> None:
    """Print the program version, the schema version it ships and the DuckDB version."""
    import duckdb

    from tasks.store import latest_version

    try:
        program = package_version("voice-campaigns")
    except PackageNotFoundError:
        program = "0.0.0+unknown"
    data = {"version": program, "schema_version": latest_version(), "duckdb": duckdb.__version__}
    emit(data, as_json, f"voice-campaigns {program} (schema {data['schema_version']}, duckdb {duckdb.__version__})")
