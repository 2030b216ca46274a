"""The only module that opens DuckDB: short-lived connections, lock retries, transactions, migrations.

DuckDB lets one process hold a database file for writing and, while it does, no other process can
open it at all. Every process therefore opens a connection for one unit of work, retries a lock
conflict with jittered backoff for a bounded time, and closes it before waiting on anything else.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

from tasks.errors import StoreError, StoreLockedError
from tasks.settings import get_settings

_LOCK_PATTERN = re.compile(r"lock", re.IGNORECASE)
PER_STATEMENT_MARK = "-- migrate: one statement per transaction"
_migrated: set[str] = set()
_migrate_guard = threading.Lock()


def db_path(db: str | Path | None = None) -> Path:
    """The database file to use: the explicit one, else the settings' (CAMPAIGNS_DB)."""
    return Path(db) if db is not None else get_settings().db


def migrations() -> list[tuple[int, str, str]]:
    """Every numbered migration shipped in schemas/migrations as (version, name, sql), in order."""
    found = []
    for entry in resources.files("schemas").joinpath("migrations").iterdir():
        match = re.fullmatch(r"(\d{3})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def latest_version() -> int:
    """The schema version a fully migrated database has."""
    return migrations()[-1][0]


def _is_lock_conflict(error: Exception) -> bool:
    # The second case is a race inside one process: a thread opens the file while another thread's
    # last connection is still closing it ("Unique file handle conflict"); it clears in milliseconds.
    text = str(error)
    return (isinstance(error, duckdb.IOException) and bool(_LOCK_PATTERN.search(text))) or (
        "Unique file handle conflict" in text
    )


_open_close_locks: dict[str, threading.Lock] = {}


def _open_close_lock(path: Path) -> threading.Lock:
    """Opens and closes of one file in this process take turns.

    DuckDB shares one database instance per file among a process's connections and tears it down
    (checkpointing) when the last one closes; a thread opening the file during that teardown got a
    second instance of the same file (seen as "Unique file handle conflict", and once as a corrupt
    block read in the contention soak). File locks cannot catch it: they are per process.
    """
    key = str(path.resolve())
    with _migrate_guard:
        return _open_close_locks.setdefault(key, threading.Lock())


def _open(path: Path, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            if not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            with _open_close_lock(path):
                return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as error:
            if not _is_lock_conflict(error):
                raise StoreError(f"cannot open database {path}: {error}") from error
            if time.monotonic() >= deadline:
                raise StoreLockedError(
                    f"database {path} is locked by another process for more than {timeout:g}s "
                    f"(a flow or dashboard holding it); retry, or raise CAMPAIGNS_LOCK_TIMEOUT_SECONDS"
                ) from error
            time.sleep(min(delay * (0.5 + random.random()), max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.25)


def apply_migrations(conn: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to the latest version, each migration in its own transaction."""
    conn.execute(
        "create table if not exists schema_migrations ("
        " version integer primary key, name varchar not null, applied_at timestamptz not null)"
    )
    applied = {row[0] for row in conn.execute("select version from schema_migrations").fetchall()}
    for version, name, sql in migrations():
        if version in applied:
            continue
        # DuckDB cannot commit several ALTERs that rewrite one non-empty table in one transaction
        # ("another transaction has altered this table"): such migrations say so, and run one
        # idempotent statement (IF NOT EXISTS) per transaction; a crash midway re-runs cleanly.
        steps = [s.query for s in duckdb.extract_statements(sql)] if PER_STATEMENT_MARK in sql else [sql]
        for index, step in enumerate(steps):
            conn.execute("begin")
            try:
                conn.execute(step)
                if index == len(steps) - 1:
                    conn.execute("insert into schema_migrations values (?, ?, now())", [version, name])
                conn.execute("commit")
            except Exception:
                _rollback_quietly(conn)  # a failed commit has already ended it: keep the real error
                raise
    return current_version(conn)


def _rollback_quietly(conn: duckdb.DuckDBPyConnection) -> None:
    try:
        conn.execute("rollback")
    except duckdb.Error:
        pass


def current_version(conn: duckdb.DuckDBPyConnection) -> int:
    """The highest applied migration, 0 for an empty database."""
    exists = conn.execute(
        "select count(*) from information_schema.tables where table_name = 'schema_migrations'"
    ).fetchone()[0]
    if not exists:
        return 0
    return conn.execute("select coalesce(max(version), 0) from schema_migrations").fetchone()[0]


@contextmanager
def connect(
    db: str | Path | None = None, *, read_only: bool = False, timeout: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection to the store, migrated on first use in this process, in UTC."""
    path = db_path(db)
    wait = get_settings().lock_timeout_seconds if timeout is None else timeout
    conn = _open(path, read_only, wait)
    try:
        conn.execute("set TimeZone = 'UTC'")
        key = str(path.resolve())
        if not read_only and key not in _migrated:
            with _migrate_guard:
                if key not in _migrated:
                    apply_migrations(conn)
                    _migrated.add(key)
        yield conn
    except duckdb.Error as error:
        if _is_read_only_or_full(error):
            raise StoreError(f"database {path}: {error}") from error
        raise
    finally:
        with _open_close_lock(path):
            conn.close()


def _is_read_only_or_full(error: Exception) -> bool:
    text = str(error).lower()
    return "read-only" in text or "no space left" in text or "read only" in text


_write_locks: dict[str, threading.RLock] = {}


def _write_lock(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _migrate_guard:
        return _write_locks.setdefault(key, threading.RLock())


@contextmanager
def transaction(db: str | Path | None = None, *, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection inside one transaction: committed when the block ends, rolled back on error.

    Writers of one process take turns (DuckDB is single-writer, and two threads updating the same
    rows would abort each other with a conflict); other processes wait on the file lock.
    """
    path = db_path(db)
    with _write_lock(path), connect(path, timeout=timeout) as conn:
        conn.execute("begin transaction")
        try:
            yield conn
        except BaseException:
            _rollback_quietly(conn)
            raise
        conn.execute("commit")


def init_db(db: str | Path | None = None) -> tuple[Path, int]:
    """Create or upgrade the database; returns its path and schema version."""
    path = db_path(db)
    with connect(path) as conn:
        return path, apply_migrations(conn)


def forget_migrated(db: str | Path | None = None) -> None:
    """Make the next connection re-check migrations (tests that replace files)."""
    if db is None:
        _migrated.clear()
    else:
        _migrated.discard(str(db_path(db).resolve()))


@contextmanager
def held_open(db: str | Path | None = None) -> Iterator[None]:
    """Keep the database open in this process for a burst of work (simulations, bulk jobs).

    Connections opened meanwhile share the open database instead of reopening the file each time.
    Other processes cannot open the file until the block ends: only for jobs that own the file.
    """
    with connect(db):
        yield


def companion_path(db: str | Path | None, name: str) -> Path:
    """A file that belongs to a store, beside it: `name` for the default store, `<stem>.name` else.

    data/campaigns.duckdb keeps data/analytics.duckdb and data/simulator.sqlite; data/demo.duckdb
    gets data/demo.analytics.duckdb, so stores sharing a folder never share their companions.
    """
    path = db_path(db)
    return path.with_name(name if path.stem == "campaigns" else f"{path.stem}.{name}")
