"""Several openers of one new SQLite file: none fails on the switch to WAL mode."""

import sqlite3
import threading

import pytest

from tasks.sqlite_shared import connect_shared


def test_openers_of_one_new_file_all_get_a_wal_connection(tmp_path):
    # Three openers released together on a new file: the bare `pragma journal_mode = wal` failed one
    # of them in about one round of five here ("database is locked", at once, not after the timeout).
    failures: list[BaseException] = []
    for round_ in range(60):
        path = tmp_path / f"{round_}.sqlite"
        start = threading.Barrier(3)

        def open_and_write(n: int) -> None:
            try:
                start.wait()
                conn = connect_shared(path)
                conn.execute("create table if not exists t (n integer)")
                conn.execute("insert into t values (?)", [n])
                assert conn.execute("pragma journal_mode").fetchone() == ("wal",)
                conn.close()
            except BaseException as error:  # collected: an assert in a thread would not fail the test
                failures.append(error)

        threads = [threading.Thread(target=open_and_write, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert sorted(sqlite3.connect(path).execute("select n from t").fetchall()) == [(0,), (1,), (2,)]


def test_other_errors_are_not_retried(tmp_path):
    (tmp_path / "not-a-db.sqlite").write_bytes(b"x" * 4096)
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        connect_shared(tmp_path / "not-a-db.sqlite", timeout_seconds=5)
