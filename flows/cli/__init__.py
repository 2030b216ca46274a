"""The `campaigns` console script: one Typer app whose commands live in topic modules."""

from __future__ import annotations

import sys

import typer

try:  # newer typer vendors Click and does not re-export this one
    from typer._click.exceptions import NoArgsIsHelpError
except ImportError:  # older typer runs on Click itself
    from click.exceptions import NoArgsIsHelpError

from flows.cli.common import app, terminal_text
from tasks.errors import StoreError, StoreLockedError, UserError

# Importing a module registers its commands on `app`.
from flows.cli import store_cmds  # noqa: E402,F401

for _module in ("campaign_cmds", "contact_cmds", "dialing_cmds", "call_cmds", "metrics_cmds", "dashboard_cmds", "compliance_cmds", "ops_cmds", "smart_cmds"):
    try:
        __import__(f"flows.cli.{_module}")
    except ModuleNotFoundError as error:  # a topic not built yet
        if error.name != f"flows.cli.{_module}":
            raise


def _global_options_first(argv: list[str]) -> list[str]:
    """Accept `--db PATH` anywhere on the line by moving it before the command."""
    front, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--db" and i + 1 < len(argv):
            front += argv[i : i + 2]
            i += 2
            continue
        if arg.startswith("--db="):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _usage_line(error: typer.TyperException) -> str:
    """A usage error as one line: which command, then Click's message without its line breaks."""
    context = getattr(error, "ctx", None)
    command = f"{context.command_path}: " if context is not None and context.command_path else ""
    return f"error: {command}{' '.join(error.format_message().split())}"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input is one line on stderr and exit code 2, never a traceback."""
    argv = _global_options_first(list(sys.argv[1:] if argv is None else argv))
    try:
        # Not standalone: Click would draw a usage error as a multi-line box; it is one line here.
        code = app(args=argv, prog_name="campaigns", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except NoArgsIsHelpError as error:  # `campaigns dnc` alone: its help, as before
        if error.format_message().strip():  # Rich has already drawn it while the error was built
            print(error.format_message())
        return 2
    except typer.TyperException as error:  # usage errors: unknown command, bad or missing option
        print(_usage_line(error), file=sys.stderr)
        return 2
    except typer.Abort:  # Ctrl-C at a prompt
        print("error: aborted", file=sys.stderr)
        return 1
    except UserError as error:  # may quote the input (a YAML key, a file's cell): controls escaped
        print(terminal_text(f"error: {error}"), file=sys.stderr)
        return 2
    except StoreError as error:  # a path that is not a usable database: bad input
        print(terminal_text(f"error: {error}"), file=sys.stderr)
        return 2
    except StoreLockedError as error:
        print(terminal_text(f"error: {error}"), file=sys.stderr)
        return 1
    except ValueError as error:  # pydantic's ValidationError: a CAMPAIGNS_* variable the settings refuse
        line = _settings_error_line(error)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 2
    return 0


def _settings_error_line(error: ValueError) -> str | None:
    """A settings error as one line naming the environment variables (never their values: one may be a
    secret); None for any other error."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError) or error.title != "Settings":
        return None
    problems = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else "?"
        variable = name if name.isupper() else f"CAMPAIGNS_{name.upper()}"
        problems.append(f"{variable}: {item['msg']}")
    return "error: environment " + "; ".join(problems)


if __name__ == "__main__":
    sys.exit(main())
