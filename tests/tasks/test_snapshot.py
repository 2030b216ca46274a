"""The analyst snapshot is a full copy, swapped atomically, and never blocked by an open reader."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from tasks.snapshot import refresh_snapshot, snapshot_path
from tasks.store import connect, transaction

READER = textwrap.dedent(
    """
    import sys, duckdb
    conn = duckdb.connect(sys.argv[1], read_only=True)
    for line in sys.stdin:
        print(conn.execute("select count(*) from agents").fetchone()[0], flush=True)
    """
)


def _agents(path) -> int:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute("select count(*) from agents").fetchone()[0]
    finally:
        conn.close()


def _add_agent(db) -> None:
    with transaction(db) as conn:
        conn.execute("insert into agents (name) values ('Extra')")


def test_snapshot_path_is_beside_the_store(db):
    assert snapshot_path(db) == db.with_name("analytics.duckdb")


def test_refresh_copies_every_table(campaign_db, tmp_path):
    target = tmp_path / "analytics.duckdb"
    with connect(campaign_db["db"]) as conn:
        assert refresh_snapshot(conn, target) == target
        tables = {r[0] for r in conn.execute("select table_name from duckdb_tables() where database_name = current_database()").fetchall()}
    copied = duckdb.connect(str(target), read_only=True)
    try:
        assert {r[0] for r in copied.execute("select table_name from duckdb_tables()").fetchall()} == tables
        assert copied.execute("select name from campaigns").fetchall() == [("Spring outreach",)]
    finally:
        copied.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_an_open_reader_keeps_its_view_and_does_not_block_a_refresh(campaign_db, tmp_path):
    target = tmp_path / "analytics.duckdb"
    with connect(campaign_db["db"]) as conn:
        refresh_snapshot(conn, target)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(target)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        reader.stdin.write("count\n"); reader.stdin.flush()
        assert reader.stdout.readline().strip() == "1"
        _add_agent(campaign_db["db"])
        with connect(campaign_db["db"]) as conn:
            refresh_snapshot(conn, target)  # the reader still holds the old file open
        reader.stdin.write("count\n"); reader.stdin.flush()
        assert reader.stdout.readline().strip() == "1"  # its session keeps the old view
        assert _agents(target) == 2  # a new open sees the new copy
    finally:
        reader.stdin.close()
        reader.wait(timeout=10)


def test_a_failed_refresh_leaves_the_old_snapshot(campaign_db, tmp_path, monkeypatch):
    target = tmp_path / "analytics.duckdb"
    with connect(campaign_db["db"]) as conn:
        refresh_snapshot(conn, target)
    _add_agent(campaign_db["db"])

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("tasks.snapshot.os.replace", broken_replace)
    with connect(campaign_db["db"]) as conn, pytest.raises(OSError, match="disk full"):
        refresh_snapshot(conn, target)
    assert _agents(target) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # temp copy removed


@pytest.mark.parametrize("as_link", [False, True])
def test_a_snapshot_path_naming_the_store_is_refused_and_the_store_kept(db, tmp_path, monkeypatch, as_link):
    # CAMPAIGNS_ANALYTICS_DB=<the store> replaced the store with the keyless copy: agents got null ids after it
    from flows.aggregate_metrics import run_aggregation
    from tasks.errors import UserError
    from tasks.settings import reset_settings

    target = tmp_path / "analytics-link.duckdb" if as_link else db
    if as_link:
        target.symlink_to(db)
    monkeypatch.setenv("CAMPAIGNS_ANALYTICS_DB", str(target))
    reset_settings()
    with pytest.raises(UserError, match="is the database itself"):
        run_aggregation(db)
    with transaction(db) as conn:
        agent_id = conn.execute("insert into agents (name) values ('Extra') returning agent_id").fetchone()[0]
    assert agent_id is not None  # its sequence is still there
