"""Benchmark: the simulator's share of a 100,000-contact, up-to-5-attempt simulated campaign.

Per call, in 500-call batches, each figure beside its naive baseline measured in the same run:
outcome draws (``simulate_outcomes`` with numpy vs the scalar ``simulate_outcome`` loop), placing
(``place_calls`` vs ``place_call`` one by one; ``place_call_batch`` from a claim's columns vs building the
CallRequests from them for ``place_calls``, as the dialer did) and reading (``get_calls_frame`` from memory vs
``get_calls`` + ``tasks.call_state.updates_frame``, and vs ``get_call`` one by one from SQLite), plus the
frame read back from SQLite by a fresh instance (calls another process placed). Then the time to simulate
the whole campaign's provider side with the batch forms (the dialing engine's DuckDB work is benchmarked
by bench_simulate). Targets (issue #5): placing <= 15 us and reading <= 10 us per call.
Run: ``.venv/bin/python -m bench.bench_simulator [contacts]``; BENCH_SIMULATOR_CALLS (default 5,000)
sets how many calls each per-call figure times.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

from tasks.call_state import updates_frame
from tasks.telephony.base import CallBatch, CallRequest
from tasks.telephony.simulator import SimulatedProvider, simulate_outcome, simulate_outcomes

START = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)  # Monday 11:00 New York
MAX_ATTEMPTS = 5
BATCH = 500
PACE = 3.0


def _requests(contacts: range, attempt: int) -> list[CallRequest]:
    return [
        CallRequest(
            to_number=f"+1{212 + c % 700:03d}{2000000 + c % 7999999:07d}", from_number="+12125550000",
            provider_agent_id="agent_bench", attempt_key=f"1.{c}.{attempt}",
            dynamic_variables={"contact_name": f"Contact {c}", "company_name": "Acme"},
            metadata={"attempt_key": f"1.{c}.{attempt}", "campaign_id": "1"},
        )
        for c in contacts
    ]


def _columns(requests: list[CallRequest]) -> CallBatch:
    """The requests as a claim hands them to the dialer: columns, dynamic variables as JSON text."""
    return CallBatch([r.to_number for r in requests], [r.from_number for r in requests], [r.attempt_key for r in requests],
                     [orjson.dumps(r.dynamic_variables).decode() for r in requests], "agent_bench", {"campaign_id": "1"})


def _batches(items: list, size: int = BATCH) -> list[list]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _microseconds_per_call(run: Callable[[], object], calls: int) -> tuple[float, float]:
    """Wall and CPU microseconds per call (on a shared machine the CPU figure moves less with the load)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return (time.perf_counter() - wall) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6


def per_call_costs(folder: Path, count: int = 5000, repeats: int = 3) -> dict[str, tuple[float, float]]:
    """Median wall and CPU microseconds per call of each batch form and its naive baseline.

    Each repeat places new attempts into the same files, a campaign's steady state (one warm-up batch first:
    the callee-zone cache and the files' creation are one-time costs).
    """
    batch = SimulatedProvider(folder / "batch.sqlite", concurrency_limit=10**9)
    single = SimulatedProvider(folder / "single.sqlite", concurrency_limit=10**9)
    columns = SimulatedProvider(folder / "columns.sqlite", concurrency_limit=10**9)
    built = SimulatedProvider(folder / "built.sqlite", concurrency_limit=10**9)
    for provider in (batch, single, columns, built):
        provider.place_calls(_requests(range(count), repeats), START - timedelta(days=1))
    figures: dict[str, list[tuple[float, float]]] = {}
    for repeat in range(repeats):
        requests = _requests(range(count), repeat)
        start = START + timedelta(days=repeat)
        times = start.timestamp() + np.arange(count) * PACE

        def record(name: str, run: Callable[[], object]) -> None:
            figures.setdefault(name, []).append(_microseconds_per_call(run, count))

        keys, numbers = [r.attempt_key for r in requests], [r.to_number for r in requests]
        record("outcomes_batch", lambda: [simulate_outcomes(1, k, n, t) for k, n, t in
                                          zip(_batches(keys), _batches(numbers), _batches(times))])
        record("outcomes_scalar", lambda: [simulate_outcome(1, k, n, t) for k, n, t in zip(keys, numbers, times.tolist())])

        ids: list[str] = []
        record("place_batch", lambda: [ids.extend(batch.place_calls(chunk, start + timedelta(seconds=i * BATCH * PACE),
                                                                    pace_seconds=PACE))
                                       for i, chunk in enumerate(_batches(requests))])
        record("place_single", lambda: [single.place_call(r, start + timedelta(seconds=i * PACE))
                                        for i, r in enumerate(requests)])
        claims = [_columns(chunk) for chunk in _batches(requests)]
        record("place_columns", lambda: [columns.place_call_batch(claim, start + timedelta(seconds=i * BATCH * PACE),
                                                                  pace_seconds=PACE) for i, claim in enumerate(claims)])
        record("place_built", lambda: [built.place_calls(claim.requests(), start + timedelta(seconds=i * BATCH * PACE),
                                                         pace_seconds=PACE) for i, claim in enumerate(claims)])

        later = start + timedelta(seconds=count * PACE + 3600)  # every call ended and analysed
        record("frame_cached", lambda: [batch.get_calls_frame(chunk, later) for chunk in _batches(ids)])
        record("calls_then_frame", lambda: [updates_frame(list(enumerate(batch.get_calls(chunk, later))))
                                            for chunk in _batches(ids)])
        reader = SimulatedProvider(batch.path)  # another process's calls: every id is a miss, read from SQLite
        record("frame_from_sqlite", lambda: [reader.get_calls_frame(chunk, later) for chunk in _batches(ids)])
        naive = SimulatedProvider(batch.path, cache_size=0)  # no cache: one SQLite query per call
        record("get_single_cold", lambda: [naive.get_call(call_id, later) for call_id in ids])
        for provider in (reader, naive):
            provider.close()
    for provider in (batch, single, columns, built):
        provider.close()
    return {name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for name, values in figures.items()}


def simulate_campaign(path: Path, contacts: int) -> dict[str, float]:
    """Dial every contact until success, an invalid number or 5 attempts, in 500-call batches."""
    provider = SimulatedProvider(path, seed=42, concurrency_limit=20)
    pending = {c: 0 for c in range(contacts)}
    now = START
    placed = refused = 0
    started = time.perf_counter()
    while pending:
        batch = list(pending)[:BATCH]
        results = provider.place_calls(
            [CallRequest(f"+1{212 + c % 700:03d}{2000000 + c % 7999999:07d}", "+12125550000", "agent_bench",
                         f"1.{c}.{pending[c]}") for c in batch],
            now, pace_seconds=PACE,
        )
        ids = {c: r for c, r in zip(batch, results) if isinstance(r, str)}
        refused += len(batch) - len(ids)
        placed += len(ids)
        now += timedelta(seconds=PACE * len(batch) + 1800)  # the batch, then every call has ended
        frame = provider.get_calls_frame(list(ids.values()), now)
        done = frame["call_successful"] | (frame["disconnect_reason"] == "invalid_destination")
        for contact, finished in zip(ids, done.to_list()):
            pending[contact] += 1
            if finished or pending[contact] >= MAX_ATTEMPTS:
                del pending[contact]
    seconds = time.perf_counter() - started
    size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + "-*"))
    provider.close()
    return {"seconds": seconds, "placed": placed, "refused": refused, "file_mb": size / 1e6}


def main(contacts: int = 100_000) -> None:
    calls = int(os.environ.get("BENCH_SIMULATOR_CALLS", "5000"))
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as folder:
        costs = per_call_costs(Path(folder), calls)
        load = os.getloadavg()[0]
        print(f"simulator per call (median of 3 runs of {calls:,} calls in {BATCH}-call batches, wall microseconds, "
              f"CPU in brackets; load average {load:.1f} on {os.cpu_count()} cores):")
        rows = [
            ("outcome draws", "simulate_outcomes", "outcomes_batch", "simulate_outcome loop", "outcomes_scalar"),
            ("placing", "place_calls", "place_batch", "place_call one by one", "place_single"),
            ("placing a claim", "place_call_batch", "place_columns", "CallRequests + place_calls", "place_built"),
            ("reading", "get_calls_frame", "frame_cached", "get_calls + updates_frame", "calls_then_frame"),
            ("reading", "get_calls_frame", "frame_cached", "get_call uncached", "get_single_cold"),
            ("reading (SQLite)", "get_calls_frame, fresh", "frame_from_sqlite", "get_call uncached", "get_single_cold"),
        ]
        for what, fast, fast_key, naive, naive_key in rows:
            (wall, cpu), (naive_wall, naive_cpu) = costs[fast_key], costs[naive_key]
            print(f"  {what:17s} {fast:23s} {wall:7.1f} us ({cpu:6.1f})   {naive:26s} {naive_wall:7.1f} us"
                  f" ({naive_cpu:6.1f})   ratio {naive_wall / wall:5.1f}x")
        run = simulate_campaign(Path(folder) / "campaign.sqlite", contacts)
        naive_estimate = run["placed"] * (costs["place_single"][0] + costs["get_single_cold"][0]) / 1e6
        print(f"simulated campaign: {contacts:,} contacts, up to {MAX_ATTEMPTS} attempts: "
              f"{run['placed']:,} calls placed ({run['refused']:,} refused at the concurrency limit) "
              f"in {run['seconds']:.1f} s; SQLite file {run['file_mb']:.0f} MB; load average {os.getloadavg()[0]:.1f}")
        print(f"  naive one-by-one estimate for the same calls: {naive_estimate:.1f} s "
              f"(ratio {naive_estimate / run['seconds']:.1f}x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
