"""A local PostgreSQL server the project starts itself: for the shared store of `make serve-cluster` and tests.

The Debian package's server (`/usr/lib/postgresql/<version>/bin`) refuses to run as root, so when we
are root every server command runs as the `postgres` system user (`runuser`), which must own the
data folder. The server listens on 127.0.0.1 only, on a free port, with trust authentication and
no Unix socket: it is for this machine's processes, never for the network.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tasks.errors import UserError
from tasks.settings import get_settings

DEFAULT_BIN_DIRS = ("/usr/lib/postgresql/*/bin",)
SERVER_USER = "postgres"  # the Debian package's system user


class PostgresMissingError(UserError):
    """PostgreSQL's server programs (initdb, pg_ctl) are not installed where we looked."""


class PgServerError(RuntimeError):
    """The local PostgreSQL server failed to initialise, start or stop."""


def find_bin_dir(explicit: str | Path | None = None) -> Path:
    """The folder holding initdb and pg_ctl: the given one, else the newest Debian one, else PATH's."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    else:
        for pattern in DEFAULT_BIN_DIRS:
            root = Path(pattern.split("*")[0])
            found = sorted(root.glob("*/bin"), key=lambda p: _version_key(p.parent.name), reverse=True) \
                if root.is_dir() else []
            candidates.extend(found)
        on_path = shutil.which("pg_ctl")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    looked = ", ".join(str(c) for c in candidates) or "/usr/lib/postgresql/*/bin and PATH"
    raise PostgresMissingError(
        f"PostgreSQL server programs (initdb, pg_ctl) not found in {looked}: "
        "install them (apt-get install postgresql) or set CAMPAIGNS_PG_BIN_DIR"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class PgServer:
    """A PostgreSQL server on 127.0.0.1 for one data folder; `start()`/`stop()` or `with PgServer(...) as pg`.

    The folder is initialised on first start and kept (a restart finds its data again). `url` is a
    libpq URL to the `database` it creates, for the store settings (CAMPAIGNS_STORE_URL).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int | None = None,
        database: str = "campaigns",
        bin_dir: str | Path | None = None,
        start_timeout: float = 60.0,
        durable: bool = False,
    ):
        # durable: fsync on (a store kept across restarts, `make serve-cluster`); off for throw-away test servers,
        # where an OS crash losing the cluster costs nothing and fsync costs seconds
        self.durable = durable
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.database = database
        self.bin_dir = find_bin_dir(bin_dir if bin_dir is not None else get_settings().pg_bin_dir)
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.user = "postgres"
        self._running = False

    @property
    def url(self) -> str:
        """libpq URL of the database (trust auth: no password)."""
        if self.port is None:
            raise PgServerError("the server has no port until it is started")
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """The same connection as key=value pairs (DuckDB's postgres ATTACH and DuckLake accept both)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.database}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def running(self) -> bool:
        return self._running

    # -- commands ---------------------------------------------------------------------------------
    def _as_server_user(self) -> bool:
        return os.geteuid() == 0

    def _run(self, program: str, *args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess:
        argv = [str(self.bin_dir / program), *args]
        if self._as_server_user():
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd="/")
        if check and done.returncode != 0:
            raise PgServerError(
                f"{program} failed (exit {done.returncode}) for {self.data_dir}: "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )
        return done

    def _prepare_folder(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._as_server_user():
            # initdb wants an empty or absent folder it owns, with no access for others
            shutil.chown(self.data_dir, SERVER_USER, SERVER_USER)
            probe = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-w", str(self.data_dir)],
                                   capture_output=True)
            if probe.returncode != 0:
                raise PgServerError(
                    f"user {SERVER_USER} cannot reach {self.data_dir}: a parent folder is closed to other "
                    "users; choose a data folder under a world-traversable path (e.g. /tmp or the project)"
                )
        self.data_dir.chmod(0o700)

    def initialised(self) -> bool:
        """Whether the data folder already holds a database cluster."""
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> None:
        """Create the database cluster in the data folder (trust on 127.0.0.1 only)."""
        self._prepare_folder()
        self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8")
        # only loopback TCP; no local socket line, so nothing outside 127.0.0.1 gets in
        (self.data_dir / "pg_hba.conf").write_text(
            "# written by tasks/pgserver.py: loopback only, trust\n"
            "host all all 127.0.0.1/32 trust\n"
        )

    def start(self) -> PgServer:
        """Initialise if needed, start on a free (or the given) port, create the database; idempotent."""
        if self._running:
            return self
        if not self.initialised():
            self.init()
        elif self._as_server_user():
            shutil.chown(self.data_dir, SERVER_USER, SERVER_USER)
        tries = 1 if self.port is not None else 3
        for attempt in range(tries):
            port = self.port if self.port is not None else free_port(self.host)
            options = (f"-c listen_addresses={self.host} -p {port} -c unix_socket_directories='' "
                       f"-c fsync={'on' if self.durable else 'off'} -c max_connections=200")
            done = self._run("pg_ctl", "start", "-D", str(self.data_dir), "-w", "-t", str(int(self.start_timeout)),
                             "-l", str(self.log_file), "-o", options, check=False,
                             timeout=self.start_timeout + 30)
            if done.returncode == 0:
                self.port = port
                break
            if attempt == tries - 1:
                raise PgServerError(
                    f"PostgreSQL did not start in {self.data_dir}: {(done.stderr or done.stdout).strip()[-400:]}"
                    f"; server log: {self._log_tail()}"
                )
        self._running = True
        atexit.register(self.stop)  # a crashing caller still stops the server
        try:
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-600:].strip()
        except OSError:
            return "(no log)"

    def _psql(self, sql: str, database: str = "postgres") -> str:
        done = self._run("psql", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database,
                         "-At", "-v", "ON_ERROR_STOP=1", "-c", sql)
        return done.stdout.strip()

    def _create_database(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                exists = self._psql(f"select 1 from pg_database where datname = '{self.database}'")
                break
            except PgServerError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        if exists != "1":
            if not self.database.replace("_", "").isalnum():
                raise PgServerError(f"database name {self.database!r} must be letters, digits and _")
            self._psql(f'create database "{self.database}"')

    def create_database(self, name: str) -> str:
        """Create another database on this server (one per test or bench run); returns its URL."""
        if not name.replace("_", "").isalnum():
            raise PgServerError(f"database name {name!r} must be letters, digits and _")
        self._psql(f'create database "{name}"')
        return f"postgresql://{self.user}@{self.host}:{self.port}/{name}"

    def execute(self, sql: str) -> str:
        """Run SQL through psql on the database; returns the unaligned output (tests, operations)."""
        return self._psql(sql, self.database)

    def stop(self) -> None:
        """Stop the server (fast shutdown: running transactions are rolled back); idempotent."""
        if not self._running:
            return
        self._running = False
        atexit.unregister(self.stop)
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", check=False)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
