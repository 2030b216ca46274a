"""`make demo`: the main job on the embedded default — a local DuckDB file and simulated telephony.

Builds data/demo.duckdb from scratch (agent, three outbound numbers with one inactive trunk, the
reference campaign from data/example_campaign.yaml with number rotation on), imports
data/sample_contacts.csv through the import flow, simulates two weeks of dialing, enrichment and
metrics through the flows on a virtual clock, prints a report and serves the dashboard
(`--no-dashboard` or DEMO_NO_DASHBOARD=1 skips serving). The same seed gives the same numbers every time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from tasks.settings import DATA_DIR, PROJECT_ROOT

DEMO_DB = DATA_DIR / "demo.duckdb"
EXAMPLE = PROJECT_ROOT / "data" / "example_campaign.yaml"
# The story's set-up (campaign created, contacts imported) happens this long before its first calling day,
# so every date in the dashboard follows from the simulated clock: nobody is called before being added.
SET_UP_BEFORE_START = timedelta(days=3)
SEED = 42
DAYS = 14


def step(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def fresh_store(db: Path) -> None:
    """Remove the demo store and its companions so every run starts clean."""
    from tasks.store import companion_path, forget_migrated

    for path in (db, db.with_name(db.name + ".wal"), companion_path(db, "analytics.duckdb"),
                 companion_path(db, "simulator.sqlite")):
        for candidate in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
            candidate.unlink(missing_ok=True)
    forget_migrated(db)


def story_start(path: Path = EXAMPLE) -> datetime:
    """When the demo's simulated calling starts: local midnight of the example campaign's start date (UTC)."""
    from tasks.campaigns import load_yaml
    from tasks.schedule import zone

    document = load_yaml(path)
    start_date = document["start_date"]
    start_date = start_date if isinstance(start_date, date) else date.fromisoformat(str(start_date))
    return datetime.combine(start_date, datetime.min.time(), zone(document["time_zone"])).astimezone(timezone.utc)


def build(db: Path, now: datetime) -> int:
    """Agent, numbers and the reference campaign with rotation over the two active numbers, created at `now`."""
    from tasks.campaigns import add_number, apply_yaml, update_campaign
    from tasks.store import init_db, transaction

    init_db(db)
    with transaction(db) as conn:
        campaign_id = apply_yaml(conn, EXAMPLE, now)["campaign_id"]
        main_number = conn.execute("select outbound_number_ids[1] from campaigns where campaign_id = ?", [campaign_id]).fetchone()[0]
        backup = add_number(conn, "+16025550101", "Phoenix backup", "active", now)
        spare = add_number(conn, "+16025550102", "Tucson spare (trunk down)", "inactive", now)
        update_campaign(conn, campaign_id, {"rotation_enabled": True, "outbound_number_ids": [main_number, backup, spare]}, now)
    return campaign_id


def report(db: Path, campaign_id: int) -> dict:
    from tasks.metrics import calls_not_counted, kpis
    from tasks.snapshot import snapshot_path
    from tasks.store import connect

    with connect(db) as conn:
        figures = kpis(conn, campaign_id)
        contacts = conn.execute("select count(*) from campaign_contacts where campaign_id = ?", [campaign_id]).fetchone()[0]
        finished = conn.execute(
            "select count(*) from campaign_contacts where campaign_id = ? and finished_at is not null", [campaign_id]
        ).fetchone()[0]
        # this campaign's call attempts per outbound number (the Total Calls definition)
        numbers = conn.execute(
            "select from_number, count(*) from calls where campaign_id = ? and counts_as_attempt group by 1 order by 1",
            [campaign_id]).fetchall()
        counts = calls_not_counted(conn, campaign_id, None, None)
        not_counted = {words: counts[kind] for kind, words in NOT_COUNTED_WORDS.items() if counts[kind]}
        paused = conn.execute(
            "select number_id, e164, rotation_paused_reason from phone_numbers"
            " where rotation_paused_at is not null order by 1").fetchall()
    return {"contacts": contacts, "finished": finished, "kpis": figures, "numbers": numbers, "paused": paused,
            "not_counted": not_counted, "db": db.resolve(), "snapshot": snapshot_path(db).resolve()}


# The campaign's calls that are not attempts (docs/schema.md, "call attempt"), by why.
# The demo report's words for the kinds of calls that are no attempts (tasks.metrics.calls_not_counted).
NOT_COUNTED_WORDS = {"limit": "rate/concurrency refusal", "outage": "provider unavailable",
                     "interrupted": "never handed to the provider"}


def attempts_line(total_calls: int, not_counted: dict[str, int]) -> str:
    """The report's attempts figure, with the calls that are not attempts and why (`1263 call attempts
    (4 not counted: provider unavailable)`)."""
    line = f"  call attempts         {total_calls:>8}"
    if not_counted:
        line += "   (" + ", ".join(f"{n} not counted: {why}" for why, n in sorted(not_counted.items())) + ")"
    return line


def open_snapshot_command(snapshot: Path, cwd: Path | None = None) -> str:
    """The command that opens the analyst snapshot read-only from `cwd` (default: here): the DuckDB shell the
    project installs (the `duckdb-cli` package, beside this Python: `.venv/bin/duckdb`), and the snapshot's
    path as seen from there (`make demo` runs in the checkout: data/demo.analytics.duckdb). A bare file
    name would open, or create, another file, read-write."""
    cwd = Path(cwd or Path.cwd()).resolve()

    def shown(path: Path) -> Path:
        path = path.resolve() if path.is_absolute() else path
        return path.relative_to(cwd) if path.is_relative_to(cwd) else path

    shell = Path(sys.executable).parent / "duckdb"
    program = str(shown(shell.absolute())) if shell.exists() else "duckdb"
    return f"{program} -readonly {shown(Path(snapshot).resolve())}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """`--help` says what the demo does before it replaces data/demo.duckdb (it used to run at once)."""
    parser = argparse.ArgumentParser(
        prog="python -m flows.demo", description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog="data/demo.duckdb and its companions are rebuilt on every run; no other database is touched."
        " From make: make demo DEMO_ARGS=\"--port 8502\".")
    parser.add_argument("--no-dashboard", action="store_true",
                        help="print the report and stop, without serving the dashboard (as DEMO_NO_DASHBOARD=1)")
    parser.add_argument("--port", type=int, default=8501, help="the dashboard's port (default 8501)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port: {args.port} is not a port number (1-65535)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # (no telemetry, the ephemeral server's longer start-up wait: flows/__init__.py)
    os.environ["CAMPAIGNS_DB"] = str(DEMO_DB)
    os.environ["CAMPAIGNS_PROVIDER"] = "simulator"
    # The simulator marks 0.8% of calls as spam; at the default pause threshold (3 marks in 24 h, and 2% of
    # the number's calls) a number at its 100-calls-a-day cap has a ~4.5% chance a day of 3 marks by chance
    # (binomial), so one of the two is likely paused within the two weeks and the story stops half-way. The demo
    # runs with 5 marks, set here like an operator would (the env wins if set).
    os.environ.setdefault("CAMPAIGNS_NUMBER_MAX_SPAM_MARKS", "5")
    started = time.perf_counter()
    db = DEMO_DB
    step(f"fresh demo store at {db}")
    fresh_store(db)
    start = story_start()
    set_up = start - SET_UP_BEFORE_START  # the campaign and its contacts are dated by the story's clock
    campaign_id = build(db, set_up)
    step(f"campaign {campaign_id} 'Spring outreach' (America/Phoenix, Mon–Fri 08:00–18:00, 5 attempts, rotation over 2 active numbers)")
    step("starting Prefect (local, ephemeral) and importing data/sample_contacts.csv through the import-contacts flow …")
    from flows.import_contacts import import_contacts

    imported = import_contacts(campaign_id, str(PROJECT_ROOT / "data" / "sample_contacts.csv"), db=str(db),
                               now=set_up + timedelta(hours=1))
    step(f"imported: {imported['rows']} rows → {imported['imported']} new contacts, {imported['enrolled']} enrolled, "
         f"{imported['duplicates_merged']} duplicates merged, {imported['invalid']} rejected, "
         f"{imported['warned']} imported without a bad value")
    step(f"simulating {DAYS} days of dialing, enrichment and metrics on the virtual clock (seed {SEED}) …")
    from flows.simulate import simulate_campaigns

    simulated = simulate_campaigns(start=start, days=DAYS, campaign_ids=[campaign_id], db=str(db), seed=SEED)
    step(f"simulated until {simulated['end']:%Y-%m-%d %H:%M} UTC: {simulated['placed']} calls placed in {simulated['ticks']} ticks")
    figures = report(db, campaign_id)
    k = figures["kpis"]
    print()
    print("  voice-campaigns demo — Spring outreach")
    print(f"  contacts enrolled     {figures['contacts']:>8}   (finished: {figures['finished']})")
    print(attempts_line(k["total_calls"], figures["not_counted"]))
    print(f"  contacts called       {k['contacts_called']:>8}")
    print(f"  connection rate       {k['connection_rate']:>7.1f}%")
    print(f"  avg. call duration    {k['avg_call_duration_seconds'] or 0:>7.0f} s")
    print(f"  credits used          {k['credits_used']:>8}")
    print("  attempts per outbound number: " + ", ".join(f"{n} {c}" for n, c in figures["numbers"]))
    for number_id, e164, reason in figures["paused"]:
        print(f"  out of rotation       {e164}: {reason}  (put back: campaigns numbers restore {number_id})")
    print(f"  database              {figures['db']}")
    print(f"  analyst snapshot      {figures['snapshot']}  (open it read-only: {open_snapshot_command(figures['snapshot'])})")
    print(f"  data part took {time.perf_counter() - started:.0f} s")
    print()
    if args.no_dashboard or os.environ.get("DEMO_NO_DASHBOARD"):
        return 0
    step(f"serving the dashboard on http://localhost:{args.port} (Ctrl-C stops it)")
    sys.stdout.flush()
    sys.stderr.flush()
    # Streamlit replaces this process (same pid): stopping `make demo` stops the server; a child process
    # outlived a demo killed by a signal and kept port 8501
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "dashboards" / "app.py"),
                              "--server.headless", "true", "--server.port", str(args.port), "--browser.gatherUsageStats", "false",
                              "--client.toolbarMode", "minimal",  # as `campaigns dashboard`: no Deploy button
                              "--server.address", "localhost"])  # this machine only, as `make serve` and the URL say


if __name__ == "__main__":
    sys.exit(main())
