"""The local PostgreSQL launcher: starts, answers on 127.0.0.1, keeps data across restarts, stops."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from tasks.errors import UserError
from tasks.pgserver import PgServer, PgServerError, PostgresMissingError, find_bin_dir, free_port


def test_the_session_server_answers_sql_on_its_url(pg_server):
    assert pg_server.url == f"postgresql://postgres@127.0.0.1:{pg_server.port}/campaigns"
    assert pg_server.execute("select current_database()") == "campaigns"


def test_the_server_listens_on_loopback_only(pg_server):
    assert pg_server.execute("show listen_addresses") == "127.0.0.1"
    # no Unix socket either: only loopback TCP reaches it
    assert pg_server.execute("show unix_socket_directories") == ""


def test_data_survives_a_restart_and_stop_is_idempotent(pg_server):
    folder = Path(tempfile.mkdtemp(prefix="vc-pg-"))
    os.chmod(folder, 0o755)
    try:
        with PgServer(folder / "data", database="restart_check") as first:
            first.execute("create table kept (x int); insert into kept values (7)")
            port = first.port
        assert not first.running
        first.stop()  # a second stop does nothing
        assert not (folder / "data" / "postmaster.pid").exists()  # the server really stopped
        assert _port_is_free(port)
        with PgServer(folder / "data", database="restart_check") as second:
            assert second.execute("select x from kept") == "7"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_kept_server_writes_durably_and_a_second_on_its_folder_is_one_line(pg_server, capsys):
    # `make serve-cluster` kept its system-of-record cluster with fsync=off (an OS crash could corrupt it), and a
    # second serve on the same folder ended in a 20-line traceback
    import signal

    from flows.serve_cluster import main

    folder = Path(tempfile.mkdtemp(prefix="vc-pg-"))
    os.chmod(folder, 0o755)
    handler = signal.getsignal(signal.SIGTERM)  # main installs its own
    try:
        with PgServer(folder / "data", durable=True) as kept:
            assert kept.execute("show fsync") == "on"
            code = main(["--pg-dir", str(folder), "--pg-port", str(kept.port), "--no-dashboard", "--seconds", "1"])
            err = capsys.readouterr().err
            assert code == 2 and err.startswith("error: PostgreSQL did not start in ") and err.count("\n") == 1, err
        assert pg_server.execute("show fsync") == "off"  # a throw-away test server: fast
    finally:
        signal.signal(signal.SIGTERM, handler)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_failing_block_still_stops_the_server(pg_server):
    folder = Path(tempfile.mkdtemp(prefix="vc-pg-"))
    os.chmod(folder, 0o755)
    server = PgServer(folder / "data")
    try:
        with pytest.raises(ZeroDivisionError), server:
            port = server.port
            1 / 0
        assert not server.running
        assert not (folder / "data" / "postmaster.pid").exists() and _port_is_free(port)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_missing_binaries_are_a_clear_user_error(tmp_path):
    with pytest.raises(PostgresMissingError, match="apt-get install postgresql") as raised:
        find_bin_dir(tmp_path)
    assert isinstance(raised.value, UserError)  # the CLI prints one line and exits 2


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as the postgres user")
def test_a_folder_the_server_user_cannot_reach_is_refused_before_initdb(pg_server):
    closed = Path(tempfile.mkdtemp(prefix="vc-pg-closed-"))  # mode 700, owned by root
    try:
        with pytest.raises(PgServerError, match="cannot reach"):
            PgServer(closed / "data").start()
    finally:
        shutil.rmtree(closed, ignore_errors=True)


def test_the_url_needs_a_started_server(pg_server):
    with pytest.raises(PgServerError, match="started"):
        _ = PgServer("/nonexistent/data").url


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # closed client connections linger in TIME_WAIT: a listening server may bind over them
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_free_port_is_bindable():
    assert _port_is_free(free_port())


def test_create_database_gives_a_separate_database(pg_server):
    url = pg_server.create_database("separate_check")
    assert url.endswith(f":{pg_server.port}/separate_check")
    assert "separate_check" in pg_server.execute("select datname from pg_database").split()
    with pytest.raises(PgServerError, match="letters, digits"):
        pg_server.create_database('x"; drop database campaigns; --')
