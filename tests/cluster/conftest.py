"""Cluster test set-up: one throw-away PostgreSQL server per session (skipped when it is not installed)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tasks.pgserver import PgServer, PostgresMissingError


@pytest.fixture(scope="session")
def pg_server():
    """A started local PostgreSQL server (tasks.pgserver.PgServer) for the whole session; `.url` to connect."""
    try:
        server = PgServer(_server_folder() / "data")
    except PostgresMissingError as missing:
        pytest.skip(f"PostgreSQL is not installed: {missing}")
    try:
        with server:
            yield server
    finally:
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)


def _server_folder() -> Path:
    # pytest's tmp_path sits under a root-only folder the `postgres` user cannot enter
    folder = Path(tempfile.mkdtemp(prefix="vc-pg-"))
    os.chmod(folder, 0o755)
    return folder
