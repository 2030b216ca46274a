"""Seeded, randomized model-based test: real operations interleaved at random on one store.

Each seed builds a store (temp DuckDB file, simulated provider) and applies ~40 random steps through the
functions the CLI uses — ticks on a virtual clock moving minutes to days forward (across New York's DST end),
enrichment, aggregation, imports of new and known numbers, removals, phone and name edits, campaign edits, the Run
button, do-not-call add/remove, duplicate and delete — checking after every step:

- `check_invariants` (limits against the settings as they are now: when a limit was lowered below attempts
  already made, the rest is checked with the limits lifted for the moment);
- no attempt key twice, the provider saw each key once and every provider call has its row (but the calls of
  a deleted campaign, deleted with it on purpose);
- every call's `queued_at` lies inside the campaign's schedule at that moment unless a manual run made it;
- counted attempts per enrollment <= max attempts and per campaign-local day <= attempts per day at the time
  of the call;
- a Miami number (Florida's rolling cap, lowered to 1 call / 24 h) is never called twice in 24 h, counting the
  calls of deleted campaigns;
- no exception but UserError (and subclasses) escapes, and an operation refused with one wrote nothing.

Minimal reproductions of what it found follow the scenario (FINDING 1 xfail: reported; 2 and 3: fixed).
More seeds: SCENARIO_SEEDS=200 .venv/bin/python -m pytest tests/tasks/test_scenario_random_ops.py -q
"""

from __future__ import annotations

import os
import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flows.aggregate_metrics import run_aggregation
from flows.enrich_calls import run_enrichment
from flows.import_contacts import run_import
from tasks import campaigns as camp
from tasks import compliance
from tasks import contacts_import as ci
from tasks.clock import VirtualClock
from tasks.dialing import load_plans, run_manual, run_tick
from tasks.errors import UserError
from tasks.store import connect, transaction
from tasks.telephony.simulator import SimulatedProvider
from tests.factories import make_campaign_db
from tests.invariants import check_invariants

# more seeds for a longer search: SCENARIO_SEEDS=200 (the default run takes ~20 s)
SEEDS = range(int(os.environ.get("SCENARIO_SEEDS", "10")))
# import contacts removed from the campaign again too (FINDING 1, fixed: they get their counters back)
REENROLL_REMOVED = True
STEPS = 40
# Friday 2026-10-30 08:00 in New York; New York leaves DST on Sunday 2026-11-01
START = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
ZONE = "America/New_York"
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# a pool of numbers: New York (212) and Phoenix (602) callees
POOL = [f"+1212555{i:04d}" for i in range(100, 112)] + [f"+1602555{i:04d}" for i in range(200, 208)] \
    + [f"+1305555{i:04d}" for i in range(300, 304)]  # Miami: Florida's rolling cap, lowered to 1 call / 24 h here
SCHEDULES = [
    {"same_hours": ["08:00-18:00"]},
    {"same_hours": ["00:00-24:00"], "calling_days": ALL_DAYS},
    {"same_hours": ["01:00-03:00"], "calling_days": ALL_DAYS},  # the repeated/skipped hours of a DST change
    {"same_hours": ["09:00-12:00"], "calling_days": ["mon", "wed", "fri"]},
    {"same_hours": ["17:30-21:00"], "calling_days": ["tue", "thu", "sat", "sun"]},
]
TABLES = ["campaigns", "contacts", "campaign_contacts", "do_not_call", "calls", "dial_runs", "import_runs"]


class Finding(AssertionError):
    pass


def _fingerprint(db: Path) -> dict:
    with connect(db) as conn:
        return {t: conn.execute(f"select count(*), sum(hash(x::varchar)) from {t} x").fetchone() for t in TABLES}


def _open(schedule, at: datetime) -> bool:
    """The campaign's schedule read plainly on the local wall clock (an oracle independent of tasks/schedule.py)."""
    local = at.astimezone(ZoneInfo(schedule.time_zone))
    day = ALL_DAYS[local.weekday()]
    if schedule.start_date is None or local.date() < schedule.start_date:
        return False
    if schedule.end_date is not None and local.date() > schedule.end_date:
        return False
    wall = local.time().replace(tzinfo=None)
    return day in schedule.calling_days and any(
        start <= wall and (wall < end or end == time.max) for start, end in schedule.windows.get(day, ()))


class Scenario:
    def __init__(self, db: Path, tmp: Path, seed: int):
        self.db, self.tmp, self.seed = db, tmp, seed
        self.rng = random.Random(seed)
        ids = make_campaign_db(db, time_zone=ZONE, start_date=date(2026, 10, 1), max_attempts=2,
                               attempts_per_day=1, batch_size=6, calling_days=ALL_DAYS,
                               weekly_schedule={d: [["08:00", "20:00"]] for d in ALL_DAYS})
        self.agent_id, self.number_ids = ids["agent_id"], ids["number_ids"]
        self.campaigns = [ids["campaign_id"]]
        self.deleted: set[int] = set()
        with transaction(db) as conn:
            conn.execute("update calling_rules set max_calls_24h = 1 where rule_id = 'US-FL'")
        self.gone_calls: list[tuple[str, datetime]] = []  # counted calls of deleted campaigns: (phone, queued_at)
        self.clock = VirtualClock(START)
        self.provider = SimulatedProvider(tmp / "sim.sqlite", seed=seed, concurrency_limit=self.rng.choice([2, 5, 20]))
        self.limits_lowered = False
        self.seen_call_id = 0
        self.files = 0
        self.log: list[str] = []

    # ------------------------------------------------------------------ helpers
    def now(self) -> datetime:
        return self.clock.now()

    def pick_campaign(self, any_id: bool = False) -> int:
        if any_id and self.rng.random() < 0.1:
            return self.rng.choice([*self.deleted, 999]) if self.deleted else 999
        return self.rng.choice(self.campaigns)

    def contacts(self, campaign_id: int | None = None) -> list[int]:
        with connect(self.db) as conn:
            if campaign_id is None:
                return [r[0] for r in conn.execute("select contact_id from contacts order by 1").fetchall()]
            return [r[0] for r in conn.execute("select contact_id from campaign_contacts where campaign_id = ?"
                                               " order by 1", [campaign_id]).fetchall()]

    # ------------------------------------------------------------------ operations
    def op_tick(self):
        self.advance()
        run_tick(self.db, self.provider, self.clock)

    def advance(self):
        unit = self.rng.choice(["min", "min", "hour", "hour", "day"])
        seconds = {"min": self.rng.randint(1, 59) * 60, "hour": self.rng.randint(1, 12) * 3600,
                   "day": self.rng.randint(1, 3) * 86400 + self.rng.randint(0, 23) * 3600}[unit]
        self.clock.advance_to(self.now() + timedelta(seconds=seconds))
        return seconds

    def op_enrich(self):
        run_enrichment(self.db, self.provider, self.now())

    def op_aggregate(self):
        run_aggregation(self.db, now=self.now(), full=self.rng.random() < 0.2, snapshot=self.rng.random() < 0.1)

    def op_import(self, campaign_id: int | None = None):
        campaign_id = campaign_id or self.pick_campaign(any_id=True)
        numbers = self.rng.sample(POOL, self.rng.randint(1, 8))
        if not REENROLL_REMOVED:  # FINDING 1 (see test_reenrolled_contact_*): leave removed contacts out
            with connect(self.db) as conn:
                removed = {r[0] for r in conn.execute(
                    "select distinct c.phone_e164 from calls k join contacts c using (contact_id)"
                    " where k.campaign_id = ? and not exists (select 1 from campaign_contacts e"
                    " where e.campaign_id = k.campaign_id and e.contact_id = k.contact_id)", [campaign_id]).fetchall()}
            numbers = [n for n in numbers if n not in removed] or [n for n in POOL if n not in removed][:1]
        # national and E.164 spellings of the same numbers, now and then a bad row or a duplicate
        lines = ["Phone,Name"] + [f"{n[2:] if self.rng.random() < 0.5 else n},P{n[-3:]}" for n in numbers]
        if self.rng.random() < 0.2:
            lines.append("123,Bad")
        if self.rng.random() < 0.2:
            lines.append(lines[1])
        self.files += 1
        path = self.tmp / f"import{self.files}.csv"
        path.write_text("\n".join(lines) + "\n")
        self.log[-1] += f" campaign={campaign_id} rows={lines[1:]}"
        run_import(campaign_id, path, db=self.db, now=self.now())

    def op_remove(self):
        campaign_id = self.pick_campaign()
        enrolled = self.contacts(campaign_id)
        contact_id = self.rng.choice(enrolled) if enrolled and self.rng.random() < 0.9 else 10_000
        self.log[-1] += f" campaign={campaign_id} contact={contact_id}"
        with transaction(self.db) as conn:
            ci.remove_contact_from_campaign(conn, campaign_id, contact_id)

    def op_edit_phone(self):
        known = self.contacts()
        if not known:
            return
        contact_id = self.rng.choice(known)
        phone = self.rng.choice(POOL)  # may belong to another contact: refused
        phone = phone[2:] if self.rng.random() < 0.5 else phone
        self.log[-1] += f" contact={contact_id} phone={phone}"
        with transaction(self.db) as conn:
            ci.edit_contact(conn, contact_id, {"phone": phone}, self.now())

    def op_edit_name(self):
        # an edit that keeps the number: the next claim resolves the contact's zone again
        known = self.contacts()
        if not known:
            return
        contact_id = self.rng.choice(known)
        self.log[-1] += f" contact={contact_id}"
        with transaction(self.db) as conn:
            ci.edit_contact(conn, contact_id, {"name": f"Edited {self.rng.randint(1, 999)}"}, self.now())

    def op_edit_campaign(self):
        campaign_id = self.pick_campaign(any_id=True)
        r = self.rng.random
        changes: dict = {}
        if r() < 0.4:
            changes["max_attempts"] = self.rng.randint(1, 4)
            with connect(self.db) as conn:  # the interesting values: as many as some unfinished contact has made
                made = [row[0] for row in conn.execute(
                    "select distinct attempts from campaign_contacts where campaign_id = ? and finished_at is null"
                    " and attempts > 0", [campaign_id]).fetchall()]
            if made and r() < 0.6:
                changes["max_attempts"] = self.rng.choice(made)
        if r() < 0.3:
            changes["attempts_per_day"] = self.rng.randint(1, 3)
        if r() < 0.3:
            changes.update(self.rng.choice(SCHEDULES))
        if r() < 0.15:
            changes["time_zone"] = self.rng.choice([ZONE, "America/Phoenix", "America/Los_Angeles", "Pacific/Honolulu"])
        if r() < 0.3:
            changes["batch_size"] = self.rng.randint(1, 8)
        if r() < 0.3:
            changes["active"] = r() < 0.8
        if not changes:
            changes["max_attempts"] = self.rng.randint(1, 4)
        self.log[-1] += f" campaign={campaign_id} {changes}"
        with transaction(self.db) as conn:
            before = camp.get_campaign_settings(conn, campaign_id)
            after = camp.update_campaign(conn, campaign_id, changes, self.now())
        if after.max_attempts < before.max_attempts or after.attempts_per_day < before.attempts_per_day:
            self.limits_lowered = True

    def op_manual(self):
        campaign_id = self.pick_campaign(any_id=True)
        self.log[-1] += f" campaign={campaign_id}"
        run_manual(self.db, self.provider, campaign_id, self.clock)

    def op_dnc(self):
        number = self.rng.choice(POOL) if self.rng.random() < 0.9 else self.rng.choice(["+1212555*", "+1602*"])
        campaign_id = self.pick_campaign() if self.rng.random() < 0.3 else None
        add = self.rng.random() < 0.6
        self.log[-1] += f" {'add' if add else 'remove'} {number} campaign={campaign_id}"
        with transaction(self.db) as conn:
            if add:
                compliance.add_dnc(conn, [number], self.now(), campaign_id=campaign_id)
            else:
                compliance.remove_dnc(conn, number, campaign_id=campaign_id)

    def op_duplicate(self):
        campaign_id = self.pick_campaign(any_id=True)
        with transaction(self.db) as conn:
            copy = camp.duplicate_campaign(conn, campaign_id, self.now())
        self.log[-1] += f" campaign={campaign_id} -> {copy}"
        self.campaigns.append(copy)

    def op_delete(self):
        if len(self.campaigns) < 2 and self.rng.random() < 0.9:
            return
        # mostly a copy: deleting the campaign that has the history leaves little to check
        campaign_id = self.rng.choice(self.campaigns[1:]) if len(self.campaigns) > 1 and self.rng.random() < 0.8 \
            else self.pick_campaign(any_id=True)
        self.log[-1] += f" campaign={campaign_id}"
        with connect(self.db) as conn:
            gone = conn.execute("select phone_e164, queued_at from calls where campaign_id = ? and counts_as_attempt",
                                [campaign_id]).fetchall()
        with transaction(self.db) as conn:
            camp.delete_campaign(conn, campaign_id)
        self.gone_calls += gone
        self.campaigns.remove(campaign_id)
        self.deleted.add(campaign_id)
        if not self.campaigns:  # keep one campaign to work on
            with transaction(self.db) as conn:
                self.campaigns.append(camp.create_campaign(conn, {
                    "name": f"Fresh {campaign_id}", "agent_id": self.agent_id, "time_zone": ZONE,
                    "start_date": date(2026, 10, 1), "calling_days": ALL_DAYS, "same_hours": ["08:00-18:00"],
                    "country": "US", "max_attempts": 3, "attempts_per_day": 1, "batch_size": 4,
                    "outbound_number_ids": self.number_ids[:1], "active": True}, self.now()))

    OPS = [("tick", 12), ("enrich", 6), ("aggregate", 2), ("import", 4), ("remove", 2), ("edit_phone", 2),
           ("edit_name", 1), ("edit_campaign", 4), ("manual", 3), ("dnc", 2), ("duplicate", 1), ("delete", 1)]

    # ------------------------------------------------------------------ the run
    def run(self, steps: int = STEPS) -> None:
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        # start with contacts so ticks have someone to call
        self.log.append("import (initial)")
        self.op_import(self.campaigns[0])
        for step in range(steps):
            name = self.rng.choices(names, weights)[0]
            self.log.append(f"{step}: {name}")
            before = _fingerprint(self.db) if name not in ("tick", "enrich", "aggregate", "manual") else None
            try:
                getattr(self, f"op_{name}")()
            except UserError as error:  # documented bad input: it must have written nothing
                self.log[-1] += f" -> {type(error).__name__}: {error}"
                if before is not None:
                    assert _fingerprint(self.db) == before, f"refused {name} wrote something"
            except Exception as error:
                raise Finding(f"seed {self.seed}: {type(error).__name__}: {error}\n" + "\n".join(self.log)) from error
            try:
                self.check()
            except AssertionError as error:
                raise Finding(f"seed {self.seed}: {error}\n" + "\n".join(self.log)) from error

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        try:
            check_invariants(self.db, settled=True)
        except AssertionError as error:
            text = str(error)
            if not (self.limits_lowered and ("over max_attempts" in text or "over attempts_per_day" in text)):
                raise
            # a limit lowered after the attempts were made: check the rest with the limits lifted for the
            # moment (put back at once); the limits at the time of each call are checked below
            with connect(self.db) as conn:
                limits = conn.execute("select campaign_id, max_attempts, attempts_per_day from campaigns").fetchall()
            with transaction(self.db) as conn:
                conn.execute("update campaigns set max_attempts = 20, attempts_per_day = 20")
            try:
                check_invariants(self.db, settled=True)
            finally:
                with transaction(self.db) as conn:
                    conn.executemany("update campaigns set max_attempts = ?, attempts_per_day = ? where campaign_id = ?",
                                     [[m, d, c] for c, m, d in limits])
        assert self.provider.duplicate_attempt_keys() == {}, "an attempt was dialed twice"
        with connect(self.db) as conn:
            keys = conn.execute("select attempt_key, count(*) from calls group by 1 having count(*) > 1").fetchall()
            assert keys == [], f"attempt keys shared by calls: {keys}"
            recorded = dict(conn.execute(
                "select provider_call_id, attempt_key from calls where provider_call_id is not null").fetchall())
            new = conn.execute(
                """
                select c.call_id, c.campaign_id, c.contact_id, c.queued_at, c.counts_as_attempt, r.kind
                from calls c left join dial_runs r using (run_id) where c.call_id > ? order by c.call_id
                """, [self.seen_call_id]).fetchall()
            plans = {p.campaign_id: p for p in load_plans(conn)}
            for call_id, campaign_id, contact_id, queued_at, counts, kind in new:
                plan = plans[campaign_id]
                if kind != "manual":
                    assert plan.active and _open(plan.schedule, queued_at), (
                        f"call {call_id} ({kind}) queued at {queued_at} outside campaign {campaign_id}'s schedule")
                added_at, attempts = conn.execute(
                    "select added_at, attempts from campaign_contacts where campaign_id = ? and contact_id = ?",
                    [campaign_id, contact_id]).fetchone() or (None, 0)
                assert attempts <= plan.max_attempts, (
                    f"call {call_id}: enrollment ({campaign_id}, {contact_id}) has {attempts} attempts,"
                    f" max {plan.max_attempts}")
                counted = conn.execute(
                    "select count(*) from calls where campaign_id = ? and contact_id = ? and counts_as_attempt"
                    " and queued_at >= ?", [campaign_id, contact_id, added_at]).fetchone()[0]
                assert counted <= plan.max_attempts, (
                    f"call {call_id}: {counted} counted attempts since enrollment, max {plan.max_attempts}")
                same_day = conn.execute(
                    "select count(*) from calls where campaign_id = ? and contact_id = ? and counts_as_attempt"
                    " and (queued_at at time zone ?)::date = ?",
                    [campaign_id, contact_id, plan.schedule.time_zone,
                     queued_at.astimezone(ZoneInfo(plan.schedule.time_zone)).date()]).fetchone()[0]
                assert same_day <= plan.attempts_per_day, (
                    f"call {call_id}: {same_day} counted attempts on its campaign-local day,"
                    f" per day {plan.attempts_per_day}")
                phone = conn.execute("select phone_e164 from calls where call_id = ?", [call_id]).fetchone()[0]
                if phone.startswith("+1305") and counts:
                    day_before = [q for p, q in self.gone_calls if p == phone and queued_at - timedelta(days=1) < q <= queued_at]
                    day_before += [r[0] for r in conn.execute(
                        "select queued_at from calls where phone_e164 = ? and counts_as_attempt and queued_at > ?"
                        " and queued_at <= ?", [phone, queued_at - timedelta(days=1), queued_at]).fetchall()]
                    assert len(day_before) <= 1, f"call {call_id}: {phone} called {len(day_before)} times in 24 h, cap 1"
                self.seen_call_id = call_id
        placed = {c.provider_call_id: c.attempt_key
                  for c in self.provider.list_calls(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))}
        gone = {k for k, key in placed.items() if int(key.split(".")[0]) in self.deleted}
        assert set(placed) - gone == set(recorded), (
            f"placed calls without a row: {sorted(set(placed) - gone - set(recorded))[:5]};"
            f" rows naming unknown calls: {sorted(set(recorded) - set(placed))[:5]}")
        assert all(placed[k] == recorded[k] for k in recorded), "a row points at another attempt's call"


@pytest.mark.parametrize("seed", SEEDS)
def test_random_operations_keep_the_guarantees(db_kept_open, tmp_path, seed):
    Scenario(db_kept_open, tmp_path, seed).run()


# ---------------------------------------------------------------------------------------------------------------
# FINDING 1 (fixed in tasks/contacts_import.enroll_contacts): a contact removed from a campaign and imported
# again got a fresh enrollment (attempts 0, nothing in flight, no attempts today), so the claim dialed it
# again at once: a second call the same campaign-local day, past max_attempts, while its first call rang.


def test_reenrolled_contact_is_not_dialed_again_past_its_limits(db_kept_open, tmp_path):
    from tests.factories import open_the_us_rule_all_day

    db = db_kept_open
    campaign_id = make_campaign_db(db, time_zone=ZONE, start_date=date(2026, 10, 1), max_attempts=1,
                                   attempts_per_day=1, calling_days=ALL_DAYS)["campaign_id"]
    open_the_us_rule_all_day(db)
    csv = tmp_path / "one.csv"
    csv.write_text("Phone,Name\n2125550100,Ann\n")
    run_import(campaign_id, csv, db=db, now=START)
    provider = SimulatedProvider(tmp_path / "sim.sqlite", seed=1)
    clock = VirtualClock(START + timedelta(hours=3))  # Friday 11:00 in New York
    assert run_tick(db, provider, clock).placed == 1
    with connect(db) as conn:
        ann = conn.execute("select contact_id from contacts").fetchone()[0]
    with transaction(db) as conn:
        ci.remove_contact_from_campaign(conn, campaign_id, ann)
    run_import(campaign_id, csv, db=db, now=clock.now())
    clock.advance_to(clock.now() + timedelta(minutes=1))
    run_tick(db, provider, clock)
    with connect(db) as conn:
        calls = conn.execute("select attempt_key, status from calls order by call_id").fetchall()
    assert len(calls) == 1, f"called again the same day, past max_attempts 1, first call {calls[0][1]}: {calls}"


def test_a_time_zone_change_keeps_the_attempts_per_day(db_kept_open, tmp_path):
    # FINDING 2 (fixed in tasks/campaigns.update_campaign): the claim compares the day of the last attempt, stored
    # as a date of the campaign's zone, with today's date in the zone now. After a zone change, a contact called at
    # 23:00 in Honolulu (04:00 the next day in New York) was called again the same New York day: 2 attempts that
    # campaign-local day with attempts_per_day 1.
    from tests.factories import open_the_us_rule_all_day

    db = db_kept_open
    campaign_id = make_campaign_db(db, time_zone="Pacific/Honolulu", start_date=date(2026, 10, 1), max_attempts=3,
                                   attempts_per_day=1, calling_days=ALL_DAYS)["campaign_id"]
    open_the_us_rule_all_day(db)
    csv = tmp_path / "one.csv"
    csv.write_text("Phone,Name\n2125550100,Ann\n")
    first = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)  # Mon 23:00 in Honolulu, Tue 04:00 in New York
    run_import(campaign_id, csv, db=db, now=first)
    provider = SimulatedProvider(tmp_path / "sim.sqlite", seed=1)
    clock = VirtualClock(first)
    assert run_manual(db, provider, campaign_id, clock).placed == 1
    clock.advance_to(first + timedelta(minutes=40))
    run_enrichment(db, provider, clock.now())
    with transaction(db) as conn:
        camp.update_campaign(conn, campaign_id, {"time_zone": ZONE}, clock.now())
    clock.advance_to(first + timedelta(hours=8))  # Tue 12:00 in New York: past any retry delay, same local day
    assert run_manual(db, provider, campaign_id, clock).placed == 0
    check_invariants(db, provider)


def test_deleting_a_campaign_keeps_its_calls_in_the_rolling_caps(db_kept_open, tmp_path):
    # FINDING 3 (fixed in tasks/campaigns.delete_campaign): the rolling caps per phone number (Florida: 3 calls per
    # 24 h whatever the campaign) read `phone_attempts`, which delete_campaign cleared with the campaign's calls
    # (every table with a call_id column): the person was called all the same, and another campaign could call
    # them over the legal cap at once.
    db = db_kept_open
    campaign_id = make_campaign_db(db, time_zone=ZONE, start_date=date(2026, 10, 1), calling_days=ALL_DAYS)["campaign_id"]
    with transaction(db) as conn:
        conn.execute("update calling_rules set max_calls_24h = 1 where rule_id = 'US-FL'")
        other = camp.duplicate_campaign(conn, campaign_id, START)
    csv = tmp_path / "one.csv"
    csv.write_text("Phone,Name\n3055550100,Flo\n")  # Miami
    tuesday = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)  # 10:00 in Miami and New York
    for each in (campaign_id, other):
        run_import(each, csv, db=db, now=tuesday)
    provider = SimulatedProvider(tmp_path / "sim.sqlite", seed=1)
    clock = VirtualClock(tuesday)
    assert run_manual(db, provider, campaign_id, clock).placed == 1
    clock.advance_to(tuesday + timedelta(hours=1))
    assert run_manual(db, provider, other, clock).placed == 0  # the cap holds across campaigns
    with transaction(db) as conn:
        camp.delete_campaign(conn, campaign_id)
    clock.advance_to(tuesday + timedelta(hours=2))
    assert run_manual(db, provider, other, clock).placed == 0, "called twice within 24 h under a 1-call cap"

    # FINDING (fixed by migration 011 and tasks/compliance._derive_phone_attempts): any edit of the contact has
    # its zone resolved again at the next claim, which re-derived its attempts from `calls` alone, where the
    # deleted campaign's call no longer is: the cap forgot it and the number was called again within 24 h.
    with transaction(db) as conn:
        contact_id = conn.execute("select contact_id from contacts where phone_e164 = '+13055550100'").fetchone()[0]
        ci.edit_contact(conn, contact_id, {"name": "Flo R."}, clock.now())
    clock.advance_to(tuesday + timedelta(hours=3))
    assert run_manual(db, provider, other, clock).placed == 0, "an edit made the cap forget a deleted campaign's call"
    with connect(db) as conn:
        assert conn.execute("select zone_resolved_at = updated_at from contacts where contact_id = ?",
                            [contact_id]).fetchone()[0], "the claim did not resolve the edited contact again"
    # a new number was never called: the old number's attempts no longer hold the contact back
    with transaction(db) as conn:
        ci.edit_contact(conn, contact_id, {"phone": "3055550199"}, clock.now())
    clock.advance_to(tuesday + timedelta(hours=4))
    assert run_manual(db, provider, other, clock).placed == 1
