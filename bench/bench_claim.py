"""Claiming a 500-contact batch in a campaign of 1,000,000 contacts with 5,000,000 past calls.

Prints the median claim time (eligibility + attempt rows + enrollment update, rolled back after
each run so every run sees the same state) and, from the same run, a naive baseline that derives
each contact's eligibility by aggregating the calls table instead of reading the enrollment state.
Sizes: BENCH_CLAIM_CONTACTS (default 1,000,000), BENCH_CLAIM_CALLS (default 5,000,000).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from tasks.dialing import claim_batch, load_plans
from tasks.store import connect, init_db, transaction

NOW = datetime(2026, 6, 16, 17, 0, tzinfo=timezone.utc)  # a Tuesday, 10:00 in Phoenix
RUNS = 15


def build(db: Path, contacts: int, calls: int) -> int:
    """A reference campaign with `contacts` enrolled and `calls` past calls spread over them."""
    init_db(db)
    with transaction(db) as conn:
        conn.execute("insert into agents (name, provider_agent_id) values ('Ava', 'agent_1')")
        conn.execute("insert into phone_numbers (e164, nickname) values ('+16025550100', 'main')")
        conn.execute(
            """
            insert into campaigns (name, agent_id, start_date, calling_days, weekly_schedule, time_zone, country,
                                   max_attempts, attempts_per_day, batch_size, outbound_number_ids, active)
            values ('Bench', 1, date '2026-05-01', ['mon','tue','wed','thu','fri'],
                    '{"mon":[["08:00","18:00"]],"tue":[["08:00","18:00"]],"wed":[["08:00","18:00"]],"thu":[["08:00","18:00"]],"fri":[["08:00","18:00"]]}',
                    'America/Phoenix', 'US', 10, 1, 500, [1], true)
            """
        )
        conn.execute(
            "insert into contacts (contact_id, phone_e164, name) "
            "select i + 1, '+1602' || lpad((i % 10000000)::varchar, 7, '0'), 'Contact ' || i from range(?) t(i)",
            [contacts],
        )
        per_contact = calls // contacts
        # Most contacts have per_contact past attempts on earlier days; 1 in 5 finished; 1 in 10 called today.
        conn.execute(
            f"""
            insert into campaign_contacts (campaign_id, contact_id, enroll_seq, attempts, call_seq, attempts_day,
                                           attempts_on_day, last_call_at, finished_at, finished_reason)
            select 1, i + 1, i + 1, {per_contact}, {per_contact},
                   case when i % 10 = 0 then date '2026-06-16' else date '2026-06-15' - (i % 30)::integer end,
                   1, timestamptz '2026-06-15 17:00:00+00' - to_minutes((i % 40000)::bigint),
                   case when i % 5 = 0 then timestamptz '2026-06-10 17:00:00+00' end,
                   case when i % 5 = 0 then 'successful' end
            from range(?) t(i)
            """,
            [contacts],
        )
        conn.execute(
            f"""
            insert into calls (call_id, campaign_id, contact_id, attempt_key, attempt_number, phone_e164, from_number,
                               status, disconnect_reason, duration_seconds, credits, provider, provider_call_id,
                               queued_at, registered_at, ended_at, updated_at)
            select i + 1, 1, (i % {contacts}) + 1, '1.' || ((i % {contacts}) + 1) || '.' || (i // {contacts} + 1),
                   i // {contacts} + 1, '+1602' || lpad(((i % {contacts}) % 10000000)::varchar, 7, '0'), '+16025550100',
                   'not_connected', 'dial_no_answer', 0, 0, 'simulator', 'sim_' || i,
                   timestamptz '2026-05-01 16:00:00+00' + to_minutes(i // 500),
                   timestamptz '2026-05-01 16:00:00+00' + to_minutes(i // 500),
                   timestamptz '2026-05-01 16:01:00+00' + to_minutes(i // 500),
                   timestamptz '2026-05-01 16:01:00+00' + to_minutes(i // 500)
            from range(?) t(i)
            """,
            [contacts * per_contact],
        )
    with transaction(db) as conn:
        conn.execute(f"create or replace sequence call_id_seq start {contacts * per_contact + 1}")
    return 1


NAIVE_SQL = """
with per_contact as (
    select contact_id,
           count(*) filter (where counts_as_attempt) as attempts,
           count(*) filter (where counts_as_attempt and (queued_at at time zone 'America/Phoenix')::date = $today) as today,
           max(queued_at) as last_call_at,
           bool_or(call_successful) as succeeded,
           bool_or(disconnect_reason = 'invalid_destination') as invalid,
           bool_or(status in ('queued','created','registered','in_progress')) as in_flight
    from calls where campaign_id = 1 group by contact_id
)
select cc.contact_id
from campaign_contacts cc left join per_contact p using (contact_id)
where cc.campaign_id = 1 and coalesce(p.attempts, 0) < 10 and coalesce(p.today, 0) < 1
  and not coalesce(p.succeeded, false) and not coalesce(p.invalid, false) and not coalesce(p.in_flight, false)
order by coalesce(p.attempts, 0), p.last_call_at nulls first, cc.enroll_seq
limit 500
"""


def main() -> None:
    contacts = int(os.environ.get("BENCH_CLAIM_CONTACTS", 1_000_000))
    calls = int(os.environ.get("BENCH_CLAIM_CALLS", 5_000_000))
    with tempfile.TemporaryDirectory(prefix="bench-claim-") as folder:
        db = Path(folder) / "claim.duckdb"
        started = time.perf_counter()
        campaign_id = build(db, contacts, calls)
        build_seconds = time.perf_counter() - started
        with connect(db) as conn:
            plan = load_plans(conn, [campaign_id])[0]
        timings, claimed = [], 0
        for _ in range(RUNS):
            with connect(db) as conn:
                conn.execute("begin transaction")
                start = time.perf_counter()
                _, frame = claim_batch(conn, plan, NOW, kind="scheduled", from_numbers=["+16025550100"], provider_name="bench")
                timings.append(time.perf_counter() - start)
                claimed = frame.height
                conn.execute("rollback")
        naive = []
        with connect(db) as conn:
            for _ in range(5):
                start = time.perf_counter()
                conn.execute(NAIVE_SQL, {"today": NOW.date()}).fetchall()
                naive.append(time.perf_counter() - start)
        size_mb = db.stat().st_size / 1e6
        ours, baseline = statistics.median(timings) * 1000, statistics.median(naive) * 1000
        print(f"store: {contacts:,} enrolled contacts, {contacts * (calls // contacts):,} calls, {size_mb:,.0f} MB (built in {build_seconds:.1f} s)")
        print(f"claim batch of {claimed}: median {ours:.1f} ms (p90 {sorted(timings)[int(RUNS * 0.9)] * 1000:.1f} ms, {RUNS} runs; target <= 250 ms)")
        print(f"naive baseline (eligibility aggregated from calls, select only): median {baseline:.1f} ms")
        print(f"ratio naive / ours: {baseline / ours:.1f}x")


if __name__ == "__main__":
    main()
