"""Contention soak: dashboard sessions read and save while ticks, enrichment and metrics write.

Other processes write as the scheduled flows do: a dialer (a tick and an enrichment pass every
2 s, each moving a virtual clock one minute on) and an aggregator (metrics + analyst snapshot every
3 s). This process plays the dashboard: reader threads (one per session) run the dashboard's
queries through `dashboards.state.reading()` with think time between clicks, one thread saves
campaign settings and one saves call feedback through `writing()`. Printed: dashboard read
latency (median, p95) with the writers off (baseline) and on, the ratio, errors shown to users
(must be 0), busy banners (a lock wait over CAMPAIGNS_DASHBOARD_LOCK_TIMEOUT_SECONDS), lost writes
(must be 0) and flow failures.

    python -m bench.soak                 # 10 minutes (make soak)
    python -m bench.soak --seconds 180   # a shorter run
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

START = datetime(2026, 4, 28, 15, 0, tzinfo=UTC)  # Tuesday 08:00 in Phoenix
CONTACTS = 1500


def prepare(db: Path) -> dict:
    """A store with the reference campaign, its contacts and a first hour of calls."""
    os.environ["CAMPAIGNS_DB"] = str(db)
    os.environ.setdefault("CAMPAIGNS_DIAL_PACE_SECONDS", "3")
    from flows.enrich_calls import run_enrichment
    from tasks.clock import VirtualClock
    from tasks.dialing import run_tick
    from tasks.settings import reset_settings
    from tasks.store import init_db, transaction
    from tasks.telephony import make_provider
    from tests.factories import make_campaign_db

    reset_settings()
    init_db(db)
    ids = make_campaign_db(db, batch_size=10, max_attempts=3)
    with transaction(db) as conn:  # set-based: one statement per table, not one per contact
        conn.execute(
            "insert into contacts (phone_e164, name, company, properties)"
            " select '+1602555' || lpad(i::varchar, 4, '0'), 'Person ' || i, 'Acme', '{\"plan\": \"gold\"}'"
            " from range(?) t(i)", [CONTACTS])
        conn.execute("insert into campaign_contacts (campaign_id, contact_id)"
                     " select ?, contact_id from contacts order by contact_id", [ids["campaign_id"]])
    provider = make_provider(db=db)
    clock = VirtualClock(START)
    for _ in range(3):
        run_tick(db, provider, clock, pace_seconds=3)
        run_enrichment(db, provider, clock.now())
        clock.advance_to(clock.now() + timedelta(minutes=10))
    return ids


# -- the writing processes ----------------------------------------------------------------------

def dial_writer(db: str, seconds: float) -> None:
    """Every 2 s: a tick and an enrichment pass, the virtual clock one minute further each time."""
    from flows.enrich_calls import run_enrichment
    from tasks.clock import VirtualClock
    from tasks.dialing import run_tick
    from tasks.telephony import make_provider

    provider = make_provider(db=db)
    clock = VirtualClock(START + timedelta(hours=1))
    stop, rounds, failures = time.monotonic() + seconds, 0, 0
    while time.monotonic() < stop:
        began = time.monotonic()
        try:
            run_tick(db, provider, clock, pace_seconds=3)
            run_enrichment(db, provider, clock.now())
            rounds += 1
        except Exception:
            failures += 1
            traceback.print_exc()
        clock.advance_to(clock.now() + timedelta(minutes=1))
        time.sleep(max(0.0, 2.0 - (time.monotonic() - began)))
    print(f"dial rounds={rounds} failures={failures}", flush=True)


def metrics_writer(db: str, seconds: float) -> None:
    """Every 3 s: incremental metrics and the analyst snapshot."""
    from flows.aggregate_metrics import run_aggregation

    stop, rounds, failures = time.monotonic() + seconds, 0, 0
    while time.monotonic() < stop:
        began = time.monotonic()
        try:
            run_aggregation(db, now=datetime.now(UTC))
            rounds += 1
        except Exception:
            failures += 1
            traceback.print_exc()
        time.sleep(max(0.0, 3.0 - (time.monotonic() - began)))
    print(f"metrics rounds={rounds} failures={failures}", flush=True)


# -- the dashboard ------------------------------------------------------------------------------

class Tally:
    """What the dashboard threads saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.busy = 0
        self.writes = 0
        self.acked: dict[tuple, str] = {}  # (kind, key) → the last value a user was told was saved

    def error(self, error: Exception) -> None:
        with self.lock:
            self.errors.append(f"{type(error).__name__}: {error}")


def _queries(campaign_id: int):
    from dashboards.queries import calls, campaigns, contacts, metrics

    today, start = date(2026, 4, 28), date(2026, 4, 27)
    return [
        lambda c: campaigns.campaign_page(c, datetime.now(UTC)),
        lambda c: campaigns.campaign_header(c, campaign_id, datetime.now(UTC)),
        lambda c: calls.count_calls(c, campaign_id),
        lambda c: calls.call_page(c, campaign_id),
        lambda c: calls.call_page(c, campaign_id, calls.CallFilters(search="Person 1")),
        lambda c: contacts.contact_page(c, campaign_id),
        lambda c: contacts.contact_page(c, campaign_id, search="Acme"),
        lambda c: metrics.kpi_cards(c, campaign_id, start, today),
        lambda c: metrics.calls_made(c, campaign_id, start, today),
        lambda c: metrics.contact_funnel(c, campaign_id, start, today),
    ]


def reader(tally: Tally, campaign_id: int, stop: float, seed: int, think: tuple[float, float]) -> None:
    """One dashboard session clicking around: a query, then think time."""
    from dashboards.state import reading
    from tasks.errors import StoreLockedError

    rng, queries = random.Random(seed), _queries(campaign_id)
    while time.monotonic() < stop:
        query = rng.choice(queries)
        began = time.perf_counter()
        try:
            with reading() as conn:
                query(conn)
            with tally.lock:
                tally.latencies.append(time.perf_counter() - began)
        except StoreLockedError:
            with tally.lock:
                tally.busy += 1
        except Exception as error:
            tally.error(error)
        time.sleep(rng.uniform(*think))


def settings_saver(tally: Tally, campaign_id: int, stop: float) -> None:
    """A manager editing the campaign's objective about once a second."""
    from dashboards.state import now, writing
    from tasks.campaigns import update_campaign
    from tasks.errors import StoreLockedError

    n = 0
    while time.monotonic() < stop:
        n += 1
        value = f"soak objective {n}"
        try:
            with writing() as conn:
                update_campaign(conn, campaign_id, {"objective": value}, now())
            with tally.lock:
                tally.writes += 1
                tally.acked[("objective", campaign_id)] = value
        except StoreLockedError:
            with tally.lock:
                tally.busy += 1
        except Exception as error:
            tally.error(error)
        time.sleep(1.0)


def feedback_saver(tally: Tally, call_ids: list[int], stop: float, seed: int) -> None:
    """Reviewers rating calls and writing comments, two a second."""
    from dashboards.state import now, writing
    from tasks.errors import StoreLockedError
    from tasks.feedback import set_feedback

    rng, n = random.Random(seed), 0
    while time.monotonic() < stop:
        n += 1
        call_id, comment = rng.choice(call_ids), f"soak comment {n}"
        try:
            with writing() as conn:
                set_feedback(conn, call_id, rng.choice(["up", "down"]), comment, now())
            with tally.lock:
                tally.writes += 1
                tally.acked[("feedback", call_id)] = comment
        except StoreLockedError:
            with tally.lock:
                tally.busy += 1
        except Exception as error:
            tally.error(error)
        time.sleep(0.5)


def lost_writes(tally: Tally) -> list[tuple]:
    """Saves a user was told succeeded whose value is not what the store holds now."""
    from dashboards.state import reading

    lost = []
    with reading() as conn:
        for (kind, key), value in tally.acked.items():
            if kind == "objective":
                stored = conn.execute("select objective from campaigns where campaign_id = ?", [key]).fetchone()[0]
            else:
                stored = conn.execute("select comment from call_feedback where call_id = ?", [key]).fetchone()
                stored = stored[0] if stored else None
            if stored != value:
                lost.append((kind, key, value, stored))
    return lost


def unreadable_tables() -> list[str]:
    """Tables whose every row cannot be read back (a corrupt block would show here)."""
    from dashboards.state import reading

    bad = []
    with reading() as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_catalog = current_database()"
            " and table_type = 'BASE TABLE'").fetchall()]
        for table in tables:
            try:
                conn.execute(f'select * from "{table}"').fetchall()
            except Exception as error:  # noqa: BLE001 - any failure to read is the finding
                bad.append(f"{table}: {str(error)[:200]}")
    return bad


def dashboard(campaign_id: int, seconds: float, readers: int, *, writes: bool, seed: int = 7,
              think: tuple[float, float] = (0.3, 1.5)) -> Tally:
    """Run the dashboard threads for `seconds`."""
    from dashboards.state import reading

    with reading() as conn:
        call_ids = [r[0] for r in conn.execute("select call_id from calls order by call_id limit 200").fetchall()]
    tally, stop = Tally(), time.monotonic() + seconds
    threads = [threading.Thread(target=reader, args=(tally, campaign_id, stop, seed + i, think)) for i in range(readers)]
    if writes:
        threads.append(threading.Thread(target=settings_saver, args=(tally, campaign_id, stop)))
        threads.append(threading.Thread(target=feedback_saver, args=(tally, call_ids, stop, seed)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def _ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_soak(db: Path, seconds: float, readers: int = 8, baseline_seconds: float | None = None) -> dict:
    """The whole soak on a fresh store at `db`; returns the figures."""
    ids = prepare(db)
    baseline = dashboard(ids["campaign_id"], baseline_seconds or max(5.0, seconds / 10), readers, writes=False)
    env = {**os.environ, "CAMPAIGNS_DB": str(db)}
    writers = [
        subprocess.Popen([sys.executable, "-m", "bench.soak", "--writer", kind, "--db", str(db), "--seconds", str(seconds)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for kind in ("dial", "metrics")
    ]
    time.sleep(1.0)  # let the writers import and start writing
    tally = dashboard(ids["campaign_id"], seconds, readers, writes=True)
    flow_output = [w.communicate(timeout=seconds + 300) for w in writers]
    flow_failures = sum(int(line.rsplit("failures=", 1)[1]) for out, _ in flow_output
                        for line in out.splitlines() if "failures=" in line)
    rounds = {line.split()[0]: int(line.split("rounds=")[1].split()[0]) for out, _ in flow_output
              for line in out.splitlines() if "rounds=" in line}
    lost = lost_writes(tally)
    unreadable = unreadable_tables()
    return {
        "seconds": seconds,
        "readers": readers,
        "reads": len(tally.latencies),
        "read_median_ms": round(_ms(tally.latencies, 0.5), 1),
        "read_p95_ms": round(_ms(tally.latencies, 0.95), 1),
        "baseline_median_ms": round(_ms(baseline.latencies, 0.5), 1),
        "baseline_p95_ms": round(_ms(baseline.latencies, 0.95), 1),
        "errors": len(tally.errors),
        "error_samples": tally.errors[:5],
        "busy_banners": tally.busy,
        "writes": tally.writes,
        "lost_writes": len(lost),
        "unreadable_tables": unreadable,
        "lost_samples": lost[:5],
        "flow_failures": flow_failures,
        "flow_exit_codes": [w.returncode for w in writers],
        "flow_stderr_tail": [err[-1500:] for _, err in flow_output if err.strip()],
        "dial_rounds": rounds.get("dial", 0),
        "metrics_rounds": rounds.get("metrics", 0),
    }


def report(figures: dict) -> str:
    """The figures as the lines `make soak` prints."""
    ratio = figures["read_p95_ms"] / figures["baseline_p95_ms"] if figures["baseline_p95_ms"] else float("nan")
    return "\n".join([
        f"soak: {figures['seconds']:.0f} s, {figures['readers']} dashboard sessions + settings and feedback savers; "
        f"writers: {figures['dial_rounds']} tick+enrichment rounds, {figures['metrics_rounds']} metrics+snapshot rounds",
        f"dashboard reads: {figures['reads']}  median {figures['read_median_ms']} ms  p95 {figures['read_p95_ms']} ms",
        f"baseline (no writers): median {figures['baseline_median_ms']} ms  p95 {figures['baseline_p95_ms']} ms  "
        f"-> p95 ratio under contention {ratio:.1f}x",
        f"errors shown to users: {figures['errors']}  busy banners: {figures['busy_banners']}  "
        f"writes: {figures['writes']}  lost writes: {figures['lost_writes']}  flow failures: {figures['flow_failures']}  "
        f"unreadable tables: {len(figures['unreadable_tables'])}",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--writer", choices=["dial", "metrics"])
    args = parser.parse_args()
    if args.writer:
        (dial_writer if args.writer == "dial" else metrics_writer)(str(args.db), args.seconds)
        return
    db = args.db or Path(tempfile.mkdtemp(prefix="soak-")) / "campaigns.duckdb"
    figures = run_soak(db, args.seconds, args.readers)
    print(report(figures), flush=True)
    for key in ("error_samples", "lost_samples", "flow_stderr_tail", "unreadable_tables"):
        if figures[key]:
            print(f"{key}: {figures[key]}")
    if figures["errors"] or figures["lost_writes"] or figures["flow_failures"] or figures["unreadable_tables"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
