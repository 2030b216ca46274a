"""A simulated cluster: dialing worker processes sharing one store, one simulator and one fast clock.

Used by tests/cluster/test_three_workers.py and bench/bench_cluster.py. Each worker is its own
process running the cluster's tick (`tasks.dialing.run_tick`: reconcile, claim, place, apply) for
one of the given campaigns per tick, in turn (as `dial-campaign` runs are one campaign each),
optionally holding a slot of the Prefect global call limit per call
(`flows.cluster.CallSlots`). All processes read one `SharedClock`: virtual time derived from the
real clock, so every process agrees on "now" and calls of different workers overlap as they would.

    python -m flows.cluster_sim worker --campaigns 1 --origin 2026-04-28T15:00:00+00:00 \
        --real-origin 1764870000.0 --speed 100 --seconds 120 [--limiter prefect:provider-calls]
    python -m flows.cluster_sim enricher ... --stop-file PATH
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path


class SharedClock:
    """Virtual time every process of a run agrees on: `origin` + real seconds since `real_origin` × `speed`."""

    virtual = True  # a batch's rows move together (fewer transactions), as on the simulation's clock

    def __init__(self, origin: datetime, real_origin: float, speed: float):
        self.origin, self.real_origin, self.speed = origin, real_origin, speed

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=(time.time() - self.real_origin) * self.speed)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def advance_to(self, moment: datetime) -> None:
        """Wait until the shared time reaches `moment` (it cannot be moved for one process only)."""
        self.sleep((moment - self.now()).total_seconds())


def sqlite_slots(path: str | Path, limit: int, timeout_seconds: float = 0.5):
    """Acquire/release like `flows.cluster.prefect_slots`, kept in a local SQLite file shared by processes.

    A stand-in for the Prefect global concurrency limit in long simulations: a Prefect slot costs two
    HTTP requests (about 0.2 s each on a busy machine), which would make a 20,000-call run take an hour.
    """
    from tasks.sqlite_shared import connect_shared

    conn = connect_shared(path)
    conn.execute("create table if not exists slots (lease integer primary key autoincrement, pid integer)")

    def acquire(slots: int) -> int:
        deadline = time.monotonic() + timeout_seconds
        while True:
            conn.execute("begin immediate")  # the count and the insert are one step across processes
            try:
                if conn.execute("select count(*) from slots").fetchone()[0] + slots <= limit:
                    lease = conn.execute("insert into slots (pid) values (?) returning lease", [os.getpid()]).fetchone()[0]
                    conn.execute("commit")
                    return lease
                conn.execute("commit")
            except BaseException:
                conn.execute("rollback")
                raise
            if time.monotonic() >= deadline:
                raise TimeoutError(f"all {limit} slots are held")
            time.sleep(0.005)

    def release(lease: int) -> None:
        conn.execute("delete from slots where lease = ?", [lease])

    return acquire, release


def enroll_numbered_contacts(db, campaign_ids: int | list[int], count: int) -> None:
    """Enroll `count` Arizona numbers (+1602555NNNN, +1480555NNNN, ...; up to 40,000) in two statements,
    dealt round-robin over the campaigns (each contact in one campaign only)."""
    from tasks.store import transaction

    ids = [campaign_ids] if isinstance(campaign_ids, int) else list(campaign_ids)
    with transaction(db) as conn:
        conn.execute(
            "insert into contacts (phone_e164, name, company, properties)"
            " select '+1' || (['602', '480', '623', '520'])[i // 10000 + 1] || '555' || lpad((i % 10000)::varchar, 4, '0'),"
            " 'Person ' || i, 'Acme', '{}' from range(?) t(i)",
            [count],
        )
        conn.execute(
            "insert into campaign_contacts (campaign_id, contact_id)"
            " select ($ids)[contact_id % len($ids) + 1], contact_id from contacts",
            {"ids": ids},
        )


def add_campaigns_like(db, campaign_id: int, count: int) -> list[int]:
    """`count` copies of a campaign (active), each with its own new outbound number: campaigns that share
    no number (and, enrolled apart, no contact) are independent, so their batches lock only themselves."""
    from tasks.campaigns import add_number, create_campaign, get_campaign_settings
    from tasks.store import transaction

    now = datetime.now(timezone.utc)
    with transaction(db) as conn:
        settings = get_campaign_settings(conn, campaign_id)
        return [
            create_campaign(conn, settings.model_copy(update={
                "name": f"{settings.name} {copy + 2}",
                "outbound_number_ids": [add_number(conn, f"+1602556{9000 + copy:04d}", None, "active", now)],
            }), now)
            for copy in range(count)
        ]


def left_to_dial(db, campaign_ids: list[int]) -> int:
    """Enrolled contacts that still have an attempt to make (not finished, not in flight, under the limit)."""
    from tasks.store import connect

    with connect(db) as conn:
        return conn.execute(
            "select count(*) from campaign_contacts cc join campaigns c using (campaign_id)"
            " where list_contains($ids, cc.campaign_id) and cc.finished_at is null and cc.attempts < c.max_attempts",
            {"ids": campaign_ids},
        ).fetchone()[0]


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {"n": len(ordered), "median": round(statistics.median(ordered), 2),
            "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2), "max": round(ordered[-1], 2)}


def _timed(function, seconds: list[float]):
    """`function`, appending the seconds each call took to `seconds`."""
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)
    return timed


def run_worker(db, campaign_ids: list[int], clock: SharedClock, *, seconds: float, pace: float,
               tick_seconds: float = 60.0, limiter: str | None = None, shards: int = 1) -> dict:
    """Dial ticks, one campaign each in turn, until nobody is left to dial or `seconds` of real time pass; returns figures."""
    import tasks.dialing as dialing
    import tasks.store as store
    from tasks.telephony import make_provider

    claim_seconds: list[float] = []
    lock_waits: list[float] = []
    # this process only: the claim inside the real tick, and the shared store's writer-lock waits
    # (the file has none to time)
    dialing.claim_batch = _timed(dialing.claim_batch, claim_seconds)
    store._take_writer_lock = _timed(store._take_writer_lock, lock_waits)
    provider = make_provider(db=db)
    dialer = provider
    if limiter:
        from flows.cluster import CallSlots, prefect_slots
        from tasks.settings import get_settings

        # "prefect:<limit name>" (the real global concurrency limit) or "sqlite:<file>:<limit>"
        kind, _, spec = limiter.partition(":")
        if kind == "prefect":
            slots = prefect_slots(spec, get_settings().call_slot_lease_seconds)
        else:
            file, _, limit = spec.rpartition(":")
            slots = sqlite_slots(file, int(limit))
        dialer = CallSlots(provider, *slots, clock=clock, wait_seconds=600)
    started, cpu_started = time.monotonic(), time.process_time()
    ticks = placed = refused = errors = 0
    tick_ms: list[float] = []
    while time.monotonic() - started < seconds:
        tick_at = clock.now()
        begun = time.perf_counter()
        campaign = campaign_ids[ticks % len(campaign_ids)]
        try:
            result = dialing.run_tick(db, dialer, clock, campaign_ids=[campaign], pace_seconds=pace,
                                      batches_at_once=shards)
        except Exception as error:  # a conflict the store gave up on: counted, the next tick retries
            errors += 1
            print(f"tick error: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            clock.sleep(tick_seconds)
            continue
        tick_ms.append((time.perf_counter() - begun) * 1000)
        ticks += 1
        placed += result.placed
        refused += sum(b.refused for b in result.batches)
        if result.placed == 0 and left_to_dial(db, campaign_ids) == 0:
            break
        # cron's next minute, or at once when the batch itself took longer than a minute
        clock.advance_to(tick_at + timedelta(seconds=tick_seconds))
    if limiter:
        dialer.drain(clock, max_wait_seconds=3600, poll_seconds=10)
    elapsed = time.monotonic() - started
    return {
        "role": "worker", "pid": os.getpid(), "ticks": ticks, "placed": placed, "refused": refused,
        "errors": errors, "seconds": round(elapsed, 2), "ticks_per_minute": round(ticks / elapsed * 60, 1),
        "claim_ms": _summary([s * 1000 for s in claim_seconds]), "tick_ms": _summary(tick_ms),
        # share of the run spent waiting for the shared store's writer lock, and CPU cores this process used
        "lock_wait_share": round(sum(lock_waits) / elapsed, 3),
        "cpu_cores": round((time.process_time() - cpu_started) / elapsed, 2),
        "slots": ({"acquired": dialer.acquired, "released": dialer.released, "waits": dialer.waits,
                   "left": len(dialer.held)} if limiter else None),
    }


def run_enricher(db, clock: SharedClock, *, seconds: float, stop_file: Path, tick_seconds: float = 60.0) -> dict:
    """Enrichment passes every virtual `tick_seconds` until `stop_file` exists or `seconds` pass."""
    from flows.enrich_calls import run_enrichment
    from tasks.telephony import make_provider

    provider = make_provider(db=db)
    started = time.monotonic()
    passes = 0
    while time.monotonic() - started < seconds and not stop_file.exists():
        tick_at = clock.now()
        run_enrichment(db, provider, tick_at)
        passes += 1
        clock.advance_to(tick_at + timedelta(seconds=tick_seconds))
    return {"role": "enricher", "pid": os.getpid(), "passes": passes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=("worker", "enricher"))
    parser.add_argument("--db", default=None)
    parser.add_argument("--campaigns", default="")
    parser.add_argument("--origin", required=True)
    parser.add_argument("--real-origin", type=float, required=True)
    parser.add_argument("--speed", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--pace", type=float, default=3.0)
    parser.add_argument("--tick-seconds", type=float, default=60.0)
    parser.add_argument("--limiter", default=None, help="prefect:<limit name> or sqlite:<file>:<limit>")
    parser.add_argument("--stop-file", default=None)
    parser.add_argument("--shards", type=int, default=1,
                        help="batches of one campaign that may place at once (the workers sharing it)")
    args = parser.parse_args(argv)
    clock = SharedClock(datetime.fromisoformat(args.origin), args.real_origin, args.speed)
    if args.role == "worker":
        ids = [int(i) for i in args.campaigns.split(",") if i]
        figures = run_worker(args.db, ids, clock, seconds=args.seconds, pace=args.pace,
                             tick_seconds=args.tick_seconds, limiter=args.limiter, shards=args.shards)
    else:
        figures = run_enricher(args.db, clock, seconds=args.seconds, stop_file=Path(args.stop_file),
                               tick_seconds=args.tick_seconds)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
