"""Benchmark: importing a 1,000,000-row contacts CSV into an empty store, against a naive baseline.

The file (bench/make_import_data.py: 10% duplicates typed in other formats, 2% invalid phones,
3 custom columns) is generated once into bench/out/. Each side runs in its own child process so
its peak memory (RSS) is its own: ours is `run_import` (Polars read, distinct phones normalised
once on both cores, one DuckDB transaction); the baseline is pandas read_csv, phonenumbers per
row and a DataFrame insert. Prints wall time, peak RSS and the ratio from the same run.
Run: ``.venv/bin/python -m bench.bench_import`` (``BENCH_IMPORT_ROWS=100000`` for a quick check).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
OUT = PROJECT / "bench" / "out"
NOW = datetime(2026, 4, 27, 15, 0, tzinfo=UTC)
TARGET_SECONDS, TARGET_MB = 20.0, 2048


def rows_wanted() -> int:
    return int(os.environ.get("BENCH_IMPORT_ROWS", "1000000"))


def data_file(rows: int) -> Path:
    """The generated CSV for `rows` rows (made once; the generator is seeded)."""
    from bench.make_import_data import generate

    path = OUT / f"contacts_{rows}.csv"
    if not path.exists():
        generate(path, rows)
    return path


def empty_store(path: Path) -> int:
    """A migrated store with one agent, one number and one US campaign; returns the campaign id."""
    from tasks.campaigns import add_agent, add_number, create_campaign
    from tasks.store import transaction

    with transaction(path) as conn:
        agent_id = add_agent(conn, "Ava", "agent_bench", NOW)
        number_id = add_number(conn, "+16025550100", "main", "active", NOW)
        return create_campaign(conn, {
            "name": "Import bench", "agent_id": agent_id, "time_zone": "America/Phoenix", "country": "US",
            "start_date": date(2026, 4, 27), "same_hours": [["08:00", "18:00"]], "outbound_number_ids": [number_id],
        }, NOW)


def run_ours(csv: Path, db: Path, campaign_id: int) -> dict:
    from flows.import_contacts import run_import

    result = run_import(campaign_id, csv, db=db, now=NOW)
    return {"contacts": result.imported, "enrolled": result.enrolled, "invalid": result.invalid}


def run_naive(csv: Path, db: Path, campaign_id: int) -> dict:
    """The obvious way: pandas, one phonenumbers parse per row, insert the DataFrame."""
    import pandas as pd
    import phonenumbers as pn
    from phonenumbers import timezone as pn_timezone

    from tasks.store import transaction

    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    records = []
    for row in frame.itertuples(index=False):
        try:
            number = pn.parse(row[1], "US")
        except pn.NumberParseException:
            continue
        if not pn.is_valid_number(number):
            continue
        records.append({
            "phone_e164": pn.format_number(number, pn.PhoneNumberFormat.E164), "name": row[0] or None,
            "email": row[2] or None, "company": row[3] or None,
            "properties": json.dumps({k: v for k, v in zip(("plan", "city", "segment"), row[4:7]) if v}),
            "number_type": str(pn.number_type(number)), "region": pn.region_code_for_number(number),
            "time_zones": list(pn_timezone.time_zones_for_number(number)),
        })
    contacts = pd.DataFrame(records).drop_duplicates("phone_e164", keep="last")
    with transaction(db) as conn:
        conn.register("naive_contacts", contacts)
        conn.execute(
            "insert into contacts (phone_e164, name, company, email, properties, number_type, region, time_zones)"
            " select phone_e164, name, company, email, properties::json, number_type, region, time_zones from naive_contacts"
        )
        conn.execute(
            "insert into campaign_contacts (campaign_id, contact_id) select ?, contact_id from contacts", [campaign_id]
        )
    return {"contacts": len(contacts), "enrolled": len(contacts), "invalid": len(frame) - len(records)}


def child(kind: str, csv: Path) -> dict:
    """One side, timed, in this (fresh) process; peak RSS of this process and of its workers."""
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        db = Path(tmp) / "bench.duckdb"
        campaign_id = empty_store(db)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        setup_cpu = usage.ru_utime + usage.ru_stime
        started = time.perf_counter()
        counts = (run_ours if kind == "ours" else run_naive)(csv, db, campaign_id)
        seconds = time.perf_counter() - started
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds (all threads and workers) tell the work done even when other jobs share the cores.
    cpu = own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime - setup_cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": own.ru_maxrss / 1024,  # KiB on Linux
            "worker_peak_mb": workers.ru_maxrss / 1024, **counts}


def measure(kind: str, csv: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_import", "--child", kind, str(csv)],
        cwd=PROJECT, capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = rows_wanted()
    csv = data_file(rows)
    print(f"import bench: {rows:,} rows ({csv.stat().st_size / 1e6:.0f} MB CSV), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ours = measure("ours", csv)
    naive = measure("naive", csv)
    for name, figures in (("run_import", ours), ("naive (pandas + per-row phonenumbers + insert)", naive)):
        print(
            f"  {name}: {figures['seconds']:.1f} s wall, {figures['cpu_seconds']:.1f} s CPU, peak RSS {figures['peak_mb']:.0f} MB"
            + (f" (+ worker {figures['worker_peak_mb']:.0f} MB)" if figures["worker_peak_mb"] else "")
            + f"; {figures['contacts']:,} contacts, {figures['invalid']:,} invalid rows"
        )
    ratio = naive["seconds"] / ours["seconds"]
    total_mb = ours["peak_mb"] + ours["worker_peak_mb"]
    print(f"  ratio naive / ours: {ratio:.1f}x faster (wall), {naive['cpu_seconds'] / ours['cpu_seconds']:.1f}x less CPU")
    if rows == 1_000_000:
        print(f"  target ≤ {TARGET_SECONDS:.0f} s and < {TARGET_MB} MB: "
              f"{'met' if ours['seconds'] <= TARGET_SECONDS and total_mb < TARGET_MB else 'NOT met'} "
              f"({ours['seconds']:.1f} s, {total_mb:.0f} MB with the worker)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], Path(sys.argv[3]))))
    else:
        main()
