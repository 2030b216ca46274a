"""Claiming a 500-contact batch in a campaign of 1,000,000 contacts with 5,000,000 past calls.

Prints the median claim time (eligibility + attempt rows + enrollment update, rolled back after
each run so every run sees the same state) and, from the same run, a naive baseline that derives
each contact's eligibility by aggregating the calls table instead of reading the enrollment state.
The contacts are a realistic mix of callee places (Phoenix, New York, California, Florida with its
24 h cap, France with its 30-day cap, Colombia, Sydney — closed at NOW — and Santiago), the past
calls all fall in the last 30 days (the caps count them: `phone_attempts`, derived from `calls` when
the contacts' zones are resolved, as after an import), and the do-not-call lists hold 10,000
numbers and 20 area-code wildcards. The eligibility select is also timed with the compliance rules
off (the schedule-only query the claim used before) beside on.
Sizes: BENCH_CLAIM_CONTACTS (default 1,000,000), BENCH_CLAIM_CALLS (default 5,000,000).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tasks.compliance import resolve_zones
from tasks.dialing import claim_batch, eligible_contacts, load_plans
from tasks.store import connect, init_db, transaction

NOW = datetime(2026, 6, 16, 17, 0, tzinfo=timezone.utc)  # a Tuesday, 10:00 in Phoenix
RUNS = 15
# callee places by contact id modulo 20: (share, phone prefix, region, zones); national numbers padded to 7 digits
PLACES = [
    (6, "+1602", "US", "['America/Phoenix']"), (4, "+1212", "US", "['America/New_York']"),
    (2, "+1415", "US", "['America/Los_Angeles']"), (2, "+1305", "US", "['America/New_York']"),
    (2, "+3361", "FR", "['Europe/Paris']"), (2, "+57300", "CO", "['America/Bogota']"),
    (1, "+6129", "AU", "['Australia/Sydney']"), (1, "+5622", "CL", "['America/Santiago']"),
]


def _place_case(column: str, id_expr: str) -> str:
    """A SQL CASE giving `column` of the place of contact `id_expr` (places from the fixed list above)."""
    arms, low = [], 0
    for share, prefix, region, zones in PLACES:
        value = {"phone": f"'{prefix}' || lpad((({id_expr}) % 10000000)::varchar, 7, '0')",
                 "region": f"'{region}'", "zones": zones}[column]
        arms.append(f"when ({id_expr}) % 20 < {low + share} then {value}")
        low += share
    return "case " + " ".join(arms) + " end"


RULES_OFF_SQL = """
with enrolled as (
    select cc.contact_id, cc.attempts, cc.call_seq, cc.last_call_at, cc.enroll_seq
    from campaign_contacts cc
    where cc.campaign_id = $campaign_id and cc.finished_at is null and cc.in_flight_call_id is null
      and cc.attempts < $max_attempts
      and (cc.attempts_day is distinct from $local_day or cc.attempts_on_day < $attempts_per_day)
      and (cc.next_call_at is null or cc.next_call_at <= $now)
),
ordered as (select * from enrolled order by attempts, last_call_at nulls first, enroll_seq limit $size),
final as (
    select o.contact_id, o.attempts, o.call_seq, o.last_call_at, o.enroll_seq,
           c.phone_e164, c.name, c.company, c.email, c.properties
    from ordered o join contacts c using (contact_id)
)
select * from final order by attempts, last_call_at nulls first, enroll_seq
"""


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
            "insert into contacts (contact_id, phone_e164, name, region, time_zones) "
            f"select i + 1, {_place_case('phone', 'i')}, 'Contact ' || i, {_place_case('region', 'i')},"
            f" {_place_case('zones', 'i')} from range(?) t(i)",
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
                   i // {contacts} + 1, {_place_case('phone', f'i % {contacts}')}, '+16025550100',
                   'not_connected', 'dial_no_answer', 0, 0, 'simulator', 'sim_' || i,
                   $first + to_minutes(i // 500), $first + to_minutes(i // 500),
                   $first + to_minutes(i // 500 + 1), $first + to_minutes(i // 500 + 1)
            from range($n) t(i)
            """,
            {"n": contacts * per_contact, "first": NOW - timedelta(days=1, minutes=contacts * per_contact // 500)},
        )
        # do-not-call: 10,000 exact numbers (1 in 100 contacts) and 20 area-code wildcards (none in use)
        conn.execute(
            f"insert into do_not_call (pattern, prefix, is_prefix, source, added_at)"
            f" select p, p, false, 'bench', now() from (select {_place_case('phone', 'i * 100')} as p"
            f" from range(least(10000, ? // 100)) t(i))",
            [contacts],
        )
        conn.execute(
            "insert into do_not_call (pattern, prefix, is_prefix, source, added_at)"
            " select '+1' || (700 + i) || '*', '+1' || (700 + i), true, 'bench', now() from range(20) t(i)"
        )
        resolve_started = time.perf_counter()
        resolve_zones(conn)
        print(f"zone resolution of {contacts:,} imported contacts: {time.perf_counter() - resolve_started:.1f} s")
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
        timings, cpu, claimed = [], [], 0
        for _ in range(RUNS):
            with connect(db) as conn:
                conn.execute("begin transaction")
                start, cpu_start = time.perf_counter(), time.process_time()
                _, frame = claim_batch(conn, plan, NOW, kind="scheduled", from_numbers=["+16025550100"], provider_name="bench")
                timings.append(time.perf_counter() - start)
                cpu.append(time.process_time() - cpu_start)
                claimed = frame.height
                conn.execute("rollback")
        on, off = [], []
        with connect(db) as conn:
            params = {"campaign_id": plan.campaign_id, "max_attempts": plan.max_attempts,
                      "attempts_per_day": plan.attempts_per_day, "local_day": plan.schedule.local_day(NOW),
                      "now": NOW, "size": plan.batch_size}
            for _ in range(RUNS):
                start = time.perf_counter()
                conn.execute(RULES_OFF_SQL, params).pl()
                off.append(time.perf_counter() - start)
                start = time.perf_counter()
                offered = eligible_contacts(conn, plan, NOW, plan.batch_size).height
                on.append(time.perf_counter() - start)
            audit = conn.execute("select rule, skipped from claim_audit order by rule").fetchall()
        naive = []
        with connect(db) as conn:
            for _ in range(5):
                start = time.perf_counter()
                conn.execute(NAIVE_SQL, {"today": NOW.date()}).fetchall()
                naive.append(time.perf_counter() - start)
        size_mb = db.stat().st_size / 1e6
        ours, baseline = statistics.median(timings) * 1000, statistics.median(naive) * 1000
        print(f"store: {contacts:,} enrolled contacts, {contacts * (calls // contacts):,} calls, {size_mb:,.0f} MB (built in {build_seconds:.1f} s)")
        print(f"claim batch of {claimed} with every rule on: median {ours:.1f} ms (p90 {sorted(timings)[int(RUNS * 0.9)] * 1000:.1f} ms,"
              f" {RUNS} runs; target <= 250 ms); CPU (all threads) median {statistics.median(cpu) * 1000:.1f} ms;"
              f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"eligibility select of {offered}: rules on median {statistics.median(on) * 1000:.1f} ms,"
              f" rules off (schedule only) median {statistics.median(off) * 1000:.1f} ms")
        print(f"held back per rule at NOW (audit of the last claim, rolled back): {audit or 'see claim'}")
        print(f"naive baseline (eligibility aggregated from calls, select only): median {baseline:.1f} ms")
        print(f"ratio naive / ours: {baseline / ours:.1f}x")


if __name__ == "__main__":
    main()
