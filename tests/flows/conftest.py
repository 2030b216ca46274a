"""Fixtures of the flow and CLI tests."""

from __future__ import annotations

import pytest

from flows.cli.common import state


@pytest.fixture(autouse=True)
def _fresh_cli_state():
    """The Typer callback keeps --db/--json on a module object; reset it between in-process runs."""
    state.db, state.json = None, False
    yield
    state.db, state.json = None, False
