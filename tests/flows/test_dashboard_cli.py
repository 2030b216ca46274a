"""`campaigns dashboard`: the Streamlit server lives and dies with the command, on the interface asked for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tasks.settings import PROJECT_ROOT
from tasks.store import init_db
from tests.flows.cli_run import run

# `campaigns dashboard` in a process of its own, a sleeper standing in for Streamlit: it writes its pid and waits.
FAKE_STREAMLIT = textwrap.dedent("""
    import sys
    from flows.cli import dashboard_cmds, main

    pid_file = sys.argv.pop(1)
    sleeper = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"
    dashboard_cmds.streamlit_command = lambda port, headless, address=None: [sys.executable, "-c", sleeper, pid_file]
    sys.exit(main(sys.argv[1:]))
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(path: Path, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.05)
    return int(path.read_text())


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_to_the_command_stops_streamlit_too(tmp_path, signum, code):
    """Killed by SIGTERM, the command used to leave Streamlit running (adopted by PID 1, holding the port)."""
    db, pid_file = tmp_path / "campaigns.duckdb", tmp_path / "streamlit.pid"
    init_db(db)
    command = subprocess.Popen([sys.executable, "-c", FAKE_STREAMLIT, str(pid_file), "--db", str(db), "dashboard"],
                               cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    streamlit = _wait_for(pid_file)
    try:
        command.send_signal(signum)
        out, err = command.communicate(timeout=30)
        assert (command.returncode, err) == (code, "")  # 128 + the signal, as a shell reports it
        assert out == f"dashboard on http://localhost:8501 (database {db.resolve()})\n"
        assert not _alive(streamlit)  # killed and reaped by the command, not left to PID 1
    finally:
        if _alive(streamlit):
            os.kill(streamlit, signal.SIGKILL)
        if command.poll() is None:
            command.kill()


@pytest.fixture
def streamlit_lines(monkeypatch) -> list[list[str]]:
    """The command line each `campaigns dashboard` would have started Streamlit with (nothing is started)."""
    lines: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda args, env, cwd: lines.append(args) or 0)
    return lines


def test_address_chooses_the_interface_streamlit_listens_on(capsys, tmp_path, streamlit_lines):
    db = tmp_path / "campaigns.duckdb"
    init_db(db)
    code, out, err = run(capsys, db, "dashboard", "--address", "127.0.0.1", "--port", "8600")
    assert (code, err, out) == (0, "", f"dashboard on http://127.0.0.1:8600 (database {db.resolve()})\n")
    assert streamlit_lines[0][-2:] == ["--server.address", "127.0.0.1"]
    # without it, Streamlit's default (every interface) is kept and the address to open is localhost
    code, out, err = run(capsys, db, "dashboard")
    assert (code, err, out) == (0, "", f"dashboard on http://localhost:8501 (database {db.resolve()})\n")
    assert "--server.address" not in streamlit_lines[1]
