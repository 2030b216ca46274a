"""The webhook receiver: a small Starlette app (served by uvicorn) for Retell's call events."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tasks.errors import StoreLockedError
from tasks.settings import get_settings
from tasks.store import transaction
from tasks.webhooks import MAX_BODY_BYTES, WebhookRejected, WebhookResult, apply_event, parse_event


# Retell waits 10 s for an answer: give up on a locked database before that and let it retry.
LOCK_TIMEOUT_SECONDS = 8.0


def _now() -> datetime:
    return datetime.now(UTC)


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused (413) as soon as it passes ``limit`` bytes, declared or streamed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WebhookRejected(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WebhookRejected(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    db: str | Path | None = None,
    api_key: str | None = None,
    clock: Callable[[], datetime] = _now,
    max_body_bytes: int = MAX_BODY_BYTES,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> Starlette:
    """The ASGI app; the API key defaults to RETELL_API_KEY from settings, the clock to UTC now."""

    def key() -> str | None:
        if api_key is not None:
            return api_key
        secret = get_settings().retell_api_key
        return secret.get_secret_value() if secret is not None else None

    # Retell sends a call's events close together; two transactions updating the same row in one
    # DuckDB instance conflict ("Conflict on update"), so this process writes one delivery at a time.
    write_lock = threading.Lock()

    def store(raw_body: bytes, signature: str | None, secret: str) -> WebhookResult:
        event = parse_event(raw_body, signature, secret, clock())
        if event is None:
            return WebhookResult(202, "event type ignored")
        with write_lock:
            # One short transaction per delivery: the lookup and the write see the same state.
            with transaction(db, timeout=lock_timeout) as conn:
                return apply_event(conn, event, clock())

    async def retell(request: Request) -> JSONResponse:
        secret = key()
        if not secret:
            return JSONResponse({"error": "RETELL_API_KEY is not configured"}, status_code=503)
        try:
            raw_body = await _read_body(request, max_body_bytes)
            # DuckDB calls block: keep them off the event loop.
            result = await run_in_threadpool(store, raw_body, request.headers.get("x-retell-signature"), secret)
        except WebhookRejected as rejected:
            return JSONResponse({"error": str(rejected)}, status_code=rejected.status)
        except StoreLockedError:
            # Another process holds the database: a 503 makes Retell deliver again later.
            return JSONResponse({"error": "database busy; retry"}, status_code=503)
        return JSONResponse({"result": result.message, "call_id": result.call_id}, status_code=result.status)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[
        Route("/webhooks/retell", retell, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])


def serve(host: str = "127.0.0.1", port: int = 8787, db: str | Path | None = None) -> None:
    """Run the receiver with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(db), host=host, port=port, log_level="info")
