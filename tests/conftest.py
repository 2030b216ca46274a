"""Test set-up: isolated Prefect home, temporary databases, one Prefect harness per session."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Before anything imports prefect: isolate its home and results, keep it quiet and offline.
_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="vc-prefect-"))
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(_PREFECT_HOME / "results")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("CAMPAIGNS_DB", None)
os.environ.pop("RETELL_API_KEY", None)

import pytest  # noqa: E402

from tasks.settings import reset_settings  # noqa: E402
from tests.factories import make_campaign_db  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@contextmanager
def main_module_kept() -> Iterator[None]:
    """Put sys.modules["__main__"] back as it was once the block ends.

    Streamlit's script runner (AppTest included) installs the script it runs as `__main__` and never
    puts the real one back. A multiprocessing "spawn" child starts by running the parent's `__main__`
    file: after a dashboard test, a later test's child drew the dashboard again, against that test's
    database (tab_harness.py's default campaign 1: "campaign 1 does not exist" on its stderr, or a
    failed child).
    """
    main = sys.modules["__main__"]
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def _main_module_kept() -> Iterator[None]:
    """Every test leaves `__main__` as it found it (see main_module_kept)."""
    with main_module_kept():
        yield


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> Path:
    """One empty database migrated by init_db for the session, to copy: migrating costs about 0.4 s
    a test (most tests take a fresh store), copying the closed file a few milliseconds."""
    from tasks.store import init_db

    path, _version = init_db(tmp_path_factory.mktemp("migrated") / "campaigns.duckdb")
    return path


@pytest.fixture
def db(tmp_path, monkeypatch, migrated_store) -> Path:
    """A fresh, migrated database file that the settings point at (CAMPAIGNS_DB)."""
    path = tmp_path / "campaigns.duckdb"
    monkeypatch.setenv("CAMPAIGNS_DB", str(path))
    monkeypatch.setenv("CAMPAIGNS_DIAL_PACE_SECONDS", "0")
    reset_settings()
    shutil.copyfile(migrated_store, path)
    yield path
    reset_settings()


@pytest.fixture
def db_kept_open(db) -> Iterator[Path]:
    """The test database with one DuckDB connection held open meanwhile, for tests that open the store often.

    Opening a closed file costs about 30 ms here (DuckDB reads the catalog again) and one dashboard page
    run opens the store dozens of times; while a connection is open, the store's short connections join
    its database instance (about 2 ms each). No other process can open the file meanwhile: not for tests
    that start one on it.
    """
    import duckdb

    held = duckdb.connect(str(db))
    try:
        yield db
    finally:
        held.close()


@pytest.fixture
def campaign_db(db) -> dict:
    """A database with one agent, two active numbers and the reference campaign (no contacts)."""
    return make_campaign_db(db)


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session (about 9 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
