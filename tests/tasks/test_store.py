"""The store: migrations are idempotent; concurrent processes wait for the lock instead of failing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from tasks.errors import StoreError, StoreLockedError
from tasks.store import _hidden, apply_migrations, connect, current_version, init_db, latest_version, migrations, transaction


def _schema(path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "select table_name, column_name, data_type, is_nullable from information_schema.columns "
            "order by table_name, column_name"
        ).fetchall()
    finally:
        con.close()


def test_fresh_and_migrated_files_end_at_the_same_schema(tmp_path):
    fresh, twice = tmp_path / "fresh.duckdb", tmp_path / "twice.duckdb"
    assert init_db(fresh)[1] == latest_version()
    init_db(twice)
    before = _schema(twice)
    # running init again on an already-migrated file changes nothing
    assert init_db(twice)[1] == latest_version()
    assert _schema(twice) == before == _schema(fresh)
    with connect(twice) as conn:
        assert conn.execute("select count(*) from schema_migrations").fetchone()[0] == len(migrations())


def test_an_old_file_is_upgraded_to_the_same_schema_as_a_fresh_one(tmp_path, monkeypatch):
    import tasks.store as store

    every = store.migrations()
    old, fresh = tmp_path / "old.duckdb", tmp_path / "fresh.duckdb"
    monkeypatch.setattr(store, "migrations", lambda: every[:1])  # a database from the first release
    con = duckdb.connect(str(old))
    assert apply_migrations(con) == 1
    # with rows in it: DuckDB cannot rewrite a non-empty table twice in one transaction
    con.execute("insert into agents (name) values ('Ava')")
    con.execute("insert into phone_numbers (e164) values ('+16025550100')")
    con.execute("insert into campaigns (name, agent_id, weekly_schedule, time_zone) values ('x', 1, '{}', 'UTC')")
    con.execute("insert into contacts (phone_e164) values ('+16025550199')")
    con.execute("insert into campaign_contacts (campaign_id, contact_id) values (1, 1)")
    con.close()
    monkeypatch.setattr(store, "migrations", lambda: every)
    con = duckdb.connect(str(old))
    assert apply_migrations(con) == latest_version()
    assert current_version(con) == latest_version()
    con.close()
    init_db(fresh)
    assert _schema(old) == _schema(fresh)


def test_a_failing_write_leaves_nothing_behind(db):
    with pytest.raises(RuntimeError):
        with transaction(db) as conn:
            conn.execute("insert into agents (name) values ('half')")
            raise RuntimeError("boom")
    with connect(db) as conn:
        assert conn.execute("select count(*) from agents").fetchone()[0] == 0


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from tasks.store import transaction
    with transaction(sys.argv[1]) as conn:
        conn.execute("insert into agents (name) values (?)", [sys.argv[2]])
        print("holding", flush=True)
        time.sleep(float(sys.argv[3]))
    """
)
_WRITER = textwrap.dedent(
    """
    import sys, time
    from tasks.store import transaction
    start = time.monotonic()
    with transaction(sys.argv[1]) as conn:
        conn.execute("insert into agents (name) values (?)", [sys.argv[2]])
    print(round(time.monotonic() - start, 3))
    """
)
_READER = textwrap.dedent(
    """
    import sys
    from tasks.store import connect
    with connect(sys.argv[1]) as conn:
        print(conn.execute("select count(*) from agents").fetchone()[0])
    """
)


def _start_holder(db, name, seconds):
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db), name, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_two_processes_writing_at_once_both_succeed(db):
    holder = _start_holder(db, "first", 1.5)
    writer = subprocess.run([sys.executable, "-c", _WRITER, str(db), "second"], capture_output=True, text=True, timeout=60)
    assert holder.wait(timeout=60) == 0
    assert writer.returncode == 0, writer.stderr
    # the second writer waited for the first one's lock instead of failing
    assert float(writer.stdout) >= 0.5
    with connect(db) as conn:
        assert sorted(r[0] for r in conn.execute("select name from agents").fetchall()) == ["first", "second"]


def test_a_reader_started_during_a_write_gets_the_committed_answer(db):
    holder = _start_holder(db, "written", 1.0)
    reader = subprocess.run([sys.executable, "-c", _READER, str(db)], capture_output=True, text=True, timeout=60)
    assert holder.wait(timeout=60) == 0
    assert reader.returncode == 0, reader.stderr
    assert reader.stdout.strip() == "1"


def test_the_wait_is_bounded_and_the_error_names_the_file(db):
    holder = _start_holder(db, "slow", 3)
    try:
        start = time.monotonic()
        with pytest.raises(StoreLockedError, match=str(db)):
            with connect(db, timeout=0.3):
                pass
        assert time.monotonic() - start < 2.5
    finally:
        holder.wait(timeout=60)


def test_connections_draw_no_progress_bar_on_stdout(db):
    # a long query in a script would otherwise print DuckDB's bar into `campaigns ... --json` output
    with connect(db) as conn:
        assert conn.execute("select current_setting('enable_progress_bar')").fetchone()[0] is False


def test_a_held_store_checkpoints_once_at_the_end_and_loses_nothing(db):
    # Five commits of ~20 MB each: by default DuckDB checkpoints whenever its log passes 16 MB; held
    # open, the log keeps all of them until the block ends, then one checkpoint folds them.
    from tasks.store import held_open

    wal = db.with_name(db.name + ".wal")
    with held_open(db, threads=1):
        with transaction(db) as conn:
            conn.execute("create table filler as select i, repeat('x', 200) as pad from range(100000) t(i)")
        for step in range(4):
            with transaction(db) as conn:
                conn.execute("update filler set pad = repeat(?, 200)", [str(step)])
        assert wal.exists() and wal.stat().st_size > 4 * 20 * 10**6
    assert not wal.exists() or wal.stat().st_size == 0
    with connect(db) as conn:
        assert conn.execute("select count(*), min(pad) from filler").fetchone() == (100000, "3" * 200)
        assert conn.execute("select current_setting('checkpoint_threshold')").fetchone()[0] == duckdb.connect().execute(
            "select current_setting('checkpoint_threshold')").fetchone()[0]


@pytest.mark.parametrize(
    "url, shown",
    [
        # a quoted libpq value with a space: "password=*** SECRET'" leaked its second half
        ("host=h port=1 user=u password='PG SECRET' dbname=db", "host=h port=1 user=u password=*** dbname=db"),
        (r"password='it\'s secret' dbname=db", "password=*** dbname=db"),  # an escaped quote inside
        ("password='never closed secret", "password=***"),
        ("host=h password=plain dbname=db", "host=h password=*** dbname=db"),
        ("postgres://u:pw@h:5432/db", "postgres://u:***@h:5432/db"),
        ("postgresql://u:p@ss@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),  # a raw '@' in it
        ('Unable to connect to Postgres at "postgres://u:pw@h/db": refused', 'Unable to connect to Postgres at "postgres://u:***@h/db": refused'),
    ],
)
def test_connection_strings_are_shown_without_their_password(url, shown):
    assert _hidden(url) == shown


def test_a_file_that_is_not_a_duckdb_database_is_refused_and_left_alone(tmp_path):
    # DuckDB 1.5 opens a CSV as a throwaway database: writes vanished without an error
    text = tmp_path / "contacts.csv"
    text.write_text("Phone\n+16025550101\n")
    with pytest.raises(StoreError, match="not a DuckDB database file"):
        with connect(text):
            pass
    assert text.read_text() == "Phone\n+16025550101\n"
    sqlite = tmp_path / "s.sqlite"
    sqlite.write_bytes(b"SQLite format 3\x00" + bytes(84))
    with pytest.raises(StoreError, match="a SQLite file"):
        with connect(sqlite, read_only=True):
            pass


def test_a_real_duckdb_file_carries_the_magic_the_check_looks_for(tmp_path):
    from tasks.store import DUCKDB_MAGIC, DUCKDB_MAGIC_OFFSET

    path, _version = init_db(tmp_path / "real.duckdb")
    assert path.read_bytes()[DUCKDB_MAGIC_OFFSET:DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC)] == DUCKDB_MAGIC
    with connect(path, read_only=True) as conn:  # and it opens
        assert current_version(conn) == latest_version()


def test_a_second_connection_keeps_the_file_locked_against_other_processes(tmp_path):
    # Reading a file's header and closing it drops every POSIX lock this process holds on it, DuckDB's
    # too: the header check runs once, before this process's first connection, never while one is open
    import subprocess
    import sys

    db = tmp_path / "held.duckdb"
    init_db(db)
    with connect(db) as first:
        with connect(db) as second:
            second.execute("select 1")
        other = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('select 1')",
                                str(db)], capture_output=True, text=True, timeout=60)
        first.execute("select 1")
    assert other.returncode != 0 and "lock" in other.stderr.lower(), other.stderr[-300:]
