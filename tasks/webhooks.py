"""Retell webhook events: check the signature, parse the event, apply it through the one writer.

Retell retries a delivery up to 3 times on any non-2xx answer, so only a request we can never
accept (bad signature, malformed body) gets a 4xx; an event about a call we do not know, or about another
provider call carrying one of our attempt keys (keys are unique within one store only), is acknowledged (202)
and logged rather than retried forever, and writes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

import duckdb

from tasks.call_state import apply_provider_call, find_call_id
from tasks.telephony.base import ProviderCall, ProviderError
from tasks.telephony.retell import NestedTooDeeply, parse_retell_call, verify_retell_signature

log = logging.getLogger(__name__)

EVENTS = frozenset({"call_started", "call_ended", "call_analyzed"})
MAX_BODY_BYTES = 1_000_000
SIGNATURE_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class WebhookResult:
    """The HTTP answer to one delivery: status code, a short message, and the call it touched."""

    status: int
    message: str
    call_id: int | None = None
    changed: bool = False


@dataclass(frozen=True)
class RetellEvent:
    """A verified, parsed webhook event."""

    event: str
    call: ProviderCall


class WebhookRejected(Exception):
    """A delivery that must not be applied; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def parse_event(raw_body: bytes, signature: str | None, api_key: str, now: datetime) -> RetellEvent | None:
    """The verified event in a delivery, None for an event type we ignore; raises WebhookRejected."""
    if not verify_retell_signature(raw_body, signature, api_key, now, SIGNATURE_TOLERANCE_SECONDS):
        reason = "missing" if not signature else "invalid or stale"
        raise WebhookRejected(401, f"X-Retell-Signature {reason}")
    try:
        payload = json.loads(raw_body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected(400, "body is not JSON") from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise WebhookRejected(400, "body is nested too deeply") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        raise WebhookRejected(400, "body has no event")
    if payload["event"] not in EVENTS:
        return None
    try:
        call = parse_retell_call(payload.get("call"))
    except NestedTooDeeply:  # json.loads took it, but no store keeps (nor code walks) a record that deep
        raise WebhookRejected(400, "body is nested too deeply") from None
    except ProviderError as error:
        raise WebhookRejected(400, str(error)) from None
    return RetellEvent(payload["event"], call)


def apply_event(conn: duckdb.DuckDBPyConnection, event: RetellEvent, now: datetime) -> WebhookResult:
    """Store one event on its call (inside a transaction); unknown calls are acknowledged, not stored."""
    call = event.call
    call_id = find_call_id(conn, provider_call_id=call.provider_call_id, attempt_key=call.attempt_key,
                           started_at=call.started_at)
    if call_id is None and call.attempt_key:
        ours = conn.execute("select call_id, provider_call_id, queued_at from calls where attempt_key = ?",
                            [call.attempt_key]).fetchone()
        if ours is not None:
            # our key on another provider call, or on a call that started before our attempt was queued: another
            # store's call (a restored backup, a staging store on the same Retell account); applying it would
            # rewrite our call's outcome
            if ours[1] is None:
                log.warning(
                    "Retell %s for call %s carries attempt key %s of our call %s, but started at %s, before that"
                    " attempt was queued at %s: ignored",
                    event.event, call.provider_call_id, call.attempt_key, ours[0], call.started_at, ours[2],
                )
                return WebhookResult(202, "ignored: the call started before our attempt with its key")
            log.warning(
                "Retell %s for call %s carries attempt key %s of our call %s, which is provider call %s: ignored",
                event.event, call.provider_call_id, call.attempt_key, ours[0], ours[1],
            )
            return WebhookResult(202, "ignored: attempt key belongs to another provider call")
    if call_id is None:
        log.warning(
            "Retell %s for unknown call %s (attempt key %s): ignored", event.event, call.provider_call_id, call.attempt_key
        )
        return WebhookResult(202, "unknown call: ignored")
    changed = apply_provider_call(conn, call_id, call, now)
    return WebhookResult(200, "applied" if changed else "already applied", call_id, changed)
