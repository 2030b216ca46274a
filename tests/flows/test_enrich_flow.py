"""run_enrichment (shared by the flow and the simulation loop) and one real enrich-calls flow run."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from flows.enrich_calls import enrich_calls, run_enrichment
from tasks.store import connect, transaction
from tasks.telephony import simulator_path
from tasks.telephony.base import CallRequest
from tasks.telephony.simulator import SimulatedProvider
from tests.tasks.seeding import call_row, seed_call

QUEUED = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # Tuesday 10:00 in Phoenix


def dial(db, campaign_id, provider, count: int) -> list[int]:
    """Seed ``count`` calls and place them in the simulator, as the dialer would."""
    ids = []
    with transaction(db) as conn:
        for n in range(count):
            phone = f"+1602555{n:04d}"
            call_id = seed_call(conn, campaign_id, phone, QUEUED)
            key = call_row(conn, call_id)["attempt_key"]
            provider_call_id = provider.place_call(CallRequest(phone, "+16025550100", "agent_sim_1", key), QUEUED)
            conn.execute("update calls set provider_call_id = ? where call_id = ?", [provider_call_id, call_id])
            ids.append(call_id)
    return ids


def test_run_enrichment_counts_and_finishes(campaign_db, tmp_path):
    provider = SimulatedProvider(tmp_path / "sim.sqlite", seed=3)
    ids = dial(campaign_db["db"], campaign_db["campaign_id"], provider, 5)
    early = run_enrichment(campaign_db["db"], provider, QUEUED + timedelta(seconds=1))
    assert (early["pending"], early["asked"], early["stuck_errors"]) == (5, 5, 0)
    done = run_enrichment(campaign_db["db"], provider, QUEUED + timedelta(minutes=20))
    assert (done["pending"], done["changed"], done["unknown"], done["provider_errors"]) == (5, 5, 0, 0)
    idle = run_enrichment(campaign_db["db"], provider, QUEUED + timedelta(minutes=21))
    assert idle == {"pending": 0, "asked": 0, "changed": 0, "stuck_errors": 0, "analysis_missing": 0,
                    "unknown": 0, "provider_errors": 0}
    with connect(campaign_db["db"]) as conn:
        assert all(call_row(conn, i)["analyzed_at"] is not None for i in ids)


def test_run_enrichment_does_not_hold_the_database_while_asking_the_provider(campaign_db, tmp_path, monkeypatch):
    import flows.enrich_calls as module

    provider = SimulatedProvider(tmp_path / "sim.sqlite", seed=3)
    dial(campaign_db["db"], campaign_db["campaign_id"], provider, 2)
    open_connections, seen_while_asking = [0], []

    def counting(opener):
        @contextmanager
        def wrapped(*args, **kwargs):
            with opener(*args, **kwargs) as conn:
                open_connections[0] += 1
                try:
                    yield conn
                finally:
                    open_connections[0] -= 1
        return wrapped

    monkeypatch.setattr(module, "connect", counting(module.connect))
    monkeypatch.setattr(module, "transaction", counting(module.transaction))

    class Probe:
        """The simulator, noting how many store connections are open each time it is asked."""

        name, concurrency_limit = "probe", 20

        def get_calls(self, ids, now):
            seen_while_asking.append(open_connections[0])
            return provider.get_calls(ids, now)

    assert run_enrichment(campaign_db["db"], Probe(), QUEUED + timedelta(minutes=20))["changed"] == 2
    assert seen_while_asking == [0]


@pytest.mark.prefect
def test_the_enrich_calls_flow_runs_under_prefect(prefect_harness, campaign_db):
    db = campaign_db["db"]
    provider = SimulatedProvider(simulator_path(db=db), seed=42)
    ids = dial(db, campaign_db["campaign_id"], provider, 3)
    provider.close()
    result = enrich_calls(now=QUEUED + timedelta(minutes=20), db=str(db))
    assert (result["pending"], result["changed"], result["provider_errors"]) == (3, 3, 0)
    with connect(db) as conn:
        rows = [call_row(conn, i) for i in ids]
        released = conn.execute("select count(*) from campaign_contacts where in_flight_call_id is null").fetchone()[0]
    assert {r["status"] for r in rows} <= {"ended", "not_connected", "error"}
    assert released == 3
    # the metrics followed the enrichment (an incremental aggregate_metrics subflow run)
    with connect(db) as conn:
        attempts = conn.execute("select sum(attempts) from contact_stats").fetchone()[0]
    assert attempts == 3


def test_an_enrich_pass_whose_every_read_failed_ends_failed_with_its_counts(prefect_harness, campaign_db, monkeypatch):
    # a revoked key made every read fail, and the run ended Completed without a message or a log line
    import flows.enrich_calls as module
    from tasks.telephony.base import ProviderUnavailable

    db = campaign_db["db"]
    provider = SimulatedProvider(simulator_path(db=db), seed=42)
    dial(db, campaign_db["campaign_id"], provider, 2)
    provider.close()

    class Down:
        name = "simulator"

        def get_call(self, provider_call_id, now):
            raise ProviderUnavailable("Retell GET /v2/get-call: HTTP 401, the API key was refused")

    monkeypatch.setattr(module, "_make_provider", lambda _db: Down())
    state = module.enrich_calls(now=QUEUED + timedelta(minutes=20), db=str(db), return_state=True)
    assert state.is_failed(), state
    assert state.message == "pending 2, asked 2, changed 0, provider errors 2"
    monkeypatch.undo()  # the real provider again
    ok = enrich_calls(now=QUEUED + timedelta(minutes=21), db=str(db), return_state=True)
    assert ok.is_completed() and ok.message.startswith("pending 2, asked 2, changed 2, provider errors 0")
