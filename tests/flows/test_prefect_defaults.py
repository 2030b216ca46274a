"""Importing `flows` (every entry point does, before Prefect) gives Prefect's ephemeral server time to start."""

from __future__ import annotations

import os
import subprocess
import sys

VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def wait_after_importing_flows(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != VARIABLE}
    probe = f"import os, flows; print(os.environ['{VARIABLE}'])"
    done = subprocess.run([sys.executable, "-c", probe], env={**clean, **env}, capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout.strip()


def test_importing_flows_sets_90_seconds_unless_the_user_set_a_wait():
    # Prefect's own 20 s failed `campaigns import --prefect` under a load average of 8 on 2 cores
    assert wait_after_importing_flows() == "90"
    assert wait_after_importing_flows(**{VARIABLE: "33"}) == "33"


def test_prefect_reads_that_variable_as_its_ephemeral_start_up_wait(monkeypatch):
    from prefect.settings import Settings

    monkeypatch.setenv(VARIABLE, "77")
    assert Settings().server.ephemeral.startup_timeout_seconds == 77
