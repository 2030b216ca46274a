"""An empty (0-byte) store file, as `touch` or a failed copy leaves: DuckDB 1.5 refuses to open one, for reading
and writing alike ("exists, but it is not a valid DuckDB database file"). Readers are refused it in the missing
store's words (store_file_problem); a writer creates the database in its place, as it does for a missing file."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tasks.errors import StoreError, StoreLockedError
from tasks.store import connect, current_version, init_db, latest_version, store_file_problem


@pytest.mark.parametrize(("make", "problem"), [
    ("nothing", "no database there"),
    ("empty file", "the file is empty, not a database"),
    ("database", None),
    ("folder", None),  # not a store's problem to name: opening it says "is a folder"
])
def test_what_a_store_file_lacks(tmp_path, make, problem):
    path = tmp_path / "campaigns.duckdb"
    if make == "empty file":
        path.touch()
    elif make == "database":
        init_db(path)
    elif make == "folder":
        path.mkdir()
    assert store_file_problem(path) == problem


def test_a_writer_makes_an_empty_file_a_database(tmp_path):
    path = tmp_path / "touched.duckdb"
    path.touch()
    with connect(path) as conn:
        assert current_version(conn) == latest_version()
    assert store_file_problem(path) is None


def test_a_reader_leaves_an_empty_file_alone(tmp_path):
    path = tmp_path / "touched.duckdb"
    path.touch()
    with pytest.raises(StoreError, match="not a valid DuckDB database file"):
        with connect(path, read_only=True):
            pass
    assert path.stat().st_size == 0


def test_an_empty_file_another_process_holds_is_left_to_it(tmp_path):
    """A DuckDB creating the database holds the file's lock from its creation on: the writer waits, removes nothing."""
    path = tmp_path / "touched.duckdb"
    path.touch()
    inode = path.stat().st_ino
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys
            handle = os.open({str(path)!r}, os.O_RDWR)
            fcntl.lockf(handle, fcntl.LOCK_EX)
            print("locked", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError):
            with connect(path, timeout=0.3):
                pass
        assert (path.stat().st_ino, path.stat().st_size) == (inode, 0)  # the holder's file, untouched
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
