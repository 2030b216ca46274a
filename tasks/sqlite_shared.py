"""Opening one SQLite file from several processes at once (the simulated provider, the cluster's slots).

Both keep their file in WAL mode so readers never wait for the writer. Switching a new file to WAL
needs the exclusive lock: when two processes open the same new file together, both hold a read lock
and both ask for it, and SQLite breaks that deadlock by failing one of them at once with "database is
locked", without waiting on the busy timeout. The loser only has to ask again: by then the file is in
WAL mode (it is stored in the file), and asking costs a read lock.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

RETRY_PAUSE_SECONDS = 0.005


def connect_shared(path: str | Path, timeout_seconds: float = 30.0) -> sqlite3.Connection:
    """An autocommit connection to `path` in WAL mode that waits up to `timeout_seconds` for locks."""
    # `timeout` is SQLite's busy timeout: every other lock wait goes through it
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=timeout_seconds)
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            conn.execute("pragma journal_mode = wal")
            return conn
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                conn.close()
                raise
            time.sleep(RETRY_PAUSE_SECONDS)
