"""Benchmark: the queries behind the Call Logs, Contact List and Metrics tabs at 1,000,000 calls (target 150 ms).

One campaign holds every call (the worst case for one tab). Each figure is the median of several
runs of what one tab draw asks (count + page for the tables), called through `dashboards/queries`
directly; the naive baseline loads the campaign's calls into Polars and filters, sorts and pages
there. Data is generated with DuckDB SQL (bench_metrics.generate). Smaller runs:
BENCH_DASHBOARD_CALLS=200000 .venv/bin/python -m bench.bench_dashboard
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from bench.bench_metrics import SPAN_DAYS, T0, generate
from dashboards.queries import calls as call_queries
from dashboards.queries import contacts as contact_queries
from dashboards.queries import metrics as metric_queries
from tasks.metrics import aggregate
from tasks.store import connect, transaction

TARGET_MS = 150.0
CAMPAIGN = 1


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm: a dashboard session has the file open and cached
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def _naive_call_page(conn, reasons: list[str], lo, hi) -> pl.DataFrame:
    """Every call of the campaign loaded into Polars, then filtered, sorted and paged there."""
    frame = conn.execute("select * from calls where campaign_id = ?", [CAMPAIGN]).pl()
    matching = frame.filter(
        pl.col("disconnect_reason").is_in(reasons), ~pl.col("call_successful").fill_null(False),
        pl.col("duration_seconds").fill_null(0) >= 30, pl.col("queued_at").is_between(lo, hi, closed="left"),
    )
    return matching.sort("queued_at", descending=True).head(call_queries.PAGE_SIZE)


def _naive_contact_page(conn) -> pl.DataFrame:
    calls = conn.execute("select * from calls where campaign_id = ?", [CAMPAIGN]).pl()
    per_contact = calls.group_by("contact_id").agg(pl.len().alias("attempts"), pl.col("credits").sum())
    enrolled = conn.execute("select contact_id, added_at from campaign_contacts where campaign_id = ?", [CAMPAIGN]).pl()
    return enrolled.join(per_contact, on="contact_id", how="left").sort("attempts", descending=True).head(50)


def main() -> dict:
    calls = int(os.environ.get("BENCH_DASHBOARD_CALLS", 1_000_000))
    repeats = int(os.environ.get("BENCH_REPEATS", 7))
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        db = Path(folder) / "bench.duckdb"
        started = time.perf_counter()
        generate(db, calls, campaigns=1, rich=True)
        now = T0 + timedelta(days=SPAN_DAYS + 1)
        with transaction(db) as conn:
            aggregate(conn, now, full=True)
            # some feedback, as a QA manager leaves it
            conn.execute("insert into call_feedback (call_id, rating, comment) "
                         "select i * 97 + 1, 'up', 'ok' from range(1000) t(i)")
        print(f"generated {calls:,} calls and aggregated in {time.perf_counter() - started:.1f} s")

        month = (date(2026, 6, 1), date(2026, 6, 30))
        filtered = call_queries.CallFilters(
            disconnect_reasons=("user_hangup", "agent_hangup"), call_successful=False, min_duration_seconds=30,
            date_from=month[0], date_to=month[1],
        )
        cases = {
            "call logs: first page, newest first": (call_queries.CallFilters(), 1, "date"),
            "call logs: filtered (reasons, No, >=30 s, June)": (filtered, 1, "date"),
            "call logs: filtered, page 20, by duration": (filtered, 20, "duration"),
            "call logs: name search 'contact 1234'": (call_queries.CallFilters(search="contact 1234"), 1, "date"),
            "call logs: phone search '2000012'": (call_queries.CallFilters(search="2000012"), 1, "date"),
            "call logs: one contact (from Contact List)": (call_queries.CallFilters(contact_id=4242), 1, "date"),
        }
        with connect(db) as conn:
            default_from, default_to = metric_queries.default_range(conn, CAMPAIGN, now)
            for name, (filters, page, sort) in cases.items():
                figures[name] = _median_ms(lambda f=filters, p=page, s=sort: (
                    call_queries.count_calls(conn, CAMPAIGN, f),
                    call_queries.call_page(conn, CAMPAIGN, f, page=p, sort=s)), repeats)
            figures["call detail + contact history"] = _median_ms(lambda: (
                call_queries.call_detail(conn, CAMPAIGN, 500_000),
                call_queries.contact_history(conn, CAMPAIGN, 4242)), repeats)
            figures["contact list: first page"] = _median_ms(lambda: (
                contact_queries.count_contacts(conn, CAMPAIGN),
                contact_queries.contact_page(conn, CAMPAIGN)), repeats)
            figures["contact list: by attempts, page 100"] = _median_ms(lambda: (
                contact_queries.contact_page(conn, CAMPAIGN, page=100, sort="attempts")), repeats)
            figures["contact list: search 'contact 99'"] = _median_ms(lambda: (
                contact_queries.count_contacts(conn, CAMPAIGN, "contact 99"),
                contact_queries.contact_page(conn, CAMPAIGN, "contact 99")), repeats)
            figures["metrics: KPI cards (start..today)"] = _median_ms(
                lambda: metric_queries.kpi_cards(conn, CAMPAIGN, default_from, default_to), repeats)
            figures["metrics: KPI cards (June, from the calls)"] = _median_ms(
                lambda: metric_queries.kpi_cards(conn, CAMPAIGN, *month), repeats)
            figures["metrics: funnel (start..today)"] = _median_ms(
                lambda: metric_queries.contact_funnel(conn, CAMPAIGN, default_from, default_to), repeats)
            figures["metrics: Calls Made series"] = _median_ms(
                lambda: metric_queries.calls_made(conn, CAMPAIGN, default_from, default_to), repeats)
            figures["metrics: funnel (June, from the calls)"] = _median_ms(
                lambda: metric_queries.contact_funnel(conn, CAMPAIGN, *month), repeats)

            from tasks.metrics import range_bounds
            lo, hi = range_bounds("America/Phoenix", *month)
            naive_calls = _median_ms(lambda: _naive_call_page(
                conn, ["user_hangup", "agent_hangup"], lo, hi), max(1, repeats // 2))
            naive_contacts = _median_ms(lambda: _naive_contact_page(conn), max(1, repeats // 2))

    width = max(len(n) for n in figures)
    for name, ms in figures.items():
        flag = "ok" if ms <= TARGET_MS else f"OVER {TARGET_MS:g} ms"
        print(f"{name:<{width}}  median {ms:8.1f} ms  {flag}")
    filtered_ms = figures["call logs: filtered (reasons, No, >=30 s, June)"]
    contacts_ms = figures["contact list: by attempts, page 100"]
    print(f"naive call page (all calls into Polars, filter, sort): {naive_calls:.1f} ms "
          f"→ {naive_calls / filtered_ms:.1f}x slower than the filtered page")
    print(f"naive contact page (all calls into Polars, group, sort): {naive_contacts:.1f} ms "
          f"→ {naive_contacts / contacts_ms:.1f}x slower than the contact page")
    print(f"slowest tab query: {max(figures.values()):.1f} ms (target ≤ {TARGET_MS:g} ms); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a busy machine inflates every figure)")
    return {**figures, "naive_call_page": naive_calls, "naive_contact_page": naive_contacts}


if __name__ == "__main__":
    main()
