"""The lifecycle's refusals in the dashboard: the Active toggle, the list's Delete and Duplicate, each saying
why in one line and changing nothing; and a campaign deleted while its page watches its status (AppTest)."""

from __future__ import annotations

from datetime import date

import pytest

from tests.dashboards.test_app_campaigns import listed, row_names, run_app  # noqa: F401 (listed: a fixture)
from tests.dashboards.test_app_settings import campaign_page, stored
from tests.factories import make_campaign_db


@pytest.mark.usefixtures("db_kept_open")
@pytest.mark.parametrize(("settings", "message"), [
    # past its end date Active would change nothing: it used to turn on and say "Scheduled dialing is on."
    ({"start_date": date(2020, 1, 6), "end_date": date(2020, 1, 31)},
     "Campaign {id}: cannot activate: its end date 2020-01-31 has passed (America/Phoenix); set a later end date first"),
    ({"outbound_number_ids": []}, "Campaign {id}: cannot activate: choose an outbound number first"),
])
def test_active_on_is_refused_in_one_line_and_nothing_changes(db, settings, message):
    cid = make_campaign_db(db, active=False, **settings)["campaign_id"]
    before = stored(db, cid)
    at = campaign_page(cid)
    at.toggle(key=f"active_{cid}").set_value(True).run()
    assert [e.value for e in at.error] == [message.format(id=cid)]
    assert not at.success
    assert stored(db, cid) == before
    assert at.toggle(key=f"active_{cid}").value is False


def test_delete_is_refused_while_a_batch_places_calls(listed):
    import os
    import re

    from tasks.dialing import HOST
    from tasks.store import transaction

    cid = listed["campaign_id"]
    with transaction(listed["db"]) as conn:  # the Run button's batch, in this (live) process
        run_id = conn.execute(
            "insert into dial_runs (campaign_id, kind, state, started_at, owner_host, owner_pid, heartbeat_at)"
            " values (?, 'manual', 'running', now(), ?, ?, now()) returning run_id", [cid, HOST, os.getpid()]).fetchone()[0]
    at = run_app()
    at.button(key=f"delete_{cid}").click().run()
    at.button(key="confirm_delete").click().run()
    assert [re.sub(r"\\(.)", r"\1", e.value) for e in at.error] == [
        f"campaign {cid}: batch {run_id} is placing its calls now; delete the campaign once it has ended "
        "(turn Active off first, so that no new batch starts)"]
    assert not at.success
    assert row_names(at) == ["Autumn draft", "Spring outreach"]


@pytest.mark.parametrize("action", ["duplicate", "delete"])
def test_a_busy_database_says_nothing_was_changed(listed, monkeypatch, action):
    # the click was lost behind the app's "busy; retrying" banner; a delete's dialog then opened again by itself
    import dashboards.state
    from tasks.errors import StoreLockedError

    def busy():
        raise StoreLockedError("locked")

    cid = listed["campaign_id"]
    at = run_app()
    monkeypatch.setattr(dashboards.state, "writing", busy)
    at.button(key=f"{action}_{cid}").click().run()
    if action == "delete":
        at.button(key="confirm_delete").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["The database is busy (a flow is writing); nothing was changed. "
                                           "Try again in a moment."]
    assert not [b for b in at.button if b.key == "confirm_delete"]
    assert row_names(at) == ["Autumn draft", "Spring outreach"]


@pytest.mark.usefixtures("db_kept_open")
def test_a_campaign_deleted_while_its_live_status_refreshes_says_so(db, monkeypatch):
    # the capsule re-reads the status every few seconds while a batch runs; a delete from elsewhere in between
    # raised NotFoundError inside the header
    import os
    from datetime import UTC, datetime

    import dashboards.queries.campaigns as queries
    from tasks.dialing import HOST
    from tasks.errors import NotFoundError
    from tasks.store import transaction

    cid = make_campaign_db(db)["campaign_id"]
    with transaction(db) as conn:  # a scheduled batch: the status is Running, so the capsule is live
        conn.execute("insert into dial_runs (campaign_id, kind, state, started_at, owner_host, owner_pid, heartbeat_at)"
                     " values (?, 'scheduled', 'running', ?, ?, ?, ?)", [cid, datetime.now(UTC), HOST, os.getpid(), datetime.now(UTC)])
    header, reads = queries.campaign_header, []

    def deleted_after_the_first_read(conn, campaign_id, now):
        reads.append(campaign_id)
        if len(reads) > 1:
            raise NotFoundError(f"campaign {campaign_id} does not exist")
        return header(conn, campaign_id, now)

    monkeypatch.setattr(queries, "campaign_header", deleted_after_the_first_read)
    at = campaign_page(cid)
    assert [e.value for e in at.error] == [f"Campaign {cid} does not exist (it may have been deleted)."]


def test_a_failed_campaign_says_why_under_its_name(db):
    # the capsule said "Failed" and nothing else: the reason was in dial_runs only
    from datetime import UTC, datetime

    from tasks.store import transaction

    cid = make_campaign_db(db)["campaign_id"]
    started = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # 10:00 in Phoenix
    with transaction(db) as conn:
        conn.execute("insert into dial_runs (campaign_id, kind, state, started_at, ended_at, message)"
                     " values (?, 'manual', 'failed', ?, ?, 'telephony provider unavailable: Retell POST"
                     " /v2/create-phone-call: HTTP 503 after 3 tries')", [cid, started, started])
    at = campaign_page(cid)
    [error] = [e.value.replace("\\", "") for e in at.error]  # as shown: the message is escaped for Markdown
    assert error == ("Its manual batch of Apr 28, 10:00:00 AM (America/Phoenix) failed: telephony provider"
                     " unavailable: Retell POST /v2/create-phone-call: HTTP 503 after 3 tries"), error


def test_a_campaign_whose_number_cannot_dial_says_so_under_its_name(db):
    # an inactive SIP trunk: every tick placed nothing while the page said "Waiting" and nothing else
    from tasks.store import transaction

    cid = make_campaign_db(db)["campaign_id"]
    assert not campaign_page(cid).warning
    with transaction(db) as conn:
        conn.execute("update phone_numbers set sip_trunk_status = 'inactive'")
        [e164] = conn.execute("select e164 from phone_numbers").fetchone()
    at = campaign_page(cid)
    assert [w.value.replace("\\", "") for w in at.warning] == [
        f"No batch can dial now: outbound number {e164} has SIP trunk status inactive. Check the outbound numbers in"
        " Settings."]
