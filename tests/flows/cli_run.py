"""Running the `campaigns` CLI in-process for tests (tests/flows/conftest.py resets its state around each test)."""

from __future__ import annotations

from pathlib import Path

from flows.cli import main
from flows.cli.common import state


def run(capsys, db: Path, *args: str) -> tuple[int, str, str]:
    """`campaigns --db DB ARGS...`: (exit code, stdout, stderr); the --db/--json state reset after it."""
    code = main(["--db", str(db), *args])
    out = capsys.readouterr()
    state.db, state.json = None, False
    return code, out.out, out.err
