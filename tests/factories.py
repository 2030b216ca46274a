"""The one factory that builds test databases: make_campaign_db(path, **overrides)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from tasks.store import transaction

REFERENCE_SCHEDULE = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def make_campaign_db(path: Path, **overrides: Any) -> dict:
    """Insert an agent, numbers and one campaign; overrides replace campaign columns. Returns ids."""
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
    with transaction(path) as conn:
        agent_id = conn.execute(
            "insert into agents (name, provider_agent_id) values ('Ava', 'agent_sim_1') returning agent_id"
        ).fetchone()[0]
        number_ids = [
            conn.execute(
                "insert into phone_numbers (e164, nickname, sip_trunk_status) values (?, ?, ?) returning number_id",
                [e164, nick, status],
            ).fetchone()[0]
            for e164, nick, status in (
                ("+16025550100", "Phoenix main", "active"),
                ("+16025550101", "Phoenix backup", "active"),
            )
        ]
        if "outbound_number_ids" not in campaign:
            campaign["outbound_number_ids"] = number_ids if campaign["rotation_enabled"] else number_ids[:1]
        campaign["agent_id"] = campaign.get("agent_id", agent_id)
        campaign["weekly_schedule"] = json.dumps(campaign["weekly_schedule"])
        columns = list(campaign)
        campaign_id = conn.execute(
            f"insert into campaigns ({', '.join(columns)}) values ({', '.join('?' for _ in columns)}) returning campaign_id",
            [campaign[c] for c in columns],
        ).fetchone()[0]
    return {"db": path, "agent_id": agent_id, "number_ids": number_ids, "campaign_id": campaign_id}
