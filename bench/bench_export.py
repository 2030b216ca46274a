"""Benchmark: the calls Excel export at 1,000,000 calls (targets: 60 s, 1.5 GB peak memory).

Each writer runs in a fresh child process so its peak resident memory (ru_maxrss) and CPU time are
its own: our export (DuckDB writes the sheet XML, Python deflates it into the zip; its CPU split into
the query, the XML and the deflate by two partial runs), pandas
`to_excel` with openpyxl on the same rows, and two other options measured on the same rows: DuckDB's
excel extension (`COPY ... (FORMAT xlsx)`, when the duckdb-extension-excel wheel is installed) and
xlsxwriter in constant_memory mode (`write_xlsx`). The other writers run on the first
BENCH_BASELINE_ROWS rows (default 100,000; pandas needs gigabytes and minutes at a million) and are
extrapolated linearly to the full count, as printed. Smaller runs:
BENCH_EXPORT_CALLS=200000 .venv/bin/python -m bench.bench_export
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
started, cpu_started = time.perf_counter(), time.process_time()
with connect(db, read_only=True) as conn:
    if mode == "ours":
        rows = export_calls(conn, 1, out)
    elif mode in ("query", "xml"):  # the split: the sorted query's rows alone, then as sheet XML, both discarded
        from tasks.excel import sheet_rows_query
        query, params = calls_export_query(conn, 1)
        if mode == "xml":
            query = sheet_rows_query(conn, query, params, order_by='"Call ID"')[0]
        else:
            query = f'select * from ({query}) order by "Call ID"'
        rows = sum(batch.num_rows for batch in conn.execute(query, params).to_arrow_reader(20_000))
    else:
        query, params = calls_export_query(conn, 1)
        frame_sql = f"select * from ({query}) limit {limit}"
        if mode == "pandas":
            frame = conn.execute(frame_sql, params).df()
            frame.to_excel(out, engine="openpyxl", index=False, sheet_name="Calls")
            rows = len(frame)
        elif mode == "xlsxwriter":
            from tasks.excel import write_xlsx
            frame = conn.execute(frame_sql, params).pl()
            rows = write_xlsx(frame, out, sheet_name="Calls")
        else:  # the excel extension from its wheel (DuckDB cannot download extensions here)
            from importlib import resources
            import duckdb
            binary = resources.files("duckdb_extension_excel").joinpath(
                "extensions", f"v{duckdb.__version__}", "excel.duckdb_extension")
            conn.execute(f"install '{binary}'")
            conn.execute("load excel")
            conn.execute("set threads = 1")  # parallel scans ran ahead of the single writer (GBs buffered)
            conn.execute(f"copy ({frame_sql}) to '{out}' (format xlsx, header true)", params)
            rows = limit
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu_started,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run_child(mode: str, db: Path, out: Path, limit: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(db), str(out), str(limit)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    # DuckDB's progress bar may share stdout on long queries: the figures are the last JSON object.
    return json.loads(result.stdout[result.stdout.rindex('{"rows"'):])


def _excel_extension_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("duckdb_extension_excel") is not None


def main() -> dict:
    calls = env_int("BENCH_EXPORT_CALLS", 1_000_000)
    baseline_rows = min(calls, env_int("BENCH_BASELINE_ROWS", 100_000))
    scale = calls / baseline_rows
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        db = Path(folder) / "bench.duckdb"
        started = time.perf_counter()
        generate(db, calls, campaigns=1, rich=True)
        print(f"generated {calls:,} calls with analysis and variables in {time.perf_counter() - started:.1f} s")
        ours = _run_child("ours", db, Path(folder) / "ours.xlsx", calls)
        size_mb = (Path(folder) / "ours.xlsx").stat().st_size / 1e6
        split = {mode: _run_child(mode, db, Path(folder) / "unused", calls) for mode in ("query", "xml")}
        others = {mode: _run_child(mode, db, Path(folder) / f"{mode}.xlsx", baseline_rows)
                  for mode in ("pandas", "xlsxwriter", "excel_extension")
                  if mode != "excel_extension" or _excel_extension_installed()}
    figures = {"calls": calls, "export_s": ours["seconds"], "export_cpu_s": ours["cpu_s"],
               "export_peak_mb": ours["peak_mb"], "baseline_rows": baseline_rows}
    print(f"export {calls:,} calls       {ours['seconds']:.1f} s ({ours['cpu_s']:.1f} CPU-s), peak {ours['peak_mb']:.0f} MB,"
          f" file {size_mb:.0f} MB (targets 60 s, 1,500 MB)")
    query_cpu, xml_cpu = split["query"]["cpu_s"], split["xml"]["cpu_s"]
    figures.update({"query_cpu_s": query_cpu, "sheet_xml_cpu_s": xml_cpu - query_cpu,
                    "deflate_cpu_s": ours["cpu_s"] - xml_cpu})
    print(f"  split (CPU-s): query with neutralising and sort {query_cpu:.1f}, sheet XML in DuckDB "
          f"{xml_cpu - query_cpu:.1f}, deflate and zip in Python {ours['cpu_s'] - xml_cpu:.1f}")
    labels = {"pandas": "pandas to_excel/openpyxl", "xlsxwriter": "xlsxwriter constant_mem",
              "excel_extension": "DuckDB excel extension"}
    for mode, run in others.items():
        extrapolated = run["seconds"] * scale
        figures[f"{mode}_s_extrapolated"] = extrapolated
        figures[f"{mode}_peak_mb_measured"] = run["peak_mb"]
        print(f"{labels[mode]:26s}  {run['seconds']:.1f} s ({run['cpu_s']:.1f} CPU-s) for {baseline_rows:,} rows, "
              f"peak {run['peak_mb']:.0f} MB -> {extrapolated:.0f} s extrapolated to {calls:,}; "
              f"ratio {extrapolated / ours['seconds']:.1f}x")
    print(f"(load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return figures


if __name__ == "__main__":
    main()
