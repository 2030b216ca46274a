"""Benchmark: the campaign list with derived statuses, one set-based query against one query per campaign.

Builds a database with N campaigns (default 1,000), 50 enrolled contacts and a few dial runs each,
then times `list_campaigns` (one CTE query, statuses derived in Python) and the naive list that
calls `campaign_status` once per campaign, in the same run. Prints medians and the ratio, then the
dashboard's paged list (`dashboards.queries.campaigns`: count + one page of 20, with and without a
name search) with median and p95 beside the same naive per-campaign list.
Run: ``.venv/bin/python -m bench.bench_campaign_list [campaigns]``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from dashboards.queries.campaigns import campaign_page, count_campaigns
from tasks.campaigns import add_agent, add_number, campaign_status, create_campaign, list_campaigns
from tasks.store import connect, transaction

NOW = datetime(2026, 5, 6, 18, 0, tzinfo=UTC)


def build(path: Path, campaigns: int, contacts_each: int = 50) -> None:
    """A database with `campaigns` campaigns in a mix of states, each with enrolled contacts and runs."""
    with transaction(path) as conn:
        agent_id = add_agent(conn, "Ava", "agent_bench", NOW)
        number_id = add_number(conn, "+16025550100", "main", "active", NOW)
        for index in range(campaigns):
            campaign_id = create_campaign(conn, {
                "name": f"Campaign {index:05d}", "agent_id": agent_id, "time_zone": "America/Phoenix",
                "country": "US", "start_date": None if index % 7 == 0 else date(2026, 4, 27),
                "same_hours": [["08:00", "18:00"]], "outbound_number_ids": [number_id], "active": index % 3 != 0 and index % 7 != 0,
            }, NOW - timedelta(minutes=index))
            conn.execute(
                "insert into campaign_contacts (campaign_id, contact_id, finished_at)"
                " select ?, i, case when i % 2 = 0 then ?::timestamptz end from range(?) t(i)",
                [campaign_id, NOW, contacts_each],
            )
            conn.execute(
                "insert into dial_runs (campaign_id, kind, state, started_at)"
                " select ?, case when i = 3 and ? % 11 = 0 then 'manual' else 'scheduled' end,"
                " case when i < 3 then 'completed' when ? % 5 = 0 then 'failed' else 'running' end,"
                " ?::timestamptz + to_minutes(i) from range(4) t(i)",
                [campaign_id, index, index, NOW - timedelta(hours=1)],
            )


def measure(path: Path, repeats: int = 3) -> dict[str, float]:
    """Median seconds for the set-based list and for the per-campaign naive list."""
    set_based, naive = [], []
    for _ in range(repeats):
        with connect(path) as conn:
            started = time.perf_counter()
            rows = list_campaigns(conn, NOW)
            set_based.append(time.perf_counter() - started)
            started = time.perf_counter()
            naive_rows = [campaign_status(conn, row["campaign_id"], NOW).value for row in rows]
            naive.append(time.perf_counter() - started)
        assert [row["status"] for row in rows] == naive_rows  # same answer both ways
    return {"set_based_s": statistics.median(set_based), "naive_s": statistics.median(naive)}


def measure_pages(path: Path, repeats: int = 15) -> dict[str, tuple[float, float]]:
    """(median ms, p95 ms) of one dashboard list draw (count + page of 20), unsearched and searched."""
    draws = {
        "dashboard list page 1": dict(search=None, offset=0),
        "dashboard list page 10": dict(search=None, offset=180),
        "dashboard list search '0042'": dict(search="0042", offset=0),
    }
    figures = {}
    with connect(path) as conn:
        for name, args in draws.items():
            runs = []
            for _ in range(repeats + 1):  # the first run warms the cache
                started = time.perf_counter()
                count_campaigns(conn, args["search"])
                campaign_page(conn, NOW, search=args["search"], limit=20, offset=args["offset"])
                runs.append((time.perf_counter() - started) * 1000)
            runs = runs[1:]
            figures[name] = (statistics.median(runs), statistics.quantiles(runs, n=20, method="inclusive")[-1])
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = sys.argv[1:] if argv is None else argv
    campaigns = int(args[0]) if args else 1000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        build(path, campaigns)
        figures = measure(path)
        pages = measure_pages(path)
    ratio = figures["naive_s"] / figures["set_based_s"]
    print(f"campaign list, {campaigns} campaigns: set-based {figures['set_based_s'] * 1000:.1f} ms, "
          f"naive one-query-per-status {figures['naive_s'] * 1000:.1f} ms (median of 3), ratio {ratio:.1f}x")
    for name, (median, p95) in pages.items():
        print(f"{name:<30} median {median:6.1f} ms  p95 {p95:6.1f} ms  "
              f"(naive per-campaign list {figures['naive_s'] * 1000:.1f} ms: {figures['naive_s'] * 1000 / median:.1f}x)")
    return {**figures, "ratio": ratio, **{f"{name} median_ms": median for name, (median, _) in pages.items()}}


if __name__ == "__main__":
    main()
