"""A local HTTP fake of Retell's call API for tests: real sockets, documented shapes, fault knobs.

Usage::

    with FakeRetell(api_key="test-key") as server:
        provider = RetellProvider(server.url, "test-key", backoff_seconds=0)
        server.fail(429, times=2)                 # the next two requests answer 429
        call_id = provider.place_call(request, now)
        server.update_call(call_id, call_status="ended", disconnection_reason="user_hangup")

Endpoints: ``POST /v2/create-phone-call``, ``GET /v2/get-call/{id}``, ``POST /v3/list-calls``
(v3's typed filters: ``filter_criteria.start_timestamp`` a number filter ``{"type": "number", "op":
"ge", "value": ms}`` or a range ``{"type": "range", "op": "bt", "value": [low, high]}``, ``call_status``
an enum filter ``{"type": "enum", "op": "in", "value": [...]}`` of not_connected/ongoing/ended/error;
any other shape is a 400 as Retell's request validation gives; ``limit`` <= 1000, ``pagination_key``
opaque (here the last call id of the previous page); answers ``{"items": [...], "pagination_key":
next-or-absent, "has_more": bool}``). Every request needs ``Authorization: Bearer <api_key>`` (401
otherwise).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_E164 = re.compile(r"\+[1-9]\d{6,14}")
# The statuses v3 list-calls filters on (a call is listed as registered, but cannot be filtered so).
_FILTER_STATUSES = frozenset({"not_connected", "ongoing", "ended", "error"})


@dataclass
class Fault:
    """One injected misbehaviour for the next ``times`` matching requests."""

    kind: str  # "status" | "status_then_process" | "hang" | "hang_then_process" | "malformed"
    times: int
    status: int = 500
    seconds: float = 0.0
    path_prefix: str | None = None
    retry_after: str | None = None
    message: str | None = None


@dataclass
class Seen:
    """A request the fake received (headers kept so tests can check what was sent)."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]


class FakeRetell:
    """A threaded ``http.server`` on 127.0.0.1 (free port) with an in-memory call store."""

    def __init__(self, api_key: str = "test-key"):
        self.api_key = api_key
        self.calls: dict[str, dict] = {}
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self.clock_ms: int | None = None  # fixed creation time; None = wall clock
        self._lock = threading.Lock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> FakeRetell:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeRetell:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- knobs ------------------------------------------------------------------------------------
    def fail(
        self, status: int, times: int = 1, path_prefix: str | None = None,
        retry_after: str | None = None, message: str | None = None, then_process: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests with this HTTP status (and error_message);
        ``then_process``: do the work first (a gateway's 502/504 after the application created the call)."""
        self.faults.append(Fault("status_then_process" if then_process else "status", times, status=status,
                                 path_prefix=path_prefix, retry_after=retry_after, message=message))

    def hang(self, seconds: float, times: int = 1, path_prefix: str | None = None, then_process: bool = False) -> None:
        """Sleep ``seconds`` before answering the next matching requests (past the client's timeout)."""
        self.faults.append(Fault("hang_then_process" if then_process else "hang", times, seconds=seconds, path_prefix=path_prefix))

    def malformed(self, times: int = 1, path_prefix: str | None = None) -> None:
        """Answer 200 with a body that is not JSON."""
        self.faults.append(Fault("malformed", times, path_prefix=path_prefix))

    def add_call(self, **fields: Any) -> dict:
        """Store a call as Retell would return it (defaults filled in); returns it."""
        with self._lock:
            self._counter += 1
            call = {
                "call_id": f"call_{self._counter:06d}",
                "agent_id": "agent_x",
                "call_status": "registered",
                "from_number": "+15550000000",
                "to_number": "+15550000001",
                "metadata": {},
                "retell_llm_dynamic_variables": {},
                "_created_ms": self.clock_ms if self.clock_ms is not None else int(time.time() * 1000),
            }
            call.update(fields)
            self.calls[call["call_id"]] = call
            return call

    def update_call(self, call_id: str, **fields: Any) -> dict:
        """Change a stored call (e.g. to ended with a reason and an analysis)."""
        with self._lock:
            self.calls[call_id].update(fields)
            return self.calls[call_id]

    def count(self, method: str, path_prefix: str) -> int:
        """How many requests reached the fake for this method and path prefix."""
        return sum(1 for s in self.seen if s.method == method and s.path.startswith(path_prefix))

    # -- serving ----------------------------------------------------------------------------------
    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and (fault.path_prefix is None or path.startswith(fault.path_prefix)):
                    fault.times -= 1
                    return fault
        return None

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        path = handler.path
        with self._lock:
            self.seen.append(Seen(method, path, body, dict(handler.headers.items())))
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._send(handler, 401, {"error_message": "Unauthorized"})
        fault = self._next_fault(path)
        if fault is not None:
            if fault.kind == "status_then_process" and method == "POST" and path == "/v2/create-phone-call":
                self._created(body or {})
            if fault.kind in ("status", "status_then_process"):
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                message = fault.message or f"injected {fault.status}"
                return self._send(handler, fault.status, {"error_message": message}, extra)
            if fault.kind == "malformed":
                return self._send_raw(handler, 200, b"{not json")
            time.sleep(fault.seconds)
            if fault.kind == "hang":
                return self._send(handler, 504, {"error_message": "too late"})
            # hang_then_process: the work happens although the client gave up waiting
        if method == "POST" and path == "/v2/create-phone-call":
            return self._create(handler, body or {})
        if method == "GET" and path.startswith("/v2/get-call/"):
            call = self.calls.get(path.rsplit("/", 1)[-1])
            if call is None:
                return self._send(handler, 404, {"error_message": "Call not found"})
            return self._send(handler, 200, _public(call))
        if method == "POST" and path == "/v3/list-calls":
            return self._list(handler, body or {})
        return self._send(handler, 404, {"error_message": f"no route {method} {path}"})

    def _create(self, handler, body: dict) -> None:
        status, payload = self._created(body)
        self._send(handler, status, payload)

    def _created(self, body: dict) -> tuple[int, dict]:
        """Create-phone-call's work: the HTTP status and the answer (the call, or why it was refused)."""
        for required in ("from_number", "to_number"):
            if not body.get(required):
                return 400, {"error_message": f"{required} is required"}
        if not _E164.fullmatch(str(body["to_number"])):
            return 400, {"error_message": "Invalid to_number: must be E.164"}
        variables = body.get("retell_llm_dynamic_variables") or {}
        if any(not isinstance(v, str) for v in variables.values()):
            return 400, {"error_message": "retell_llm_dynamic_variables values must be strings"}
        call = self.add_call(
            agent_id=body.get("override_agent_id") or "agent_x",
            from_number=body["from_number"],
            to_number=body["to_number"],
            metadata=body.get("metadata") or {},
            retell_llm_dynamic_variables=variables,
        )
        return 201, _public(call)

    def _list(self, handler, body: dict) -> None:
        limit = int(body.get("limit") or 50)
        if not 1 <= limit <= 1000:
            return self._send(handler, 400, {"error_message": "limit must be between 1 and 1000"})
        criteria = body.get("filter_criteria") or {}
        try:
            lower, upper = _bounds(criteria.get("start_timestamp"))
            statuses = _enum_values(criteria.get("call_status"), _FILTER_STATUSES)
        except ValueError as error:
            return self._send(handler, 400, {"error_message": f"filter_criteria: {error}"})
        with self._lock:
            ordered = sorted(self.calls.values(), key=lambda c: (_when(c), c["call_id"]))
        matching = [
            c for c in ordered
            if (lower is None or _when(c) >= lower) and (upper is None or _when(c) <= upper)
            and (statuses is None or c["call_status"] in statuses)
        ]
        key = body.get("pagination_key")
        if key:
            ids = [c["call_id"] for c in matching]
            matching = matching[ids.index(key) + 1:] if key in ids else []
        page = matching[:limit]
        answer: dict[str, Any] = {"items": [_public(c) for c in page], "has_more": len(matching) > limit}
        if answer["has_more"]:
            answer["pagination_key"] = page[-1]["call_id"]
        self._send(handler, 200, answer)

    def _send(self, handler, status: int, payload: Any, headers: dict | None = None) -> None:
        self._send_raw(handler, status, json.dumps(payload).encode(), headers)

    def _send_raw(self, handler, status: int, raw: bytes, headers: dict | None = None) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)


def _bounds(number_filter: Any) -> tuple[float | None, float | None]:
    """The inclusive (lower, upper) of a v3 number or range filter (None: no filter); ValueError otherwise."""
    if number_filter is None:
        return None, None
    kind = number_filter.get("type") if isinstance(number_filter, dict) else None
    op, value = (number_filter.get("op"), number_filter.get("value")) if kind else (None, None)
    if kind == "range" and op == "bt" and isinstance(value, list) and len(value) == 2:
        return value[0], value[1]
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        bounds = {"ge": (value, None), "gt": (value + 1, None), "le": (None, value), "lt": (None, value - 1),
                  "eq": (value, value)}
        if op in bounds:
            return bounds[op]
    raise ValueError(f"not a number or range filter: {number_filter!r}")


def _enum_values(enum_filter: Any, allowed: frozenset[str]) -> set[str] | None:
    """The values of a v3 enum filter (None: no filter); ValueError for another shape or a value not allowed."""
    if enum_filter is None:
        return None
    if (not isinstance(enum_filter, dict) or enum_filter.get("type") != "enum" or enum_filter.get("op") != "in"
            or not isinstance(enum_filter.get("value"), list) or not set(enum_filter["value"]) <= allowed):
        raise ValueError(f"not an enum filter of {sorted(allowed)}: {enum_filter!r}")
    return set(enum_filter["value"])


def _when(call: dict) -> int:
    # Retell filters on start_timestamp; a call that has not started yet is placed by creation time.
    return call.get("start_timestamp") or call["_created_ms"]


def _public(call: dict) -> dict:
    return {k: v for k, v in call.items() if not k.startswith("_")}
