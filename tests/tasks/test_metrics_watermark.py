"""The incremental aggregation never misses a late commit: a slow enrichment pass, a dial run still placing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flows.aggregate_metrics import run_aggregation
from flows.enrich_calls import run_enrichment
from schemas.enums import CallStatus, DisconnectReason
from tasks.call_state import apply_provider_call
from tasks.metrics import aggregate
from tasks.store import connect, transaction
from tasks.telephony.base import ProviderCall
from tests.tasks.seeding import seed_call

QUEUED = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # Tuesday 10:00 in Phoenix
PASS_NOW = QUEUED + timedelta(minutes=10)  # the slow pass's `now`, taken before it asks the provider

STATS = "select contact_id, attempts, connected, credits, last_disconnect_reason from contact_stats order by all"
DAILY = "select * from metrics_daily order by all"


def ended(provider_call_id: str) -> ProviderCall:
    """The provider's final record: the person answered for a minute."""
    return ProviderCall(provider_call_id, CallStatus.ended, disconnect_reason=DisconnectReason.user_hangup,
                        started_at=QUEUED, ended_at=QUEUED + timedelta(minutes=1), duration_seconds=60.0,
                        analyzed=True, call_successful=False, in_voicemail=False)


class SlowProvider:
    """Answers every call as ended; its first read lasts long enough for `meanwhile` to happen."""

    name = "simulator"

    def __init__(self, meanwhile):
        self.meanwhile = meanwhile

    def get_call(self, provider_call_id: str, now: datetime) -> ProviderCall:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return ended(provider_call_id)


def tables(db) -> tuple[list, list]:
    with connect(db) as conn:
        return conn.execute(STATS).fetchall(), conn.execute(DAILY).fetchall()


def rebuilt(db) -> tuple[list, list]:
    with transaction(db) as conn:
        aggregate(conn, PASS_NOW + timedelta(hours=1), full=True)
    return tables(db)


def test_a_pass_that_commits_late_is_aggregated_by_the_next_run(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    with transaction(db) as conn:
        early = seed_call(conn, campaign_id, "+16025550001", QUEUED, provider_call_id="p1")
        late = seed_call(conn, campaign_id, "+16025550002", QUEUED, provider_call_id="p2")
        early_contact, late_contact = (conn.execute("select contact_id from calls where call_id = ?", [c]).fetchone()[0]
                                       for c in (early, late))
    run_aggregation(db, now=QUEUED, snapshot=False)  # both in flight, the campaign is aggregated incrementally

    def meanwhile():
        # while the pass waits on the provider (3 minutes): a webhook stores the first call's outcome,
        # then the 5-minute aggregation runs and moves the watermark past the pass's `now`
        with transaction(db) as conn:
            apply_provider_call(conn, early, ended("p1"), PASS_NOW + timedelta(minutes=2))
        run_aggregation(db, now=PASS_NOW + timedelta(minutes=2, seconds=30), snapshot=False)
        with connect(db) as conn:
            watermark = conn.execute("select calls_watermark from metrics_state").fetchone()[0]
        assert watermark > PASS_NOW  # the race: the pass will commit rows stamped before it

    counts = run_enrichment(db, SlowProvider(meanwhile), PASS_NOW)  # commits both, with its old `now`
    assert counts["changed"] == 1  # the webhook had already written the first call
    run_aggregation(db, now=PASS_NOW + timedelta(minutes=5), snapshot=False)

    stats, daily = tables(db)
    # the late pass's call is in the Contact List and the chart: answered, 1 minute = 333 credits
    assert stats == [(early_contact, 1, 1, 333, "user_hangup"), (late_contact, 1, 1, 333, "user_hangup")]
    assert (stats, daily) == rebuilt(db)


def test_the_watermark_never_passes_a_dial_run_still_placing(campaign_db):
    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    run_start = QUEUED
    with transaction(db) as conn:
        other = seed_call(conn, campaign_id, "+16025550001", QUEUED - timedelta(hours=1), provider_call_id="p1")
        run_id = conn.execute(
            "insert into dial_runs (campaign_id, kind, state, started_at) values (?, 'scheduled', 'running', ?)"
            " returning run_id", [campaign_id, run_start]).fetchone()[0]
        # the run's claim: its call is written `created`; the provider is asked later, outside any transaction
        placing = seed_call(conn, campaign_id, "+16025550002", run_start, status="created")
    run_aggregation(db, now=run_start, snapshot=False)
    with transaction(db) as conn:  # meanwhile another call's outcome is stored, then an aggregation runs
        apply_provider_call(conn, other, ended("p1"), run_start + timedelta(minutes=5))
    run_aggregation(db, now=run_start + timedelta(minutes=5), snapshot=False)
    with connect(db) as conn:
        assert conn.execute("select calls_watermark from metrics_state").fetchone()[0] == run_start
    # the run registers its call, stamped with the time it was placed (as tasks/dialing.py does), and ends
    with transaction(db) as conn:
        conn.execute("update calls set status = 'registered', registered_at = ?, updated_at = ? where call_id = ?",
                     [run_start + timedelta(seconds=1), run_start + timedelta(seconds=1), placing])
        conn.execute("update dial_runs set state = 'completed', ended_at = ? where run_id = ?",
                     [run_start + timedelta(minutes=6), run_id])
    result = run_aggregation(db, now=run_start + timedelta(minutes=7), snapshot=False)
    assert result["contact_rows"] >= 1  # the registered call was re-read
    with connect(db) as conn:
        # the run has ended: the watermark moves on to the newest change less the lag
        assert conn.execute("select calls_watermark from metrics_state").fetchone()[0] == (
            run_start + timedelta(minutes=4))
