"""Consistent backups of the store while flows run: one short connection, a copy, an atomic rename.

The copy is DuckDB's `COPY FROM DATABASE` into a temporary file beside the target, checkpointed and
fsynced, then renamed over the target (tasks/snapshot.py does the copying). While it runs the
backup holds the file like any other short unit of work: flows that want it wait on the lock
(they retry for CAMPAIGNS_LOCK_TIMEOUT_SECONDS), they never see an error.
"""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb

from tasks.errors import UserError
from tasks.snapshot import refresh_snapshot
from tasks.store import (DUCKDB_MAGIC, DUCKDB_MAGIC_OFFSET, connect, current_version, db_path, same_file,
                          shared_store_url)


def check_target(source: Path, out: str | Path) -> Path:
    """The backup file to write, refused when it is a folder, the store itself, or a file that is no DuckDB database.

    An existing DuckDB file (the previous backup) is replaced, and so is an empty file; anything else (a CSV, a
    spreadsheet, a mistyped path) is someone's data and is left alone.
    """
    target = Path(out)
    if target.is_dir():
        raise UserError(f"--out {target}: is a folder; name the backup file, e.g. {target / 'campaigns-backup.duckdb'}")
    if same_file(target, source):
        raise UserError(f"--out {target}: is the database itself; choose another file")
    if not target.parent.exists():
        raise UserError(f"--out {target}: folder {target.parent} does not exist")
    problem = _not_a_database(target)
    if problem is not None:
        raise UserError(f"--out {target}: {problem}; not overwritten (a backup replaces only a DuckDB file); choose another file")
    problem = _live_store(target, source)
    if problem is not None:
        raise UserError(f"--out {target}: {problem}; not overwritten (a backup replaces only an earlier backup); "
                        "choose another file")
    return target


def _live_store(target: Path, source: Path) -> str | None:
    """Why an existing DuckDB file at `target` is a store in use rather than an earlier backup, or None.

    The system of record (CAMPAIGNS_DB, else data/campaigns.duckdb) when backing up another file, a file another
    process holds open (flows running on it: `backup --out` replaced a served store under its flows), or one with a
    write-ahead log beside it (a backup is written whole, without one).
    """
    if not target.is_file() or target.stat().st_size == 0:
        return None
    if same_file(target, db_path(None)) and not same_file(source, db_path(None)):
        return "is the system of record (CAMPAIGNS_DB, else data/campaigns.duckdb)"
    if target.with_name(target.name + ".wal").exists():
        return "is a database in use (it has a write-ahead log beside it)"
    try:
        duckdb.connect(str(target), read_only=True).close()
    except duckdb.Error as error:
        if "lock" in str(error).lower():
            return "is open in another process (a store in use)"
    return None


def _not_a_database(path: Path) -> str | None:
    """Why an existing file at `path` must not be replaced by a backup, None when it may (missing, empty, DuckDB)."""
    try:
        if not path.exists() or (path.is_file() and path.stat().st_size == 0):
            return None
        if not path.is_file():
            return "exists and is not a regular file"
        with open(path, "rb") as handle:
            head = handle.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
    except OSError as error:
        return f"exists and cannot be read to check it is a DuckDB database ({error.strerror or error})"
    if head[DUCKDB_MAGIC_OFFSET:] != DUCKDB_MAGIC:
        return "exists and is not a DuckDB database"
    return None


def backup_store(conn: duckdb.DuckDBPyConnection, target: str | Path) -> dict:
    """Copy every table of the connected store into `target` (replaced atomically); returns what was copied."""
    try:
        path = refresh_snapshot(conn, target, whole_schema=True)  # keys, constraints and sequences too
    except OSError as error:
        raise UserError(f"backup {target}: {_os_reason(error)}; the previous backup file (if any) is unchanged") from None
    except duckdb.IOException as error:
        text = str(error).lower()
        reason = "disk full" if "no space" in text else "cannot write" if "permission" in text or "read-only" in text else str(error)
        raise UserError(f"backup {target}: {reason}; the previous backup file (if any) is unchanged") from None
    tables = conn.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() and table_type = 'BASE TABLE'"
    ).fetchone()[0]
    return {"out": str(path.resolve()), "bytes": path.stat().st_size, "tables": tables,
            "schema_version": current_version(conn)}


def _os_reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "disk full"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "cannot write there (permission or read-only file system)"
    return error.strerror or str(error)


def verify_backup(target: str | Path) -> int:
    """Open a backup read-only and return its schema version (raises if it is not a usable store)."""
    with connect(target, read_only=True) as conn:
        return current_version(conn)


def run_backup(db: str | Path | None, out: str | Path) -> dict:
    """Back up the store to `out` with one short connection, then check the copy opens."""
    if shared_store_url() is not None:
        raise UserError("the store is the shared PostgreSQL store (CAMPAIGNS_STORE=postgres): back it up with "
                        "PostgreSQL's own tools (pg_dump; docs/scale-out.md); `backup` copies a DuckDB file")
    source = db_path(db)
    if not source.exists():
        raise UserError(f"database {source} does not exist; nothing to back up")
    target = check_target(source, out)
    with connect(source) as conn:
        result = backup_store(conn, target)
    result["verified_schema_version"] = verify_backup(target)
    return result
