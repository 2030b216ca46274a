"""`campaigns backup --out F`: what it may replace. It used to replace any file (`--out precious.csv` turned a CSV
into a DuckDB file); it writes a .duckdb file only, replacing a previous backup (or an empty file) but nothing else."""

from __future__ import annotations

import pytest

from tests.flows.cli_run import run


def refused(capsys, db, out) -> str:
    """Run a backup that must be refused; returns its single stderr line."""
    code, stdout, err = run(capsys, db, "backup", "--out", str(out))
    assert (code, stdout, err.count("\n")) == (2, "", 1), err
    return err.removeprefix("error: ").rstrip("\n")


@pytest.mark.parametrize("name", ["precious.csv", "backup", "backup.duckdb.bak"])
def test_an_out_file_not_ending_in_duckdb_is_refused_and_left_alone(capsys, db, tmp_path, name):
    out = tmp_path / name
    out.write_text("phone,name\n+16025550101,Ann\n")
    assert refused(capsys, db, out) == f"--out {out}: must end in .duckdb"
    assert out.read_text() == "phone,name\n+16025550101,Ann\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["campaigns.duckdb", name])


@pytest.mark.parametrize("content", [b"phone,name\n+16025550101,Ann\n", b"SQLite format 3\0" + b"\0" * 100])
def test_an_existing_file_that_is_no_duckdb_database_is_not_overwritten(capsys, db, tmp_path, content):
    out = tmp_path / "precious.duckdb"  # the right suffix, someone else's data
    out.write_bytes(content)
    assert refused(capsys, db, out) == (f"--out {out}: exists and is not a DuckDB database; not overwritten "
                                        "(a backup replaces only a DuckDB file); choose another file")
    assert out.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["campaigns.duckdb", "precious.duckdb"]  # no temp file


def test_a_previous_backup_and_an_empty_file_are_replaced(capsys, db, tmp_path):
    out = tmp_path / "nightly.duckdb"
    out.touch()  # nothing to lose
    assert run(capsys, db, "backup", "--out", str(out))[0] == 0
    first = out.read_bytes()
    assert run(capsys, db, "numbers", "add", "+16025550177")[0] == 0
    code, _, err = run(capsys, db, "backup", "--out", str(out))  # the previous backup is replaced
    assert (code, err) == (0, "")
    assert out.read_bytes() != first


def test_a_folder_is_named_as_such(capsys, db, tmp_path):
    assert refused(capsys, db, tmp_path) == (
        f"--out {tmp_path}: is a folder; name the file, e.g. {tmp_path / 'campaigns-backup.duckdb'}")


def _store(path):
    from tasks.store import init_db

    init_db(path)
    return path


def test_a_store_another_process_holds_open_is_not_replaced(capsys, db, tmp_path):
    # `backup --out` replaced a served store under its running flows: their last minutes of calls were gone
    import subprocess
    import sys

    live = _store(tmp_path / "live.duckdb")
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
                               " print('open', flush=True); time.sleep(60)", str(live)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        before = live.read_bytes()
        assert refused(capsys, db, live) == (f"--out {live}: is open in another process (a store in use); not "
                                             "overwritten (a backup replaces only an earlier backup); choose another file")
        assert live.read_bytes() == before
    finally:
        holder.kill()
        holder.wait()


def test_the_system_of_record_and_a_store_with_a_log_are_not_replaced(capsys, db, tmp_path, monkeypatch):
    from tasks.settings import reset_settings

    other = _store(tmp_path / "old.duckdb")
    record = _store(tmp_path / "record.duckdb")
    monkeypatch.setenv("CAMPAIGNS_DB", str(record))
    reset_settings()
    assert refused(capsys, other, record).startswith(f"--out {record}: is the system of record (CAMPAIGNS_DB")
    monkeypatch.setenv("CAMPAIGNS_DB", str(db))
    reset_settings()
    with_log = _store(tmp_path / "busy.duckdb")
    (tmp_path / "busy.duckdb.wal").write_bytes(b"")
    assert refused(capsys, db, with_log).startswith(f"--out {with_log}: is a database in use (it has a write-ahead log")
