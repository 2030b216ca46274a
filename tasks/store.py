"""The only module that opens DuckDB: short-lived connections, lock retries, transactions, migrations.

DuckDB lets one process hold a database file for writing and, while it does, no other process can
open it at all. Every process therefore opens a connection for one unit of work, retries a lock
conflict with jittered backoff for a bounded time, and closes it before waiting on anything else.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import resources
from pathlib import Path

import duckdb

from tasks.errors import StoreError, StoreLockedError
from tasks.settings import get_settings

# Retry jitter from its own generator: the global `random` state is the caller's (tests, seeded runs)
_JITTER = random.Random()

_LOCK_PATTERN = re.compile(r"lock", re.IGNORECASE)
PER_STATEMENT_MARK = "-- migrate: one statement per transaction"
_migrated: set[str] = set()
_migrate_guard = threading.Lock()


def db_path(db: str | Path | None = None) -> Path:
    """The database file to use: the explicit one, else the settings' (CAMPAIGNS_DB)."""
    return Path(db) if db is not None else get_settings().db


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same path once resolved, or a link (symbolic or hard) to it."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def store_file_problem(path: Path) -> str | None:
    """Why a store file holds no database to read ("no database there", "the file is empty, not a database"), else None.

    An empty file (`touch`, a failed copy) is the wrong file as much as a mistyped path; DuckDB refuses to open
    one. The shared store (CAMPAIGNS_STORE) has no file: None. Only stats the path, never opens it.
    """
    if _shared_for(path) is not None:
        return None
    if not path.exists():
        return "no database there"
    if path.is_file() and path.stat().st_size == 0:
        return "the file is empty, not a database"
    return None


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


# Every DuckDB database file carries these bytes at this offset (its main header).
DUCKDB_MAGIC, DUCKDB_MAGIC_OFFSET = b"DUCK", 8


def check_duckdb_file(path: Path) -> None:
    """Refuse an existing file that is not a DuckDB database (DuckDB would open a CSV as a throwaway database)."""
    try:
        if not path.exists() or path.stat().st_size == 0:
            return  # a writer creates the database (an empty file first goes: _drop_empty_file)
        if path.is_dir():
            raise StoreError(f"cannot open database {path}: is a folder")
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise StoreError(f"cannot open database {path}: {error.strerror or error}") from None
    if head[DUCKDB_MAGIC_OFFSET:DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC)] != DUCKDB_MAGIC:
        kind = "a SQLite file" if head.startswith(b"SQLite format 3") else "not a DuckDB database file"
        raise StoreError(f"cannot open database {path}: {kind}; point --db (or CAMPAIGNS_DB) at a .duckdb file")


# Paths this process has checked. The check reads the file's first bytes, and closing any descriptor of a
# file drops every POSIX (fcntl) lock the process holds on it, DuckDB's included: checked while a
# connection of this process held the file, another process could open it for writing too (seen as a
# "Conflicting lock" on the WAL at commit in the contention soak). So each path is checked once, before
# this process's first connection to it (every connection opens here, under the lock).
_CHECKED: set[str] = set()
_CHECK_LOCK = threading.Lock()


def _check_once(path: Path) -> None:
    key = os.path.abspath(path)
    with _CHECK_LOCK:
        if key in _CHECKED:
            return
        check_duckdb_file(path)
        _CHECKED.add(key)  # a new file is created by the connection about to open it


def _drop_empty_file(path: Path) -> None:
    """Remove an empty (0-byte) file where a writer is about to create the database: DuckDB refuses to open one.

    Only while no other process holds the file's lock: a DuckDB creating the database there holds it from
    the moment it creates the file until its header is written, and keeps its file. Called under
    `_open_close_lock`, so no connection of this process has the file open (closing a descriptor of a
    file drops the process's POSIX locks on it).
    """
    import fcntl

    try:
        if path.stat().st_size != 0:
            return
        handle = os.open(path, os.O_RDWR)
    except OSError:
        return  # gone, or not openable: the connect below says why
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(handle).st_size == 0 and os.path.samestat(os.fstat(handle), os.stat(path)):
            path.unlink()
    except OSError:
        pass  # locked by a process creating the database there (the connect below waits for it), or gone
    finally:
        os.close(handle)


def _open(path: Path, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    _check_once(path)
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            if not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            with _open_close_lock(path):
                if not read_only:
                    _drop_empty_file(path)
                return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as error:
            if not _is_lock_conflict(error):
                raise StoreError(f"cannot open database {path}: {error}") from error
            if time.monotonic() >= deadline:
                raise StoreLockedError(
                    f"database {path} is locked by another process for more than {timeout:g}s "
                    f"(a flow or dashboard holding it); retry, or raise CAMPAIGNS_LOCK_TIMEOUT_SECONDS"
                ) from error
            time.sleep(min(delay * (0.5 + _JITTER.random()), max(0.0, deadline - time.monotonic())))
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
    if _shared_for(db) is not None:
        with _connect_shared(timeout) as conn:
            yield conn
        return
    path = db_path(db)
    key = str(path.resolve())
    held = _held.get(key)
    if held is not None and not read_only:
        # the store is held open by this process: reuse a configured connection (no open, no SETs)
        conn = held.take()
        try:
            yield conn
        except BaseException as error:
            _rollback_quietly(conn)  # a block that began a transaction by hand must not hand it on
            if isinstance(error, duckdb.Error) and _is_read_only_or_full(error):
                raise StoreError(f"database {path}: {error}") from error
            raise
        finally:
            held.give_back(conn)
        return
    wait = get_settings().lock_timeout_seconds if timeout is None else timeout
    conn = _open(path, read_only, wait)
    try:
        _configure(conn)
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


def _configure(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("set TimeZone = 'UTC'")
    # DuckDB draws a progress bar on stdout during long queries in scripts: it would corrupt `--json`.
    conn.execute("set enable_progress_bar = false")


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
    if _shared_for(db) is not None:
        with _shared_transaction(timeout) as conn:
            yield conn
        return
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
        return path, (current_version(conn) if _shared_for(path) is not None else apply_migrations(conn))


def forget_migrated(db: str | Path | None = None) -> None:
    """Make the next connection re-check migrations (tests that replace files)."""
    if db is None:
        _migrated.clear()
    else:
        _migrated.discard(str(db_path(db).resolve()))


class _Pool:
    """Idle connections of a database held open by this process, handed out again instead of reopened.

    A simulated month opens thousands of short connections; opening one and setting its options cost
    about a millisecond each time. Connections come back outside any transaction (`transaction`
    commits or rolls back before its block ends), so a reused one starts clean.
    """

    def __init__(self, root: duckdb.DuckDBPyConnection):
        self._root = root
        self._idle: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    def take(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        conn = self._root.cursor()
        _configure(conn)
        return conn

    def give_back(self, conn: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._idle:
                conn.close()
            self._idle.clear()


_held: dict[str, _Pool] = {}
# The write-ahead log size that triggers a checkpoint while the store is held open (see `held_open`).
HELD_CHECKPOINT_THRESHOLD = "4GB"


@contextmanager
def held_open(db: str | Path | None = None, *, threads: int | None = None) -> Iterator[None]:
    """Keep the database open in this process for a burst of work (simulations, bulk jobs).

    Connections opened meanwhile are reused from a pool instead of reopening the file each time.
    Other processes cannot open the file until the block ends: only for jobs that own the file.
    `threads` caps DuckDB's worker threads meanwhile: a burst of small statements runs faster on one
    thread than paying the parallel set-up on each (the setting ends with the block).

    Automatic checkpoints wait for the end of the block: by default DuckDB folds its write-ahead log
    into the file every 16 MB, rewriting the row groups updated since, which a simulated month pays
    hundreds of times (a fifth of its wall time on this machine). The log stays durable meanwhile
    (a crash replays it on the next open); one checkpoint when the block ends folds it.
    """
    if _shared_for(db) is not None:
        yield
        return
    path = db_path(db)
    key = str(path.resolve())
    if key in _held:  # nested: the outer block holds it
        yield
        return
    with connect(path) as root:
        if threads is not None:
            root.execute(f"set threads = {int(threads)}")
        root.execute(f"set checkpoint_threshold = '{HELD_CHECKPOINT_THRESHOLD}'")
        pool = _held[key] = _Pool(root)
        failed = True
        try:
            yield
            failed = False
        finally:
            del _held[key]
            pool.close()
            try:
                root.execute("reset checkpoint_threshold")
                if threads is not None:
                    root.execute("reset threads")
                root.execute("checkpoint")
            except duckdb.Error:
                if not failed:  # never hide the error that ended the block
                    raise


def companion_path(db: str | Path | None, name: str) -> Path:
    """A file that belongs to a store, beside it: `name` for the default store, `<stem>.name` else.

    data/campaigns.duckdb keeps data/analytics.duckdb and data/simulator.sqlite; data/demo.duckdb
    gets data/demo.analytics.duckdb, so stores sharing a folder never share their companions.
    """
    path = db_path(db)
    return path.with_name(name if path.stem == "campaigns" else f"{path.stem}.{name}")


# ------------------------------------------------------------------ the shared store (PostgreSQL)
#
# CAMPAIGNS_STORE=postgres keeps every table in PostgreSQL, so several workers on several machines
# write at once. Each process opens one in-memory DuckDB with the postgres extension loaded from the
# duckdb-extension-postgres wheel and the database attached as `store` and USEd: every query of the
# codebase runs unchanged, DuckDB reading and writing the PostgreSQL tables. What the extension
# cannot do itself is bridged here, and only here: the migrations run as native PostgreSQL DDL
# (translated from the DuckDB files), and INSERT ... RETURNING of a sequence id is emulated.
# The tables live in the PostgreSQL schema `main`, so names qualified as DuckDB's `main` still hold.

STORE_ALIAS = "store"
PG_SCHEMA = "main"
# Transaction-scoped advisory lock keys (any fixed numbers, the same in every process). A campaign's
# key is the pair (_CAMPAIGN_LOCK_CLASS, campaign_id): PostgreSQL keeps pair keys apart from bigint keys.
_WRITER_LOCK_KEY = 7_402_117_001
_MIGRATION_LOCK_KEY = 7_402_117_002
_CAMPAIGN_LOCK_CLASS = 740_211
_lock_scope: ContextVar[int | None] = ContextVar("campaigns_lock_scope", default=None)
# A campaign is independent when its claims neither read nor write what another campaign's claims
# write: none of its contacts is enrolled in another campaign (the rolling caps count a person's attempts
# in every campaign), none of its outbound numbers dials for another (per-number daily caps, number
# health), and none of its contacts still waits for zone resolution (which adds shared `zone_keys`
# rows, numbered max + 1). Native SQL, by index.
_INDEPENDENT_SQL = f"""
select not exists (
           select 1 from {PG_SCHEMA}.campaign_contacts mine
           join {PG_SCHEMA}.campaign_contacts other
             on other.contact_id = mine.contact_id and other.campaign_id <> mine.campaign_id
           where mine.campaign_id = {{campaign_id}})
       and not exists (
           select 1 from {PG_SCHEMA}.campaign_contacts mine
           join {PG_SCHEMA}.contacts c on c.contact_id = mine.contact_id
           where mine.campaign_id = {{campaign_id}} and mine.finished_at is null
             and c.zone_resolved_at is distinct from c.updated_at)
       and not exists (
           select 1 from {PG_SCHEMA}.campaigns mine
           join {PG_SCHEMA}.campaigns other
             on other.campaign_id <> mine.campaign_id and other.outbound_number_ids && mine.outbound_number_ids
           where mine.campaign_id = {{campaign_id}})
"""
# Every store-wide writer draws the next value first: a campaign's independence, checked under one
# value, holds until it changes (only store-wide writers change what the check reads).
_EPOCH_SEQUENCE = f"{PG_SCHEMA}.store_write_epoch"
# The shared store's own objects, beyond the migrations: the independence check looks enrollments up
# by contact (the DuckDB schema has no such index), and the epoch sequence.
_SHARED_OBJECTS = {
    "campaign_contacts_by_contact": f"create index campaign_contacts_by_contact on {PG_SCHEMA}.campaign_contacts (contact_id)",
    "store_write_epoch": f"create sequence {_EPOCH_SEQUENCE}",
}
# PostgreSQL messages that mean "another transaction got in the way": retrying later succeeds.
_CONFLICT_PATTERN = re.compile(
    r"could not serialize access|deadlock detected|could not obtain lock|lock timeout", re.IGNORECASE)
_UNREACHABLE_PATTERN = re.compile(
    r"connection refused|could not connect|server closed the connection|connection to server|"
    r"the database system is (starting up|shutting down)|no connection to the server|timeout expired",
    re.IGNORECASE)
_INSERT_RETURNING = re.compile(
    r"^\s*insert\s+into\s+(?P<table>[A-Za-z_][A-Za-z0-9_]*)\s*\((?P<columns>[^)]*)\)\s*"
    r"(?P<source>.*?)\s+returning\s+(?P<returning>.*?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL)

_ON_CONFLICT_UPDATE = re.compile(
    r"\s+on\s+conflict\s*\((?P<keys>[^)]*)\)\s*do\s+update\s+set\s+(?P<assignments>.*)$",
    re.IGNORECASE | re.DOTALL)

_WRITE_HEADS = frozenset({"insert", "update", "delete", "merge", "create", "drop", "alter", "truncate", "copy"})
_LEADING_COMMENTS = re.compile(r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*", re.DOTALL)


def _statement_head(query) -> str:
    """The first keyword of a statement, lower case, comments skipped ('' when it is not text)."""
    if not isinstance(query, str):
        return ""
    words = _LEADING_COMMENTS.sub("", query, count=1).split(None, 1)
    return words[0].lower().rstrip(";") if words else ""


class StoreConflictError(StoreLockedError):
    """The shared store aborted a transaction for a concurrent one (serialization, deadlock): retry it."""


# DuckDB files that are the store for the paths naming them even when a shared store is configured: a forecast's
# copy (tasks/forecast.py). Without it, every `connect(copy)` went to the shared PostgreSQL store: the copy's
# "delete from <table>" emptied the live tables (rolled back only because a later step failed).
_local_files: ContextVar[frozenset[str]] = ContextVar("campaigns_local_files", default=frozenset())


@contextmanager
def local_file(path: str | Path) -> Iterator[None]:
    """Within the block, `connect(path)`, `transaction(path)`, `init_db(path)` and `held_open(path)` open the DuckDB
    file at `path` whatever CAMPAIGNS_STORE says; a call without a path (or with another) still opens the store."""
    token = _local_files.set(_local_files.get() | {str(Path(path).resolve())})
    try:
        yield
    finally:
        _local_files.reset(token)


def _shared_for(db: str | Path | None) -> str | None:
    """The shared store's connection string when a call naming `db` goes to it, else None (a DuckDB file)."""
    url = shared_store_url()
    if url is None or db is None or not _local_files.get():
        return url
    return None if str(Path(db).resolve()) in _local_files.get() else url


def shared_store_url() -> str | None:
    """The shared store's connection string when the settings select one (CAMPAIGNS_STORE), else None."""
    settings = get_settings()
    if settings.store == "duckdb-file":
        return None
    if settings.store_url is None or not settings.store_url.get_secret_value().strip():
        raise StoreError(f"CAMPAIGNS_STORE={settings.store} needs CAMPAIGNS_STORE_URL (postgresql://user@host:port/db)")
    return settings.store_url.get_secret_value().strip()


def extension_binary(name: str) -> Path:
    """The DuckDB extension file shipped in the duckdb-extension-<name> wheel for this DuckDB version."""
    try:
        root = resources.files(f"duckdb_extension_{name}")
    except ModuleNotFoundError as missing:
        raise StoreError(
            f"DuckDB's {name} extension is not installed: pip install 'voice-campaigns[cluster]' "
            f"(duckdb-extension-{name}=={duckdb.__version__})") from missing
    return Path(str(root.joinpath("extensions", f"v{duckdb.__version__}", f"{name}.duckdb_extension")))


def load_extension(conn: duckdb.DuckDBPyConnection, name: str) -> None:
    """LOAD a DuckDB extension, installing it from its wheel first (nothing is downloaded)."""
    try:
        conn.execute(f"load {name}")
        return
    except duckdb.Error:
        pass
    conn.execute(f"install {_sql_literal(str(extension_binary(name)))}")
    conn.execute(f"load {name}")


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# A libpq keyword value: single-quoted (backslash escapes, maybe left unterminated), else up to a space or '&'.
_PASSWORD_VALUE = re.compile(r"""(password\s*=\s*)(?:'(?:[^'\\]|\\.)*(?:'|\\?$)|[^\s&]+)""", re.IGNORECASE)
# URL form: postgres://user:password@host; the last '@' of the token ends it (a raw '@' in a password too).
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@")


def _hidden(url: str) -> str:
    """The connection string (or a message quoting it) without its password, for messages."""
    return _URL_PASSWORD.sub(r"\1***@", _PASSWORD_VALUE.sub(r"\1***", url))


def postgres_ddl(sql: str) -> str:
    """A migration's DuckDB DDL as PostgreSQL DDL: the few spellings the two dialects do not share."""
    sql = re.sub(r"\bdouble\b(?!\s+precision)", "double precision", sql, flags=re.IGNORECASE)
    sql = re.sub(r"\bdefault\s*\[\s*\]", "default '{}'", sql, flags=re.IGNORECASE)
    sql = re.sub(r"\bdefault\s*\[([^\]]*)\]", r"default array[\1]", sql, flags=re.IGNORECASE)
    # JSON columns are text: DuckDB sees PostgreSQL json as VARCHAR anyway, and writes it back as
    # VARCHAR, which a json column refuses on UPDATE (no assignment cast); DuckDB's JSON functions read text.
    sql = re.sub(r"\bjson\b", "text", sql, flags=re.IGNORECASE)
    sql = re.sub(r"\binterval\s+(\d+)\s+([a-z]+)\b", r"interval '\1 \2'", sql, flags=re.IGNORECASE)
    return sql


class _Hub:
    """One process's in-memory DuckDB with the shared store attached; connections are its cursors."""

    def __init__(self, url: str, timeout: float):
        self.url = url
        self.guard = threading.Lock()
        self.serial_columns: dict[str, dict[str, str]] = {}
        self.independent: dict[int, tuple[tuple, bool]] = {}  # campaign -> (write epoch, verdict at that epoch)
        self.conn = duckdb.connect(":memory:")
        try:
            self.conn.execute("set TimeZone = 'UTC'")
            self.conn.execute("set enable_progress_bar = false")
            load_extension(self.conn, "postgres")
            _retry_unreachable(lambda: self.conn.execute(
                f"attach {_sql_literal(url)} as {STORE_ALIAS} "
                f"(type postgres, isolation_level 'READ COMMITTED', schema {_sql_literal(PG_SCHEMA)})"), url, timeout)
            _migrate_shared(self.conn)
            self.serial_columns = _serial_columns(self.conn)
        except BaseException:
            self.conn.close()
            raise

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self.guard:
            cursor = self.conn.cursor()
        try:
            cursor.execute("set TimeZone = 'UTC'")
            cursor.execute(f"use {STORE_ALIAS}")  # connects to PostgreSQL when the pool has no connection
        except BaseException:
            cursor.close()
            raise
        return cursor


_hubs: dict[tuple[str, int], _Hub] = {}


def _hub(url: str, timeout: float) -> _Hub:
    # Keyed by process id too: a forked child must not reuse its parent's PostgreSQL connections.
    key = (url, os.getpid())
    hub = _hubs.get(key)
    if hub is None:
        with _migrate_guard:
            hub = _hubs.get(key)
            if hub is None:
                hub = _hubs[key] = _Hub(url, timeout)
    return hub


def _retry_unreachable(step, url: str, timeout: float):
    """Run `step`, retrying with jittered backoff while the server cannot be reached, for `timeout` s."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return step()
        except duckdb.Error as error:
            # `from None`: DuckDB's message quotes the connection string, password included
            if not _UNREACHABLE_PATTERN.search(str(error)):
                raise StoreError(f"shared store {_hidden(url)}: {_hidden(_first_line(error))}") from None
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"shared store {_hidden(url)} unreachable for {timeout:g}s: {_hidden(_first_line(error))}") from None
            time.sleep(min(delay * (0.5 + _JITTER.random()), max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _pg_execute(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    conn.execute(f"call postgres_execute({_sql_literal(STORE_ALIAS)}, {_sql_literal(sql)})")


def _pg_query(conn: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return conn.execute(f"select * from postgres_query({_sql_literal(STORE_ALIAS)}, {_sql_literal(sql)})").fetchall()


def _migrate_shared(conn: duckdb.DuckDBPyConnection) -> None:
    """Apply the missing migrations as PostgreSQL DDL, all in one transaction, one migrator at a time."""
    conn.execute("begin")
    try:
        # PostgreSQL DDL is transactional: a failed migration leaves nothing half-applied.
        _pg_execute(conn, f"select pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
        _pg_execute(conn, f"create schema if not exists {PG_SCHEMA}; create table if not exists {PG_SCHEMA}.schema_migrations"
                          " (version integer primary key, name varchar not null, applied_at timestamptz not null)")
        applied = {row[0] for row in _pg_query(conn, f"select version from {PG_SCHEMA}.schema_migrations")}
        for version, name, sql in migrations():
            if version in applied:
                continue
            _pg_execute(conn, f"set local search_path to {PG_SCHEMA}; {postgres_ddl(sql)}")
            _pg_execute(conn, f"insert into {PG_SCHEMA}.schema_migrations values ({version}, {_sql_literal(name)}, now())")
        present = {row[0] for row in _pg_query(
            conn, f"select c.relname::varchar from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                  f" where n.nspname = '{PG_SCHEMA}'")}
        for name, ddl in _SHARED_OBJECTS.items():
            if name not in present:
                _pg_execute(conn, ddl)
        conn.execute("commit")
    except BaseException:
        _rollback_quietly(conn)
        raise
    finally:
        # DuckDB caches the attached catalogue: forget it so new tables and columns are seen.
        conn.execute("call pg_clear_cache()")


def _serial_columns(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """{table: {column: sequence}} for every column whose default draws from a sequence."""
    found: dict[str, dict[str, str]] = {}
    for table, column, default in _pg_query(
        conn,
        "select table_name, column_name, column_default from information_schema.columns"
        f" where table_schema = '{PG_SCHEMA}' and column_default like 'nextval(%'",
    ):
        match = re.search(r"nextval\('([^']+)'", default)
        if match:
            found.setdefault(table, {})[column] = match.group(1)
    return found


@contextmanager
def lock_scope(campaign_id: int) -> Iterator[None]:
    """Shared-store transactions in this block lock one campaign, not the whole store, when that is safe.

    For one campaign's dial batch (flows/cluster.py): its transactions write only that campaign's
    enrollments, its own dial run and call rows, and insert-only rows, so two campaigns' batches can
    overlap. Each transaction takes the store-wide key SHARED plus the campaign's key exclusive, and
    checks (under those locks) that the campaign is independent of every other one (_INDEPENDENT_SQL);
    if not, it starts again holding the store-wide key exclusive. Everything outside a scope (enrichment,
    reconciliation, imports, edits, metrics) holds the store-wide key exclusive. No effect on the DuckDB file.
    The proof, table by table: docs/scale-out.md.
    """
    token = _lock_scope.set(int(campaign_id))
    try:
        yield
    finally:
        _lock_scope.reset(token)


class SharedConnection:
    """A cursor on the shared store that behaves as a DuckDB connection: writers take turns, RETURNING works.

    The postgres extension refuses INSERT ... RETURNING; the rows are staged in a temp table, their
    sequence ids drawn from PostgreSQL (nextval, as the column default would), inserted, then selected back.
    """

    def __init__(self, cursor: duckdb.DuckDBPyConnection, hub: _Hub, lock_wait: float):
        self._cursor = cursor
        self._hub = hub
        self._lock_wait = lock_wait
        self._in_transaction = False
        self.scope: int | None = None  # the campaign the open transaction is locked to; None = store-wide

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._cursor.close()

    def execute(self, query, parameters=None):
        """Run one statement (as DuckDBPyConnection.execute); returns this connection for fetching.

        Every transaction, and every write outside one, holds the store's writer lock (see
        `_take_writer_lock`): the postgres extension updates rows by their physical address, and
        under READ COMMITTED an UPDATE racing another writer's change to the same row silently
        updates nothing while reporting it did. Writers that could touch the same row take turns.
        """
        head = _statement_head(query)
        if head in ("begin", "start"):
            self._cursor.execute(query, parameters)
            self._in_transaction = True
            try:
                self.scope = _take_writer_lock(self, self._lock_wait, _lock_scope.get())
            except BaseException:
                self.execute("rollback")
                raise
        elif head in ("commit", "end", "rollback", "abort"):
            self._in_transaction = False
            self._cursor.execute(query, parameters)
        elif not self._in_transaction and head in _WRITE_HEADS:
            self.execute("begin transaction")
            try:
                self._run(query, parameters)
            except BaseException:
                _rollback_quietly(self)
                raise
            self.execute("commit")
        else:
            self._run(query, parameters)
        return self

    def _run(self, query, parameters) -> None:
        match = _INSERT_RETURNING.match(query) if isinstance(query, str) and "returning" in query.lower() else None
        if match is None:
            self._cursor.execute(query, parameters)
        else:
            self._insert_returning(match, parameters)

    def _insert_returning(self, match: re.Match, parameters) -> None:
        table = match.group("table").lower()
        columns = [c.strip() for c in match.group("columns").split(",")]
        serial = {c: s for c, s in self._hub.serial_columns.get(table, {}).items() if c not in columns}
        staged, ids = "__returning_rows", "__returning_ids"
        source, upsert = match.group("source"), _ON_CONFLICT_UPDATE.search(match.group("source"))
        if upsert:
            if self.scope is not None:
                # emulated as update-then-insert: only safe when no other writer can hold the same key
                raise StoreError(f"INSERT ... ON CONFLICT ... RETURNING into {table} needs the store-wide lock:"
                                 " run it outside store.lock_scope")
            source = source[:upsert.start()]
        self._cursor.execute(
            f"create or replace temp table {staged} as select row_number() over () as __row, *"
            f" from ({source}) as __source({', '.join(columns)})", parameters)
        if upsert:
            # ON CONFLICT ... DO UPDATE: update the rows whose key exists, insert the others, then
            # return them all by key (writers hold the store's lock, so nothing slips in between).
            keys = [k.strip() for k in upsert.group("keys").split(",")]
            on_key = " and ".join(f"{table}.{k} = __s.{k}" for k in keys)
            assignments = re.sub(r"\bexcluded\.", "__s.", upsert.group("assignments"), flags=re.IGNORECASE)
            self._cursor.execute(f"create or replace temp table __returning_keys as select {', '.join(keys)} from temp.main.{staged}")
            self._cursor.execute(f"update {table} set {assignments} from temp.main.{staged} __s where {on_key}")
            self._cursor.execute(f"delete from temp.main.{staged} __s where exists (select 1 from {table} where {on_key})")
        count = self._cursor.execute(f"select count(*) from temp.main.{staged}").fetchone()[0]
        drawn = ", ".join(f"nextval('{sequence}') as {column}" for column, sequence in serial.items())
        if serial:
            self._cursor.execute(
                f"create or replace temp table {ids} as select row_number() over () as __row, *"
                f" from postgres_query({_sql_literal(STORE_ALIAS)},"
                f" {_sql_literal(f'select {drawn} from generate_series(1, {int(count)})')})")
        else:
            self._cursor.execute(f"create or replace temp table {ids} as select __row from temp.main.{staged}")
        rows = (f"select i.* exclude (__row), s.* exclude (__row) from temp.main.{staged} s"
                f" join temp.main.{ids} i using (__row)")
        self._cursor.execute(f"insert into {table} ({', '.join([*serial, *columns])}) {rows}")
        if upsert:
            self._cursor.execute(
                f"select {match.group('returning')} from {table} where ({', '.join(keys)}) in"
                f" (select ({', '.join(keys)}) from __returning_keys)")
        else:
            self._cursor.execute(f"select {match.group('returning')} from ({rows}) as {table}")


@contextmanager
def _connect_shared(timeout: float | None) -> Iterator[SharedConnection]:
    url = shared_store_url()
    wait = get_settings().lock_timeout_seconds if timeout is None else timeout
    try:
        hub = _hub(url, wait)
        # a connected process whose server went away (restart, failover) waits for it as on the first attach
        cursor = _retry_unreachable(hub.cursor, url, wait)
    except duckdb.Error as error:
        _raise_classified(error, url)
    conn = SharedConnection(cursor, hub, lock_wait=wait)
    try:
        yield conn
    except duckdb.Error as error:
        _raise_classified(error, url)
    finally:
        conn.close()


def _classified(error: duckdb.Error, url: str) -> Exception:
    """The store error a shared-store failure means for callers: conflict, unreachable, or itself
    (unless its text shows a password: DuckDB quotes the connection string when it cannot connect)."""
    text = str(error)
    if _CONFLICT_PATTERN.search(text):
        return StoreConflictError(
            f"shared store: a concurrent transaction conflicted, retry: {_hidden(_first_line(error))}")
    if _UNREACHABLE_PATTERN.search(text):
        return StoreError(f"shared store {_hidden(url)} unreachable: {_hidden(_first_line(error))}")
    if _hidden(text) != text:
        return StoreError(f"shared store {_hidden(url)}: {_hidden(_first_line(error))}")
    return error


def _raise_classified(error: duckdb.Error, url: str) -> None:
    """Raise what `error` means for callers; never chained to a message that shows a password."""
    classified = _classified(error, url)
    if classified is error:
        raise error
    if _hidden(str(error)) != str(error):
        raise classified from None  # a traceback prints the chained error's text, password included
    raise classified from error


@contextmanager
def _shared_transaction(timeout: float | None) -> Iterator[SharedConnection]:
    """One transaction on the shared store, holding the writer lock from begin to commit.

    Writers that could touch the same rows take turns across every process and machine, as they do
    on the DuckDB file: a claim reads the eligible contacts and marks them in flight with no such
    writer in between, so two workers can never claim one contact. The lock is PostgreSQL's
    transaction advisory lock — store-wide, or one campaign's inside `lock_scope` — waited for a
    bounded time (StoreLockedError), released by commit, rollback or a dead worker's closed
    connection. READ COMMITTED: each statement sees what earlier writers committed.
    """
    url = shared_store_url()
    with _shared_write_lock(url, _lock_scope.get()), _connect_shared(timeout) as conn:
        conn.execute("begin transaction")  # takes the writer lock (store-wide, or the scope's)
        try:
            yield conn
        except BaseException:
            _rollback_quietly(conn)
            raise
        try:
            conn.execute("commit")
        except duckdb.Error as error:
            _rollback_quietly(conn)
            _raise_classified(error, url)


def _shared_write_lock(url: str, scope: int | None) -> threading.RLock:
    # Threads of one process working on the same key queue here rather than each waiting in PostgreSQL.
    with _migrate_guard:
        return _write_locks.setdefault(f"shared:{url}:{scope}", threading.RLock())


def _take_writer_lock(conn: SharedConnection, wait: float, campaign_id: int | None) -> int | None:
    """Lock the open transaction for writing; returns the campaign it is scoped to, None if store-wide.

    Scoped (`lock_scope`): the store-wide key shared, then the campaign's key, then the independence
    check; a campaign that is not independent restarts the transaction store-wide. Always in that
    order, so no cycle can form. PostgreSQL queues lock requests fairly: a store-wide writer waiting
    for scoped ones holds back scoped ones that come after it (no starvation). Waits are bounded by
    `lock_timeout` (StoreLockedError); commit, rollback or a dead worker's dropped connection releases.
    A store-wide writer draws the next write epoch under its lock; a scoped transaction reads it under
    its shared lock (so every store-wide writer of an earlier epoch has ended) and re-checks only when
    it moved: scoped transactions never change what the check reads (docs/scale-out.md).
    """
    if campaign_id is not None:
        campaign_id = int(campaign_id)
        _lock(conn, wait, f"pg_advisory_xact_lock_shared({_WRITER_LOCK_KEY})",
              f"pg_advisory_xact_lock({_CAMPAIGN_LOCK_CLASS}, {campaign_id})")
        # (last_value, is_called): a fresh sequence's first nextval leaves last_value as it was
        epoch = tuple(_pg_query(conn, f"select last_value, is_called from {_EPOCH_SEQUENCE}")[0])
        known = conn._hub.independent.get(campaign_id)
        if known is None or known[0] != epoch:
            known = conn._hub.independent[campaign_id] = (
                epoch, bool(_pg_query(conn, _INDEPENDENT_SQL.format(campaign_id=campaign_id))[0][0]))
        if known[1]:
            return campaign_id
        conn._cursor.execute("rollback")
        conn._cursor.execute("begin transaction")
    _lock(conn, wait, f"pg_advisory_xact_lock({_WRITER_LOCK_KEY})", f"nextval('{_EPOCH_SEQUENCE}')")
    return None


def _lock(conn: SharedConnection, wait: float, *locks: str) -> None:
    """Take advisory locks in the given order, waiting at most `wait` seconds for each."""
    taken = "; ".join(f"select {lock}" for lock in locks)
    try:
        _pg_execute(conn, f"set local lock_timeout = {max(1, int(wait * 1000))}; {taken}; set local lock_timeout = 0")
    except duckdb.Error as error:
        if "lock timeout" not in str(error):
            raise
        raise StoreLockedError(
            f"the shared store's writer lock stayed taken for more than {wait:g}s (another worker's "
            "transaction); retry, or raise CAMPAIGNS_LOCK_TIMEOUT_SECONDS") from None
