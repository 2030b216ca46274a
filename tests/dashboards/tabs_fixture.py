"""The small hand-computed campaign behind the Call Logs / Contact List / Metrics tests.

Campaign time zone America/Phoenix (UTC-7, no DST). Four enrolled contacts, Person 0..3
(+16025550000..3): A=Person 0, B=Person 1, C=Person 2 (never called), D=Person 3.

| call | contact | queued_at (UTC)   | local day | status        | reason                    | ok    | dur | cr | tools |
| c1   | A       | 2026-04-27 16:00  | Apr 27    | ended         | agent_hangup              | True  | 120 | 100| 2     |
| c2   | A       | 2026-04-28 16:00  | Apr 28    | ended (vm)    | voicemail_reached         | False | 20  | 10 | 0     |
| c3   | B       | 2026-04-27 17:00  | Apr 27    | not_connected | dial_no_answer            | None  | 0   | 0  | None  |
| c4   | B       | 2026-04-29 06:30  | Apr 28    | ended         | user_hangup               | False | 45  | 30 | 1     |
| c5   | D       | 2026-04-28 18:00  | Apr 28    | error         | concurrency_limit_reached | None  | None| 0  | None  |  (not an attempt)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tasks.metrics import aggregate
from tasks.store import transaction
from tests.factories import add_contacts, make_campaign_db

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CALLS = [
    # name, contact index, queued_at, status, reason, successful, in_voicemail, duration, credits, tools, attempt
    ("c1", 0, datetime(2026, 4, 27, 16, 0, tzinfo=UTC), "ended", "agent_hangup", True, False, 120.0, 100, 2, True),
    ("c2", 0, datetime(2026, 4, 28, 16, 0, tzinfo=UTC), "ended", "voicemail_reached", False, True, 20.0, 10, 0, True),
    ("c3", 1, datetime(2026, 4, 27, 17, 0, tzinfo=UTC), "not_connected", "dial_no_answer", None, None, 0.0, 0, None, True),
    ("c4", 1, datetime(2026, 4, 29, 6, 30, tzinfo=UTC), "ended", "user_hangup", False, False, 45.0, 30, 1, True),
    ("c5", 3, datetime(2026, 4, 28, 18, 0, tzinfo=UTC), "error", "concurrency_limit_reached", None, None, None, 0, None,
     False),
]


def make_tabs_db(path: Path) -> dict:
    """Build the campaign above, aggregate its metrics; returns ids: campaign_id, contacts A-D, calls c1-c5."""
    ids = make_campaign_db(path)
    campaign_id = ids["campaign_id"]
    contacts = add_contacts(path, campaign_id, 4, prefix="+1602555")
    calls = {}
    with transaction(path) as conn:
        for n, (name, who, queued, status, reason, ok, vm, duration, credits, tools, attempt) in enumerate(CALLS):
            calls[name] = conn.execute(
                """
                insert into calls (campaign_id, contact_id, attempt_key, attempt_number, counts_as_attempt,
                    phone_e164, status, disconnect_reason, call_successful, in_voicemail, duration_seconds,
                    credits, tools_count, provider, queued_at, updated_at, summary, dynamic_variables,
                    custom_analysis, transcript, recording_url, user_sentiment)
                values (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'simulator', ?, ?, ?, ?, ?, ?, ?, ?)
                returning call_id
                """,
                [campaign_id, contacts[who], f"k{n}", attempt, f"+160255500{who:02d}", status, reason, ok, vm,
                 duration, credits, tools, queued, queued, f"Summary of {name}", '{"plan": "gold"}',
                 '{"interested": true}' if name == "c1" else None,
                 "Agent: Hello\nUser: Hi" if name == "c1" else None,
                 "https://example.invalid/c1.wav" if name == "c1" else None,
                 "Positive" if name == "c1" else None],
            ).fetchone()[0]
        aggregate(conn, NOW)
    return {"db": path, "campaign_id": campaign_id, **dict(zip("ABCD", contacts)), **calls}
