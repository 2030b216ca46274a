"""Importing `flows` (every entry point does, before Prefect) sets Prefect's defaults for an offline,
self-hosted product: time for the ephemeral server to start, no telemetry. A value the user set is kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

WAIT, ANALYTICS = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "PREFECT_SERVER_ANALYTICS_ENABLED"


def after_importing_flows(variable: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in (WAIT, ANALYTICS)}
    probe = f"import os, flows; print(os.environ['{variable}'])"
    done = subprocess.run([sys.executable, "-c", probe], env={**clean, **env}, capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout.strip()


def test_importing_flows_sets_90_seconds_unless_the_user_set_a_wait():
    # Prefect's own 20 s failed `campaigns import --prefect` under a load average of 8 on 2 cores
    assert after_importing_flows(WAIT) == "90"
    assert after_importing_flows(WAIT, **{WAIT: "33"}) == "33"


def test_importing_flows_turns_telemetry_off_unless_the_user_turned_it_on():
    # its heartbeat printed an ERROR traceback in the middle of every successful `import --prefect`
    assert after_importing_flows(ANALYTICS) == "false"
    assert after_importing_flows(ANALYTICS, **{ANALYTICS: "true"}) == "true"


@pytest.mark.parametrize(("variable", "value", "read"), [
    (WAIT, "77", lambda s: s.server.ephemeral.startup_timeout_seconds == 77),
    (ANALYTICS, "false", lambda s: s.server.analytics_enabled is False),
])
def test_prefect_reads_those_variables(monkeypatch, variable, value, read):
    from prefect.settings import Settings

    monkeypatch.setenv(variable, value)
    assert read(Settings())
