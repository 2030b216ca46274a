"""A store file that does not exist, or is empty: commands that only read it, and the dashboard, refuse it in
one line (exit 2) and create nothing, no file and no folder (a mistyped --db used to leave a new empty database
behind and answer "(none)"); commands that write create it, as `init` does, and the dashboard's first start on
the default store too, but only `init` creates a missing folder for a path the user named. Run in-process through flows.cli.main."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main
from flows.cli.common import NONE, READS, STORE_USE, WRITES, app, refuse_missing_store, store_use
from tasks.settings import get_settings, reset_settings
from tests.flows.cli_run import run

# Every command that only reads the store, with arguments that would otherwise reach it.
READING = [
    ["list"],
    ["show", "1"],
    ["metrics", "3"],
    ["forecast", "1"],
    ["best-time", "1"],
    ["calls", "show", "1"],
    ["agents", "list"],
    ["numbers", "list"],
    ["numbers", "health"],
    ["dnc", "list"],
    ["dnc", "suppressed", "1"],
    ["rules", "list"],
    ["rules", "audit", "1"],
    ["export", "contacts", "1", "--out", "{tmp}/contacts.xlsx"],
    ["export", "calls", "1", "--out", "{tmp}/calls.xlsx"],
    ["backup", "--out", "{tmp}/backup.duckdb"],
]


def _command_paths() -> set[str]:
    """Every leaf command of the `campaigns` tree as its path below `campaigns` ("agents list")."""
    import typer

    found: set[str] = set()

    def walk(command, prefix: str) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            found.add(prefix)
            return
        for name, sub in subcommands.items():
            walk(sub, f"{prefix} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


def _name(args: list[str]) -> str:
    """The command path of an argument list: its words before the first argument or option."""
    words = []
    for arg in args:
        if arg.startswith("-") or arg[0].isdigit() or arg[0] == "+":
            break
        words.append(arg)
    return " ".join(words)


def _only_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_every_command_is_classified():
    """A new command must say whether it reads or writes the store (flows.cli.common.STORE_USE)."""
    assert set(STORE_USE) == _command_paths()
    assert set(STORE_USE.values()) <= {READS, WRITES, NONE}
    assert {_name(args) for args in READING} == {name for name, use in STORE_USE.items() if use == READS}
    with pytest.raises(RuntimeError, match="not classified"):
        store_use("frobnicate")


@pytest.mark.parametrize("args", READING, ids=lambda args: " ".join(a for a in args if "{" not in a))
def test_a_reading_command_refuses_a_missing_store_and_creates_nothing(capsys, tmp_path, args):
    folder = tmp_path / "x"
    path = folder / "typo.duckdb"
    args = [a.format(tmp=tmp_path) for a in args]
    code, out, err = run(capsys, path, *args)
    assert code == 2, (code, out, err)
    assert _only_line(err) == f"error: --db {path}: no database there (campaigns init creates one)"
    assert out == ""
    assert not folder.exists()  # no file, no folder
    assert list(tmp_path.iterdir()) == []  # nor an --out file


def test_a_missing_store_in_an_existing_folder_is_refused_too(capsys, tmp_path):
    path = tmp_path / "typo.duckdb"
    code, out, err = run(capsys, path, "show", "1")
    assert code == 2 and out == ""
    assert _only_line(err) == f"error: --db {path}: no database there (campaigns init creates one)"
    assert list(tmp_path.iterdir()) == []


def default_store(tmp_path, monkeypatch) -> Path:
    """Neither --db nor CAMPAIGNS_DB: a path under tmp_path stands in for the default data/campaigns.duckdb."""
    path = tmp_path / "data" / "campaigns.duckdb"
    monkeypatch.delenv("CAMPAIGNS_DB", raising=False)
    settings = get_settings().model_copy(update={"db": path})
    monkeypatch.setattr("tasks.store.get_settings", lambda: settings)
    return path


def refused_with_env_db(capsys, monkeypatch, path, argv: list[str]) -> str:
    """Run the CLI with CAMPAIGNS_DB=path (not --db): it must refuse with exit code 2; its stderr."""
    monkeypatch.setenv("CAMPAIGNS_DB", str(path))
    reset_settings()
    try:
        assert main(argv) == 2
    finally:
        reset_settings()
    return capsys.readouterr().err


def test_the_refusal_names_campaigns_db_when_the_path_came_from_the_environment(capsys, tmp_path, monkeypatch):
    path = tmp_path / "x" / "typo.duckdb"
    err = refused_with_env_db(capsys, monkeypatch, path, ["list"])
    assert _only_line(err) == f"error: CAMPAIGNS_DB={path}: no database there (campaigns init creates one)"
    assert not path.parent.exists()


def test_the_refusal_names_the_default_path_when_neither_was_given(capsys, tmp_path, monkeypatch):
    path = default_store(tmp_path, monkeypatch)
    assert main(["rules", "list"]) == 2
    err = capsys.readouterr().err
    assert _only_line(err) == (f"error: {path} (the default): no database there "
                               "(campaigns init creates it; --db or CAMPAIGNS_DB names another)")
    assert not path.parent.exists()


def test_version_needs_no_store_and_creates_none(capsys, tmp_path):
    path = tmp_path / "x" / "typo.duckdb"
    code, out, err = run(capsys, path, "version")
    assert code == 0 and err == "" and out.startswith("voice-campaigns ")
    assert STORE_USE["version"] == NONE
    assert not path.parent.exists()


@pytest.mark.parametrize(("name", "args"), [
    ("init", ["init"]),
    ("agents add", ["agents", "add", "Ava"]),
    ("numbers add", ["numbers", "add", "+16025550100"]),
    ("dnc add", ["dnc", "add", "+13055550100"]),
])
def test_a_writing_command_still_creates_a_missing_store(capsys, tmp_path, name, args):
    path = tmp_path / "campaigns.duckdb"
    assert STORE_USE[name] == WRITES
    code, out, err = run(capsys, path, *args)
    assert (code, err) == (0, ""), (code, out, err)
    assert path.is_file()
    # and the store it created is one the reading commands then accept
    code, out, err = run(capsys, path, "list")
    assert (code, out.strip(), err) == (0, "(none)", "")


def test_init_creates_a_missing_folder_with_the_store(capsys, tmp_path):
    path = tmp_path / "new" / "sub" / "campaigns.duckdb"
    code, out, err = run(capsys, path, "init")
    assert (code, err) == (0, "") and path.is_file()


@pytest.mark.parametrize("args", [
    ["apply", "missing.yaml"],
    ["agents", "add", "Ava"],
    ["dnc", "add", "+13055550100"],
    ["create", "--name", "X", "--agent", "1", "--time-zone", "America/Phoenix", "--hours", "08:00-18:00"],
], ids=lambda args: " ".join(args[:2]))
def test_a_writing_command_refuses_a_store_in_a_missing_folder_and_creates_nothing(capsys, tmp_path, args):
    """A mistyped folder used to get a new, empty database, folders included, even when the command then refused
    its input (`apply missing.yaml`: exit 2, and typo/dir/x.duckdb left behind). Only `init` creates folders."""
    path = tmp_path / "typo" / "dir" / "x.duckdb"
    code, out, err = run(capsys, path, *args)
    assert (code, out) == (2, "")
    assert _only_line(err) == (f"error: --db {path}: folder {path.parent} does not exist "
                               "(campaigns init creates it with a new database)")
    assert list(tmp_path.iterdir()) == []


def test_a_store_under_a_file_is_refused_as_such(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    path = tmp_path / "notes.txt" / "x.duckdb"
    code, out, err = run(capsys, path, "agents", "add", "Ava")
    assert (code, out) == (2, "")
    assert _only_line(err) == f"error: --db {path}: {path.parent} is a file, not a folder"


def test_the_missing_folder_refusal_names_campaigns_db_when_the_path_came_from_the_environment(
        capsys, tmp_path, monkeypatch):
    path = tmp_path / "x" / "typo.duckdb"
    err = refused_with_env_db(capsys, monkeypatch, path, ["agents", "add", "Ava"])
    assert _only_line(err) == (f"error: CAMPAIGNS_DB={path}: folder {path.parent} does not exist "
                               "(campaigns init creates it with a new database)")
    assert not path.parent.exists()


def test_the_default_store_folder_is_still_created_by_a_writer(capsys, tmp_path, monkeypatch):
    """data/ ships with the project; the default path is no typo (nothing the user named)."""
    path = default_store(tmp_path, monkeypatch)
    assert main(["agents", "add", "Ava"]) == 0
    assert path.is_file()


def test_a_reading_command_on_an_existing_store_is_unchanged(capsys, tmp_path):
    path = tmp_path / "campaigns.duckdb"
    assert run(capsys, path, "init")[0] == 0
    code, out, err = run(capsys, path, "show", "1")
    assert code == 2 and _only_line(err) == "error: campaign 1 does not exist"


def test_the_shared_store_has_no_file_to_check(tmp_path, monkeypatch):
    """With CAMPAIGNS_STORE=postgres the store is PostgreSQL tables: a --db path that does not exist means nothing."""
    from tasks.store import store_file_problem

    path = tmp_path / "x" / "typo.duckdb"
    assert store_file_problem(path) == "no database there"
    monkeypatch.setattr("tasks.store.shared_store_url", lambda: "postgresql://user@127.0.0.1:5432/campaigns")
    assert store_file_problem(path) is None
    refuse_missing_store(path)  # no error
    assert not path.parent.exists()


# ------------------------------------------------------------------ an empty (0-byte) store file
#
# DuckDB 1.5 refuses a 0-byte file ("exists, but it is not a valid DuckDB database file"), for reading and
# writing alike. A file made by `touch` or a failed copy is the wrong file as much as a mistyped path: the
# commands that only read say so in the missing store's words; those that write make it a database.


@pytest.mark.parametrize("args", READING, ids=lambda args: " ".join(a for a in args if "{" not in a))
def test_a_reading_command_refuses_an_empty_store_file_and_leaves_it(capsys, tmp_path, args):
    path = tmp_path / "touched.duckdb"
    path.touch()
    args = [a.format(tmp=tmp_path) for a in args]
    code, out, err = run(capsys, path, *args)
    assert code == 2, (code, out, err)
    assert _only_line(err) == f"error: --db {path}: the file is empty, not a database (campaigns init creates one)"
    assert out == ""
    assert path.stat().st_size == 0  # left as it was
    assert list(tmp_path.iterdir()) == [path]  # no --out file either


@pytest.mark.parametrize(("name", "args"), [
    ("init", ["init"]),
    ("agents add", ["agents", "add", "Ava"]),
    ("dnc add", ["dnc", "add", "+13055550100"]),
])
def test_a_writing_command_turns_an_empty_store_file_into_a_database(capsys, tmp_path, name, args):
    path = tmp_path / "touched.duckdb"
    path.touch()
    assert STORE_USE[name] == WRITES
    code, out, err = run(capsys, path, *args)
    assert (code, err) == (0, ""), (code, out, err)
    assert path.stat().st_size > 0
    code, out, err = run(capsys, path, "list")
    assert (code, out.strip(), err) == (0, "(none)", "")


# ------------------------------------------------------------------ the dashboard


@pytest.fixture
def streamlit_calls(monkeypatch) -> list[str]:
    """The CAMPAIGNS_DB each `campaigns dashboard` would have started Streamlit on (nothing is started)."""
    import subprocess

    calls: list[str] = []
    monkeypatch.setattr(subprocess, "call", lambda args, env, cwd: calls.append(env["CAMPAIGNS_DB"]) or 0)
    return calls


def test_the_dashboard_refuses_a_missing_store_like_a_reading_command(capsys, tmp_path, streamlit_calls):
    """A mistyped --db used to start the dashboard on a new, empty database the app created on its first read."""
    path = tmp_path / "x" / "typo.duckdb"
    code, out, err = run(capsys, path, "dashboard", "--port", "8600")
    assert (code, out, streamlit_calls) == (2, "", [])
    assert _only_line(err) == f"error: --db {path}: no database there (campaigns init creates one)"
    assert not path.parent.exists()

    assert run(capsys, path, "init")[0] == 0
    code, out, err = run(capsys, path, "dashboard", "--port", "8600")
    assert (code, err, streamlit_calls) == (0, "", [str(path.resolve())])


def test_the_dashboard_refusal_names_campaigns_db_when_the_path_came_from_the_environment(
        capsys, tmp_path, monkeypatch, streamlit_calls):
    path = tmp_path / "x" / "typo.duckdb"
    err = refused_with_env_db(capsys, monkeypatch, path, ["dashboard"])
    assert _only_line(err) == f"error: CAMPAIGNS_DB={path}: no database there (campaigns init creates one)"
    assert streamlit_calls == [] and not path.parent.exists()


def test_the_dashboard_refuses_an_empty_store_file(capsys, tmp_path, streamlit_calls):
    path = tmp_path / "touched.duckdb"
    path.touch()
    code, out, err = run(capsys, path, "dashboard")
    assert (code, out, streamlit_calls) == (2, "", [])
    assert _only_line(err) == f"error: --db {path}: the file is empty, not a database (campaigns init creates one)"
    assert path.stat().st_size == 0


@pytest.mark.parametrize("touched", [False, True], ids=["missing", "empty"])
def test_the_dashboard_creates_the_default_store_on_its_first_start(capsys, tmp_path, monkeypatch, streamlit_calls,
                                                                     touched):
    """The embedded default (data/campaigns.duckdb) with nothing there yet is a first start, not a typo."""
    from tasks.store import connect, current_version, latest_version

    path = tmp_path / "data" / "campaigns.duckdb"
    if touched:
        path.parent.mkdir()
        path.touch()
    monkeypatch.delenv("CAMPAIGNS_DB", raising=False)
    monkeypatch.setattr("flows.cli.dashboard_cmds.DEFAULT_STORE", path)  # stands in for data/campaigns.duckdb
    settings = get_settings().model_copy(update={"db": path})
    monkeypatch.setattr("tasks.store.get_settings", lambda: settings)
    assert main(["dashboard"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [f"first start: created a new, empty database at {path.resolve()} (the default store)",
                                f"dashboard on http://localhost:8501 (database {path.resolve()})"]
    assert streamlit_calls == [str(path.resolve())]
    with connect(path, read_only=True) as conn:
        assert current_version(conn) == latest_version()  # migrated: the app never creates or migrates it


def test_the_dashboard_still_refuses_a_missing_store_in_the_default_folder_under_another_name(
        capsys, tmp_path, monkeypatch, streamlit_calls):
    monkeypatch.setattr("flows.cli.dashboard_cmds.DEFAULT_STORE", tmp_path / "campaigns.duckdb")
    path = tmp_path / "campaings.duckdb"  # a typo beside the default
    code, out, err = run(capsys, path, "dashboard")
    assert (code, streamlit_calls) == (2, [])
    assert _only_line(err) == f"error: --db {path}: no database there (campaigns init creates one)"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [None, "name: [unclosed\n"])
def test_apply_of_a_missing_or_malformed_file_creates_no_store(capsys, tmp_path, content):
    """`apply` is a writing command, but bad input writes nothing: it left a new empty store behind."""
    path, yaml_file = tmp_path / "campaigns.duckdb", tmp_path / "campaign.yaml"
    if content is not None:
        yaml_file.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, path, "apply", str(yaml_file))
    assert code == 2 and str(yaml_file) in err and len(err.strip().splitlines()) == 1, err
    assert not path.exists()
