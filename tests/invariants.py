"""Invariants every dialing history must satisfy, checked against the store and the simulator."""

from __future__ import annotations

from datetime import datetime, timezone

from tasks.store import connect

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def check_invariants(db, provider=None, *, settled: bool = True) -> dict:
    """Assert exactly-once dialing, attempt limits, schedule and consistent counters; returns counts."""
    with connect(db) as conn:
        over_limit = conn.execute(
            """
            select c.campaign_id, c.contact_id, count(*) filter (where c.counts_as_attempt) as attempts,
                   any_value(camp.max_attempts)
            from calls c join campaigns camp using (campaign_id)
            group by all having attempts > any_value(camp.max_attempts)
            """
        ).fetchall()
        assert over_limit == [], f"contacts over max_attempts: {over_limit[:5]}"
        over_day = conn.execute(
            """
            select c.campaign_id, c.contact_id, (c.queued_at at time zone camp.time_zone)::date as day,
                   count(*) filter (where c.counts_as_attempt) as n, any_value(camp.attempts_per_day) as cap
            from calls c join campaigns camp using (campaign_id)
            group by all having n > any_value(camp.attempts_per_day)
            """
        ).fetchall()
        assert over_day == [], f"contacts over attempts_per_day: {over_day[:5]}"
        two_in_flight = conn.execute(
            "select campaign_id, contact_id, count(*) from calls where status in ('queued','created','registered','in_progress')"
            " group by all having count(*) > 1"
        ).fetchall()
        assert two_in_flight == [], f"contacts with two calls in flight: {two_in_flight[:5]}"
        counters = conn.execute(
            """
            with actual as (
                select campaign_id, contact_id, count(*) filter (where counts_as_attempt) as attempts,
                       count(*) as calls
                from calls group by all
            )
            select cc.campaign_id, cc.contact_id, cc.attempts, coalesce(a.attempts, 0), cc.call_seq, coalesce(a.calls, 0)
            from campaign_contacts cc left join actual a using (campaign_id, contact_id)
            where cc.attempts <> coalesce(a.attempts, 0) or cc.call_seq <> coalesce(a.calls, 0)
            """
        ).fetchall()
        assert counters == [], f"enrollment counters differ from the calls: {counters[:5]}"
        if settled:
            stuck = conn.execute("select count(*) from calls where status in ('queued', 'created')").fetchone()[0]
            assert stuck == 0, f"{stuck} call rows left queued/created after reconciliation"
        rows = conn.execute("select provider_call_id, attempt_key from calls where provider_call_id is not null").fetchall()
        total = conn.execute("select count(*) from calls").fetchone()[0]
    placed = None
    if provider is not None and hasattr(provider, "duplicate_attempt_keys"):
        assert provider.duplicate_attempt_keys() == {}, "an attempt was dialed twice"
        at_provider = {c.provider_call_id: c.attempt_key for c in provider.list_calls(EPOCH, datetime(2100, 1, 1, tzinfo=timezone.utc))}
        recorded = dict(rows)
        assert set(at_provider) == set(recorded), (
            f"placed calls without a row: {sorted(set(at_provider) - set(recorded))[:5]}; "
            f"rows naming unknown calls: {sorted(set(recorded) - set(at_provider))[:5]}"
        )
        assert all(at_provider[k] == recorded[k] for k in recorded), "a row points at another attempt's call"
        placed = len(at_provider)
    return {"calls": total, "placed": placed}
