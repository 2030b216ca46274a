"""The webhook receiver over HTTP: status codes, nothing written on refusal, a real uvicorn server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from flows.webhooks_app import create_app
from tasks.settings import reset_settings
from tasks.store import connect, transaction
from tasks.telephony.retell import sign_retell_payload
from tests.tasks.seeding import call_row, seed_call
from tests.tasks.test_webhooks import KEY, NOW, QUEUED, retell_events

URL = "/webhooks/retell"


@pytest.fixture
def call_id(campaign_db):
    with transaction(campaign_db["db"]) as conn:
        return seed_call(conn, campaign_db["campaign_id"], "+16025551234", QUEUED, provider="retell",
                         provider_call_id="call_w1", attempt_key="1.1.1")


@pytest.fixture
def client(campaign_db, call_id):
    with TestClient(create_app(campaign_db["db"], api_key=KEY, clock=lambda: NOW)) as test_client:
        yield test_client


def post(client, payload: dict, *, key: str = KEY, at: datetime = NOW, header: str | None = "sign"):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if header == "sign":
        headers["X-Retell-Signature"] = sign_retell_payload(body, key, at)
    elif header is not None:
        headers["X-Retell-Signature"] = header
    return client.post(URL, content=body, headers=headers)


def status_of(db, call_id) -> str:
    with connect(db) as conn:
        return call_row(conn, call_id)["status"]


def test_healthz(client):
    assert client.get("/healthz").json() == {"ok": True}


def test_a_signed_event_is_applied(client, campaign_db, call_id):
    answer = post(client, retell_events()["call_analyzed"])
    assert (answer.status_code, answer.json()) == (200, {"result": "applied", "call_id": call_id})
    assert status_of(campaign_db["db"], call_id) == "ended"
    replay = post(client, retell_events()["call_analyzed"])  # Retell's retry of the same delivery
    assert (replay.status_code, replay.json()["result"]) == (200, "already applied")


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"header": None}, 401),  # no signature at all
        ({"header": "v=1,d=00"}, 401),  # forged
        ({"key": "not_the_key"}, 401),  # signed with another key
        ({"at": NOW - timedelta(minutes=6)}, 401),  # replayed after the 5-minute window
    ],
)
def test_an_unsigned_or_badly_signed_event_writes_nothing(client, campaign_db, call_id, kwargs, status):
    answer = post(client, retell_events()["call_analyzed"], **kwargs)
    assert answer.status_code == status
    assert "X-Retell-Signature" in answer.json()["error"]
    assert status_of(campaign_db["db"], call_id) == "registered"


def test_an_event_for_an_unknown_call_is_acknowledged_with_202(client, campaign_db, call_id):
    answer = post(client, retell_events(call_id="call_nobody")["call_ended"])
    assert (answer.status_code, answer.json()["call_id"]) == (202, None)
    assert status_of(campaign_db["db"], call_id) == "registered"


def test_an_event_for_another_provider_call_under_our_attempt_key_is_ignored_with_202(client, campaign_db, call_id):
    # the audit's delivery: call_FROM_OTHER_STORE with our call's attempt key was answered 200 "applied"
    foreign = retell_events(call_id="call_FROM_OTHER_STORE", attempt_key="1.1.1")["call_analyzed"]
    foreign["call"]["call_analysis"]["custom_analysis_data"] = {"do_not_call": True}
    answer = post(client, foreign)
    assert (answer.status_code, answer.json()) == (
        202, {"result": "ignored: attempt key belongs to another provider call", "call_id": None})
    assert status_of(campaign_db["db"], call_id) == "registered"
    with connect(campaign_db["db"]) as conn:
        assert conn.execute("select count(*) from do_not_call").fetchone()[0] == 0


def test_a_body_over_the_limit_is_refused_with_413(campaign_db, call_id):
    app = create_app(campaign_db["db"], api_key=KEY, clock=lambda: NOW, max_body_bytes=1000)
    payload = retell_events()["call_ended"]
    payload["call"]["transcript"] = "x" * 2000
    with TestClient(app) as small:
        assert post(small, payload).status_code == 413  # declared by Content-Length
        body = json.dumps(payload).encode()
        chunked = small.post(URL, content=iter([body[:600], body[600:]]),
                             headers={"X-Retell-Signature": sign_retell_payload(body, KEY, NOW)})
        assert chunked.status_code == 413  # streamed without a length: counted while reading
    assert status_of(campaign_db["db"], call_id) == "registered"


def test_without_an_api_key_the_endpoint_answers_503(campaign_db, call_id, monkeypatch):
    monkeypatch.delenv("RETELL_API_KEY", raising=False)
    reset_settings()
    with TestClient(create_app(campaign_db["db"], clock=lambda: NOW)) as no_key:
        assert post(no_key, retell_events()["call_ended"]).status_code == 503
    assert status_of(campaign_db["db"], call_id) == "registered"


def test_the_api_key_comes_from_the_environment(campaign_db, call_id, monkeypatch):
    monkeypatch.setenv("RETELL_API_KEY", KEY)
    reset_settings()
    with TestClient(create_app(campaign_db["db"], clock=lambda: NOW)) as env_key:
        assert post(env_key, retell_events()["call_ended"]).status_code == 200
    reset_settings()


def test_a_database_locked_by_another_process_answers_503_so_retell_retries(campaign_db, call_id):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " time.sleep(30)", str(campaign_db["db"])],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        app = create_app(campaign_db["db"], api_key=KEY, clock=lambda: NOW, lock_timeout=0.2)
        with TestClient(app) as busy:
            answer = post(busy, retell_events()["call_ended"])
    finally:
        holder.kill()
        holder.wait()
    assert (answer.status_code, answer.json()) == (503, {"error": "database busy; retry"})
    assert status_of(campaign_db["db"], call_id) == "registered"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_served_by_uvicorn_over_real_http(campaign_db, call_id):
    port = free_port()
    # the real clock: the signature is made with it too
    server = uvicorn.Server(uvicorn.Config(create_app(campaign_db["db"], api_key=KEY), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        body = json.dumps(retell_events()["call_analyzed"]).encode()
        header = sign_retell_payload(body, KEY, datetime.now(UTC))
        answer = httpx.post(f"{base}{URL}", content=body, headers={"X-Retell-Signature": header})
        assert (answer.status_code, answer.json()["call_id"]) == (200, call_id)
        assert httpx.post(f"{base}{URL}", content=body).status_code == 401
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert status_of(campaign_db["db"], call_id) == "ended"


def test_concurrent_deliveries_over_real_http_all_succeed(campaign_db, call_id):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(campaign_db["db"], api_key=KEY), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}{URL}"
        bodies = [json.dumps(payload).encode() for payload in retell_events().values()] * 4

        def deliver(body: bytes) -> int:
            header = sign_retell_payload(body, KEY, datetime.now(UTC))
            return httpx.post(url, content=body, headers={"X-Retell-Signature": header}, timeout=30).status_code

        # the three events of one call, each delivered four times, all at once
        with ThreadPoolExecutor(max_workers=6) as pool:
            codes = list(pool.map(deliver, bodies))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert codes == [200] * 12
    with connect(campaign_db["db"]) as conn:
        row = call_row(conn, call_id)
    assert (row["status"], row["call_successful"], row["credits"]) == ("ended", True, 666)
