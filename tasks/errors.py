"""Errors that reach users as one clear line (CLI exit code 2, a message in the dashboard)."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input: the message says what and where; nothing was written."""


class ValidationError(UserError):
    """A value broke a rule; ``field`` names it so forms can show the message beside it."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.rule = message
        super().__init__(f"{field}: {message}")


class NotFoundError(UserError):
    """A referenced row (campaign, agent, number, call, contact) does not exist."""


class StoreLockedError(Exception):
    """The database file stayed locked by another process longer than the allowed wait."""


class StoreError(Exception):
    """The database file cannot be used (read-only, corrupt, disk full)."""


def read_input_file(path: str | Path, kind: str) -> bytes:
    """The bytes of a file the user named (`kind`: "CSV file", "YAML file"), or one line saying why not:
    missing, a folder, unreadable."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a {kind}") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror or error})") from None
