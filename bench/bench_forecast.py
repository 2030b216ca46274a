"""The forecast from observed rates against the truth, with the default-rate forecast as the naive baseline.

A campaign whose callees answer far less than the simulator's default (pick-up chance × 0.4,
success chance × 0.6 — the "truth" odds) is dialled for its first two days by a simulator with
those odds. From there it is forecast twice — with the odds observed in those two days (what
`campaigns forecast` does once 200 calls are in) and with the default odds (the baseline) — and
then dialled on to completion with the true odds. Printed: completion, calls, connected and
successful contacts and credits for the truth and both forecasts, each forecast's error, and the
wall time of a forecast against the truth run of the same remaining campaign (the forecast adds
the copy). Reference campaign settings (Phoenix, 08:00-18:00 Monday to Friday, 4 attempts, 1 a
day) with 3 rotating numbers and no daily cap per number. Size: BENCH_FORECAST_CONTACTS (default
5,000); seed BENCH_FORECAST_SEED (default 1).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tasks.forecast import _totals, forecast, simulate_campaign
from tasks.settings import get_settings, reset_settings
from tasks.store import connect, init_db, transaction
from tasks.telephony.simulator import OutcomeRates, SimulatedProvider

START = datetime(2026, 4, 27, 7, 0, tzinfo=timezone.utc)  # Monday 00:00 in Phoenix
OBSERVED_DAYS = 2
TRUE_RATES = OutcomeRates(answer_scale_by_hour=(0.4,) * 24, success_scale=0.6)
HOURS = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
MEASURES = ("calls", "connected_contacts", "successful_contacts", "credits")


def build(db: Path, contacts: int) -> None:
    """The campaign with `contacts` Phoenix contacts."""
    init_db(db)
    with transaction(db) as conn:
        conn.execute("insert into agents (name, provider_agent_id) values ('Ava', 'agent_1')")
        for i in range(3):
            conn.execute("insert into phone_numbers (e164, nickname) values (?, ?)", [f"+1602555010{i}", f"line {i}"])
        conn.execute(
            """
            insert into campaigns (name, agent_id, start_date, calling_days, weekly_schedule, time_zone, country,
                                   max_attempts, attempts_per_day, batch_size, rotation_enabled, outbound_number_ids,
                                   active, number_daily_cap)
            values ('Bench', 1, date '2026-04-27', ['mon','tue','wed','thu','fri'], ?, 'America/Phoenix', 'US',
                    4, 1, 200, true, [1, 2, 3], true, null)
            """,
            [json.dumps(HOURS)],
        )
        conn.execute(
            "insert into contacts (phone_e164, name) select '+1602' || lpad((2000000 + i)::varchar, 7, '0'),"
            " 'Contact ' || i from range($contacts) t(i)", {"contacts": contacts})
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) select 1, contact_id from contacts")


def _last_call(db: Path) -> datetime:
    with connect(db) as conn:
        return conn.execute("select max(coalesce(ended_at, queued_at)) from calls").fetchone()[0]


def main() -> None:
    contacts = int(os.environ.get("BENCH_FORECAST_CONTACTS", 5_000))
    seed = int(os.environ.get("BENCH_FORECAST_SEED", 1))
    # A low connection rate would pause the numbers (number health); the bench measures the odds, not that.
    saved = {k: os.environ.get(k) for k in ("CAMPAIGNS_NUMBER_MIN_CONNECTION_RATE", "CAMPAIGNS_NUMBER_MAX_SPAM_MARKS")}
    os.environ.update(CAMPAIGNS_NUMBER_MIN_CONNECTION_RATE="0", CAMPAIGNS_NUMBER_MAX_SPAM_MARKS="1000000")
    reset_settings()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-forecast-") as folder:
            db = Path(folder) / "campaign.duckdb"
            build(db, contacts)
            truth = SimulatedProvider(Path(folder) / "truth.sqlite", seed=seed,
                                      concurrency_limit=get_settings().provider_concurrency_limit, rates=TRUE_RATES)
            pace = get_settings().dial_pace_seconds
            simulate_campaign(db, truth, START, OBSERVED_DAYS, 1, pace)
            now = START + timedelta(days=OBSERVED_DAYS)
            results, seconds = {}, {}
            for rates in ("observed", "default"):
                started = time.perf_counter()
                results[rates] = forecast(db, 1, now, seed=seed + 1, pace_seconds=pace, rates=rates, work_dir=folder)
                seconds[rates] = time.perf_counter() - started
            started = time.perf_counter()
            simulate_campaign(db, truth, now, 120, 1, pace)
            seconds["truth"] = time.perf_counter() - started
            actual = {**_totals(db, 1), "completion": _last_call(db)}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()

    observed, default = results["observed"], results["default"]
    print(f"forecast accuracy, {contacts:,} contacts, the truth answering 0.4x and succeeding 0.6x the default odds, "
          f"forecast after {OBSERVED_DAYS} days ({observed.rates_used}), seed {seed}")
    print(f"{'':24}{'truth':>12}{'observed':>12}{'error':>9}{'default':>12}{'error':>9}")
    for key in MEASURES:
        truth_value = actual[key]
        row = f"{key:24}{truth_value:>12,}"
        for result in (observed, default):
            value = getattr(result, key)
            row += f"{value:>12,}{(value - truth_value) / max(truth_value, 1):>+9.1%}"
        print(row)
    row = f"{'completion (error h)':24}{actual['completion']:%m-%d %H:%M}".ljust(36)
    for result in (observed, default):
        if result.completion is None:
            row += f"{'none':>12}{'':>9}"
            continue
        late = (result.completion - actual["completion"]).total_seconds() / 3600
        row += f"{result.completion:%m-%d %H:%M}".rjust(12) + f"{late:>+9.1f}"
    print(row)
    print(f"{'connection rate':24}{actual['connected_calls'] / max(actual['calls'], 1):>12.1%}"
          f"{observed.connected_calls / max(observed.calls, 1):>12.1%}{'':>9}"
          f"{default.connected_calls / max(default.calls, 1):>12.1%}")
    print(f"wall: forecast {seconds['observed']:.1f} s (observed rates), {seconds['default']:.1f} s (default); "
          f"the truth run of the same remaining campaign {seconds['truth']:.1f} s; "
          f"forecast/truth {seconds['observed'] / seconds['truth']:.2f}x")


if __name__ == "__main__":
    main()
