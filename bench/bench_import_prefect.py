"""Benchmark: `campaigns import ... --prefect` on a 200,000-row CSV (the CLI's Prefect path, in process).

The CLI checks the file (so bad input is one line, exit code 2, before the flow starts) and runs the
flow `import_contacts`, handing it the file as read. This times the whole command (wall, and CPU of
this process, steadier on a shared machine) against the former way (check, then the flow reads the
file again), interleaved, median of several runs, each into a fresh
store, after one warm-up run that starts Prefect's ephemeral server; and, for scale, one read of the
file alone (`read_contacts_file`). Prefect runs with its own temporary home, offline.
Run: ``.venv/bin/python -m bench.bench_import_prefect`` (``BENCH_IMPORT_PREFECT_ROWS``, ``..._RUNS``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def child(rows: int, runs: int) -> dict:
    from bench.bench_import import data_file, empty_store
    from flows.cli import main as cli
    from tasks.contacts_import import read_contacts_file

    csv = data_file(rows)
    with tempfile.TemporaryDirectory(prefix="bench-import-prefect-") as tmp:
        template = Path(tmp) / "template.duckdb"
        campaign_id = empty_store(template)

        def one(path: Path, n: int, reads_twice: bool = False) -> tuple[float, float, dict]:
            db = Path(tmp) / f"run{n}.duckdb"
            shutil.copyfile(template, db)
            out, err = io.StringIO(), io.StringIO()
            started, cpu = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                if reads_twice:  # what the CLI did before: check the file, then let the flow read it again
                    from flows.import_contacts import check_import, import_contacts

                    check_import(campaign_id, path, db=db)
                    data = import_contacts(campaign_id, str(path), db=str(db))
                    code = 0
                else:
                    code = cli(["--db", str(db), "import", str(campaign_id), str(path), "--prefect", "--json"])
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            if code != 0:
                raise SystemExit(f"import failed ({code}): {err.getvalue()}")
            db.unlink()
            return seconds, cpu, (data if reads_twice else json.loads(out.getvalue()))

        warm = Path(tmp) / "warm.csv"
        warm.write_text("Phone\n+16025550199\n")
        one(warm, 0)  # starts the ephemeral Prefect server
        timings, cpus, twice, twice_cpus, data = [], [], [], [], {}
        for n in range(1, runs + 1):  # interleaved, so a change in the machine's load hits both alike
            seconds, cpu, data = one(csv, n)
            timings.append(seconds)
            cpus.append(cpu)
            seconds, cpu, _ = one(csv, n, reads_twice=True)
            twice.append(seconds)
            twice_cpus.append(cpu)
        reads = []
        for _ in range(3):
            started = time.perf_counter()
            read_contacts_file(csv)
            reads.append(time.perf_counter() - started)
    return {"rows": rows, "timings": timings, "cpus": cpus, "twice": twice, "twice_cpus": twice_cpus, "read_median": statistics.median(reads),
            "imported": data["imported"], "invalid": data["invalid"]}


def main() -> None:
    rows = int(os.environ.get("BENCH_IMPORT_PREFECT_ROWS", "200000"))
    runs = int(os.environ.get("BENCH_IMPORT_PREFECT_RUNS", "5"))
    home = tempfile.mkdtemp(prefix="bench-prefect-home-")
    env = {**os.environ, "PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    try:
        done = subprocess.run([sys.executable, "-m", "bench.bench_import_prefect", "--child", str(rows), str(runs)],
                              cwd=PROJECT, env=env, capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if done.returncode != 0:  # say why: the child's own last lines (a failed import, Prefect's server)
        tail = "\n".join(done.stderr.strip().splitlines()[-25:])
        raise SystemExit(f"bench_import_prefect: the child run exited with {done.returncode}:\n{tail}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"import --prefect bench: {rows:,} rows, {runs} runs each, load average {os.getloadavg()[0]:.1f}")
    for name, wall, cpu in (("the command (file read once)", figures["timings"], figures["cpus"]),
                            ("check + flow reading the file again (the CLI before)", figures["twice"], figures["twice_cpus"])):
        print(f"  {name}: median {statistics.median(wall):.2f} s wall (min {min(wall):.2f}, max {max(wall):.2f}), "
              f"median {statistics.median(cpu):.2f} s CPU of this process")
    print(f"  {figures['imported']:,} imported, {figures['invalid']:,} invalid; "
          f"one read of the file alone: {figures['read_median']:.2f} s (median of 3)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
