"""Benchmark: the simulator's share of a 100,000-contact, up-to-5-attempt simulated campaign.

Prints the cost per placement and per read for the batch forms (``place_calls``/``get_calls``) and
for the naive one-call-at-a-time forms measured in the same run, then the time to simulate the whole
campaign's provider side with the batch forms (the dialing engine's DuckDB work is benchmarked by
its own script). Run: ``.venv/bin/python -m bench.bench_simulator [contacts]``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.telephony.base import CallRequest
from tasks.telephony.simulator import SimulatedProvider

START = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)  # Monday 11:00 New York
MAX_ATTEMPTS = 5
BATCH = 500


def _requests(contacts: range, attempt: int) -> list[CallRequest]:
    return [
        CallRequest(
            to_number=f"+1{212 + c % 700:03d}{2000000 + c % 7999999:07d}", from_number="+12125550000",
            provider_agent_id="agent_bench", attempt_key=f"c{c}-a{attempt}",
            dynamic_variables={"contact_name": f"Contact {c}", "company_name": "Acme"},
        )
        for c in contacts
    ]


def per_call_costs(folder: Path, count: int = 5000, repeats: int = 3) -> dict[str, float]:
    """Median microseconds per call for batch and naive placement and reads."""
    figures: dict[str, list[float]] = {"place_batch": [], "place_single": [], "get_batch": [], "get_single_cold": []}
    for repeat in range(repeats):
        requests = _requests(range(count), repeat)
        batch = SimulatedProvider(folder / f"batch{repeat}.sqlite", concurrency_limit=10**9)
        started = time.perf_counter()
        ids = batch.place_calls(requests, START, pace_seconds=0.01)
        figures["place_batch"].append((time.perf_counter() - started) / count * 1e6)

        single = SimulatedProvider(folder / f"single{repeat}.sqlite", concurrency_limit=10**9)
        started = time.perf_counter()
        for index, request in enumerate(requests):
            single.place_call(request, START + timedelta(seconds=index * 0.01))
        figures["place_single"].append((time.perf_counter() - started) / count * 1e6)

        later = START + timedelta(hours=3)
        reader = SimulatedProvider(batch.path)
        started = time.perf_counter()
        reader.get_calls(ids, later)
        figures["get_batch"].append((time.perf_counter() - started) / count * 1e6)

        naive = SimulatedProvider(batch.path, cache_size=0)  # no cache: one SQLite query per call
        started = time.perf_counter()
        for call_id in ids:
            naive.get_call(call_id, later)
        figures["get_single_cold"].append((time.perf_counter() - started) / count * 1e6)
        for provider in (batch, single, reader, naive):
            provider.close()
    return {name: statistics.median(values) for name, values in figures.items()}


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
                         f"c{c}-a{pending[c]}") for c in batch],
            now, pace_seconds=3.0,
        )
        ids = {c: r for c, r in zip(batch, results) if isinstance(r, str)}
        refused += len(batch) - len(ids)
        placed += len(ids)
        now += timedelta(seconds=3.0 * len(batch) + 1800)  # the batch, then every call has ended
        for contact, call in zip(ids, provider.get_calls(list(ids.values()), now)):
            pending[contact] += 1
            done = call.call_successful or call.disconnect_reason == "invalid_destination"
            if done or pending[contact] >= MAX_ATTEMPTS:
                del pending[contact]
    seconds = time.perf_counter() - started
    size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + "-*"))
    provider.close()
    return {"seconds": seconds, "placed": placed, "refused": refused, "file_mb": size / 1e6}


def main(contacts: int = 100_000) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as folder:
        costs = per_call_costs(Path(folder))
        print("simulator per call (median of 3 runs of 5,000 calls, microseconds):")
        print(f"  place_calls batch  {costs['place_batch']:7.1f} us   place_call one by one {costs['place_single']:7.1f} us"
              f"   ratio {costs['place_single'] / costs['place_batch']:.1f}x")
        print(f"  get_calls batch    {costs['get_batch']:7.1f} us   get_call uncached     {costs['get_single_cold']:7.1f} us"
              f"   ratio {costs['get_single_cold'] / costs['get_batch']:.1f}x")
        run = simulate_campaign(Path(folder) / "campaign.sqlite", contacts)
        naive_estimate = run["placed"] * (costs["place_single"] + costs["get_single_cold"]) / 1e6
        print(f"simulated campaign: {contacts:,} contacts, up to {MAX_ATTEMPTS} attempts: "
              f"{run['placed']:,} calls placed ({run['refused']:,} refused at the concurrency limit) "
              f"in {run['seconds']:.1f} s; SQLite file {run['file_mb']:.0f} MB")
        print(f"  naive one-by-one estimate for the same calls: {naive_estimate:.1f} s "
              f"(ratio {naive_estimate / run['seconds']:.1f}x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
