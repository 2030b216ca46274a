"""The dial-campaigns and run-campaign Prefect flows run the engine end to end."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tasks.store import connect
from tests.factories import add_contacts, make_campaign_db

pytestmark = pytest.mark.prefect


def test_dial_campaigns_and_run_campaign_flows(db, prefect_harness):
    from flows.dial_campaigns import dial_campaigns, run_campaign

    ids = make_campaign_db(db, batch_size=5)
    add_contacts(db, ids["campaign_id"], 8)
    tuesday_10_phoenix = datetime(2026, 4, 28, 17, 0, tzinfo=timezone.utc)
    result = dial_campaigns(now=tuesday_10_phoenix, db=str(db))
    assert result["placed"] == 5
    manual = run_campaign(ids["campaign_id"], now=tuesday_10_phoenix, db=str(db))
    assert manual["placed"] == 3 and manual["claimed"] == 3
    # the run's final state carries the batch's line (the Prefect UI and the dashboard's Run show it)
    again = run_campaign(ids["campaign_id"], now=tuesday_10_phoenix, db=str(db), return_state=True)
    assert again.is_completed() and again.message.startswith(f"campaign {ids['campaign_id']}: claimed 0, placed 0 ("), again
    with connect(db) as conn:
        assert conn.execute("select kind, state, calls_placed from dial_runs order by run_id").fetchall() == [
            ("scheduled", "completed", 5),
            ("manual", "completed", 3),
        ]
        assert conn.execute("select count(distinct contact_id) from calls").fetchone()[0] == 8
    # every contact called today: the tick's's final state says what it did, batch by batch (one that placed nothing said nothing of why)
    later = dial_campaigns(now=tuesday_10_phoenix, db=str(db), return_state=True)
    assert later.is_completed() and later.message == (
        f"reconciled 0, placed 0; campaign {ids['campaign_id']}: claimed 0, placed 0 (no eligible contacts)"), later
    assert later.result()["placed"] == 0
    # at 20:00 in Phoenix the window is closed: the message said nothing of the campaign at all
    evening = dial_campaigns(now=datetime(2026, 4, 29, 3, 0, tzinfo=timezone.utc), db=str(db), return_state=True)
    assert evening.is_completed() and evening.message == (
        f"reconciled 0, placed 0; campaign {ids['campaign_id']}: no batch (outside its calling window:"
        " Tue 2026-04-28 20:00 America/Phoenix; next opens Wed 2026-04-29 08:00)"), evening
    assert evening.result()["idle"] == [{"campaign_id": ids["campaign_id"], "reason": evening.message.split("(", 1)[1][:-1]}]


def test_a_tick_the_provider_refused_ends_failed(db, prefect_harness, monkeypatch):
    # a revoked API key ended Completed, at INFO: Prefect's failure alerts never fired
    import flows.dial_campaigns as module
    from tasks.telephony.base import ProviderError
    from tests.fakes import FakeProvider

    ids = make_campaign_db(db, batch_size=5)
    add_contacts(db, ids["campaign_id"], 3)
    monkeypatch.setattr(module, "_provider", lambda _db: FakeProvider(
        fail_with=ProviderError("Retell POST /v2/create-phone-call: HTTP 401, the API key was refused")))
    state = module.dial_campaigns(now=datetime(2026, 4, 28, 17, 0, tzinfo=timezone.utc), db=str(db), return_state=True)
    assert state.is_failed(), state
    assert "placed 0 (telephony provider refused the call: Retell POST" in state.message
