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


def test_cluster_setup_refuses_a_zero_limit_and_a_missing_server_in_one_line(capsys, monkeypatch):
    # --call-limit 0 became 20 without a word; without PREFECT_API_URL it set the limit on a temporary server of its
    # own; an unreachable server was a 71-line traceback
    from flows.cluster import main

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert main(["setup", "--call-limit", "0"]) == 2
    assert capsys.readouterr().err == "error: --call-limit: must be 1 or more, got 0\n"
    monkeypatch.delenv("PREFECT_API_URL")
    assert main(["setup", "--call-limit", "5"]) == 2
    assert capsys.readouterr().err.startswith("error: PREFECT_API_URL is not set")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens on port 9
    assert main(["setup", "--call-limit", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cluster setup against http://127.0.0.1:9/api: ") and err.count("\n") == 1, err
