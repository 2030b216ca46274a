"""Best time to call: connection rate by callee-local weekday × hour per campaign, and the smart ordering.

`best_time_stats` is rebuilt by the aggregation. The opt-in ordering (`campaigns.smart_ordering`)
ranks the callee time zones by the observed rate at their local weekday and hour *now* — shrunk
toward the campaign's overall rate so a cell seen a few times does not dominate — and the claim
calls the best-ranked zones first, except for an exploration share of each batch that stays in
plain order, so hours that look bad keep being measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from math import floor

import duckdb
import polars as pl

from tasks.metrics import connected_sql
from tasks.schedule import zone


def callee_zone_sql(contact: str, zone_key: str, default: str) -> str:
    """SQL for a contact's callee zone: the zone its time zone resolution settled on (a hand-set zone
    first: `tasks.compliance.resolve_zone`), else its phone's first zone, else `default`.

    `contact` and `zone_key` are the aliases of `contacts` and of `zone_keys` (joined on zone_key). The
    stats, the zone ranking and the smart claim order must all read the same zone.
    """
    return f"coalesce({zone_key}.time_zones[1], {contact}.time_zones[1], {default})"


# How many pseudo-calls at the campaign's overall rate each weekday × hour cell starts with.
PRIOR_CALLS = 20.0
# A cell with fewer calls than this shows its rate as not reliable yet (the heatmap, `campaigns best-time`).
MIN_CELL_CALLS = 10

STATS_SQL = f"""
with attempts as (
    -- when the phone rang: a batch is claimed (queued_at) at once but placed at its pace over minutes
    select c.campaign_id, coalesce(c.registered_at, c.queued_at) as placed_at,
           {callee_zone_sql("ct", "zk", "camp.time_zone")} as callee_zone,
           {connected_sql("c")} as is_connected
    from calls c
    join campaigns camp using (campaign_id)
    left join contacts ct using (contact_id)
    left join zone_keys zk on zk.zone_key = ct.zone_key
    where c.counts_as_attempt and c.status in ('ended', 'not_connected', 'error')
      and ($campaign_id is null or c.campaign_id = $campaign_id)
),
bucketed as (
    -- converting each call to its zone is slow; 15-minute UTC buckets keep even :30/:45 offsets exact
    select campaign_id, callee_zone, time_bucket(interval 15 minutes, placed_at) as bucket,
           count(*) as calls, count(*) filter (where is_connected) as connected
    from attempts
    group by all
),
localised as (
    select campaign_id, timezone(callee_zone, bucket) as local_at, calls, connected from bucketed
),
final as (
    select campaign_id,
           (isodow(local_at) - 1)::smallint as weekday,
           hour(local_at)::smallint as hour,
           sum(calls)::integer as calls,
           sum(connected)::integer as connected,
           $now::timestamptz as updated_at
    from localised
    group by all
)
select * from final
"""

HEATMAP_SQL = """
with cells as (
    select w.weekday::smallint as weekday, h.hour::smallint as hour
    from range(7) w(weekday), range(24) h(hour)
),
final as (
    select cells.weekday, cells.hour, coalesce(s.calls, 0) as calls, coalesce(s.connected, 0) as connected,
           case when coalesce(s.calls, 0) > 0 then round(s.connected / s.calls, 4) end as connection_rate
    from cells
    left join best_time_stats s on s.campaign_id = $campaign_id and s.weekday = cells.weekday and s.hour = cells.hour
)
select * from final order by weekday, hour
"""


def refresh_best_time_stats(conn: duckdb.DuckDBPyConnection, now: datetime, campaign_id: int | None = None) -> int:
    """Rebuild best_time_stats (one campaign or all) from the calls; returns the cells written."""
    conn.execute("delete from best_time_stats where $campaign_id is null or campaign_id = $campaign_id",
                 {"campaign_id": campaign_id})
    return conn.execute(f"insert into best_time_stats {STATS_SQL}", {"campaign_id": campaign_id, "now": now}).fetchone()[0]


def heatmap(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> pl.DataFrame:
    """All 7 × 24 cells (weekday 0 = Monday, callee-local hour) with calls, connected and the rate (None if unseen)."""
    return conn.execute(HEATMAP_SQL, {"campaign_id": campaign_id}).pl()


@dataclass(frozen=True)
class SmartOptions:
    """A campaign's smart-dialing options."""

    smart_ordering: bool = False
    exploration_share: float = 0.2
    number_daily_cap: int | None = None

    @classmethod
    def from_row(cls, smart_ordering: bool | None, exploration_share: float | None, number_daily_cap: int | None) -> SmartOptions:
        """The options from a campaigns row's three columns (NULLs: the defaults)."""
        return cls(bool(smart_ordering), 0.2 if exploration_share is None else float(exploration_share), number_daily_cap)


def smart_options(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> SmartOptions:
    """The campaign's smart-dialing options (defaults for a campaign without them)."""
    row = conn.execute(
        "select smart_ordering, exploration_share, number_daily_cap from campaigns where campaign_id = ?",
        [campaign_id],
    ).fetchone()
    return SmartOptions() if row is None else SmartOptions.from_row(*row)


def zone_scores(stats: dict[tuple[int, int], tuple[int, int]], zones: list[str], now: datetime) -> dict[str, float]:
    """Each callee zone's expected connection rate at its local weekday and hour now (shrunk to the overall rate)."""
    calls = sum(c for c, _ in stats.values())
    overall = sum(k for _, k in stats.values()) / calls if calls else 0.0
    scores = {}
    for name in zones:
        local = now.astimezone(zone(name))
        seen, connected = stats.get((local.weekday(), local.hour), (0, 0))
        scores[name] = (connected + overall * PRIOR_CALLS) / (seen + PRIOR_CALLS)
    return scores


def zone_ranking(conn: duckdb.DuckDBPyConnection, campaign_id: int, default_zone: str, now: datetime) -> list[str]:
    """The callee zones of the campaign's unfinished contacts, best expected rate now first ([] without data)."""
    stats = {
        (weekday, hour): (calls, connected)
        for weekday, hour, calls, connected in conn.execute(
            "select weekday, hour, calls, connected from best_time_stats where campaign_id = ?", [campaign_id]
        ).fetchall()
    }
    if not stats:
        return []
    zones = [row[0] for row in conn.execute(
        f"""
        select distinct {callee_zone_sql("c", "zk", "$default_zone")}
        from campaign_contacts cc join contacts c using (contact_id)
        left join zone_keys zk on zk.zone_key = c.zone_key
        where cc.campaign_id = $campaign_id and cc.finished_at is null
        """,
        {"campaign_id": campaign_id, "default_zone": default_zone},
    ).fetchall()]
    valid = []
    for name in zones:
        try:
            zone(name)
            valid.append(name)
        except (KeyError, ValueError):  # a zone name this machine does not know ranks last
            continue
    scores = zone_scores(stats, valid, now)
    return sorted(valid, key=lambda name: (-scores[name], name))


def exploration_split(size: int, share: float) -> tuple[int, int]:
    """(smart, plain) parts of a batch of `size`: the plain part is at least one when share > 0 and size > 1."""
    plain = floor(size * share)
    if share > 0 and size > 1:
        plain = max(plain, 1)
    return size - plain, plain
