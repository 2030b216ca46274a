"""Benchmark: the calls Excel export at 1,000,000 calls (targets: 60 s, 1.5 GB peak memory).

Each writer runs in a fresh child process so its peak resident memory (ru_maxrss) is its own:
our export (DuckDB excel extension, streamed), pandas `to_excel` with openpyxl on the same rows, and
the older xlsxwriter path (`write_xlsx`) on the same rows. The baselines run on the first
BENCH_BASELINE_ROWS rows (default 100,000) and are extrapolated linearly to the full count, as
printed. Smaller runs: BENCH_EXPORT_CALLS=200000 .venv/bin/python -m bench.bench_export
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_metrics import env_int, generate

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from tasks.store import connect
from tasks.export_calls import calls_export_query, export_calls

mode, db, out, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
started = time.perf_counter()
with connect(db, read_only=True) as conn:
    if mode == "ours":
        rows = export_calls(conn, 1, out)
    else:
        query, params = calls_export_query(conn, 1)
        frame_sql = f"select * from ({query}) limit {limit}"
        if mode == "pandas":
            frame = conn.execute(frame_sql, params).df()
            frame.to_excel(out, engine="openpyxl", index=False, sheet_name="Calls")
        else:
            from tasks.excel import write_xlsx
            frame = conn.execute(frame_sql, params).pl()
            write_xlsx(frame, out, sheet_name="Calls")
        rows = len(frame)
seconds = time.perf_counter() - started
print(json.dumps({"rows": rows, "seconds": seconds,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run_child(mode: str, db: Path, out: Path, limit: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(db), str(out), str(limit)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> dict:
    calls = env_int("BENCH_EXPORT_CALLS", 1_000_000)
    baseline_rows = min(calls, env_int("BENCH_BASELINE_ROWS", 100_000))
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        db = Path(folder) / "bench.duckdb"
        started = time.perf_counter()
        generate(db, calls, campaigns=1, rich=True)
        print(f"generated {calls:,} calls with analysis and variables in {time.perf_counter() - started:.1f} s")
        ours = _run_child("ours", db, Path(folder) / "ours.xlsx", calls)
        size_mb = (Path(folder) / "ours.xlsx").stat().st_size / 1e6
        pandas = _run_child("pandas", db, Path(folder) / "pandas.xlsx", baseline_rows)
        xlsxwriter = _run_child("xlsxwriter", db, Path(folder) / "xlsxwriter.xlsx", baseline_rows)
    scale = calls / baseline_rows
    figures = {
        "calls": calls,
        "export_s": ours["seconds"],
        "export_peak_mb": ours["peak_mb"],
        "pandas_openpyxl_s_extrapolated": pandas["seconds"] * scale,
        "pandas_peak_mb_measured": pandas["peak_mb"],
        "xlsxwriter_s_extrapolated": xlsxwriter["seconds"] * scale,
    }
    print(f"export {calls:,} calls     {ours['seconds']:.1f} s, peak {ours['peak_mb']:.0f} MB, file {size_mb:.0f} MB "
          f"(targets 60 s, 1,500 MB)")
    print(f"pandas to_excel/openpyxl  {pandas['seconds']:.1f} s for {baseline_rows:,} rows (peak {pandas['peak_mb']:.0f} MB)"
          f" -> {figures['pandas_openpyxl_s_extrapolated']:.0f} s extrapolated linearly to {calls:,}; "
          f"ratio {figures['pandas_openpyxl_s_extrapolated'] / ours['seconds']:.1f}x")
    print(f"xlsxwriter (write_xlsx)   {xlsxwriter['seconds']:.1f} s for {baseline_rows:,} rows -> "
          f"{figures['xlsxwriter_s_extrapolated']:.0f} s extrapolated; "
          f"ratio {figures['xlsxwriter_s_extrapolated'] / ours['seconds']:.1f}x")
    print(f"(load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return figures


if __name__ == "__main__":
    main()
