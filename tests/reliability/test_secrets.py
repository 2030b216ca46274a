"""The provider key lives only in the environment: a dialing tick and an enrichment pass through
the Retell adapter (FakeRetell) leave it in no log, table, export or Prefect record. Webhook
signatures use a constant-time compare and a replay window."""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import logging
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from tasks.settings import reset_settings
from tasks.store import connect
from tests.factories import add_contacts
from tests.tasks.telephony.retell_server import FakeRetell

KEY = "sk-CANARY-7f3a9c1e-do-not-leak"
NOW = datetime(2026, 4, 28, 17, 0, tzinfo=UTC)  # Tuesday 10:00 in Phoenix


def text_columns(conn) -> list[tuple[str, str]]:
    return conn.execute(
        "select table_name, column_name from information_schema.columns"
        " where table_catalog = current_database() and data_type in ('VARCHAR', 'JSON')"
    ).fetchall()


def assert_no_key_in_tables(db) -> int:
    with connect(db) as conn:
        hits = [
            (table, column) for table, column in text_columns(conn)
            if conn.execute(f'select count(*) from "{table}" where contains("{column}"::varchar, ?)', [KEY]).fetchone()[0]
        ]
        checked = conn.execute("select count(*) from calls").fetchone()[0]
    assert hits == []
    return checked


def xlsx_text(path) -> str:
    with zipfile.ZipFile(path) as book:
        return "".join(book.read(name).decode("utf-8", "replace") for name in book.namelist())


async def prefect_records() -> tuple[list[dict], str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    async with get_client() as client:
        runs = await client.read_flow_runs()
        tasks = await client.read_task_runs()
        logs = await client.read_logs(LogFilter())
    return [r.parameters for r in runs], json.dumps([
        [r.model_dump(mode="json") for r in runs],
        [t.model_dump(mode="json") for t in tasks],
        [entry.model_dump(mode="json") for entry in logs],
    ])


def test_the_key_is_in_no_log_table_export_or_prefect_record(prefect_harness, campaign_db, monkeypatch, caplog, capfd, tmp_path):
    from flows.dial_campaigns import dial_campaigns
    from flows.enrich_calls import enrich_calls
    from tasks.contacts_import import export_contacts
    from tasks.export_calls import export_calls

    db, campaign_id = campaign_db["db"], campaign_db["campaign_id"]
    add_contacts(db, campaign_id, 5)
    caplog.set_level(logging.DEBUG)
    with FakeRetell(api_key=KEY) as server:
        server.clock_ms = int(NOW.timestamp() * 1000)
        monkeypatch.setenv("RETELL_API_KEY", KEY)
        monkeypatch.setenv("CAMPAIGNS_PROVIDER", "retell")
        monkeypatch.setenv("CAMPAIGNS_RETELL_BASE_URL", server.url)
        monkeypatch.setenv("CAMPAIGNS_RETELL_BACKOFF_SECONDS", "0")
        reset_settings()
        server.fail(429, times=1, path_prefix="/v2/create-phone-call")  # retry warnings get logged
        server.fail(401, times=1, path_prefix="/v2/get-call/")  # a refused key: its error is stored
        dialed = dial_campaigns(now=NOW, db=str(db))
        assert sum(b["placed"] for b in dialed["batches"]) == 5
        for call_id in list(server.calls):
            server.update_call(call_id, call_status="ended", disconnection_reason="user_hangup",
                               start_timestamp=server.clock_ms, end_timestamp=server.clock_ms + 30_000,
                               call_analysis={"call_summary": "Asked about pricing", "call_successful": True})
        enrich_calls(now=NOW + timedelta(minutes=40), db=str(db))
        # the key travelled only in the Authorization header, never in a body
        assert all(KEY not in json.dumps(seen.body) for seen in server.seen)
        assert any(seen.headers.get("Authorization") == f"Bearer {KEY}" for seen in server.seen)
    assert assert_no_key_in_tables(db) == 5
    with connect(db) as conn:
        export_calls(conn, campaign_id, tmp_path / "calls.xlsx")
        export_contacts(conn, campaign_id, tmp_path / "contacts.xlsx")
    for export in ("calls.xlsx", "contacts.xlsx"):
        assert KEY not in xlsx_text(tmp_path / export)
    parameters, records = asyncio.run(prefect_records())
    assert sum(1 for p in parameters if p.get("db") == str(db)) >= 2  # the dial and enrich runs were read
    assert KEY not in records  # flow and task run parameters, states and logs
    out, err = capfd.readouterr()
    assert KEY not in caplog.text + out + err
    assert "retry" in caplog.text + err  # the logs did talk about the failing requests (Prefect's handler: stderr)


def test_signature_checks_use_compare_digest_and_a_replay_window(monkeypatch):
    from tasks.telephony import retell

    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(retell.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    body = b'{"event": "call_ended"}'
    header = retell.sign_retell_payload(body, KEY, NOW)
    assert retell.verify_retell_signature(body, header, KEY, NOW + timedelta(seconds=299))
    assert compared == [1]  # the digest comparison went through hmac.compare_digest
    # replayed later than the window: refused before any comparison
    assert not retell.verify_retell_signature(body, header, KEY, NOW + timedelta(seconds=301))
    assert not retell.verify_retell_signature(body, header, KEY, NOW - timedelta(seconds=301))
    assert not retell.verify_retell_signature(body + b" ", header, KEY, NOW)
    assert compared == [1, 1]


@pytest.mark.parametrize("module", ["tasks.telephony.retell", "tasks.settings"])
def test_the_key_is_read_from_the_environment_only(module, monkeypatch):
    import importlib

    source = importlib.import_module(module).__file__
    text = open(source, encoding="utf-8").read()
    assert "sk-" not in text and "os.environ" not in text and "os.getenv" not in text


def test_settings_never_print_the_key(monkeypatch):
    from tasks.settings import get_settings

    monkeypatch.setenv("RETELL_API_KEY", KEY)
    reset_settings()
    settings = get_settings()
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump()) and KEY not in settings.model_dump_json()
    assert settings.retell_api_key.get_secret_value() == KEY
    reset_settings()
