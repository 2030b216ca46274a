"""The analysts' read-only snapshot: a full copy of the store, swapped in atomically after each aggregation."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb

from tasks.errors import UserError
from tasks.settings import get_settings
from tasks.store import companion_path, db_path, same_file

_ALIAS = "analytics_snapshot_new"


def snapshot_path(db: str | Path | None = None) -> Path:
    """Where the snapshot of a store lives: CAMPAIGNS_ANALYTICS_DB, else analytics.duckdb beside the store."""
    settings = get_settings()
    if settings.analytics_db is not None:
        return settings.analytics_db
    return companion_path(db, "analytics.duckdb")


def _quoted_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quoted_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _refuse_the_store_itself(conn: duckdb.DuckDBPyConnection, target: Path) -> None:
    """Refuse a target that is the connected store's own file (or a link to it): the copy would replace the store.

    CAMPAIGNS_ANALYTICS_DB set to the store's path did: the next aggregation swapped in the keyless copy, and
    every insert after it got a null id (no sequences, no keys).
    """
    row = conn.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()
    try:  # in memory: no path; the shared store's "path" is its connection string, no file
        store = Path(row[0]) if row and row[0] and Path(row[0]).is_file() else None
    except OSError:
        store = None
    if store is None:
        return
    if same_file(target, store):
        raise UserError(f"{target}: is the database itself, which the copy would replace "
                        "(CAMPAIGNS_ANALYTICS_DB, or --out, must name another file)")


def refresh_snapshot(conn: duckdb.DuckDBPyConnection, target: str | Path, *, whole_schema: bool = False) -> Path:
    """Copy every table's rows of the connected store into a new file beside `target`, then replace it.

    Readers that have the old file open keep their view (on POSIX the old inode lives on until they
    close it); the next open sees the new copy. A failure leaves the previous snapshot untouched.
    `whole_schema` copies keys, constraints, sequences (their positions) and views too: a backup must be
    a working store once restored. Call it outside a transaction.
    """
    target = Path(target)
    _refuse_the_store_itself(conn, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target, so os.replace is a rename on one file system (atomic).
    temp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    source = conn.execute("select current_database()").fetchone()[0]
    try:
        # ATTACH takes no bound parameters: the path is quoted as a literal, the alias is fixed.
        conn.execute(f"attach {_quoted_literal(str(temp))} as {_ALIAS}")
        try:
            if whole_schema:
                conn.execute(f"copy from database {_quoted_identifier(source)} to {_ALIAS}")
            else:
                # CREATE TABLE AS per table, not COPY FROM DATABASE: the analysts' copy needs no keys or
                # indexes (read-only), and rebuilding calls' indexes made the copy about three times slower.
                tables = conn.execute(
                    "select table_name from duckdb_tables() where database_name = ? and schema_name = 'main'"
                    " and not temporary order by table_name",
                    [source],
                ).fetchall()
                for (table,) in tables:
                    name = _quoted_identifier(table)
                    conn.execute(f"create table {_ALIAS}.{name} as from {_quoted_identifier(source)}.main.{name}")
            conn.execute(f"checkpoint {_ALIAS}")
        finally:
            conn.execute(f"detach {_ALIAS}")
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        _remove(temp)
        raise
    finally:
        temp.with_name(temp.name + ".wal").unlink(missing_ok=True)
    return target
