"""The store backends side by side on one workload: the DuckDB file, PostgreSQL through DuckDB's
postgres extension (CAMPAIGNS_STORE=postgres), and DuckLake (PostgreSQL catalogue + Parquet folder).

One campaign of BENCH_STORE_CONTACTS (default 100,000) contacts with BENCH_STORE_CALLS (default
300,000) past calls — bench_claim's realistic mix of callee places, caps and do-not-call lists — is
built in a DuckDB file, then copied into a PostgreSQL database and into a DuckLake on a throw-away
local PostgreSQL server. Medians of BENCH_REPEATS (default 7) runs, per backend:
- eligibility select of a 500 batch (the claim's read);
- claim of a 500 batch: `claim_batch` in one transaction, rolled back (the real code; DuckLake cannot
  run it: no RETURNING, sequences or unique keys), and "claim, explicit ids": the same read plus the
  claim's two writes with ids computed by hand, which all three backends run;
- one simulated dialing tick (`run_tick`, simulator, virtual clock; it consumes contacts);
- the dashboard: call-log first page + count, contact-list first page, the KPI cards.
The DuckDB file is the baseline of the ratios (backend time / file time).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl

from bench.bench_claim import NOW, build
from tasks import store
from tasks.clock import VirtualClock
from tasks.dialing import claim_batch, eligible_contacts, load_plans, run_tick
from tasks.settings import reset_settings
from tasks.telephony.simulator import SimulatedProvider

CAMPAIGN, NUMBER, BATCH = 1, "+16025550100", 500


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm: first use loads extensions, caches catalogues
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def _use_file(db: Path) -> None:
    os.environ.pop("CAMPAIGNS_STORE", None)
    os.environ.pop("CAMPAIGNS_STORE_URL", None)
    os.environ["CAMPAIGNS_DB"] = str(db)
    reset_settings()


def _use_postgres(url: str, db: Path) -> None:
    os.environ.update({"CAMPAIGNS_STORE": "postgres", "CAMPAIGNS_STORE_URL": url, "CAMPAIGNS_DB": str(db)})
    reset_settings()


def copy_to_postgres(source: Path) -> None:
    """Every table of the file into the (migrated, empty) shared store; sequences moved past the ids."""
    with store.connect() as conn:
        conn.execute(f"attach {store._sql_literal(str(source))} as src (read_only)")
        try:
            tables = [r[0] for r in conn.execute(
                "select table_name from duckdb_tables() where database_name = 'src' and table_name <> 'schema_migrations'"
            ).fetchall()]
            for table in tables:
                conn.execute(f"delete from {table}")
                conn.execute(f"insert into {table} by name select * from src.main.{table}")
        finally:
            conn.execute("detach src")
        hub = store._hub(store.shared_store_url(), 30)
        for table, columns in hub.serial_columns.items():
            for column, sequence in columns.items():
                store._pg_execute(conn, f"select setval('{sequence}', (select coalesce(max({column}), 0) + 1 from main.{table}))")
        store._pg_execute(conn, "analyze")


def open_ducklake(catalog_dsn: str, data_path: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the DuckLake attached and used."""
    conn = duckdb.connect()
    conn.execute("set TimeZone = 'UTC'")
    store.load_extension(conn, "postgres")
    store.load_extension(conn, "ducklake")
    conn.execute(f"attach {store._sql_literal('ducklake:postgres:' + catalog_dsn)} as lake"
                 f" (data_path {store._sql_literal(str(data_path) + '/')})")
    conn.execute("use lake")
    return conn


def copy_to_ducklake(conn: duckdb.DuckDBPyConnection, source: Path) -> None:
    """Every table as CREATE TABLE AS: DuckLake has no keys, sequences, checks or list defaults."""
    conn.execute(f"attach {store._sql_literal(str(source))} as src (read_only)")
    tables = [r[0] for r in conn.execute(
        "select table_name from duckdb_tables() where database_name = 'src'").fetchall()]
    for table in tables:
        conn.execute(f"create table {table} as select * from src.main.{table}")
    conn.execute("detach src")


def claim_rolled_back(conn, plan) -> int:
    conn.execute("begin transaction")  # on the shared store this takes the writer lock, as claims do
    try:
        _, frame = claim_batch(conn, plan, NOW, kind="scheduled", from_numbers=[NUMBER], provider_name="bench")
        return frame.height
    finally:
        conn.execute("rollback")


def claim_explicit_ids(conn, plan) -> int:
    """The claim's read and its two writes (attempt rows, enrollment update), ids computed by hand."""
    conn.execute("begin transaction")
    try:
        picked = eligible_contacts(conn, plan, NOW, BATCH)
        first = conn.execute("select coalesce(max(call_id), 0) + 1 from calls").fetchone()[0]
        claims = picked.select("contact_id", "phone_e164", "call_seq", "attempts").with_row_index("n").with_columns(
            (pl.col("n").cast(pl.Int64) + first).alias("call_id"))
        conn.register("claims", claims)
        conn.execute(
            "insert into calls (call_id, campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt,"
            " phone_e164, from_number, status, provider, queued_at, updated_at)"
            " select call_id, ?, contact_id, ? || '.' || contact_id || '.' || (call_seq + 1), attempts + 1, true,"
            " phone_e164, ?, 'queued', 'bench', ?, ? from claims",
            [CAMPAIGN, str(CAMPAIGN), NUMBER, NOW, NOW])
        conn.execute(
            "update campaign_contacts cc set attempts = cc.attempts + 1, call_seq = cc.call_seq + 1,"
            " last_call_at = ?, in_flight_call_id = k.call_id from claims k"
            " where cc.campaign_id = ? and cc.contact_id = k.contact_id", [NOW, CAMPAIGN])
        conn.unregister("claims")
        return claims.height
    finally:
        conn.execute("rollback")


def dashboard_draw(conn) -> None:
    """The queries of one campaign page draw: call logs, contact list, KPI cards."""
    from dashboards.queries import calls as call_queries
    from dashboards.queries import contacts as contact_queries
    from dashboards.queries import metrics as metric_queries

    call_queries.count_calls(conn, CAMPAIGN)
    call_queries.call_page(conn, CAMPAIGN, call_queries.CallFilters(), page=1, sort="date")
    contact_queries.count_contacts(conn, CAMPAIGN)
    contact_queries.contact_page(conn, CAMPAIGN, None, page=1, sort="created")
    first, last = metric_queries.default_range(conn, CAMPAIGN, NOW)
    metric_queries.kpi_cards(conn, CAMPAIGN, first, last)


def ticks_ms(folder: Path, db: Path | None, count: int) -> float:
    """Median wall time of `count` consecutive dialing ticks, 30 virtual minutes apart."""
    provider = SimulatedProvider(folder / f"sim-{time.monotonic_ns()}.sqlite", seed=1, concurrency_limit=20)
    runs, claimed = [], 0
    for i in range(count):
        started = time.perf_counter()
        result = run_tick(db, provider, VirtualClock(NOW + timedelta(minutes=30 * i)), pace_seconds=3)
        runs.append((time.perf_counter() - started) * 1000)
        claimed += sum(batch.claimed for batch in result.batches)
    print(f"  {count} ticks claimed {claimed} calls in all")
    return statistics.median(runs)


def measure(conn, plan, repeats: int, *, real_claim: bool) -> dict[str, float]:
    figures = {
        "eligibility select (500)": _median_ms(lambda: eligible_contacts(conn, plan, NOW, BATCH), repeats),
        "claim, explicit ids (500)": _median_ms(lambda: claim_explicit_ids(conn, plan), repeats),
        "dashboard draw (6 queries)": _median_ms(lambda: dashboard_draw(conn), repeats),
    }
    if real_claim:
        figures["claim_batch (500)"] = _median_ms(lambda: claim_rolled_back(conn, plan), repeats)
    return figures


def main() -> dict:
    from tasks.pgserver import PgServer, PostgresMissingError

    contacts = int(os.environ.get("BENCH_STORE_CONTACTS", 100_000))
    calls = int(os.environ.get("BENCH_STORE_CALLS", 300_000))
    repeats = int(os.environ.get("BENCH_REPEATS", 7))
    ticks = int(os.environ.get("BENCH_STORE_TICKS", 3))
    saved = {k: os.environ.get(k) for k in ("CAMPAIGNS_STORE", "CAMPAIGNS_STORE_URL", "CAMPAIGNS_DB")}
    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    os.chmod(folder, 0o755)  # the postgres user must reach the server's data folder
    results: dict[str, dict[str, float]] = {}
    try:
        source = folder / "source.duckdb"
        started = time.perf_counter()
        build(source, contacts, calls)
        print(f"workload: {contacts:,} contacts, {calls:,} past calls; built in {time.perf_counter() - started:.0f} s")
        try:
            server = PgServer(folder / "pg", database="bench").start()
        except PostgresMissingError as missing:
            print(f"PostgreSQL not installed, only the DuckDB file measured: {missing}")
            server = None

        # --- the DuckDB file (baseline)
        db = folder / "file.duckdb"
        shutil.copy(source, db)
        _use_file(db)
        with store.connect(db) as conn:
            plan = load_plans(conn, [CAMPAIGN])[0]
            results["duckdb-file"] = measure(conn, plan, repeats, real_claim=True)
        results["duckdb-file"]["dialing tick (500, simulator)"] = ticks_ms(folder, db, ticks)

        if server is not None:
            # --- PostgreSQL through the postgres extension (the shared store)
            _use_postgres(server.url, folder / "pg-companions.duckdb")
            started = time.perf_counter()
            copy_to_postgres(source)
            print(f"copied into PostgreSQL in {time.perf_counter() - started:.0f} s")
            with store.connect() as conn:
                results["postgres"] = measure(conn, plan, repeats, real_claim=True)
            results["postgres"]["dialing tick (500, simulator)"] = ticks_ms(folder, None, ticks)

            # --- DuckLake, PostgreSQL catalogue, Parquet files in a local folder
            server.execute("create database lake_catalog")
            lake = open_ducklake(server.dsn.replace("dbname=bench", "dbname=lake_catalog"), folder / "lake")
            try:
                started = time.perf_counter()
                copy_to_ducklake(lake, source)
                print(f"copied into DuckLake in {time.perf_counter() - started:.0f} s")
                results["ducklake"] = measure(lake, plan, repeats, real_claim=False)
            finally:
                lake.close()
            server.stop()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
        shutil.rmtree(folder, ignore_errors=True)
    _print(results, repeats)
    return results


def _print(results: dict[str, dict[str, float]], repeats: int) -> None:
    names = list(results)
    rows = list(dict.fromkeys(row for figures in results.values() for row in figures))
    print(f"\nmedian ms of {repeats} runs (ticks: of BENCH_STORE_TICKS); ratio = backend / duckdb-file")
    print(f"{'':34}" + "".join(f"{n:>24}" for n in names))
    base = results["duckdb-file"]
    for row in rows:
        cells = []
        for name in names:
            value = results[name].get(row)
            if value is None:
                cells.append(f"{'not supported':>24}")
            else:
                ratio = f" ({value / base[row]:.1f}x)" if name != "duckdb-file" and row in base else ""
                cells.append(f"{value:>14.1f}{ratio:>10}")
        print(f"{row:34}" + "".join(cells))


if __name__ == "__main__":
    main()
