"""Shared pieces of the `campaigns` CLI: the app, global options, output helpers."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="campaigns",
    help="voice-campaigns: run outbound AI-voice-agent calling campaigns.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
agents_app = typer.Typer(help="Voice agents.", no_args_is_help=True)
numbers_app = typer.Typer(help="Outbound phone numbers.", no_args_is_help=True)
export_app = typer.Typer(help="Excel exports.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")
app.add_typer(numbers_app, name="numbers")
app.add_typer(export_app, name="export")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


class _State:
    db: Path | None = None
    json: bool = False


state = _State()


@app.callback()
def _global(
    db: Annotated[Path | None, typer.Option("--db", help="DuckDB file (default: CAMPAIGNS_DB or data/campaigns.duckdb).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    state.db = db
    state.json = as_json


# What each command does with the store, by its command path (`campaigns agents list` → "agents list"). A
# command that only READS refuses a store file that does not exist or is empty (a mistyped --db used to leave
# a new empty database behind and answer "(none)"); one that WRITES creates it, but only `init` creates a
# missing folder for a path named by --db or CAMPAIGNS_DB (refuse_missing_folder); NONE never opens it. db()
# refuses a command missing here, and tests/flows/test_cli_missing_store.py checks that every command of the tree
# is here: a new command must be classified.
READS, WRITES, NONE = "reads", "writes", "none"
STORE_USE: dict[str, str] = {
    "init": WRITES,
    "version": NONE,  # the schema version the program ships, not the store's: works on any --db
    "create": WRITES, "edit": WRITES, "apply": WRITES,
    "list": READS, "show": READS,
    "activate": WRITES, "deactivate": WRITES, "duplicate": WRITES, "delete": WRITES,
    "import": WRITES,
    "dial": WRITES, "run": WRITES, "simulate": WRITES, "enrich": WRITES, "feedback": WRITES,
    "aggregate": WRITES,
    "metrics": READS, "forecast": READS, "best-time": READS,
    "backup": READS,  # copies the store: nothing to copy when it is missing
    # The dashboard writes too (creation wizard, settings, imports, feedback), but it refuses a missing or
    # empty store as the readers do (the app never creates one), except the default store on its first
    # start, which the command creates (flows/cli/dashboard_cmds.py).
    "dashboard": WRITES,
    "agents add": WRITES, "agents list": READS,
    "numbers add": WRITES, "numbers list": READS, "numbers set-status": WRITES,
    "numbers health": READS, "numbers restore": WRITES,
    "export contacts": READS, "export calls": READS,
    "contacts remove": WRITES, "contacts edit": WRITES, "contacts zone": WRITES,
    "webhooks serve": WRITES,
    "calls show": READS,
    "dnc add": WRITES, "dnc remove": WRITES, "dnc import": WRITES, "dnc list": READS, "dnc suppressed": READS,
    "rules list": READS, "rules import": WRITES, "rules audit": READS,
}


def command_name() -> str | None:
    """The running command's path below `campaigns` ("agents list"), None outside a command."""
    try:  # newer typer vendors Click
        from typer._click.globals import get_current_context
    except ImportError:  # older typer runs on Click itself
        from click import get_current_context

    context = get_current_context(silent=True)
    names = []
    while context is not None and context.parent is not None:
        names.append(context.info_name)
        context = context.parent
    return " ".join(reversed(names)) or None


def store_use(name: str | None) -> str:
    """READS, WRITES or NONE for a command; an unclassified one is a programming error."""
    if name is None:  # called outside a command (a test, a script): as a writer, as before
        return WRITES
    if name not in STORE_USE:
        raise RuntimeError(f"command {name!r} is not classified in flows.cli.common.STORE_USE")
    return STORE_USE[name]


def db() -> Path:
    """The database file chosen by --db, else the settings'; refused when missing or empty for a reading command,
    and in a folder that does not exist for a writing one but `init`."""
    from tasks.store import db_path

    path = db_path(state.db)
    name = command_name()
    use = store_use(name)
    if use == NONE:
        raise RuntimeError(f"command {name!r} opens the store: classify it READS or WRITES in STORE_USE")
    if use == READS:
        refuse_missing_store(path)
    elif name is not None and name not in FOLDER_MAKERS:
        refuse_missing_folder(path)
    return path


# Writers that may create the store's folder: `init`, whose job it is; the dashboard, which refuses a missing store
# itself and creates only the default one (flows/cli/dashboard_cmds.py).
FOLDER_MAKERS = ("init", "dashboard")


def refuse_missing_folder(path: Path) -> None:
    """Refuse, creating nothing, a store named by --db or CAMPAIGNS_DB whose folder does not exist: a mistyped
    folder used to get a new, empty database (and the folders) even when the command then refused its input."""
    from tasks.errors import NotFoundError
    from tasks.store import shared_store_url

    if shared_store_url() is not None or path.parent.is_dir() or (state.db is None and not _named_in_environment()):
        return  # the default path is no typo: data/ ships with the project
    origin = store_origin(path)
    if path.parent.exists():
        raise NotFoundError(f"{origin}: {path.parent} is a file, not a folder")
    raise NotFoundError(f"{origin}: folder {path.parent} does not exist "
                        "(campaigns init creates it with a new database)")


def _named_in_environment() -> bool:
    import os

    return any(name.upper() == "CAMPAIGNS_DB" for name in os.environ)


def store_origin(path: Path) -> str:
    """How the user named the store: `--db PATH`, `CAMPAIGNS_DB=PATH` or the default path."""
    if state.db is not None:
        return f"--db {path}"
    if _named_in_environment():
        return f"CAMPAIGNS_DB={path}"
    return f"{path} (the default)"


def refuse_missing_store(path: Path) -> None:
    """Refuse, creating nothing, a store file that does not exist or is empty (one line: how it was named, what to do)."""
    from tasks.errors import NotFoundError
    from tasks.store import store_file_problem

    problem = store_file_problem(path)
    if problem is not None:
        origin = store_origin(path)
        hint = ("campaigns init creates it; --db or CAMPAIGNS_DB names another" if origin.endswith("(the default)")
                else "campaigns init creates one")
        raise NotFoundError(f"{origin}: {problem} ({hint})")


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Path, Decimal)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot serialise {type(value).__name__}")


# Control characters but tab and line feed (C0, DEL, C1). Text from imported files, the provider or a YAML
# file can hold them, and a terminal runs them: ESC sequences set its title, write the clipboard (OSC 52),
# clear or colour the screen; a carriage return prints over a line.
_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(text: str) -> str:
    """Text safe to print on a terminal: each control character shown as its escape (\\x1b), not run."""
    return _TERMINAL_CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    """Print ``data`` as JSON when asked (per command or globally), else the human text (controls escaped)."""
    if as_json or state.json:
        sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False) + "\n")
    else:
        typer.echo(terminal_text(
            human if human is not None else json.dumps(data, default=_default, indent=2, ensure_ascii=False)))


def plain_value(value: Any) -> str:
    """A value as a `key: value` line of human output shows it: a dict or list as JSON text, not a Python repr."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_default, ensure_ascii=False)
    return str(value)


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain aligned text table for human output."""
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else terminal_text(str(r.get(c)))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def require_campaign(conn, campaign_id: int) -> None:
    """Refuse an unknown campaign id ("campaign 99 does not exist") before a command reads about it."""
    from tasks.campaigns import get_campaign

    get_campaign(conn, campaign_id)


@contextmanager
def options_named(names: Mapping[str, str]) -> Iterator[None]:
    """Within the block, a validation error names the option the user typed (`--from`) where the task names the
    setting's field (`date_from`): in front of each problem, and inside its text for the names with an underscore
    or a space (a plain word such as `name` stays, the text uses it as a word). The task messages keep the field
    names: YAML files and the dashboard's forms use those."""
    from tasks.errors import UserError, ValidationError

    try:
        yield
    except UserError as error:
        problems = getattr(error, "errors", None) or ([error] if isinstance(error, ValidationError) else None)
        if not problems:
            raise
        raise _renamed(problems, names) from None


def _renamed(problems: list, names: Mapping[str, str]) -> Exception:
    from schemas.campaign import combined_error
    from tasks.errors import ValidationError

    in_text = sorted((n for n in names if "_" in n or " " in n), key=len, reverse=True)  # longest phrase first
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, in_text)) + r")(?!\w)") if in_text else None
    renamed = []
    for problem in problems:
        head, dot, rest = problem.field.partition(".")  # weekly_schedule.mon: the option, then the day
        rule = pattern.sub(lambda match: names[match.group(1)], problem.rule) if pattern else problem.rule
        if head in names:
            renamed.append(ValidationError(names[head], f"{rest}: {rule}" if dot else rule))
        else:
            renamed.append(ValidationError(problem.field, rule))
    return combined_error(renamed)


def check_out_file(out: Path, suffix: str | None = None, example_stem: str = "export") -> Path:
    """An --out file the command can write: not a folder, the right suffix, in a folder that exists."""
    from tasks.errors import UserError

    if out.is_dir():  # first: its message names a file inside it with the right suffix
        example = f"e.g. {out / (example_stem + suffix)}" if suffix else "inside it"
        raise UserError(f"--out {out}: is a folder; name the file, {example}")
    if suffix is not None and out.suffix.lower() != suffix:
        raise UserError(f"--out {out}: must end in {suffix}")
    if not out.parent.is_dir():
        kind = "is a file, not a folder" if out.parent.exists() else "does not exist"
        raise UserError(f"--out {out}: folder {out.parent} {kind}")
    return out


def check_country_option(value: str | None, flag: str) -> str | None:
    """A country flag's value (--country, --default-country) checked up front: an unknown code is refused
    even when no number of the run would have needed it (it used to be ignored silently then)."""
    from tasks.errors import ValidationError
    from tasks.phones import check_region

    try:
        return check_region(value)
    except ValidationError:
        raise ValidationError(flag, f"unknown country code {value!r} (use ISO 3166 alpha-2, e.g. US)") from None


def check_not_a_folder(path: Path, kind: str) -> Path:
    """An input file argument that names a folder is refused as such (it was "unsupported file type (none)"
    under the folder's bare name, or "file not found" for a folder named like x.csv)."""
    from tasks.errors import UserError

    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a {kind}")
    return path


def check_sheet_option(sheet: str | None, file: Path) -> None:
    """Refuse --sheet for a text file (.csv, .tsv, .txt): it has no sheets, and the option was ignored silently
    (`campaigns import`, `campaigns dnc import`)."""
    from tasks.contacts_import import SUPPORTED_SUFFIXES
    from tasks.errors import ValidationError

    suffix = file.suffix.lower()
    if sheet is not None and suffix in SUPPORTED_SUFFIXES and suffix != ".xlsx":
        raise ValidationError("--sheet", f"{file.name} is a {suffix} file, which has no sheets; --sheet is for .xlsx files")
