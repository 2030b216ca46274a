"""Errors that reach users as one clear line (CLI exit code 2, a message in the dashboard)."""

from __future__ import annotations


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
