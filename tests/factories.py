"""The one factory that builds test databases: make_campaign_db(path, **overrides)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from schemas.campaign import SETTING_FIELDS
from tasks.campaigns import add_agent, add_number, create_campaign
from tasks.store import transaction

REFERENCE_SCHEDULE = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def make_campaign_db(path: Path, **overrides: Any) -> dict:
    """Insert an agent, numbers and one campaign; overrides replace campaign columns. Returns ids.

    The campaign goes through `create_campaign`, so overrides must make valid settings; columns
    that are not settings (created_at, updated_at) are written afterwards as given.
    """
    now = datetime.now(UTC)
    campaign = {
        "name": "Spring outreach",
        "objective": "Book a demo",
        "start_date": date(2026, 4, 27),
        "end_date": None,
        "calling_days": ["mon", "tue", "wed", "thu", "fri"],
        "weekly_schedule": REFERENCE_SCHEDULE,
        "time_zone": "America/Phoenix",
        "country": "US",
        "max_attempts": 5,
        "attempts_per_day": 1,
        "batch_size": 100,
        "rotation_enabled": False,
        "active": True,
    }
    campaign.update(overrides)
    if "calling_days" in overrides and "weekly_schedule" not in overrides:
        # a test choosing other days means the reference hours on those days
        campaign["weekly_schedule"] = {d: [["08:00", "18:00"]] for d in campaign["calling_days"]}
    extra = {k: campaign.pop(k) for k in list(campaign) if k not in SETTING_FIELDS}
    with transaction(path) as conn:
        agent_id = add_agent(conn, "Ava", "agent_sim_1", now)
        number_ids = [
            add_number(conn, e164, nick, status, now)
            for e164, nick, status in (
                ("+16025550100", "Phoenix main", "active"),
                ("+16025550101", "Phoenix backup", "active"),
            )
        ]
        if "outbound_number_ids" not in campaign:
            campaign["outbound_number_ids"] = number_ids if campaign["rotation_enabled"] else number_ids[:1]
        campaign["agent_id"] = campaign.get("agent_id", agent_id)
        end = campaign["end_date"]
        ended = end is not None and (date.fromisoformat(end) if isinstance(end, str) else end) < now.date()
        if campaign["active"] and ended:
            # active past its end date: activated while the end date was ahead (created so, it is refused)
            campaign_id = create_campaign(conn, {**campaign, "active": False}, now)
            conn.execute("update campaigns set active = true where campaign_id = ?", [campaign_id])
        else:
            campaign_id = create_campaign(conn, campaign, now)
        for column, value in extra.items():
            if column not in ("created_at", "updated_at"):
                raise TypeError(f"make_campaign_db: unknown campaign column {column!r}")
            conn.execute(f"update campaigns set {column} = ? where campaign_id = ?", [value, campaign_id])
    return {"db": path, "agent_id": agent_id, "number_ids": number_ids, "campaign_id": campaign_id}


def add_contacts(path: Path, campaign_id: int, count: int = 10, *, first: int = 0, prefix: str = "+1602555") -> list[int]:
    """Enroll `count` numbered contacts (+1602555NNNN) in a campaign; returns their contact ids."""
    with transaction(path) as conn:
        ids = [
            conn.execute(
                "insert into contacts (phone_e164, name, company, properties) values (?, ?, ?, ?)"
                " on conflict (phone_e164) do update set name = excluded.name returning contact_id",
                [f"{prefix}{i:04d}", f"Person {i}", "Acme", '{"plan": "gold"}'],
            ).fetchone()[0]
            for i in range(first, first + count)
        ]
        for contact_id in ids:
            conn.execute("insert into campaign_contacts (campaign_id, contact_id) values (?, ?)", [campaign_id, contact_id])
    return ids


def open_the_us_rule_all_day(path: Path) -> None:
    """Let the US calling rule allow every hour of every day in this database.

    For tests that dial on the wall clock: the law holds a batch back at night in the callee's zone
    (US 08:00-21:00; the factory's contacts are in Phoenix), so without this they fail whenever
    they run between 04:00 and 15:00 UTC.
    """
    all_day = ", ".join(f"{day} = '00:00-24:00'" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    with transaction(path) as conn:
        conn.execute(f"update calling_rules set {all_day} where rule_id = 'US'")
