"""Simulating a 100,000-contact campaign with up to 5 attempts to completion, on the virtual clock.

The same run also times the naive path — every call its own created/placed/registered
transactions, one provider request per call (how real-time dialing works) — on a smaller
campaign, and prints the per-call cost ratio. Sizes: BENCH_SIM_CONTACTS (default 100,000),
BENCH_SIM_NAIVE_CONTACTS (default 2,000).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from flows.simulate import simulate
from tasks.compliance import resolve_zones
from tasks.store import connect, init_db, transaction
from tasks.telephony.simulator import SimulatedProvider

START = datetime(2026, 4, 27, 7, 0, tzinfo=timezone.utc)  # Monday 00:00 in Phoenix


def build(db: Path, contacts: int) -> None:
    """The reference campaign (batch 500, 5 attempts, 1 a day) with `contacts` Arizona numbers."""
    init_db(db)
    with transaction(db) as conn:
        conn.execute("insert into agents (name, provider_agent_id) values ('Ava', 'agent_1')")
        conn.execute("insert into phone_numbers (e164, nickname) values ('+16025550100', 'main')")
        conn.execute(
            """
            insert into campaigns (name, agent_id, start_date, calling_days, weekly_schedule, time_zone, country,
                                   max_attempts, attempts_per_day, batch_size, outbound_number_ids, active)
            values ('Bench', 1, date '2026-04-27', ['mon','tue','wed','thu','fri'],
                    '{"mon":[["08:00","18:00"]],"tue":[["08:00","18:00"]],"wed":[["08:00","18:00"]],"thu":[["08:00","18:00"]],"fri":[["08:00","18:00"]]}',
                    'America/Phoenix', 'US', 5, 1, 500, [1], true)
            """
        )
        # as an import writes them: region and time zones known, zones resolved before the first claim
        conn.execute(
            "insert into contacts (phone_e164, name, region, time_zones)"
            " select '+1' || (['480','602','623','520','928'])[(i % 5) + 1]"
            " || lpad((2000000 + i)::varchar, 7, '0'), 'Contact ' || i, 'US', ['America/Phoenix'] from range(?) t(i)",
            [contacts],
        )
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) select 1, contact_id from contacts")
        resolve_zones(conn)


class _OneByOne:
    """The simulator without its batch request: forces the per-call (real-time) placing path."""

    def __init__(self, inner: SimulatedProvider):
        self._inner = inner
        self.name, self.concurrency_limit = inner.name, inner.concurrency_limit

    def __getattr__(self, name):
        if name == "place_calls":
            raise AttributeError(name)
        return getattr(self._inner, name)


def run(contacts: int, naive: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as folder:
        db = Path(folder) / "sim.duckdb"
        build(db, contacts)
        provider = SimulatedProvider(Path(folder) / "simulator.sqlite", seed=1, concurrency_limit=20)
        started, cpu_started = time.perf_counter(), time.process_time()
        result = simulate(db, _OneByOne(provider) if naive else provider, START, 120, pace_seconds=3)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        with connect(db) as conn:
            calls, finished = conn.execute(
                "select (select count(*) from calls), (select count(*) from campaign_contacts where finished_at is not null)"
            ).fetchone()
        size_mb = db.stat().st_size / 1e6
    return {"seconds": seconds, "cpu": cpu, "calls": calls, "finished": finished, "days": (result.end - START).days,
            "ticks": result.ticks, "size_mb": size_mb}


def main() -> None:
    contacts = int(os.environ.get("BENCH_SIM_CONTACTS", 100_000))
    small = int(os.environ.get("BENCH_SIM_NAIVE_CONTACTS", 2_000))
    started = time.perf_counter()
    # the flows the loop calls import Prefect (seconds, once per process): timed apart from the run
    import flows.aggregate_metrics  # noqa: F401
    import flows.enrich_calls  # noqa: F401

    print(f"importing the enrichment and metrics flows (Prefect): {time.perf_counter() - started:.1f} s, once per process")
    ours = run(contacts)
    print(f"simulated {contacts:,} contacts to completion: {ours['seconds']:.1f} s wall (target <= 60 s), "
          f"{ours['cpu']:.1f} s CPU, "
          f"{ours['calls']:,} calls over {ours['days']} simulated days, {ours['ticks']:,} ticks "
          f"({ours['seconds'] / max(ours['ticks'], 1) * 1000:.0f} ms per tick), "
          f"{ours['finished']:,} contacts finished, store {ours['size_mb']:.0f} MB; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    fast, slow = run(small), run(small, naive=True)
    per_fast, per_slow = fast["seconds"] / fast["calls"] * 1e6, slow["seconds"] / slow["calls"] * 1e6
    print(f"{small:,} contacts: batched placing {fast['seconds']:.1f} s ({per_fast:.0f} us/call), "
          f"naive one-call-per-request {slow['seconds']:.1f} s ({per_slow:.0f} us/call); ratio {per_slow / per_fast:.1f}x")


if __name__ == "__main__":
    main()
