"""The Retell AI adapter: its HTTP API (create-phone-call, get-call, list-calls) behind our interface.

Shapes follow Retell's public API (docs/reference product-facts). Two points are our choices:
- ``POST /v3/list-calls`` filters with v3's typed filters (``{"type": "number", "op": "ge", "value": ms}``;
  Retell refuses v2's ``lower_threshold`` object and bare status lists) and pages with the opaque
  ``pagination_key`` of ``{"items": [...], "pagination_key": ..., "has_more": ...}`` (stop when the key
  is missing/null); a bare JSON list (the legacy shape: the next key is the last call id while a page is
  full) or ``{"calls": [...]}`` is read too.
- A failed ``create-phone-call`` is only retried when the call certainly was not created (429, 503,
  connection refused). Another 5xx or a read timeout may have dialled: it raises ``OutcomeUnknown`` so
  the dialing engine reconciles by attempt key instead of redialling. That includes 502 and 504: a
  gateway answers them after it forwarded the request, when the application failed or was too slow to
  answer, not only when the request never reached it. Reads are retried on 429 and every 5xx.
- A call object with a field of the wrong type is refused (ProviderError naming the field).

The API key comes from the environment via settings and is only ever put in the Authorization
header: it is never logged, stored or written into an exception message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from schemas.enums import CallStatus, DisconnectReason, Sentiment
from tasks.telephony.base import (
    CLOCK_SKEW_ALLOWANCE,
    CallNotFound,
    CallRequest,
    ConcurrencyLimitReached,
    InvalidNumber,
    OutcomeUnknown,
    ProviderCall,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)

log = logging.getLogger(__name__)
# Retry jitter from its own generator: the global `random` state is the caller's (tests, seeded runs)
_JITTER = random.Random()

STATUS_MAP = {
    "registered": CallStatus.registered,
    "ongoing": CallStatus.in_progress,
    "ended": CallStatus.ended,
    "not_connected": CallStatus.not_connected,
    "error": CallStatus.error,
}
_REASONS = {
    **{reason.value: reason for reason in DisconnectReason},
    # Retell's own platform error is our platform-side error (product-facts: "Our error_dapta is the
    # platform-side error"); the raw value stays in disconnect_reason_raw
    "error_retell": DisconnectReason.error_dapta,
}
_SENTIMENTS = {sentiment.value: sentiment for sentiment in Sentiment}
LIST_PAGE_LIMIT = 1000  # Retell's maximum page size
# Retell ends a call at its max_call_duration_ms (2 h at most) after ringing at most 5 min: a call
# started before this window is no longer in flight.
IN_FLIGHT_WINDOW = timedelta(hours=2, minutes=15)
# A call still ringing (registered) was created within this: Retell rings for at most 5 minutes (the rest
# covers our clock running ahead of Retell's).
RING_WINDOW = timedelta(minutes=10)
# 429 and every 5xx are retried (a read always; a create only when it certainly was not processed).
# A rate-limit refusal and "service unavailable" are answered without processing the request; a 502 or
# 504 comes from a gateway that forwarded it and may follow a call that was dialled.
_NOT_PROCESSED_STATUS = frozenset({429, 503})
_INVALID_NUMBER = re.compile(r"number|e\.?164|destination", re.IGNORECASE)
# A refusal about our caller number is a setup problem, never the callee's number being invalid.
_CALLER_NUMBER = re.compile(r"from[_ ]?number|caller", re.IGNORECASE)
# At most 15 digits of milliseconds (year 33658): a longer stamp is refused, not converted.
_SIGNATURE = re.compile(r"^v=(\d{1,15}),d=([0-9a-fA-F]{1,128})$")


def _ms_to_dt(value: Any, name: str = "timestamp") -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(int(_number(value, name)) / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        raise ProviderError(f"Retell call payload: {name} is out of range") from None


def _number(value: Any, name: str) -> int | float:
    """``value`` when it is a finite JSON number (not a boolean); a ProviderError naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProviderError(f"Retell call payload: {name} is not a number")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer past any float
        finite = False
    if not finite:
        raise ProviderError(f"Retell call payload: {name} is out of range")
    return value


def _not_negative(value: Any, name: str) -> int | float:
    """A duration or cost: a finite number not below 0 (a negative one skewed the averages)."""
    number = _number(value, name)
    if number < 0:
        raise ProviderError(f"Retell call payload: {name} is negative")
    return number


def _typed(payload: dict, name: str, kind: type, what: str) -> Any:
    """``payload[name]`` when absent, null or a ``kind``; a ProviderError naming the field otherwise."""
    value = payload.get(name)
    if value is None or (isinstance(value, kind) and (kind is bool or not isinstance(value, bool))):
        return value
    raise ProviderError(f"Retell call payload: {name} is not {what}")


def _started_since(since: datetime) -> dict:
    """v3 list-calls' number filter for calls started at or after `since`."""
    return {"type": "number", "op": "ge", "value": _dt_to_ms(since)}


def _dt_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")
    return int(value.timestamp() * 1000)


def _tools_count(payload: dict) -> int | None:
    entries = payload.get("transcript_with_tool_calls")
    if not isinstance(entries, list):
        return None
    return sum(1 for entry in entries if isinstance(entry, dict) and entry.get("role") == "tool_call_invocation")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Retell's call objects are a few levels deep (custom analysis and tool calls a few more). json.loads takes
# nesting to ~1,000 levels, which the recursive walks after it (ours, json.dumps when storing) do not survive.
MAX_NESTING = 200


class NestedTooDeeply(ProviderError):
    """A Retell answer or call object nested past ``MAX_NESTING`` (or past what json.loads can read)."""


def _nested_past(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/objects more than ``limit`` levels deep (iterative: any depth is safe)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone UTF-16 surrogate in its texts replaced by U+FFFD.

    JSON may escape half of an emoji ("\\ud83d": JavaScript's JSON.stringify of a transcript cut inside one), which
    json.loads accepts and no UTF-8 store can hold: one such call stopped every enrichment pass, and a webhook
    carrying one was answered 500 (and dropped after Retell's retries).
    """
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    return value


def parse_retell_call(payload: dict) -> ProviderCall:
    """Retell's call object (get-call, list-calls, webhook ``call``) in our vocabulary.

    A field of the wrong type raises ProviderError (a webhook answers 400, a poll records the error)
    rather than a TypeError that would stop a whole enrichment pass; a negative duration or cost is refused
    the same way, and half of a UTF-16 pair in a text becomes U+FFFD. A record nested past ``MAX_NESTING`` raises
    NestedTooDeeply (a ProviderError), not a RecursionError.
    """
    if isinstance(payload, (dict, list)) and _nested_past(payload, MAX_NESTING):
        raise NestedTooDeeply("Retell call payload is nested too deeply")
    payload = _without_lone_surrogates(payload)
    if not isinstance(payload, dict) or not payload.get("call_id"):
        raise ProviderError("Retell call payload has no call_id")
    call_id = _typed(payload, "call_id", str, "text")
    raw_status = _typed(payload, "call_status", str, "text")
    if raw_status is None:
        # a record without a status says nothing about the call: never read it as a failure
        raise ProviderError("Retell call payload has no call_status")
    status = STATUS_MAP.get(raw_status, CallStatus.error)
    raw_reason = _typed(payload, "disconnection_reason", str, "text")
    reason = None
    if raw_reason:
        reason = _REASONS.get(raw_reason, DisconnectReason.error_unknown)
    elif raw_status not in STATUS_MAP:
        # A status we do not know is treated as a failed call; keep what came so nothing is lost.
        reason, raw_reason = DisconnectReason.error_unknown, f"call_status={raw_status}"
    started_at = _ms_to_dt(payload.get("start_timestamp"), "start_timestamp")
    ended_at = _ms_to_dt(payload.get("end_timestamp"), "end_timestamp")
    duration_ms = payload.get("duration_ms")
    if duration_ms is not None:
        duration = _not_negative(duration_ms, "duration_ms") / 1000.0
    elif started_at is not None and ended_at is not None:
        duration = (ended_at - started_at).total_seconds()
    else:
        duration = None
    metadata = payload.get("metadata") or {}
    attempt_key = metadata.get("attempt_key") if isinstance(metadata, dict) else None
    cost = (_typed(payload, "call_cost", dict, "an object") or {}).get("combined_cost")
    call = ProviderCall(
        provider_call_id=call_id,
        status=status,
        # we send the attempt key as text: anything else is not one of ours
        attempt_key=attempt_key if isinstance(attempt_key, str) else None,
        disconnect_reason=reason,
        disconnect_reason_raw=raw_reason,
        started_at=started_at,
        ended_at=ended_at,
        duration_seconds=duration,
        tools_count=_tools_count(payload),
        transcript=_typed(payload, "transcript", str, "text"),
        recording_url=_typed(payload, "recording_url", str, "text"),
        cost_cents=float(_not_negative(cost, "combined_cost")) if cost is not None else None,
    )
    analysis = _typed(payload, "call_analysis", dict, "an object")
    if analysis is not None:
        call.analyzed = True
        call.call_successful = _typed(analysis, "call_successful", bool, "a boolean")
        call.summary = _typed(analysis, "call_summary", str, "text")
        call.in_voicemail = _typed(analysis, "in_voicemail", bool, "a boolean")
        sentiment = _typed(analysis, "user_sentiment", str, "text")
        call.user_sentiment = _SENTIMENTS.get(sentiment, Sentiment.Unknown) if sentiment else None
        call.custom_analysis = _typed(analysis, "custom_analysis_data", dict, "an object")
    return call


def sign_retell_payload(raw_body: bytes, api_key: str, now: datetime) -> str:
    """The ``X-Retell-Signature`` header Retell would send with this body at ``now``."""
    stamp = str(_dt_to_ms(now))
    digest = hmac.new(api_key.encode(), raw_body + stamp.encode(), hashlib.sha256).hexdigest()
    return f"v={stamp},d={digest}"


def verify_retell_signature(
    raw_body: bytes, header: str | None, api_key: str, now: datetime, tolerance_seconds: float = 300
) -> bool:
    """Whether a webhook's ``X-Retell-Signature`` is Retell's for this body and fresh enough."""
    if not header or not api_key:
        return False
    match = _SIGNATURE.match(header.strip())
    if match is None:
        return False
    stamp, digest = match.groups()
    if abs(_dt_to_ms(now) - int(stamp)) > tolerance_seconds * 1000:
        return False
    expected = hmac.new(api_key.encode(), raw_body + stamp.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest.lower())


class RetellProvider:
    """Retell AI over HTTP (httpx), with timeouts and bounded, jittered retries."""

    name = "retell"
    reads_one_by_one = True  # no batch read: `get_calls` is one request a call (tasks.enrichment reads them so)

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | str | None,
        *,
        concurrency_limit: int = 20,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        max_tries: int = 4,
        backoff_seconds: float = 0.5,
        lookup_window: timedelta = timedelta(hours=48),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not secret:
            raise ProviderError("RETELL_API_KEY is not set in the environment")
        self.concurrency_limit = concurrency_limit
        self.max_tries = max_tries
        self.backoff_seconds = backoff_seconds
        self.lookup_window = lookup_window
        self._sleep = sleep
        self._secret = secret
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    # -- HTTP with retries ------------------------------------------------------------------------
    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff_seconds * (2 ** attempt) * (0.5 + _JITTER.random())
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), 30.0))
            except ValueError:
                pass
        return delay

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***")[:300]

    def _request(self, method: str, path: str, payload: dict | None = None, *, creates: bool = False) -> Any:
        """One API call with retries; returns the decoded JSON or raises a typed ProviderError."""
        where = f"Retell {method} {path}"
        for attempt in range(self.max_tries):
            last = attempt == self.max_tries - 1
            try:
                response = self._client.request(method, path, json=payload)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                # The request never left: safe to retry even a create.
                problem, cause = f"cannot connect ({type(error).__name__})", error
                if last:
                    raise ProviderUnavailable(f"{where}: {problem} after {self.max_tries} tries") from None
            except httpx.TimeoutException as error:
                problem, cause = f"timed out ({type(error).__name__})", error
                if creates:
                    raise OutcomeUnknown(f"{where}: {problem}; the call may exist, reconcile by attempt key") from None
                if last:
                    raise ProviderUnavailable(f"{where}: {problem} after {self.max_tries} tries") from None
            except httpx.TransportError as error:
                problem, cause = f"connection failed ({type(error).__name__})", error
                if creates:
                    raise OutcomeUnknown(f"{where}: {problem}; the call may exist, reconcile by attempt key") from None
                if last:
                    raise ProviderUnavailable(f"{where}: {problem} after {self.max_tries} tries") from None
            else:
                code = response.status_code
                if code < 400:
                    try:
                        return response.json()
                    except RecursionError:  # nested past what json.loads reads: the same answer every time
                        if creates:
                            raise OutcomeUnknown(f"{where}: answer nested too deeply; the call may exist, "
                                                 "reconcile by attempt key") from None
                        raise NestedTooDeeply(f"{where}: answer is nested too deeply") from None
                    except ValueError:
                        problem, cause = "answered with malformed JSON", None
                        if creates:
                            raise OutcomeUnknown(f"{where}: {problem}; the call may exist, reconcile by attempt key") from None
                        if last:
                            raise ProviderUnavailable(f"{where}: {problem} after {self.max_tries} tries") from None
                elif code == 429 or code >= 500:
                    problem, cause = f"HTTP {code}", None
                    if creates and code not in _NOT_PROCESSED_STATUS:
                        raise OutcomeUnknown(f"{where}: HTTP {code}; the call may exist, reconcile by attempt key")
                    if last:
                        if code == 429 and "concurren" in response.text.lower():
                            raise ConcurrencyLimitReached(f"{where}: HTTP 429 (concurrency limit) after {self.max_tries} tries")
                        if code == 429:
                            raise RateLimited(f"{where}: HTTP 429 (rate limited) after {self.max_tries} tries")
                        raise ProviderUnavailable(f"{where}: HTTP {code} after {self.max_tries} tries")
                else:
                    raise self._client_error(where, response)
            delay = self._delay(attempt, response.headers.get("retry-after") if cause is None else None)
            log.warning("%s: %s; retry %d/%d in %.2fs", where, problem, attempt + 1, self.max_tries - 1, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _client_error(self, where: str, response: httpx.Response) -> ProviderError:
        code = response.status_code
        try:
            body = response.json()
            message = str(body.get("error_message") or body.get("message") or body) if isinstance(body, dict) else str(body)
        except ValueError:
            message = response.text
        message = self._scrub(message)
        if code in (401, 403):
            return ProviderError(f"{where}: HTTP {code}, the API key was refused (check RETELL_API_KEY)")
        if code == 404:
            return CallNotFound(f"{where}: HTTP 404: {message}")
        if code in (400, 422) and _INVALID_NUMBER.search(message) and not _CALLER_NUMBER.search(message):
            return InvalidNumber(f"{where}: HTTP {code}: {message}")
        return ProviderError(f"{where}: HTTP {code}: {message}")

    # -- the interface ----------------------------------------------------------------------------
    def place_call(self, request: CallRequest, now: datetime) -> str:
        """Dial through Retell; returns its call_id. The attempt key travels in ``metadata``."""
        body = {
            "from_number": request.from_number,
            "to_number": request.to_number,
            "override_agent_id": request.provider_agent_id,
            "retell_llm_dynamic_variables": {k: "" if v is None else str(v) for k, v in request.dynamic_variables.items()},
            "metadata": {**request.metadata, "attempt_key": request.attempt_key},
        }
        answer = self._request("POST", "/v2/create-phone-call", body, creates=True)
        call_id = answer.get("call_id") if isinstance(answer, dict) else None
        if not call_id:
            raise OutcomeUnknown("Retell POST /v2/create-phone-call: answer has no call_id; reconcile by attempt key")
        return str(call_id)

    def place_calls(
        self, requests: Sequence[CallRequest], now: datetime, pace_seconds: float = 0.0
    ) -> list[str | ProviderError]:
        """Dial in order, waiting ``pace_seconds`` between calls; per request the call id or the refusal.

        A ProviderUnavailable (or OutcomeUnknown), or a refusal that is not about the callee (not a rate or
        concurrency limit nor an invalid number), ends the batch: the rest are not attempted and the returned list
        is shorter than ``requests``.
        """
        results: list[str | ProviderError] = []
        for index, request in enumerate(requests):
            if index and pace_seconds:
                self._sleep(pace_seconds)
            try:
                results.append(self.place_call(request, now + timedelta(seconds=index * pace_seconds)))
            except ProviderUnavailable as error:
                results.append(error)
                break
            except (RateLimited, ConcurrencyLimitReached, InvalidNumber) as error:
                results.append(error)
            except ProviderError as error:
                # any other refusal (a refused key, an unknown agent or caller number) would refuse every call:
                # the batch ends here, as one-by-one placing does (tasks.dialing)
                results.append(error)
                break
        return results

    def get_call(self, provider_call_id: str, now: datetime) -> ProviderCall:
        """The call as Retell reports it now."""
        return parse_retell_call(self._request("GET", f"/v2/get-call/{quote(provider_call_id, safe='')}"))

    def get_calls(self, provider_call_ids: Sequence[str], now: datetime) -> list[ProviderCall]:
        """Several calls, one request each (Retell has no batch read)."""
        return [self.get_call(call_id, now) for call_id in provider_call_ids]

    def _list(self, criteria: dict) -> list[ProviderCall]:
        return [call for call, _ in self._list_with_numbers(criteria)]

    def _list_with_numbers(self, criteria: dict) -> list[tuple[ProviderCall, Any]]:
        """The listed calls, each with the ``to_number`` Retell lists for it (None when absent)."""
        calls: list[tuple[ProviderCall, Any]] = []
        pagination_key, seen_keys = None, set()
        while True:
            body: dict[str, Any] = {"filter_criteria": criteria, "limit": LIST_PAGE_LIMIT, "sort_order": "ascending"}
            if pagination_key:
                body["pagination_key"] = pagination_key
            answer = self._request("POST", "/v3/list-calls", body)
            if isinstance(answer, list):
                page = answer
                last = page[-1] if len(page) >= LIST_PAGE_LIMIT else None
                pagination_key = last.get("call_id") if isinstance(last, dict) else None
            elif isinstance(answer, dict):
                page = answer.get("calls") or answer.get("items") or answer.get("data") or []
                pagination_key = answer.get("pagination_key") or answer.get("next_pagination_key")
            else:
                raise ProviderUnavailable("Retell POST /v3/list-calls: unexpected answer shape")
            if not isinstance(page, list):
                raise ProviderUnavailable("Retell POST /v3/list-calls: unexpected answer shape")
            calls.extend((parse_retell_call(item), item.get("to_number") if isinstance(item, dict) else None)
                         for item in page)
            if not pagination_key or not page:
                return calls
            # a key handed out twice would page forever
            if not isinstance(pagination_key, str | int) or pagination_key in seen_keys:
                raise ProviderUnavailable("Retell POST /v3/list-calls: pagination does not advance")
            seen_keys.add(pagination_key)

    def list_calls(self, since: datetime, now: datetime) -> list[ProviderCall]:
        """Every call Retell lists with a start timestamp at or after ``since`` (all pages)."""
        return self._list({"start_timestamp": _started_since(since)})

    def find_by_attempt_key(
        self, attempt_key: str, now: datetime, *, to_number: str | None = None, placed_after: datetime | None = None
    ) -> ProviderCall | None:
        """The call carrying this attempt key in its metadata, searched among calls of the lookup window.

        Retell cannot filter by metadata, so this lists every call since ``now - lookup_window`` and
        matches locally: calls older than the window are not found, and the cost grows with traffic.
        An attempt key is unique within one store only (a restored backup, or a staging store on the same
        Retell account, reuses it): given ``to_number`` (our row's phone), a listed call with the key but
        another ``to_number`` is another store's call and is skipped; given ``placed_after`` (when our row was
        queued), the listing starts ``CLOCK_SKEW_ALLOWANCE`` before it instead of at the window's start, so a
        call that started earlier (a restored store's keys reused) is not listed.
        """
        phones = {attempt_key: to_number} if to_number else None
        return self.find_by_attempt_keys([attempt_key], now, to_numbers=phones, placed_after=placed_after).get(attempt_key)

    def find_by_attempt_keys(
        self, attempt_keys: Sequence[str], now: datetime, *, to_numbers: Mapping[str, str] | None = None,
        placed_after: datetime | None = None,
    ) -> dict[str, ProviderCall]:
        """Like ``find_by_attempt_key`` for many keys with one listing (same window and limitation);
        ``to_numbers`` maps a key to our row's phone (keys without one are matched by the key alone)."""
        wanted = set(attempt_keys)
        phones = to_numbers or {}
        found: dict[str, ProviderCall] = {}
        since = now - self.lookup_window
        if placed_after is not None:
            since = max(since, placed_after - CLOCK_SKEW_ALLOWANCE)
        for call, listed_to in self._list_with_numbers({"start_timestamp": _started_since(since)}):
            key = call.attempt_key
            if key not in wanted or key in found:
                continue
            ours = phones.get(key)
            if ours and isinstance(listed_to, str) and listed_to != ours:
                log.info("Retell call %s carries attempt key %s but dialled another number: not ours",
                         call.provider_call_id, key)
                continue
            found[key] = call
        return found

    def active_calls(self, now: datetime) -> int:
        """How many calls Retell has in flight: the ongoing ones started within ``IN_FLIGHT_WINDOW`` (listed by
        status) and the registered ones, still ringing, among the calls of the last ``RING_WINDOW``.

        list-calls' status filter takes only not_connected, ongoing, ended and error, so the ringing calls
        are counted from a listing; kept to the ring's few minutes, it holds the calls of those minutes
        instead of every call of the last two hours (the dialer asks before each call).
        """
        ongoing = self._list({
            "start_timestamp": _started_since(now - IN_FLIGHT_WINDOW),
            "call_status": {"type": "enum", "op": "in", "value": ["ongoing"]},
        })
        ringing = self.list_calls(now - RING_WINDOW, now)
        return (sum(1 for call in ongoing if call.status == CallStatus.in_progress)
                + sum(1 for call in ringing if call.status == CallStatus.registered))
