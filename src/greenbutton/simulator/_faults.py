"""Fault injection for the API listener (DESIGN 4, SECURITY b5/b8), read live from
``sim.faults`` on every request so tests and users can switch faults while it runs.

:class:`FaultMiddleware` wraps the whole API app (token endpoint and resources): latency per
request and per new connection, 429 + Retry-After above a request rate, a burst of N error
statuses, truncated XML bodies, and a stall in the middle of a body (``body_stall_ms``: the
headers and the first chunk arrive, then the rest after the pause, as on a slow download
during which a token may expire). Every API request is recorded in ``sim.state.arrivals``
(monotonic time, method, path) before any fault, so tests can check the rate a client
really sent at and count requests a failing-fast client never made; with modelled latency
its time is when it would reach a remote custodian (see below), where the ``--rate-limit``
window counts it too.

Modelling a WAN: ``latency_ms`` is one request's round trip; ``connect_latency_ms`` is what a
*new* connection costs before its first request can go, charged on that first request. A new
connection is recognised by the client's (host, port) pair in the ASGI scope, which differs
for every TCP connection; pairs already seen are remembered in a bounded FIFO set (a port the
OS reuses while still remembered goes uncharged, so the model errs on the cheap side). TCP's
handshake takes one round trip and TLS 1.3's one more (mutual TLS included: the client
certificate travels with the client's Finished), so ``connect_latency_ms = 2 x latency_ms``
models a TLS 1.3 custodian; TLS 1.2 would be 3 x. A request arrives ``connect_latency_ms``
(if new) plus half of ``latency_ms`` after it was sent, and its answer half of
``latency_ms`` later.
Token faults (``expire_tokens``, ``revoke_all``) are applied where tokens are checked
(``_resources``; the token endpoint reads the same switches). The admin route
``PATHS.ADMIN_FAULTS`` is answered here, before any fault, so a burst can always be
switched off again; it lives on the API listener, which demands the client certificate.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from dataclasses import asdict, fields
from typing import Any

import anyio
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._config import PATHS, Faults
from ._simulator import Simulator

__all__ = ["FaultMiddleware", "fault_middleware", "update_faults"]

_MAX_ADMIN_BODY = 64 * 1024
#: Client (host, port) pairs remembered to tell a new connection from a kept-alive one.
SEEN_CONNECTIONS = 4096


def update_faults(faults: Faults, changes: Any) -> None:
    """Apply a JSON object of changes to ``faults`` in place, all or nothing.

    Raises ValueError naming the first unknown field or badly typed value."""
    if not isinstance(changes, dict):
        raise ValueError("expected a JSON object of fault settings")
    types = {f.name: f.type for f in fields(Faults)}
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        kind = types.get(name)
        if kind is None:
            raise ValueError(f"unknown fault {name!r}")
        if kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:  # float
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            value = float(value) if ok else value
        if not ok:
            raise ValueError(f"{name} must be a non-negative {kind}, got {value!r}")
        checked[name] = value
    for name, value in checked.items():
        setattr(faults, name, value)


class FaultMiddleware:
    """ASGI middleware applying ``sim.faults``; use ``Middleware(FaultMiddleware, sim=sim)``."""

    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self.app = app
        self.sim = sim
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()  # the 429 fault's window
        self._policy: deque[float] = deque()  # the custodian's --rate-limit window
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].rstrip("/") == PATHS.ADMIN_FAULTS:
            await self._admin(scope, receive, send)
            return
        if scope["path"].rstrip("/") == PATHS.ADMIN_STATS:  # not counted itself
            payload = json.dumps(self.sim.state.stats()).encode()
            await _send(send, 200, payload, b"application/json", [(b"cache-control", b"no-store")])
            return
        faults = self.sim.faults
        # The request reaches the custodian after the new connection's handshakes and half
        # the round trip; it is counted and rate-checked there, and answered half a round
        # trip later (one instant for both: stats and 429s agree).
        before = faults.latency_ms / 2
        if self._new_connection(scope):
            before += faults.connect_latency_ms
        if before > 0:
            await anyio.sleep(before / 1000)
        self.sim.state.record_arrival(scope["method"], scope["path"])
        over = self._over_rate(self.sim.config.rate_limit, self._policy) or self._over_rate(
            faults.rate_limit_per_s, self._recent
        )
        if faults.latency_ms > 0:
            await anyio.sleep(faults.latency_ms / 2000)
        if over:
            self._count_429()
            await _plain(send, 429, "rate limit exceeded", retry_after=faults.retry_after)
            return
        status = self._take_burst()
        if status is not None:
            if status == 429:
                self._count_429()
            retry = faults.retry_after if status in (429, 503) else None
            await _plain(send, status, "injected fault", retry_after=retry)
            return
        if faults.body_stall_ms > 0:
            send = _stalling(send, faults.body_stall_ms / 1000)
        if faults.malformed_xml:
            await self.app(scope, receive, _truncating(send))
            return
        await self.app(scope, receive, send)

    def _new_connection(self, scope: Scope) -> bool:
        """Is this the first request seen from the scope's client (host, port)?"""
        client = scope.get("client")
        if not client:
            return False  # no peer address (some test transports): cannot tell
        pair = (str(client[0]), int(client[1]))
        with self._lock:
            if pair in self._seen:
                return False
            self._seen[pair] = None
            while len(self._seen) > SEEN_CONNECTIONS:
                self._seen.popitem(last=False)
            return True

    def _over_rate(self, limit: float, recent: deque[float]) -> bool:
        """Sliding one-second window; rejected requests do not count."""
        if limit <= 0:
            return False
        now = time.monotonic()
        with self._lock:
            while recent and now - recent[0] >= 1.0:
                recent.popleft()
            if len(recent) >= limit:
                return True
            recent.append(now)
            return False

    def _count_429(self) -> None:
        with self.sim.state.lock:
            self.sim.state.responses_429 += 1

    def _take_burst(self) -> int | None:
        faults = self.sim.faults
        with self._lock:
            if faults.status_burst <= 0:
                return None
            faults.status_burst -= 1
            return faults.burst_status

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.sim.faults
        method = scope["method"]
        if method == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if len(body) > _MAX_ADMIN_BODY:
                    await _plain(send, 413, "body too large")
                    return
                if not message.get("more_body"):
                    break
            try:
                with self._lock:
                    update_faults(faults, json.loads(body or b"{}"))
            except ValueError as exc:  # JSONDecodeError is a ValueError
                await _plain(send, 400, str(exc))
                return
        elif method != "GET":
            await _plain(send, 405, "use GET or POST", extra=[(b"allow", b"GET, POST")])
            return
        payload = json.dumps(asdict(faults)).encode()
        await _send(send, 200, payload, b"application/json", [(b"cache-control", b"no-store")])


async def _send(
    send: Send, status: int, body: bytes, media: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _plain(
    send: Send,
    status: int,
    text: str,
    *,
    retry_after: int | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = list(extra or [])
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await _send(send, status, (text + "\n").encode(), b"text/plain; charset=utf-8", headers)


def _truncating(send: Send) -> Send:
    """Wrap ``send`` so an XML body is cut in half at its first chunk and ends there.

    The client sees a well-formed HTTP response carrying a broken document, the failure a
    parser must report (not a transport error). Content-Length is dropped to match."""
    xml = False
    done = False

    async def wrapped(message: Message) -> None:
        nonlocal xml, done
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
            xml = b"xml" in ctype.lower()
            if xml:
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                message = {**message, "headers": headers}
            await send(message)
            return
        if message["type"] == "http.response.body" and xml:
            if done:
                return  # swallow the rest of a streamed body
            body = message.get("body", b"")
            if not body and message.get("more_body"):
                return
            done = True
            await send({"type": "http.response.body", "body": body[: max(1, len(body) // 2)]})
            return
        await send(message)

    return wrapped


def _stalling(send: Send, pause: float) -> Send:
    """Wrap ``send`` so a body pauses once, after its first non-empty chunk has gone out
    (a one-chunk body is split in two for that)."""
    stalled = False

    async def wrapped(message: Message) -> None:
        nonlocal stalled
        body = message.get("body", b"")
        if stalled or message["type"] != "http.response.body" or not body:
            await send(message)
            return
        stalled = True
        head, tail = body[: max(1, len(body) // 2)], body[max(1, len(body) // 2) :]
        more = message.get("more_body", False)
        await send({"type": "http.response.body", "body": head, "more_body": True})
        await anyio.sleep(pause)
        await send({"type": "http.response.body", "body": tail, "more_body": more})

    return wrapped


def fault_middleware(sim: Simulator) -> Middleware:
    """The middleware entry for ``Starlette(middleware=[...])`` of the API app."""
    return Middleware(FaultMiddleware, sim=sim)
