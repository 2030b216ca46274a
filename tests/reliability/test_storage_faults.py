"""Disk full, read-only and corrupt database files give one clear error and no partial writes;
`campaigns backup` makes a consistent copy while other processes write."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.cli import main
from tasks.backup import run_backup
from tasks.clock import VirtualClock
from tasks.dialing import run_tick
from tasks.errors import StoreError, UserError
from tasks.store import connect, forget_migrated, transaction
from tasks.telephony import make_provider
from tests.factories import add_contacts
from tests.invariants import check_invariants

TUE_10_PHOENIX = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)


@contextmanager
def tmpfs(path: Path, size: str):
    """A small RAM file system mounted at `path` (root only); skips the test when it cannot mount."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True, capture_output=True)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dialed(campaign_db):
    """The reference campaign after one tick: calls, enrollments and runs to copy and check."""
    add_contacts(campaign_db["db"], campaign_db["campaign_id"], 12)
    provider = make_provider(db=campaign_db["db"])
    run_tick(campaign_db["db"], provider, VirtualClock(TUE_10_PHOENIX), pace_seconds=3)
    return campaign_db


def counts(db) -> tuple[int, int, int]:
    with connect(db, read_only=True) as conn:
        return conn.execute(
            "select (select count(*) from contacts), (select count(*) from calls), (select count(*) from agents)"
        ).fetchone()


# -- backups -------------------------------------------------------------------------------------

def test_backup_command_writes_a_copy_that_opens_and_holds_the_invariants(dialed, tmp_path, capsys):
    out = tmp_path / "backups" / "nightly.duckdb"
    out.parent.mkdir()
    code, stdout, err = cli(capsys, "--db", str(dialed["db"]), "backup", "--out", str(out), "--json")
    assert (code, err) == (0, "")
    assert '"schema_version"' in stdout
    assert counts(out) == counts(dialed["db"])
    check_invariants(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["nightly.duckdb"]  # no temp file left


@pytest.mark.parametrize(
    "target, message",
    [
        ("{tmp}", "is a folder"),
        ("{tmp}/missing/b.duckdb", "does not exist"),
        ("{db}", "is the database itself"),
    ],
)
def test_backup_refuses_bad_targets_with_one_line(dialed, tmp_path, capsys, target, message):
    out = target.format(tmp=tmp_path, db=dialed["db"])
    code, _, err = cli(capsys, "--db", str(dialed["db"]), "backup", "--out", out)
    assert code == 2 and message in err and err.count("\n") == 1


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timedelta
    from flows.enrich_calls import run_enrichment
    from tasks.clock import VirtualClock
    from tasks.dialing import run_tick
    from tasks.telephony import make_provider
    from tests.factories import add_contacts

    db, campaign_id, start, seconds = sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), float(sys.argv[4])
    provider = make_provider(db=db)
    clock = VirtualClock(start)
    import time
    stop = time.monotonic() + seconds
    first = 1000
    while time.monotonic() < stop:
        add_contacts(db, campaign_id, 5, first=first)
        first += 5
        run_tick(db, provider, clock, pace_seconds=3)
        run_enrichment(db, provider, clock.now())
        clock.advance_to(clock.now() + timedelta(minutes=2))
        if first == 1005:
            print("writing", flush=True)
    print("writer done", first)
    """
)


def test_backups_taken_while_another_process_dials_are_consistent(dialed, tmp_path):
    db = dialed["db"]
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(dialed["campaign_id"]), TUE_10_PHOENIX.isoformat(), "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    backups = []
    try:
        assert writer.stdout.readline().strip() == "writing"  # its first round is committed
        for i in range(3):
            backups.append(run_backup(db, tmp_path / f"b{i}.duckdb"))
            time.sleep(0.5)
    finally:
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err[-2000:]
    sizes = []
    for i, result in enumerate(backups):
        path = tmp_path / f"b{i}.duckdb"
        assert result["verified_schema_version"] == result["schema_version"]
        # a batch may be mid-flight in the copy (rows queued), but every counter matches its calls
        check_invariants(path, settled=False)
        sizes.append(counts(path)[0])
    assert sizes == sorted(sizes) and sizes[0] > 12  # the copies saw the writer's progress


def test_a_failed_backup_leaves_the_previous_one_untouched(dialed, tmp_path, capsys):
    with tmpfs(tmp_path / "small", "12m") as small:
        target = small / "b.duckdb"
        run_backup(dialed["db"], target)
        before = target.read_bytes()
        (small / "filler").write_bytes(b"\0" * (shutil.disk_usage(small).free - 64 * 1024))
        code, _, err = cli(capsys, "--db", str(dialed["db"]), "backup", "--out", str(target))
        assert code == 2 and "disk full" in err and err.count("\n") == 1
        assert target.read_bytes() == before
        assert sorted(p.name for p in small.iterdir()) == ["b.duckdb", "filler"]


# -- the store's file ----------------------------------------------------------------------------

def test_a_read_only_database_is_a_clear_error_and_reads_still_work(dialed, tmp_path, capsys):
    with tmpfs(tmp_path / "ro", "16m") as ro:
        copy = ro / "campaigns.duckdb"
        shutil.copy(dialed["db"], copy)
        expected = counts(copy)
        remount(ro, "ro")
        forget_migrated(copy)
        with pytest.raises(StoreError, match="campaigns.duckdb"):
            with transaction(copy) as conn:
                conn.execute("insert into agents (name) values ('x')")
        code, _, err = cli(capsys, "--db", str(copy), "agents", "add", "Zoe")
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
        assert "Traceback" not in err
        assert counts(copy) == expected  # read-only opens still serve the dashboard and exports


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty_header"])
def test_a_corrupt_database_file_is_a_clear_error(dialed, tmp_path, capsys, damage):
    bad = tmp_path / "bad.duckdb"
    data = Path(dialed["db"]).read_bytes()
    if damage == "garbage":
        bad.write_bytes(b"this is not a database\x00\xff" * 5000)
    elif damage == "truncated":
        bad.write_bytes(data[: len(data) // 3])
    else:
        bad.write_bytes(b"\0" * 8192 + data[8192:])
    code, _, err = cli(capsys, "--db", str(bad), "list")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert str(bad) in err
    with pytest.raises((StoreError, UserError)):
        with connect(bad):
            pass


def test_disk_full_mid_write_rolls_back_and_the_store_still_opens(dialed, tmp_path):
    with tmpfs(tmp_path / "full", "32m") as full:
        copy = full / "campaigns.duckdb"
        shutil.copy(dialed["db"], copy)
        forget_migrated(copy)
        before = counts(copy)
        free = shutil.disk_usage(full).free
        (full / "filler").write_bytes(b"\0" * max(0, free - 300 * 1024))
        with pytest.raises(StoreError, match="No space left|no space left|disk"):
            with transaction(copy) as conn:
                conn.execute(
                    "insert into contacts (phone_e164, name, properties) select '+1999' || lpad(i::varchar, 10, '0'),"
                    " repeat('x', 200), '{}' from range(200000) t(i)"
                )
        (full / "filler").unlink()
        forget_migrated(copy)
        assert counts(copy) == before  # nothing of the failed transaction is visible
        check_invariants(copy)
