"""The dialing engine: eligibility, batch claiming, number rotation, placing calls, crash reconciliation.

Exactly once: claiming writes the attempt rows (`queued`, unique attempt key) and moves the contacts
in flight in one transaction; a row becomes `created` in a committed transaction before the
provider is asked, and `registered` with the provider's call id after. A tick first reconciles the
rows a dead process left `queued`/`created` (asking the provider by attempt key) before it claims
anything new. No connection is held while the provider is asked or while pacing.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl

from schemas.enums import CallStatus, DisconnectReason, holds_contact_sql
from tasks.call_state import apply_provider_calls
from tasks.best_time import SmartOptions, callee_zone_sql, exploration_split, smart_options, zone_ranking
from tasks.clock import Clock
from tasks.compliance import (
    SAMPLE_SIZE,
    listed_numbers,
    prune_phone_attempts,
    record_audit,
    resolve_zones,
    zone_status,
)
from tasks.errors import NotFoundError, StoreLockedError
from tasks.number_health import healthy_numbers, remaining_capacity
from tasks.retry_policy import next_local_midnight
from tasks.schedule import Schedule
from tasks.settings import get_settings
from tasks.store import connect, lock_scope, transaction
from tasks.telephony.base import (
    CallBatch,
    CapacityWait,
    ConcurrencyLimitReached,
    InvalidNumber,
    OutcomeUnknown,
    ProviderCall,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    TelephonyProvider,
    place_batch,
    placing_deadline,
)

log = logging.getLogger(__name__)

# Who may be called now: the next `$scan` contacts in dialing order by their enrollment state, each
# classified by the compliance rules (tasks/compliance.py) in the same query: `zone_status` (each zone
# key's rule, why it is closed now or NULL, its caps: decided in Python per claim and bound as lists,
# which costs a few ms less per query than registering the frame), the do-not-call lists and the rolling
# caps per phone number. `skipped_by` is NULL for callable contacts.
# The claim widens `$scan` until it has a batch or has seen everyone (see `_scan_eligible`), so the
# rules cost scales with the batch, not with the campaign.
ELIGIBLE_SQL = """
with zone_status as (
    select unnest($zone_keys::integer[]) as zone_key, unnest($zone_rules::varchar[]) as rule_id,
           unnest($zone_blocked::varchar[]) as blocked, unnest($zone_max_24h::integer[]) as max_calls_24h,
           unnest($zone_max_30d::integer[]) as max_calls_30d
),
enrolled as (
    select cc.contact_id, cc.attempts, cc.call_seq, cc.last_call_at, cc.enroll_seq
    from campaign_contacts cc
    where cc.campaign_id = $campaign_id
      and cc.finished_at is null
      and cc.in_flight_call_id is null
      and cc.attempts < $max_attempts
      -- written without OR (an OR of nullable tests costs DuckDB twice the scan): attempts today under the
      -- daily limit (none when the last attempt was another day), no retry time or one already due
      and (case when cc.attempts_day = $local_day then cc.attempts_on_day else 0 end) < $attempts_per_day
      and coalesce(cc.next_call_at <= $now, true)
),
scanned as (
    -- fewest attempts first, then the longest since their last call, then enrollment order
    {scan_order}
    limit $scan
),
candidates as materialized (
    select s.*, c.phone_e164, c.zone_key, c.name, c.company, c.email, c.properties,
           c.zone_resolved_at is not distinct from c.updated_at as zone_current
    from scanned s join contacts c using (contact_id)
),
dnc as (
    select prefix, is_prefix from do_not_call where campaign_id is null or campaign_id = $campaign_id
),
prefix_lengths as (
    select distinct length(prefix) as n from dnc where is_prefix
),
dnc_hits as (
    -- exact numbers by hash; wildcards by one equality probe per distinct wildcard length
    select contact_id from candidates where phone_e164 in (select prefix from dnc where not is_prefix)
    union
    select k.contact_id from candidates k cross join prefix_lengths l
    where left(k.phone_e164, l.n) in (select prefix from dnc where is_prefix)
),
in_call as (
    -- in a call of another campaign (this one's are not enrolled above): one person, one call at a time. Tested
    -- on the candidates, not in `enrolled`, where the anti join before the top-N cost 80 ms at 1M enrollments
    select contact_id from campaign_contacts where in_flight_call_id is not null
    union all
    -- ... or in a call whose enrollment was removed while it was up (nothing holds them back then): the candidates'
    -- calls of the last day still in flight (row groups before it skipped by queued_at; an ended call is in flight
    -- until analysed, as `call_state` releases it)
    select k.contact_id from calls k
    where k.queued_at > $since_24h and k.contact_id in (select contact_id from candidates)
      and {holds_contact}
),
capped as (
    -- only numbers under a capped rule need their recent attempts counted
    select k.contact_id, z.max_calls_30d is not null as capped_30d
    from candidates k join zone_status z using (zone_key)
    where z.blocked is null and (z.max_calls_24h is not null or z.max_calls_30d is not null)
),
recent as (
    -- the candidates' counted attempts across every campaign and caller number, from `phone_attempts`
    -- (a contact is one number; written in the claim's and the refund's transactions). Rows are in
    -- time order, so the 24 h count reads only the last day's row groups; the 30-day count is paid
    -- only for candidates under a 30-day cap.
    select a.contact_id,
           count(*) filter (where a.attempted_at > $since_24h) as calls_24h,
           count(*) as calls_30d
    from phone_attempts a
    where a.attempted_at > $since_30d
      and a.contact_id in (select contact_id from capped where capped_30d)
    group by a.contact_id
    union all
    select a.contact_id, count(*) as calls_24h, null as calls_30d
    from phone_attempts a
    where a.attempted_at > $since_24h
      and a.contact_id in (select contact_id from capped where not capped_30d)
    group by a.contact_id
),
final as (
    select k.contact_id, k.attempts, k.call_seq, k.last_call_at, k.enroll_seq,
           k.phone_e164, k.name, k.company, k.email, k.properties, k.zone_rank,
           case
               when b.contact_id is not null then 'in_call'
               when h.contact_id is not null then 'do_not_call'
               when z.zone_key is null or not k.zone_current then 'zone_unresolved'
               when z.blocked is not null then z.blocked
               when r.calls_24h >= z.max_calls_24h then 'cap_24h:' || z.rule_id
               when r.calls_30d >= z.max_calls_30d then 'cap_30d:' || z.rule_id
           end as skipped_by
    from candidates k
    left join zone_status z using (zone_key)
    left join recent r using (contact_id)
    left join dnc_hits h using (contact_id)
    left join in_call b using (contact_id)
)
select * from final order by zone_rank nulls last, attempts, last_call_at nulls first, enroll_seq
"""
ELIGIBLE_SQL = ELIGIBLE_SQL.replace("{holds_contact}", holds_contact_sql("k"))
SMART_ELIGIBLE_SQL = ELIGIBLE_SQL.replace("{scan_order}", """-- smart ordering (opt-in): the callee zones with the best rate now first ($best_zones)
    select e.*, list_position($best_zones, """ + callee_zone_sql("z", "zk", "$campaign_zone") + """) as zone_rank
    from enrolled e
    left join contacts z on z.contact_id = e.contact_id
    left join zone_keys zk on zk.zone_key = z.zone_key
    order by zone_rank nulls last, attempts, last_call_at nulls first, enroll_seq""")
# the plain order needs no contact columns: the million-row join above is only paid when smart
ELIGIBLE_SQL = ELIGIBLE_SQL.replace("{scan_order}", """select e.*, null::integer as zone_rank from enrolled e
    order by attempts, last_call_at nulls first, enroll_seq""")



def _without_caps(sql: str) -> str:
    """The eligibility query without the rolling-cap CTEs, for claims where no callee rule has a cap.

    Half of the query's cost on a 100k campaign is DuckDB planning it; the caps are half of the plan.
    """
    start, end = sql.index("capped as ("), sql.index("final as (")
    trimmed = sql[:start] + sql[end:]
    for part in ("    left join recent r using (contact_id)\n",
                 "               when r.calls_24h >= z.max_calls_24h then 'cap_24h:' || z.rule_id\n",
                 "               when r.calls_30d >= z.max_calls_30d then 'cap_30d:' || z.rule_id\n"):
        assert part in trimmed, part
        trimmed = trimmed.replace(part, "")
    return trimmed


ELIGIBLE_NO_CAPS_SQL, SMART_ELIGIBLE_NO_CAPS_SQL = _without_caps(ELIGIBLE_SQL), _without_caps(SMART_ELIGIBLE_SQL)

def _host_id() -> str:
    """Who owns a dial run, for telling a dead owner by its process id: the host name, and on Linux the
    process-id namespace. Containers sharing a host name (host networking) have their own process ids: by
    the name alone one would look up another's pid in its own namespace, find nothing, and reconcile a
    live batch (its contacts dialled again)."""
    try:
        return f"{socket.gethostname()}#pidns:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


HOST = _host_id()
# How long placing waits for a free line before a call (then it places it and the provider refuses it)
CAPACITY_WAIT_SECONDS = 300.0
# A batch's callee windows are checked from its claim to its claim + size × pace + this slack (room for one
# longest wait for a free line and a minute more), and no call of the batch is placed after that: a callee
# window that closes after the checked span never sees a call (the rest of the batch is closed as not placed,
# not an attempt).
HORIZON_SLACK_SECONDS = CAPACITY_WAIT_SECONDS + 60.0
HORIZON_PASSED = ("the batch ran past the time its calls were checked for (its callees' windows, the campaign-local "
                  "day of its claim); the rest was not placed")
WINDOW_CLOSED = "calling window closed before the rest of the batch was placed"
RESOLVE_AHEAD = 5000  # new contacts given their zone together when a claim meets one
NOBODY = "no eligible contacts"  # a batch's message when the claim found nobody to call
PROVIDER_FAILED = "telephony provider "  # how a batch's message starts when the provider refused or failed it
NO_NUMBER = "no outbound number configured"  # a campaign set up without one: `campaigns run` exits 2 on it
BUSY = "batch {run_id} of this campaign is still placing its calls; the next starts once it has ended"


def _running_batch(conn: duckdb.DuckDBPyConnection, campaign_id: int, batches_at_once: int = 1) -> int | None:
    """The last of `batches_at_once` batches of the campaign still placing their calls (run `running`,
    owner alive), or None when another may start.

    One batch at a time per campaign (the product: the next batch starts once every contact of the
    current one was attempted), whoever starts it: two ticks, a tick and the Run button, two Run clicks.
    A large campaign sharded over cluster workers (`fan-out-dialing` with `shards`) allows that many. A
    run whose owner died does not block (the reconciliation before the claim settles it).
    """
    lease = get_settings().run_lease_seconds
    alive = [run_id for run_id, host, pid, beat in conn.execute(
        "select run_id, owner_host, owner_pid, heartbeat_at from dial_runs where campaign_id = ? and state = 'running'"
        " order by run_id", [campaign_id],
    ).fetchall() if not run_is_dead(host, pid, beat, lease)]
    return alive[-1] if len(alive) >= max(1, batches_at_once) else None


@dataclass(frozen=True)
class CampaignPlan:
    """What the dialer needs to know of a campaign."""

    campaign_id: int
    name: str
    active: bool
    schedule: Schedule
    max_attempts: int
    attempts_per_day: int
    batch_size: int
    rotation_enabled: bool
    number_ids: tuple[int, ...]
    provider_agent_id: str


@dataclass(frozen=True)
class CampaignNow:
    """The settings a batch reads again inside its claim transaction (a change since its plan was loaded counts)."""

    active: bool
    country: str | None
    options: SmartOptions


def campaign_now(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> CampaignNow:
    """The campaign's current on/off state, country and smart options, in one read (inactive when deleted)."""
    row = conn.execute(
        "select active, country, smart_ordering, exploration_share, number_daily_cap from campaigns where campaign_id = ?",
        [campaign_id],
    ).fetchone()
    if row is None:
        return CampaignNow(False, None, SmartOptions())
    return CampaignNow(bool(row[0]), row[1], SmartOptions.from_row(*row[2:]))


@dataclass
class BatchResult:
    """What one batch did."""

    campaign_id: int
    run_id: int | None = None
    claimed: int = 0
    placed: int = 0
    refused: int = 0
    failed: int = 0
    not_placed: int = 0
    message: str | None = None
    held: str | None = None  # with NOBODY: whom the callee rules held back, by kind ("12 outside their legal ...")

    def line(self) -> str:
        """The one-line result `campaigns run` prints and the Run button shows."""
        return f"campaign {self.campaign_id}: claimed {self.claimed}, placed {self.placed}" + outcome_text(
            self.message, self.held)


def outcome_text(message: str | None, held: str | None) -> str:
    """A batch's message for its result line: " (no eligible contacts; held back: 12 outside ...)", or nothing."""
    return f" ({outcome_phrase(message, held)})" if message else ""


def outcome_phrase(message: str, held: str | None) -> str:
    """A batch's message with whom the callee rules held back: "no eligible contacts; held back: 12 outside ..."."""
    return f"{message}; held back: {held}" if held else message


# What a held-back contact's rule kind (claim_audit.rule before the ':') means, for a result line
HELD_KINDS = {"window": "outside their legal calling hours", "holiday": "on a public holiday where they are",
              "cap_24h": "at their legal cap of calls in 24 hours", "cap_30d": "at their legal cap of calls in 30 days",
              "do_not_call": "on a do-not-call list", "zone_unresolved": "whose time zone is not known yet",
              "in_call": "in a call of another campaign"}


def held_text(rows: list[tuple[str, int]]) -> str | None:
    """Counts per audited rule as one phrase, largest first: "12 outside their legal calling hours, 2 on a ..."."""
    kinds: dict[str, int] = {}
    for rule, count in rows:
        kind = rule.split(":", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + count
    ordered = sorted(kinds.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count:,} {HELD_KINDS.get(kind, kind)}" for kind, count in ordered) or None


@dataclass
class TickResult:
    """What one tick did across campaigns."""

    reconciled: int = 0
    batches: list[BatchResult] = field(default_factory=list)

    @property
    def placed(self) -> int:
        return sum(b.placed for b in self.batches)

    def as_dict(self) -> dict:
        return {
            "reconciled": self.reconciled,
            "placed": self.placed,
            "batches": [b.__dict__ for b in self.batches],
        }


# ---------------------------------------------------------------- campaigns


def load_plans(conn: duckdb.DuckDBPyConnection, campaign_ids: list[int] | None = None) -> list[CampaignPlan]:
    """Dialing plans of campaigns with a start date (all, or the given ids)."""
    rows = conn.execute(
        """
        select c.campaign_id, c.name, c.active, c.time_zone, c.calling_days, c.weekly_schedule::varchar,
               c.start_date, c.end_date, c.max_attempts, c.attempts_per_day, c.batch_size,
               c.rotation_enabled, c.outbound_number_ids, coalesce(a.provider_agent_id, a.agent_id::varchar)
        from campaigns c left join agents a using (agent_id)
        where ($ids is null or list_contains($ids, c.campaign_id))
        order by c.campaign_id
        """,
        {"ids": campaign_ids},
    ).fetchall()
    return [
        CampaignPlan(
            campaign_id=r[0], name=r[1], active=r[2],
            schedule=Schedule.from_row(r[3], r[4], r[5], r[6], r[7]),
            max_attempts=r[8], attempts_per_day=r[9], batch_size=r[10], rotation_enabled=r[11],
            number_ids=tuple(r[12] or ()), provider_agent_id=r[13],
        )
        for r in rows
    ]


def idle_reason(plan: CampaignPlan, now: datetime) -> str | None:
    """Why a scheduled tick at `now` gives a campaign no batch (inactive, no start date, outside its dates or
    calling windows, in its local time); None when its schedule is open."""
    schedule = plan.schedule
    if not plan.active:
        return "inactive"
    closed = schedule.closed_because(now)
    if closed is None:
        return None
    kind, day = closed
    if kind == "no_start_date":  # refused for an active campaign (schemas/campaign.py): a store edited by hand
        return "no start date"
    if kind in ("before_start", "after_end"):
        return f"{'starts' if kind == 'before_start' else 'ended'} on {day}"
    local, opens = schedule.local(now), schedule.next_open(now)
    return (f"outside its calling window: {local:%a %Y-%m-%d %H:%M} {schedule.time_zone}"
            + (f"; next opens {schedule.local(opens):%a %Y-%m-%d %H:%M}" if opens else "; no window ahead"))


def idle_campaigns(db: Path | str | None, tick: TickResult, now: datetime, *, active_only: bool = False,
                   campaign_ids: list[int] | None = None) -> list[dict]:
    """The campaigns `tick` (at `now`) gave no batch, with why (`idle_reason`): {"campaign_id", "reason"} each; only the
    active ones with `active_only`. A campaign given a batch says why it placed nothing in its own line."""
    dialed = {batch.campaign_id for batch in tick.batches}
    with connect(db) as conn:
        plans = [plan for plan in load_plans(conn, campaign_ids)
                 if plan.campaign_id not in dialed and (plan.active or not active_only)]
    return [{"campaign_id": plan.campaign_id, "reason": reason} for plan in plans
            if (reason := idle_reason(plan, now)) is not None]


def idle_line(idle: dict) -> str:
    """One `idle_campaigns` entry as the tick's lines put it: "campaign 2: no batch (outside its calling window: …)"."""
    return f"campaign {idle['campaign_id']}: no batch ({idle['reason']})"


def usable_numbers(
    conn: duckdb.DuckDBPyConnection, plan: CampaignPlan, now: datetime, options: SmartOptions | None = None,
) -> tuple[list[str], str | None]:
    """Outbound numbers to use, least used today first; or none and the reason why (`options` read when not given)."""
    if not plan.number_ids:
        return [], NO_NUMBER
    rows = conn.execute(
        "select number_id, e164, sip_trunk_status, rotation_paused_at is not null, rotation_paused_reason"
        " from phone_numbers where list_contains(?, number_id)",
        [list(plan.number_ids)],
    ).fetchall()
    if not plan.rotation_enabled:  # the campaign's number alone: its health and cap, not the other ids listed
        rows = [r for r in rows if r[0] == plan.number_ids[0]]
        if not rows:
            return [], f"outbound number {plan.number_ids[0]} does not exist"
    # smart dialing: numbers out of rotation (health) or at their daily cap do not dial
    options = options or smart_options(conn, plan.campaign_id)
    rows, why = healthy_numbers(conn, rows, now, _day_start(plan, now), options.number_daily_cap)
    if why:
        return [], why
    active = [e164 for _id, e164, status in rows if status == "active"]
    if not plan.rotation_enabled:
        first = rows[0]
        if first[2] != "active":
            return [], f"outbound number {first[1]} has SIP trunk status {first[2]}"
        return [first[1]], None
    if not active:
        return [], "no outbound number in rotation has an active SIP trunk"
    day_start = datetime.combine(plan.schedule.local_day(now), datetime.min.time(), plan.schedule.local(now).tzinfo)
    used = dict(
        conn.execute(
            "select from_number, count(*) from calls where queued_at >= ? and list_contains(?, from_number)"
            " group by from_number",
            [day_start, active],
        ).fetchall()
    )
    return sorted(active, key=lambda e164: (used.get(e164, 0), e164)), None


def numbers_hold(conn: duckdb.DuckDBPyConnection, campaign_id: int, now: datetime) -> str | None:
    """Why no batch of the campaign could dial at `now` for want of a usable outbound number (`usable_numbers`: none
    set, an inactive SIP trunk, out of rotation, at the daily cap), or None. A campaign held so looked healthy
    ("Waiting") everywhere but in each tick's message."""
    plans = load_plans(conn, [campaign_id])
    return usable_numbers(conn, plans[0], now)[1] if plans else None


def _day_start(plan: CampaignPlan, now: datetime) -> datetime:
    return datetime.combine(plan.schedule.local_day(now), datetime.min.time(), plan.schedule.local(now).tzinfo)


def _day_end(plan: CampaignPlan, now: datetime) -> datetime:
    """The next campaign-local midnight after `now` (days of 23 or 25 hours on DST changes), in UTC."""
    zone = plan.schedule.local(now).tzinfo
    following = plan.schedule.local_day(now) + timedelta(days=1)
    return datetime.combine(following, datetime.min.time(), zone).astimezone(timezone.utc)


def assign_numbers(
    numbers: list[str], used_today: dict[str, int], count: int, *,
    avoid: list[str | None] | None = None, remaining: dict[str, int] | None = None,
) -> list[str]:
    """Spread `count` calls over the numbers, always taking the least used so far.

    The i-th call does not use `avoid[i]` when another number can take it (its last call was
    marked as spam), and no number takes more than its `remaining` daily capacity.
    """
    if len(numbers) == 1:
        return numbers * count  # one number takes every call (a cap already bounded the batch)
    usage = {n: used_today.get(n, 0) for n in numbers}
    left = dict(remaining) if remaining is not None else None
    chosen = []
    for i in range(count):
        options = [n for n in numbers if left is None or left.get(n, 0) > 0] or numbers
        if avoid and avoid[i] is not None and len(options) > 1:
            options = [n for n in options if n != avoid[i]] or options
        number = min(options, key=lambda n: (usage[n], numbers.index(n)))
        usage[number] += 1
        if left is not None:
            left[number] = left.get(number, 0) - 1
        chosen.append(number)
    return chosen


# ---------------------------------------------------------------- claiming


def eligible_contacts(
    conn: duckdb.DuckDBPyConnection, plan: CampaignPlan, now: datetime, size: int, *, horizon: timedelta = timedelta(0),
    options: SmartOptions | None = None,
) -> pl.DataFrame:
    """The next contacts that may be called at `now`, in dialing order (campaign schedule checked by caller).

    The legal rules, do-not-call lists and rolling caps apply (tasks/compliance.py); `horizon` is how
    long placing the batch takes, so a callee window that closes before then holds its contacts back.
    """
    return _classify(conn, plan, now, horizon, size=size, options=options)[0]


def _classify(
    conn: duckdb.DuckDBPyConnection, plan: CampaignPlan, now: datetime, horizon: timedelta, *, size: int,
    audit: bool = False, options: SmartOptions | None = None, current: CampaignNow | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(eligible contacts, per-rule skip counts when `audit`) under this claim's zone status.

    Contacts new or changed since their zone was resolved are resolved when the claim reaches them,
    then the claim runs again: the cost follows the batch, not the size of the contact list.
    """
    country = (current or campaign_now(conn, plan.campaign_id)).country
    params = {
        "campaign_id": plan.campaign_id,
        "max_attempts": plan.max_attempts,
        "attempts_per_day": plan.attempts_per_day,
        "local_day": plan.schedule.local_day(now),
        "now": now,
        "since_24h": now - timedelta(hours=24),
        "since_30d": now - timedelta(days=30),
    }
    for _ in range(2):
        status = zone_status(conn, plan.schedule.time_zone, country, now, horizon)
        params.update({"zone_keys": status["zone_key"].to_list(), "zone_rules": status["rule_id"].to_list(),
                       "zone_blocked": status["blocked"].to_list(), "zone_max_24h": status["max_calls_24h"].to_list(),
                       "zone_max_30d": status["max_calls_30d"].to_list()})
        # no open callee rule with a rolling cap: the query without the caps part (same answer, half the plan)
        params["capped"] = status.filter(pl.col("blocked").is_null() & (
            pl.col("max_calls_24h").is_not_null() | pl.col("max_calls_30d").is_not_null())).height > 0
        skipped: list[pl.DataFrame] = []
        picked = _pick(conn, plan, now, params, size, options, skipped)
        unresolved = pl.concat(skipped).filter(pl.col("skipped_by") == "zone_unresolved")["contact_id"].to_list()
        if not unresolved:
            break
        # the next claims will reach the campaign's other new contacts soon: resolve a slice of them now
        # too, so that a fresh import costs one extra pass per RESOLVE_AHEAD contacts, not per batch
        ahead = [r[0] for r in conn.execute(
            "select cc.contact_id from campaign_contacts cc join contacts c using (contact_id)"
            " where cc.campaign_id = ? and cc.finished_at is null and c.zone_resolved_at is distinct from c.updated_at"
            " order by cc.enroll_seq limit ?", [plan.campaign_id, RESOLVE_AHEAD]).fetchall()]
        if not resolve_zones(conn, sorted(set(unresolved) | set(ahead))):
            break
    if not audit:
        return picked, None
    held = pl.concat(skipped).unique("contact_id", keep="first", maintain_order=True)
    return picked, held.group_by("skipped_by").agg(
        pl.len().cast(pl.Int32).alias("skipped"),
        pl.col("contact_id").sort().head(SAMPLE_SIZE).alias("sample_contact_ids"),
    ).rename({"skipped_by": "rule"}).sort("rule")


# Per (campaign, smart order): how many contacts the rules held back ahead of its last claim's batch in
# this process. Only the first scan's size depends on it, never the answer.
_held_ahead: dict[tuple[int, bool], int] = {}
OVER_FETCH = 64  # contacts classified beyond the batch and a quarter, in case the rules hold some back


def _scan_eligible(conn: duckdb.DuckDBPyConnection, params: dict, size: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the first `size` callable contacts in dialing order, the contacts the rules held back before them).

    Classifies the next size + a quarter + OVER_FETCH contacts in dialing order, plus as many as the rules
    held back ahead of the campaign's previous batch (people on a do-not-call list keep their few attempts,
    so they gather at the head of the order), and four times more each time the rules held back too many,
    until the batch is full or every eligible contact has been seen.
    """
    hint_key = (params["campaign_id"], bool(params.get("best_zones")))
    # a small over-fetch: the per-candidate rules (contact row, do-not-call, caps) cost per row scanned
    scan = size + size // 4 + OVER_FETCH + _held_ahead.get(hint_key, 0)
    capped = params.pop("capped", True)
    if params.get("best_zones"):
        sql = SMART_ELIGIBLE_SQL if capped else SMART_ELIGIBLE_NO_CAPS_SQL
    else:
        sql = ELIGIBLE_SQL if capped else ELIGIBLE_NO_CAPS_SQL
        params = {k: v for k, v in params.items() if k not in ("best_zones", "campaign_zone")}
    if not capped:  # (`since_24h` stays: `in_call` reads the last day's calls)
        params = {k: v for k, v in params.items() if k != "since_30d"}
    while True:
        rows = conn.execute(sql, {**params, "scan": scan}).pl()
        if rows["skipped_by"].is_null().sum() >= size or rows.height < scan:
            break
        scan *= 4
    rows = rows.with_row_index("position")
    picked = rows.filter(pl.col("skipped_by").is_null()).head(size)
    held = rows.filter(pl.col("skipped_by").is_not_null())
    if picked.height == size and size > 0:
        # held back = skipped before the batch's last contact (the later ones were not reached)
        held = held.filter(pl.col("position") < picked["position"].max())
    _held_ahead[hint_key] = held.height
    return picked.drop("position", "skipped_by", "zone_rank"), held.select("contact_id", "skipped_by")


def _pick(conn, plan: CampaignPlan, now: datetime, params: dict, size: int, options: SmartOptions | None,
          skipped: list[pl.DataFrame]) -> pl.DataFrame:
    """ELIGIBLE_SQL's contacts in plain order, or (smart ordering) the best callee zones now first
    except an exploration share of the batch taken in plain order."""
    def query(best_zones: list[str], limit: int) -> pl.DataFrame:
        found, held = _scan_eligible(conn, {**params, "best_zones": best_zones,
                                            "campaign_zone": plan.schedule.time_zone}, limit)
        skipped.append(held)
        return found

    best_zones = zone_ranking(conn, plan.campaign_id, plan.schedule.time_zone, now) if options and options.smart_ordering else []
    if not best_zones:
        return query([], size)
    smart_size, plain_size = exploration_split(size, options.exploration_share)
    smart = query(best_zones, smart_size)
    if plain_size == 0:
        return smart
    plain = query([], size).filter(~pl.col("contact_id").is_in(smart["contact_id"].implode())).head(plain_size)
    return pl.concat([smart, plain])


def _dynamic_variables(name, company, email, properties) -> str:
    values = {"contact_name": name, "company_name": company, "email": email}
    if properties:
        values.update(json.loads(properties) if isinstance(properties, str) else properties)
    return json.dumps({k: ("" if v is None else str(v)) for k, v in values.items()}, ensure_ascii=False,
                      separators=(",", ":"))


def dynamic_variables_column(picked: pl.DataFrame) -> pl.Series:
    """Each contact's dynamic variables as JSON text: name, company, email, then its custom properties.

    Contacts without custom properties are encoded by Polars at once (a batch spent 15 ms in per-row
    Python at 30 us a contact); the others merge their properties in Python. Values are strings, missing
    ones empty; the text is compact JSON either way.
    """
    plain = picked.select(pl.struct(
        pl.col("name").cast(pl.String).fill_null("").alias("contact_name"),
        pl.col("company").cast(pl.String).fill_null("").alias("company_name"),
        pl.col("email").cast(pl.String).fill_null("").alias("email"),
    ).struct.json_encode().alias("dynamic_variables"))["dynamic_variables"]
    properties = picked["properties"].cast(pl.String)
    custom = (properties.is_not_null() & ~properties.is_in(["{}", "null", ""])).to_list()
    if not any(custom):
        return plain
    merged = plain.to_list()
    for i, (name, company, email, props) in enumerate(picked.select("name", "company", "email", "properties").iter_rows()):
        if custom[i]:
            merged[i] = _dynamic_variables(name, company, email, props)
    return pl.Series("dynamic_variables", merged, dtype=pl.String)


def claim_batch(
    conn: duckdb.DuckDBPyConnection,
    plan: CampaignPlan,
    now: datetime,
    *,
    kind: str,
    from_numbers: list[str],
    provider_name: str,
    size: int | None = None,
    horizon: timedelta = timedelta(0),
    deadline: datetime | None = None,
    status: str = CallStatus.queued.value,
    current: CampaignNow | None = None,
) -> tuple[int | None, pl.DataFrame]:
    """Claim up to a batch of eligible contacts: a dial run, `queued` call rows, contacts in flight.

    Call inside a transaction. Returns (run_id, claimed calls) — (None, empty) when nobody is eligible.
    Contacts a compliance rule held back are counted per rule in `claim_audit`. `status='created'`
    writes the rows as created in the claim's own transaction (a batch placed in one request).
    `current` is the campaign's settings when the caller read them in this transaction. `deadline` is the latest
    moment the batch may place a call (its attempts are dated so for the rolling caps; the claim's time without one).
    """
    current = current or campaign_now(conn, plan.campaign_id)
    options = current.options
    remaining = remaining_capacity(conn, from_numbers, _day_start(plan, now), options.number_daily_cap)
    batch = size or plan.batch_size
    if remaining is not None:  # the daily cap per number bounds the batch
        batch = min(batch, sum(remaining.values()))
    picked, skipped = _classify(conn, plan, now, horizon, size=batch, audit=True, options=options, current=current)
    record_audit(conn, plan.campaign_id, now, kind, skipped)
    prune_phone_attempts(conn, now)
    if picked.height == 0:
        return None, picked
    contact_ids = picked["contact_id"].to_list()
    # least used today: each number's calls since the campaign-local midnight, as `usable_numbers` orders them
    used = dict(
        conn.execute(
            "select from_number, count(*) from calls where queued_at >= ? and list_contains(?, from_number)"
            " group by from_number",
            [_day_start(plan, now), from_numbers],
        ).fetchall()
    ) if len(from_numbers) > 1 else {}
    # a number to avoid is set only for campaigns with several numbers (the retry policy's other_number)
    avoid = dict(conn.execute(
        "select contact_id, avoid_number from campaign_contacts where campaign_id = ? and avoid_number is not null"
        " and list_contains(?, contact_id)", [plan.campaign_id, contact_ids],
    ).fetchall()) if len(plan.number_ids) > 1 else {}
    numbers = assign_numbers(from_numbers, used, len(contact_ids), avoid=[avoid.get(c) for c in contact_ids],
                             remaining=remaining)
    stuck = [c for c, number in zip(contact_ids, numbers) if avoid.get(c) == number]
    if stuck:
        # Their last call was marked as spam and no other number can take them now (paused, capped, rotation
        # off): not from that number again today. Held to the next local day, as with a single number.
        conn.execute(
            "update campaign_contacts set next_call_at = greatest(coalesce(next_call_at, $at), $at), avoid_number = null"
            " where campaign_id = $campaign_id and list_contains($ids, contact_id)",
            {"at": next_local_midnight(plan.schedule, now), "campaign_id": plan.campaign_id, "ids": stuck},
        )
        kept = [i for i, c in enumerate(contact_ids) if avoid.get(c) != numbers[i]]
        picked, numbers = picked[kept], [numbers[i] for i in kept]
        if picked.height == 0:
            return None, picked
    run_id = conn.execute(
        "insert into dial_runs (campaign_id, kind, state, started_at, owner_host, owner_pid, heartbeat_at)"
        " values (?, ?, 'running', ?, ?, ?, ?) returning run_id",
        [plan.campaign_id, kind, now, HOST, os.getpid(), datetime.now(timezone.utc)],
    ).fetchone()[0]
    claims = picked.select(
        pl.col("contact_id").cast(pl.Int64),
        pl.format("{}.{}.{}", pl.lit(plan.campaign_id), pl.col("contact_id"), pl.col("call_seq") + 1).alias("attempt_key"),
        (pl.col("attempts") + 1).cast(pl.Int32).alias("attempt_number"),
        pl.col("phone_e164").cast(pl.String),
        pl.Series("from_number", numbers, dtype=pl.String),
        dynamic_variables_column(picked),
    )
    conn.register("claims", claims)
    try:
        inserted = conn.execute(
            """
            insert into calls (campaign_id, contact_id, run_id, attempt_key, attempt_number, phone_e164,
                               from_number, status, dynamic_variables, provider, queued_at, updated_at)
            select ?, contact_id, ?, attempt_key, attempt_number, phone_e164, from_number, ?,
                   dynamic_variables::json, ?, ?, ?
            from claims
            returning call_id, contact_id, attempt_key, phone_e164, from_number, dynamic_variables::varchar
            """,
            [plan.campaign_id, run_id, status, provider_name, now, now],
        ).pl()
        inserted.columns = ["call_id", "contact_id", "attempt_key", "phone_e164", "from_number", "dynamic_variables"]
        conn.register("claimed", inserted)
        # The rolling caps see these attempts from this commit on (a refund deletes them again), dated the latest
        # moment the batch may place them (its deadline): the batch places its calls over minutes after the claim,
        # and a claim dated attempt let yesterday's call placed at 14:00:18 drop out of the 24 h count of today's
        # 14:00:00 claim (a 4th call in 24 h to a Florida number whose rule allows 3).
        conn.execute("insert into phone_attempts (contact_id, call_id, attempted_at, phone_e164)"
                     " select contact_id, call_id, ?, phone_e164 from claimed", [deadline or now])
        conn.execute(
            """
            update campaign_contacts cc set
                attempts = cc.attempts + 1,
                call_seq = cc.call_seq + 1,
                attempts_on_day = case when cc.attempts_day is not distinct from $local_day
                                       then cc.attempts_on_day + 1 else 1 end,
                attempts_day = $local_day,
                last_call_at = $now,
                in_flight_call_id = k.call_id
            from claimed k
            where cc.campaign_id = $campaign_id and cc.contact_id = k.contact_id
            """,
            {"local_day": plan.schedule.local_day(now), "now": now, "campaign_id": plan.campaign_id},
        )
    finally:
        conn.unregister("claims")
        conn.unregister("claimed")
    return run_id, inserted.sort("call_id")


# ---------------------------------------------------------------- placing


def _outcome_for(error: Exception) -> ProviderCall:
    """Our record of a call the provider refused or could not take."""
    if isinstance(error, ConcurrencyLimitReached):
        return ProviderCall(None, CallStatus.failed_rate_limit, disconnect_reason=DisconnectReason.concurrency_limit_reached)
    if isinstance(error, RateLimited):
        return ProviderCall(None, CallStatus.failed_rate_limit)
    if isinstance(error, InvalidNumber):
        return ProviderCall(None, CallStatus.not_connected, disconnect_reason=DisconnectReason.invalid_destination,
                            duration_seconds=0.0)
    return ProviderCall(None, CallStatus.not_connected,
                        disconnect_reason=DisconnectReason.telephony_provider_unavailable, duration_seconds=0.0)


def mark_not_placed(conn: duckdb.DuckDBPyConnection, call_ids: list[int], now: datetime, message: str) -> None:
    """Close attempt rows the provider never received: not an attempt, the contact is freed.

    Status `error` with reason `error_dapta` (the platform-side error): a crash, the window closing
    or the campaign being paused interrupted the batch, not the provider.
    """
    if not call_ids:
        return
    ids = [r[0] for r in conn.execute(
        "select call_id from calls where call_id between ? and ? and list_contains(?, call_id)"
        " and status in ('queued', 'created')",
        [min(call_ids), max(call_ids), call_ids],
    ).fetchall()]
    if not ids:
        return
    conn.execute(
        "update calls set error_message = ? where call_id between ? and ? and list_contains(?, call_id)",
        [message, min(ids), max(ids), ids],
    )
    apply_provider_calls(
        conn,
        [(cid, ProviderCall(None, CallStatus.error, disconnect_reason=DisconnectReason.error_dapta,
                            duration_seconds=0.0)) for cid in ids],
        now,
        not_attempts=True,
    )


PAUSED_MID_BATCH = "campaign paused before the rest of the batch was placed"


def _paused(conn: duckdb.DuckDBPyConnection, plan: CampaignPlan, kind: str, current: CampaignNow | None = None) -> str | None:
    """Why a scheduled batch must stop before its next chunk (turned off), or None."""
    if kind == "manual":
        return None
    if not (current or campaign_now(conn, plan.campaign_id)).active:
        return PAUSED_MID_BATCH
    return None


def _number_stopped(conn: duckdb.DuckDBPyConnection, chunk: list[dict]) -> str | None:
    """Why the outbound number of a real-time batch's next call may no longer dial, or None.

    Since the claim it was taken out of rotation (by hand, or by another campaign's health check) or its
    SIP trunk is no longer active: the rest of the batch is not placed (not attempts), and the next claim
    picks from the numbers usable then.
    """
    numbers = sorted({c["from_number"] for c in chunk if c.get("from_number")})
    if not numbers:
        return None
    row = conn.execute(
        "select e164, rotation_paused_at is not null, sip_trunk_status from phone_numbers"
        " where list_contains(?, e164) and (rotation_paused_at is not null or sip_trunk_status <> 'active')"
        " order by e164 limit 1", [numbers]).fetchone()
    if row is None:
        return None
    e164, paused, status = row
    what = "was taken out of rotation" if paused else f"got SIP trunk status {status}"
    return f"outbound number {e164} {what} before the rest of the batch was placed"


def _settings_changed(conn: duckdb.DuckDBPyConnection, plan: CampaignPlan, chunk: list[dict], kind: str,
                      now: datetime) -> str | None:
    """Why a real-time batch stops before its next call because its campaign changed since the claim, or None.

    A batch places for size × pace (25 minutes for 500): turned off or hours or dates changed so that the
    campaign may not call now (a scheduled batch; a manual run ignores them), or the next call's outbound
    number taken off the campaign (removed, or rotation turned off with another number as the campaign's).
    One read of the campaign per call.
    """
    plans = load_plans(conn, [plan.campaign_id])
    if not plans:
        return "campaign deleted before the rest of the batch was placed"
    current = plans[0]
    if kind != "manual" and not current.active:
        return PAUSED_MID_BATCH
    if kind != "manual" and current.schedule != plan.schedule and not current.schedule.is_open(now):
        return "campaign's calling hours or dates changed before the rest of the batch was placed"
    numbers = {c["from_number"] for c in chunk if c.get("from_number")}
    allowed = current.number_ids if current.rotation_enabled else current.number_ids[:1]
    if not numbers or (allowed == plan.number_ids and current.rotation_enabled == plan.rotation_enabled):
        return None
    kept = {r[0] for r in conn.execute("select e164 from phone_numbers where list_contains(?, number_id)",
                                       [list(allowed)]).fetchall()}
    gone = sorted(numbers - kept)
    return f"outbound number {gone[0]} was taken off the campaign before the rest of the batch was placed" if gone \
        else None


def dial_batch(
    db: Path | str | None,
    provider: TelephonyProvider,
    plan: CampaignPlan,
    clock: Clock,
    *,
    kind: str = "scheduled",
    pace_seconds: float | None = None,
    size: int | None = None,
    batches_at_once: int = 1,
) -> BatchResult:
    """Claim one batch for a campaign and place its calls one after another at the pace.

    No claim while `batches_at_once` batches of the campaign are still placing (1 unless sharded).

    On the shared store the batch's transactions lock only its campaign (`store.lock_scope`: they
    write that campaign's rows and insert-only rows), so batches of independent campaigns on several
    workers overlap; no effect on the DuckDB file.
    """
    with lock_scope(plan.campaign_id):
        return _dial_batch(db, provider, plan, clock, kind=kind, pace_seconds=pace_seconds, size=size,
                           batches_at_once=batches_at_once)


def _dial_batch(db, provider, plan, clock, *, kind, pace_seconds, size, batches_at_once=1) -> BatchResult:
    pace = get_settings().dial_pace_seconds if pace_seconds is None else pace_seconds
    result = BatchResult(plan.campaign_id)
    now = clock.now()
    # In real time each call is its own created → placed → registered step; on a virtual clock (or
    # without a pace) the whole batch moves together: the claim writes its rows `created` in its own
    # transaction and one request places them (the same guarantees, far fewer transactions).
    whole = clock.virtual or pace < 0.5
    with transaction(db) as conn:
        current = campaign_now(conn, plan.campaign_id)
        busy = _running_batch(conn, plan.campaign_id, batches_at_once)
        if busy is not None:
            result.message = BUSY.format(run_id=busy)
            return result
        stop = _paused(conn, plan, kind, current) if whole else None
        if stop:
            result.message = stop
            return result
        numbers, why = usable_numbers(conn, plan, now, current.options)
        if why:
            result.message = why
            return result
        # no more contacts than the pace lets start before the calling window closes: the rest would only
        # be claimed to be closed as not placed
        batch = size or plan.batch_size
        fits = calls_before_close(plan, now, pace, kind)
        batch = batch if fits is None else min(batch, fits)
        # A batch's calls count toward the campaign-local day of its claim (attempts per day, each number's daily
        # cap): none is placed after that day ends. A batch claimed at 23:59 under a window running past midnight
        # placed its calls on the next day, which then gave every contact and number its whole allowance again.
        day_end = _day_end(plan, now)
        if pace > 0:
            batch = min(batch, max(1, math.ceil((day_end - now).total_seconds() / pace)))
        # the batch takes about size × pace to place, more when it waits for free lines: every call must land
        # inside its callee's window, checked over the horizon, and placing stops at its end (`deadline`)
        horizon = timedelta(seconds=pace * batch + HORIZON_SLACK_SECONDS)
        deadline = min(now + horizon, day_end)
        run_id, claimed = claim_batch(conn, plan, now, kind=kind, from_numbers=numbers,
                                      provider_name=provider.name, size=batch, horizon=horizon, deadline=deadline,
                                      status=CallStatus.created.value if whole else CallStatus.queued.value,
                                      current=current)
        if run_id is None:  # nobody to call: say whom the callee rules held back (the claim audited them)
            result.held = held_text(conn.execute(
                "select rule, skipped from claim_audit where campaign_id = ? and tick_at = ? and run_kind = ?",
                [plan.campaign_id, now, kind]).fetchall())
    result.run_id, result.claimed = run_id, claimed.height
    if run_id is None:
        result.message = NOBODY
        return result
    calls = claimed.to_dicts()
    chunk_size = len(calls) if whole else 1
    provider_down = finished = False
    try:
        for start in range(0, len(calls), chunk_size):
            chunk = calls[start:start + chunk_size]
            if not whole:
                with transaction(db) as conn:
                    stop = (stop or _settings_changed(conn, plan, chunk, kind, clock.now())
                            or _number_stopped(conn, chunk))
                    if stop:
                        mark_not_placed(conn, [c["call_id"] for c in calls[start:]], clock.now(), stop)
                        result.not_placed += len(calls) - start
                        break
                    # a number put on a do-not-call list since the claim is not dialled (not an attempt): the
                    # rows left `queued` below are closed, never placed
                    listed = listed_numbers(conn, plan.campaign_id, [c["phone_e164"] for c in chunk])
                    if listed:
                        mark_not_placed(conn, [c["call_id"] for c in chunk if c["phone_e164"] in listed],
                                        clock.now(), "put on a do-not-call list after the claim")
                    chunk_ids = [c["call_id"] for c in chunk]
                    # the id range lets DuckDB skip every row group outside the batch
                    conn.execute(
                        "update calls set status = 'created', updated_at = ?"
                        " where call_id between ? and ? and list_contains(?, call_id) and status = 'queued'",
                        [clock.now(), min(chunk_ids), max(chunk_ids), chunk_ids],
                    )
                    # Only rows this run moved to `created` are placed: a row someone else closed meanwhile
                    # (another machine's reconcile took this batch for dead) is never dialled.
                    mine = {r[0] for r in conn.execute(
                        "select call_id from calls where call_id between ? and ? and list_contains(?, call_id)"
                        " and status = 'created' and run_id = ?",
                        [min(chunk_ids), max(chunk_ids), chunk_ids, run_id],
                    ).fetchall()}
                    conn.execute("update dial_runs set heartbeat_at = ? where run_id = ?",
                                 [datetime.now(timezone.utc), run_id])
                closed = len(chunk) - len(mine)
                chunk = [c for c in chunk if c["call_id"] in mine]
                result.not_placed += closed
                if not chunk:
                    continue
            if clock.virtual and hasattr(provider, "place_calls"):
                registered, outcomes, unplaced, stop, down = _place_paced_virtual(
                    provider, plan, clock, kind, pace, chunk, first=start == 0, deadline=deadline)
                provider_down = provider_down or down
            else:
                registered, outcomes, unplaced, stop, down = _place_one_by_one(
                    provider, plan, clock, kind, pace, chunk, first=start == 0, stop=stop, deadline=deadline,
                    beat=_run_heartbeat(db, run_id, clock))
                provider_down = provider_down or down
            with transaction(db) as conn:
                if registered:
                    frame = pl.DataFrame(registered, schema={"call_id": pl.Int64, "provider_call_id": pl.String,
                                                             "registered_at": pl.Datetime("us", "UTC")}, orient="row")
                    conn.register("registered_calls", frame)
                    conn.execute(
                        """
                        update calls c set status = 'registered', provider_call_id = r.provider_call_id,
                               registered_at = r.registered_at, updated_at = r.registered_at
                        from registered_calls r
                        where c.call_id = r.call_id and c.status = 'created' and c.call_id between ? and ?
                        """,
                        [min(r[0] for r in registered), max(r[0] for r in registered)],
                    )
                    conn.unregister("registered_calls")
                if outcomes:
                    apply_provider_calls(conn, outcomes, clock.now())
                mark_not_placed(conn, unplaced, clock.now(), stop or "not placed")
                last = start + chunk_size >= len(calls)  # the last chunk closes the run in the same commit
                conn.execute(
                    "update dial_runs set calls_placed = calls_placed + $placed, heartbeat_at = $beat,"
                    " state = case when $last and state = 'running' then $state else state end,"
                    " ended_at = case when $last and state = 'running' then $now else ended_at end,"
                    " message = case when $last and state = 'running' then coalesce($message, message) else message end"
                    " where run_id = $run_id",
                    {"placed": len(registered), "beat": datetime.now(timezone.utc), "last": last, "now": clock.now(),
                     "state": "failed" if provider_down else "completed", "message": stop, "run_id": run_id},
                )
                finished = last
            result.placed += len(registered)
            result.not_placed += len(unplaced)
            result.refused += sum(1 for _, o in outcomes if o.status == CallStatus.failed_rate_limit)
            result.failed += sum(1 for _, o in outcomes if o.status != CallStatus.failed_rate_limit)
    except BaseException as error:
        _finish_run(db, run_id, clock.now(), "failed", failure_text(error))
        raise
    result.message = stop
    if not finished:
        _finish_run(db, run_id, clock.now(), "failed" if provider_down else "completed", stop)
    return result


def calls_before_close(plan: CampaignPlan, now: datetime, pace: float, kind: str) -> int | None:
    """How many calls placed `pace` seconds apart from `now` start before the campaign's calling window closes.

    None when nothing bounds it: a manual run (it ignores the schedule), no pace, a schedule closed now, or an
    open stretch whose end `Schedule.open_until` cannot see (a window running past midnight). Waiting for a
    free line can still push the last ones past the close: placing stops there, as before.
    """
    close = None if kind == "manual" or pace <= 0 else _close_of(plan.schedule, now)
    return None if close is None else max(1, math.ceil((close - now).total_seconds() / pace))


def _close_of(schedule: Schedule, at: datetime) -> datetime | None:
    """When the open stretch containing `at` closes; None when closed at `at` or when `open_until` cannot
    see the close (a window running past midnight)."""
    end = schedule.open_until(at)
    return end if end is not None and not schedule.is_open(end) else None


# Refusals about one call (its callee, or the provider's limits at that moment): recorded, and the batch goes on
# (a ProviderUnavailable records the call and stops the batch)
_CALLEE_REFUSALS = (RateLimited, ConcurrencyLimitReached, InvalidNumber, ProviderUnavailable)


def _place_one_by_one(provider, plan, clock, kind, pace, chunk, *, first, stop, deadline, beat=None):
    """Place calls in real time: pace between calls, wait for provider capacity, stop when told, when the
    calling window closes or at the `deadline` its callees' windows were checked for. `beat` keeps the
    run's heartbeat fresh while it waits for capacity."""
    registered, outcomes, unplaced = [], [], []
    down = False
    for index, (call, request) in enumerate(zip(chunk, _call_batch(plan, chunk).requests())):
        if stop:
            unplaced.append(call["call_id"])
            continue
        if index > 0 or not first:
            clock.sleep(pace)
        _wait_for_capacity(provider, clock, pace, beat=beat)
        if clock.now() >= deadline:
            stop = HORIZON_PASSED
            unplaced.append(call["call_id"])
            continue
        if kind != "manual" and not plan.schedule.is_open(clock.now()):
            stop = WINDOW_CLOSED
            unplaced.append(call["call_id"])
            continue
        # a provider that waits before placing (the cluster's call slots) must not start it later than this
        close = None if kind == "manual" else _close_of(plan.schedule, clock.now())
        try:
            with placing_deadline(deadline if close is None else min(deadline, close)):
                provider_call_id = provider.place_call(request, clock.now())
        except OutcomeUnknown as error:
            # It may have been placed: leave the row `created` for reconciliation by key.
            down, stop = True, f"telephony provider unavailable: {error}"
            continue
        except _CALLEE_REFUSALS as error:
            outcomes.append((call["call_id"], _outcome_for(error)))
            if isinstance(error, ProviderUnavailable):
                down, stop = True, f"telephony provider unavailable: {error}"
            continue
        except ProviderError as error:
            # Any other refusal (a refused key, an unknown agent or caller number: setup, not the callee)
            # would refuse every call: the batch stops and says why, the run ends failed. The row stays
            # `created`: whether the provider made the call is settled by attempt key (reconcile).
            down, stop = True, f"telephony provider refused the call: {error}"
            continue
        registered.append((call["call_id"], provider_call_id, clock.now()))
    return registered, outcomes, unplaced, stop, down


def _open_prefix(schedule: Schedule, times: list[datetime]) -> int:
    """How many of the increasing `times` fall before the schedule first closes (the first closed one stops it).

    One window lookup and two checks instead of a time zone conversion per call; a stretch that
    `open_until` cannot see the end of (a window running past midnight, a DST edge) is walked call by call.
    """
    close = schedule.open_until(times[0]) if times else None
    if close is not None:
        allowed = bisect.bisect_left(times, close)  # >= 1: times[0] is open, so before its stretch ends
        if schedule.is_open(times[allowed - 1]) and (allowed == len(times) or not schedule.is_open(times[allowed])):
            return allowed
    return next((i for i, t in enumerate(times) if not schedule.is_open(t)), len(times))


def _call_batch(plan: CampaignPlan, calls: list[dict]) -> CallBatch:
    """Claimed calls as the provider's batch: the claim's columns as they are (a provider that takes columns
    skips a request object per call)."""
    return CallBatch(
        to_numbers=[c["phone_e164"] for c in calls], from_numbers=[c["from_number"] for c in calls],
        attempt_keys=[c["attempt_key"] for c in calls], dynamic_variables=[c["dynamic_variables"] for c in calls],
        provider_agent_id=plan.provider_agent_id, metadata={"campaign_id": str(plan.campaign_id)},
    )


def _place_paced_virtual(provider, plan, clock, kind, pace, chunk, *, first, deadline):
    """Place a chunk on a virtual clock in one provider request, as placing it one by one would.

    A provider that paces a batch itself (the simulator's `place_call_batch_waiting`) places each call
    after the pace and, while every line is busy, after `_wait_for_capacity`'s wait, and stops at the
    window's end or the `deadline` its callees' windows were checked for: the rows of one-by-one placing.
    Another batch provider, or a stretch of the schedule whose end `open_until` cannot see before the
    deadline (a window running past midnight), gets the i-th call at i × pace, and what the concurrency
    limit refuses comes back refused.
    """
    first_at = clock.now() + timedelta(seconds=0.0 if first else pace)
    if kind == "manual":
        until = deadline  # a manual run ignores the campaign's schedule, never its callees' windows
    else:
        stretch_end = plan.schedule.open_until(first_at)
        # known: the stretch ends there, or it surely lasts past the deadline
        known = stretch_end is not None and (not plan.schedule.is_open(stretch_end) or stretch_end >= deadline)
        until = min(stretch_end, deadline) if known else None
    place_waiting = getattr(provider, "place_call_batch_waiting", None)
    if place_waiting is not None and until is not None:
        wait = CapacityWait(step=max(pace, 1.0), max_wait=CAPACITY_WAIT_SECONDS, until=until)
        placed = place_waiting(_call_batch(plan, chunk), first_at, pace, wait)
        answers, times = placed.answers, placed.placed_at
        cut_by_deadline = until == deadline
    else:
        times = [first_at + timedelta(seconds=i * pace) for i in range(len(chunk))]
        in_window = len(chunk) if kind == "manual" else _open_prefix(plan.schedule, times)
        in_horizon = bisect.bisect_left(times, deadline)
        allowed = min(in_window, in_horizon)
        cut_by_deadline = in_horizon < in_window
        answers = place_batch(provider, _call_batch(plan, chunk[:allowed]), first_at, pace_seconds=pace) if allowed else []
    registered, outcomes, down, stop = [], [], False, None
    for call, placed_at, answer in zip(chunk, times, answers):
        if isinstance(answer, OutcomeUnknown):
            # it may have been placed: the row stays `created` for reconciliation by key
            down, stop = True, f"telephony provider unavailable: {answer}"
        elif isinstance(answer, ProviderError) and not isinstance(answer, _CALLEE_REFUSALS):
            # a refused key, an unknown agent or caller number: as in `_place_one_by_one`, the batch stops and
            # says why, and the row stays `created`, settled by attempt key
            down, stop = True, f"telephony provider refused the call: {answer}"
        elif isinstance(answer, Exception):
            outcomes.append((call["call_id"], _outcome_for(answer)))
            if isinstance(answer, ProviderUnavailable):
                down, stop = True, f"telephony provider unavailable: {answer}"
        else:
            registered.append((call["call_id"], answer, placed_at))
    # fewer answers than calls: the window closed or the horizon passed, or the provider stopped (unavailable)
    # and never got the rest
    if len(answers) < len(chunk) and not down:
        stop = HORIZON_PASSED if cut_by_deadline else WINDOW_CLOSED
    if answers:
        clock.advance_to(times[len(answers) - 1])
    unplaced = [c["call_id"] for c in chunk[len(answers):]]
    return registered, outcomes, unplaced, stop, down


def _wait_for_capacity(provider: TelephonyProvider, clock: Clock, pace: float, max_wait: float = CAPACITY_WAIT_SECONDS,
                       beat: Callable[[], None] | None = None) -> None:
    """Hold the next call while the provider is at its concurrent-call limit (bounded wait); `beat` is
    called at every step (it refreshes the run's heartbeat: the wait can outlast the lease)."""
    waited = 0.0
    step = max(pace, 1.0)
    while waited < max_wait and provider.active_calls(clock.now()) >= provider.concurrency_limit:
        if beat is not None:
            beat()
        clock.sleep(step)
        waited += step


HEARTBEAT_SECONDS = 30.0  # how often a run waiting for capacity refreshes its heartbeat (the lease is 120 s)


def _run_heartbeat(db, run_id: int, clock: Clock) -> Callable[[], None]:
    """A beat for `_wait_for_capacity`: the run's heartbeat, refreshed every HEARTBEAT_SECONDS of the clock.

    Another machine's reconcile takes a run whose heartbeat is older than the lease for dead and closes
    its queued rows; the rows this run still places are checked before each call (`_dial_batch`).
    """
    last = [clock.now()]

    def beat() -> None:
        if (clock.now() - last[0]).total_seconds() < HEARTBEAT_SECONDS:
            return
        last[0] = clock.now()
        try:
            with transaction(db) as conn:
                conn.execute("update dial_runs set heartbeat_at = ? where run_id = ?",
                             [datetime.now(timezone.utc), run_id])
        except StoreLockedError:
            pass  # the store is busy: the next step beats again, well within the lease

    return beat


def _close_run(conn: duckdb.DuckDBPyConnection, run_id: int, now: datetime, state: str, message: str | None) -> None:
    conn.execute(
        "update dial_runs set state = ?, ended_at = ?, message = coalesce(?, message) where run_id = ? and state = 'running'",
        [state, now, message, run_id],
    )


def failure_text(error: BaseException) -> str:
    """Why a batch failed, for its run's message (the campaign's Failed status shows it).

    A stop has no text of its own: Prefect's TerminationSignal when `make serve` is stopped, a KeyboardInterrupt.
    Its message read "TerminationSignal: ", which told a manager nothing.
    """
    text = str(error).strip()
    if not isinstance(error, Exception):
        return (f"interrupted: the process placing the batch was stopped ({type(error).__name__}); the next tick"
                " settles the calls it left")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _finish_run(db, run_id: int | None, now: datetime, state: str, message: str | None) -> None:
    if run_id is None:
        return
    with transaction(db) as conn:
        _close_run(conn, run_id, now, state, message)


# ---------------------------------------------------------------- reconciliation


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped is a zombie: dead for our purposes
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


# How much later than a run's last heartbeat a process must have started to be another one with the reused pid
# (the boot time behind a process's start is known to the second)
PID_REUSE_SLACK = timedelta(seconds=2)


def _process_started_at(pid: int) -> datetime | None:
    """When the process `pid` started (Linux /proc), or None where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime: clock ticks after boot
        with open("/proc/stat", encoding="ascii") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith("btime "))
        return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), timezone.utc)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def run_is_dead(owner_host: str | None, owner_pid: int | None, heartbeat_at: datetime | None, lease_seconds: float) -> bool:
    """Whether the process that owns a running dial run is gone (pid on this host, lease elsewhere).

    On this host a live process with the owner's pid is the owner only if it started before the run's last heartbeat:
    pids are reused (pid_max is 32,768 here: a killed batch's pid was another process's within minutes), and a
    stranger holding it kept the dead run "placing its calls" and its campaign blocked for as long as it lived.
    """
    if owner_host == HOST and owner_pid is not None:
        if owner_pid == os.getpid():
            return False
        if not _pid_alive(owner_pid):
            return True
        started = _process_started_at(owner_pid)
        return started is not None and heartbeat_at is not None and started > heartbeat_at + PID_REUSE_SLACK
    if heartbeat_at is None:
        return True
    return datetime.now(timezone.utc) - heartbeat_at > timedelta(seconds=lease_seconds)


def reconcile(
    db: Path | str | None,
    provider: TelephonyProvider,
    now: datetime,
    lease_seconds: float | None = None,
    grace_seconds: float | None = None,
) -> int:
    """Settle attempt rows left `queued`/`created` by runs that are over or dead; returns how many.

    A `queued` row never reached the provider: closed as not an attempt. A `created` row may have:
    ask the provider by attempt key. Found → we record its call (no redial). Not found → closed as
    not placed once `grace_seconds` have passed since it was created (a provider's call list can
    lag behind a placement whose answer was lost); until then the contact stays in flight.
    """
    settings = get_settings()
    lease = settings.run_lease_seconds if lease_seconds is None else lease_seconds
    grace = settings.reconcile_grace_seconds if grace_seconds is None else grace_seconds
    with connect(db) as conn:
        runs = conn.execute(
            "select run_id, state, owner_host, owner_pid, heartbeat_at, started_at from dial_runs"
            " where state in ('running', 'failed')"
        ).fetchall()
        dead = [r[0] for r in runs if r[1] == "running" and run_is_dead(r[2], r[3], r[4], lease)]
        alive = {r[0] for r in runs if r[1] == "running"} - set(dead)
        # Only a run still running or one that failed can have left rows `queued`/`created` (a completed
        # run placed, refused or closed every row, and a row never goes back to those statuses), and a
        # run's rows are queued at its start: the call log is read from the oldest such run's start on
        # (row groups before it skipped by queued_at), and not at all when there is none. Rows of live
        # runs are told apart here: the status test alone costs a third of the same test joined in SQL.
        suspects = [r for r in runs if r[0] not in alive]
        orphans = [row[:6] for row in conn.execute(
            "select call_id, attempt_key, status, updated_at, phone_e164, queued_at, run_id from calls"
            " where queued_at >= ? and status in ('queued', 'created') and run_id is not null",
            [min(r[5] for r in suspects)],
        ).fetchall() if row[6] not in alive] if suspects else []
    if not orphans and not dead:
        return 0
    found: list[tuple[int, ProviderCall]] = []
    not_placed: list[int] = []
    for call_id, attempt_key, status, updated_at, phone, queued_at in orphans:
        try:
            # A call of another store carrying the same key (a restored backup, staging) is not ours: it dialled another
            # number, or it was placed before our row was queued.
            match = (provider.find_by_attempt_key(attempt_key, now, to_number=phone, placed_after=queued_at)
                     if status == CallStatus.created else None)
        except ProviderError as error:
            # The provider cannot say now (an outage, a refused key): the row stays `created` and its contact in
            # flight, asked again next tick. A tick that stopped here kept every campaign from dialing.
            log.warning("reconcile: call %s (attempt key %s) left for the next tick: %s", call_id, attempt_key, error)
            continue
        if match is not None:
            found.append((call_id, match))
        elif status == CallStatus.queued or (now - updated_at).total_seconds() >= grace:
            not_placed.append(call_id)
    with transaction(db) as conn:
        if found:
            apply_provider_calls(conn, found, now)
        mark_not_placed(conn, not_placed, now, "not placed: its batch was interrupted before dialing")
        if dead:
            conn.execute(
                "update dial_runs set state = 'failed', ended_at = ?, message = ?"
                " where list_contains(?, run_id) and state = 'running'",
                [now, f"interrupted; reconciled {len(orphans)} call(s)", dead],
            )
    return len(found) + len(not_placed)


# ---------------------------------------------------------------- ticks


def run_tick(
    db: Path | str | None,
    provider: TelephonyProvider,
    clock: Clock,
    *,
    campaign_ids: list[int] | None = None,
    pace_seconds: float | None = None,
    batches_at_once: int = 1,
) -> TickResult:
    """One scheduled tick: reconcile, then one batch for every active campaign open now (unless
    `batches_at_once` of its batches are still placing: 1, or the shards of a sharded campaign)."""
    result = TickResult(reconciled=reconcile(db, provider, clock.now()))
    with connect(db) as conn:
        plans = [p for p in load_plans(conn, campaign_ids) if p.active and p.schedule.start_date is not None]
    failed: list[tuple[CampaignPlan, Exception]] = []
    for plan in plans:
        if plan.schedule.is_open(clock.now()):
            try:
                result.batches.append(dial_batch(db, provider, plan, clock, kind="scheduled",
                                                 pace_seconds=pace_seconds, batches_at_once=batches_at_once))
            except Exception as error:  # one campaign's failure must not keep the others from dialing
                failed.append((plan, error))
    if failed:
        # the tick still fails, naming each campaign, once every other campaign had its batch
        raise TickError("; ".join(f"campaign {plan.campaign_id} ({plan.name}): {type(error).__name__}: {error}"
                                  for plan, error in failed), result) from failed[0][1]
    return result


class TickError(Exception):
    """Campaigns of a tick failed (each named in the message); `result` is what the tick did for the others."""

    def __init__(self, message: str, result: TickResult):
        super().__init__(message)
        self.result = result


def run_manual(
    db: Path | str | None, provider: TelephonyProvider, campaign_id: int, clock: Clock, *, pace_seconds: float | None = None
) -> BatchResult:
    """The Run button: one batch now, even when inactive or outside the schedule (attempt limits hold)."""
    reconcile(db, provider, clock.now())
    with connect(db) as conn:
        plans = load_plans(conn, [campaign_id])
    if not plans:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    return dial_batch(db, provider, plans[0], clock, kind="manual", pace_seconds=pace_seconds)
