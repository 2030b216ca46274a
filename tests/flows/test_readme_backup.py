"""README and docs/operations.md, "Backups": a `campaigns backup` file restored over the database is a
working store — the same keys, unique constraints and id sequences, so the next write neither fails nor
breaks exactly-once dialing (the unique attempt key)."""

from __future__ import annotations

import shutil

import duckdb

from tests.flows.cli_run import run

SCHEMA_OBJECTS = (
    "select (select count(*) from duckdb_constraints()), (select count(*) from duckdb_sequences()),"
    " (select list(sequence_name || '=' || last_value order by sequence_name) from duckdb_sequences())"
)


def _schema(path) -> tuple:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(SCHEMA_OBJECTS).fetchone()


# Until 2026-12-05 the backup copied each table bare (CREATE TABLE AS, as the analysts' snapshot does): no
# keys, unique constraints or sequences, and a restored backup failed its first insert.
def test_a_restored_backup_keeps_keys_and_sequences_and_takes_new_rows(capsys, db, tmp_path):
    assert run(capsys, db, "apply", "data/example_campaign.yaml")[0] == 0
    backup = tmp_path / "backup.duckdb"
    assert run(capsys, db, "backup", "--out", str(backup))[0] == 0
    assert _schema(backup) == _schema(db)

    restored = tmp_path / "restored.duckdb"  # "copy the backup over data/campaigns.duckdb"
    shutil.copyfile(backup, restored)
    code, out, err = run(capsys, restored, "numbers", "add", "+16025550177")
    assert (code, err) == (0, ""), err
    assert "added number 2" in out
