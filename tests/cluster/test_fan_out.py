"""`fan-out-dialing`'s view of the runs still going, with more of them than one page of the Prefect API."""

from __future__ import annotations

from types import SimpleNamespace
from uuid import uuid4

from flows.cluster import _busy_campaigns, runs_to_submit

SERVER_DEFAULT_LIMIT = 200  # what the Prefect server returns when a read names no limit


class FakeClient:
    """`read_flow_runs` as the Prefect server pages it: `limit` (default 200) runs from `offset`."""

    def __init__(self, campaign_ids: list[int]):
        self.runs = [SimpleNamespace(id=uuid4(), parameters={"campaign_id": c}) for c in campaign_ids]
        self.reads = 0

    def read_flow_runs(self, *, limit=None, offset=0, **filters):
        self.reads += 1
        return self.runs[offset:offset + (SERVER_DEFAULT_LIMIT if limit is None else limit)]


def test_every_busy_campaign_is_seen_beyond_the_first_page():
    # 250 campaigns each with a run still scheduled (workers busy): a one-page read saw 200, and every
    # minute the fan-out queued another run for each of the other 50, piling up while workers lag
    campaigns = list(range(1, 251))
    client = FakeClient([*campaigns, 7])  # campaign 7 has two runs (a second shard)
    busy = _busy_campaigns(client, uuid4())
    assert sum(busy.values()) == 251 and busy[7] == 2 and busy[250] == 1
    assert runs_to_submit(campaigns, busy) == []  # nothing added while every campaign has its run
    assert client.reads == 2
