"""Smart dialing vs the plain policy: the same 50,000-contact simulated campaign dialled both ways.

Contacts are spread over the four main US time zones (area codes); the campaign calls Monday to
Friday 08:00-20:00 Chicago time, up to 4 attempts, 2 a day, over 5 rotating numbers, a call every
3 s with 20 concurrent calls (the production defaults, so the lines are the bottleneck). The plain
run retries every outcome at once (the engine's behaviour before the retry policy) in enrollment
order; the smart run uses the default retry policy per outcome and the best-time ordering (20 %
exploration). The simulator's answer odds depend only on the callee's local hour and weekday and
are the same in both runs, so any difference comes from the policy. Size: BENCH_SMART_CONTACTS
(default 50,000); seed: BENCH_SMART_SEED (default 1).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from tasks.forecast import _totals, simulate_campaign
from tasks.store import connect, init_db, transaction
from tasks.telephony.simulator import SimulatedProvider

START = datetime(2026, 4, 27, 5, 0, tzinfo=timezone.utc)  # Monday 00:00 in Chicago (CDT)
# area code → callee zone (single-zone area codes, so the simulator's zone agrees)
AREAS = {"212": "America/New_York", "404": "America/New_York", "312": "America/Chicago",
         "713": "America/Chicago", "303": "America/Denver", "602": "America/Phoenix",
         "213": "America/Los_Angeles", "206": "America/Los_Angeles"}
PLAIN_POLICY = {key: "now" for key in ("dial_busy", "dial_no_answer", "voicemail_reached", "user_declined",
                                      "short_user_hangup", "marked_as_spam")}
PACE_SECONDS = 3.0  # with 20 concurrent calls (the defaults): about 1,200 calls an hour, so capacity binds
HOURS = {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def build(db: Path, contacts: int, smart: bool) -> None:
    """The campaign with `contacts` contacts, plain or smart."""
    init_db(db)
    with transaction(db) as conn:
        conn.execute("insert into agents (name, provider_agent_id) values ('Ava', 'agent_1')")
        for i in range(5):
            conn.execute("insert into phone_numbers (e164, nickname) values (?, ?)", [f"+1312555010{i}", f"line {i}"])
        conn.execute(
            """
            insert into campaigns (name, agent_id, start_date, calling_days, weekly_schedule, time_zone, country,
                                   max_attempts, attempts_per_day, batch_size, rotation_enabled, outbound_number_ids,
                                   active, retry_policy, smart_ordering, exploration_share, number_daily_cap)
            values ('Bench', 1, date '2026-04-27', ['mon','tue','wed','thu','fri'], ?, 'America/Chicago', 'US',
                    4, 2, 200, true, [1, 2, 3, 4, 5], true, ?, ?, 0.2, null)
            """,
            [json.dumps(HOURS), None if smart else json.dumps(PLAIN_POLICY), smart],
        )
        areas = list(AREAS)
        conn.execute(
            """
            insert into contacts (phone_e164, name, time_zones)
            select '+1' || ($areas)[(i % $n) + 1] || lpad((2000000 + i)::varchar, 7, '0'), 'Contact ' || i,
                   [($zones)[(i % $n) + 1]]
            from range($contacts) t(i)
            """,
            {"areas": areas, "zones": [AREAS[a] for a in areas], "n": len(areas), "contacts": contacts},
        )
        conn.execute("insert into campaign_contacts (campaign_id, contact_id) select 1, contact_id from contacts")


def run(contacts: int, smart: bool, seed: int) -> dict:
    """Simulate the campaign to completion; its outcome figures."""
    with tempfile.TemporaryDirectory(prefix="bench-smart-") as folder:
        db = Path(folder) / "smart.duckdb"
        build(db, contacts, smart)
        provider = SimulatedProvider(Path(folder) / "simulator.sqlite", seed=seed, concurrency_limit=20)
        started = time.perf_counter()
        simulate_campaign(db, provider, START, 60, 1, PACE_SECONDS)
        seconds = time.perf_counter() - started
        totals = _totals(db, 1)
        with connect(db) as conn:
            last = conn.execute("select max(queued_at) from calls").fetchone()[0]
    success = totals["successful_contacts"] or 1
    return {
        "seconds": seconds, "days": (last - START).total_seconds() / 86400, "calls": totals["calls"],
        "connection_rate": totals["connected_calls"] / max(totals["calls"], 1),
        "connected_contacts": totals["connected_contacts"], "successful_contacts": totals["successful_contacts"],
        "calls_per_success": totals["calls"] / success, "credits_per_success": totals["credits"] / success,
    }


def main() -> None:
    contacts = int(os.environ.get("BENCH_SMART_CONTACTS", 50_000))
    seed = int(os.environ.get("BENCH_SMART_SEED", 1))
    plain, smart = run(contacts, False, seed), run(contacts, True, seed)
    rows = [
        ("connection rate (connected / attempts)", f"{plain['connection_rate']:.2%}", f"{smart['connection_rate']:.2%}",
         smart["connection_rate"] / plain["connection_rate"]),
        ("connected contacts", plain["connected_contacts"], smart["connected_contacts"],
         smart["connected_contacts"] / max(plain["connected_contacts"], 1)),
        ("successful contacts", plain["successful_contacts"], smart["successful_contacts"],
         smart["successful_contacts"] / max(plain["successful_contacts"], 1)),
        ("calls per successful contact", f"{plain['calls_per_success']:.2f}", f"{smart['calls_per_success']:.2f}",
         smart["calls_per_success"] / plain["calls_per_success"]),
        ("credits per successful contact", f"{plain['credits_per_success']:.0f}", f"{smart['credits_per_success']:.0f}",
         smart["credits_per_success"] / plain["credits_per_success"]),
        ("calls (attempts)", plain["calls"], smart["calls"], smart["calls"] / max(plain["calls"], 1)),
        ("simulated days to the last call", f"{plain['days']:.1f}", f"{smart['days']:.1f}", smart["days"] / plain["days"]),
    ]
    print(f"smart dialing, {contacts:,} contacts over 4 US time zones, seed {seed} "
          f"(wall {plain['seconds']:.0f} s plain, {smart['seconds']:.0f} s smart)")
    print(f"{'':34}{'plain':>12}{'smart':>12}{'smart/plain':>13}")
    for name, a, b, ratio in rows:
        print(f"{name:34}{a!s:>12}{b!s:>12}{ratio:>12.3f}x")


if __name__ == "__main__":
    main()
