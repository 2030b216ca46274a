"""The Retell adapter's test fixtures: the local fake Retell server and a client of it.

Each test module names its own API key (`KEY`, to check the key never leaks) and its clock (`NOW_MS`).
"""

from __future__ import annotations

import pytest

from tasks.telephony.retell import RetellProvider
from tests.tasks.telephony.retell_server import FakeRetell


@pytest.fixture
def server(request):
    with FakeRetell(api_key=request.module.KEY) as fake:
        fake.clock_ms = request.module.NOW_MS
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    """The backoff sleeps the client asked for (none is slept)."""
    return []


@pytest.fixture
def provider(request, server, sleeps):
    client = RetellProvider(server.url, request.module.KEY, max_tries=4, backoff_seconds=0.01, sleep=sleeps.append)
    yield client
    client.close()
