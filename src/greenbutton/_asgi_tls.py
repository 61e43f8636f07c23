"""The ASGI TLS extension for uvicorn, shared by the two servers (web app and simulator).

uvicorn (0.54) does not fill ``scope["extensions"]["tls"]``, and both servers need the
client certificate of the *connection* — the web app to authenticate notifications (R32),
the simulator to bind tokens to a certificate (R31) — never a request header. So
:class:`TLSScopeProtocol`, uvicorn's h11 protocol with one override, computes the extension
once per connection and adds it to every request scope of that connection. (With it, an
HTTPS server always speaks h11; httptools is not installed here anyway.)

:class:`GuardedProtocol` adds what uvicorn lacks for ``greenbutton serve``: deadlines on a
request's head and body and bounds on its request line and header count.

Only the servers import this module (it needs uvicorn); the SDK never does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ssl
from typing import Any

import h11
from cryptography import x509
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "GuardedProtocol",
    "TLSScopeProtocol",
    "guarded_protocol",
    "thumbprint",
    "tls_extension",
]


def thumbprint(der: bytes) -> str:
    """RFC 8705 §3.1 ``x5t#S256``: unpadded base64url of SHA-256 over the DER certificate."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension for one connection (None when it is plain HTTP).

    Besides the ASGI keys it carries ``client_cert_name`` (RFC 4514 subject) and
    ``client_cert_sha256`` (the thumbprint); a certificate the handshake did not verify
    is never reported as good (``client_cert_error``)."""
    sslobj = transport.get_extra_info("ssl_object")
    if not isinstance(sslobj, ssl.SSLObject):
        return None
    der = sslobj.getpeercert(binary_form=True)
    verified = sslobj.context.verify_mode in (ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED)
    cipher = sslobj.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": (
            x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None
        ),
        "client_cert_sha256": thumbprint(der) if der else None,
        "client_cert_error": None if verified or not der else "not verified",
        "tls_version": sslobj.version(),
        "cipher_suite": cipher[0] if cipher else None,
    }


class _WithTLS:
    """Sets ``scope["extensions"]["tls"]`` for every request of one connection."""

    def __init__(self, app: ASGIApp, info: dict[str, Any] | None) -> None:
        self.app = app
        self.info = info

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = dict(scope.get("extensions") or {})
        extensions.pop("tls", None)  # whatever was there did not come from this connection
        if self.info is not None:
            extensions["tls"] = dict(self.info)
        scope["extensions"] = extensions
        await self.app(scope, receive, send)


class TLSScopeProtocol(H11Protocol):
    """uvicorn's h11 protocol, adding the connection's TLS details to each request scope."""

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self.app = _WithTLS(self.config.loaded_app, tls_extension(transport))


class GuardedProtocol(TLSScopeProtocol):
    """:class:`TLSScopeProtocol` with deadlines on the request head and body, and bounds on
    the request line and header count (``greenbutton serve``; SECURITY R39, b7).

    uvicorn (0.55) only times out a kept-alive connection *between* requests
    (``timeout_keep_alive``); a connection that never sends a request, or sends its header
    lines one byte at a time, or a POST whose body trickles, is held for ever, and every
    such connection counts against ``limit_concurrency`` until real users get 503. No ASGI
    middleware can see those connections (the app is only called once a head is
    complete), so the deadlines live here, in the protocol:

    * ``head_timeout``: the request head (line and headers) must be complete this many
      seconds after the connection was made (after the TLS handshake, which asyncio bounds
      at 60 s) or after the first byte of a next request on a kept-alive connection; else
      the connection is closed.
    * ``body_timeout``: the request body must be complete this many seconds after its head;
      else the app sees the client as gone (``http.disconnect``), the client gets
      ``408 Request Timeout`` if no answer had started, and the connection is closed.
    * ``max_target`` bytes of request target (414), ``max_headers`` header fields and
      ``max_head_bytes`` of target and headers together (431). h11's own cap
      (``h11_max_incomplete_event_size``, 400) only applies while a head is incomplete: a
      large head arriving in one read passes it.

    Subclass with other class attributes (:func:`guarded_protocol`) to change them.
    """

    head_timeout: float = 10.0
    body_timeout: float = 30.0
    max_target: int = 8192
    max_headers: int = 100
    max_head_bytes: int = 16 * 1024
    _head_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self.app = _HeadLimits(self.app, self.max_target, self.max_headers, self.max_head_bytes)
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            # the first bytes of a next request on a kept-alive connection
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def _follow_request(self) -> None:
        """Arm or cancel the deadlines for where the client's side of the request is."""
        state = self.conn.their_state
        if state is not h11.IDLE and self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if state is h11.SEND_BODY:
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(self.body_timeout, self._body_expired)
        elif self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()  # silent, or still sending its header lines

    def _body_expired(self) -> None:
        self._body_timer = None
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
            return
        cycle = self.cycle
        answer = cycle is not None and not cycle.response_started
        if cycle is not None:
            cycle.disconnected = True  # the app's receive() now returns http.disconnect
            cycle.message_event.set()
        if answer:
            with contextlib.suppress(h11.LocalProtocolError):
                body = b"request body timeout\n"
                headers = [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ]
                out = self.conn.send(h11.Response(status_code=408, headers=headers))
                out += self.conn.send(h11.Data(data=body))
                out += self.conn.send(h11.EndOfMessage())
                self.transport.write(out or b"")
        self.transport.close()


class _HeadLimits:
    """414 for a request target over ``max_target`` bytes, 431 for more than
    ``max_headers`` header fields or a head over ``max_head_bytes``, before the app sees
    the request."""

    def __init__(self, app: ASGIApp, max_target: int, max_headers: int, max_bytes: int) -> None:
        self.app = app
        self.max_target = max_target
        self.max_headers = max_headers
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            headers = scope.get("headers") or ()
            size = target + sum(len(name) + len(value) + 4 for name, value in headers)
            status = None
            if target > self.max_target:
                status = 414
            elif len(headers) > self.max_headers or size > self.max_bytes:
                status = 431
            if status is not None:
                body = b"request head too large\n"
                fields = [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ]
                await send({"type": "http.response.start", "status": status, "headers": fields})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def guarded_protocol(
    *,
    head_timeout: float = GuardedProtocol.head_timeout,
    body_timeout: float = GuardedProtocol.body_timeout,
    max_target: int = GuardedProtocol.max_target,
    max_headers: int = GuardedProtocol.max_headers,
    max_head_bytes: int = GuardedProtocol.max_head_bytes,
) -> type[GuardedProtocol]:
    """A :class:`GuardedProtocol` with these limits (uvicorn builds protocols from a class)."""
    if min(head_timeout, body_timeout) <= 0 or min(max_target, max_headers, max_head_bytes) <= 0:
        raise ValueError("timeouts and limits must be positive")
    return type(
        "GuardedProtocol",
        (GuardedProtocol,),
        {
            "head_timeout": float(head_timeout),
            "body_timeout": float(body_timeout),
            "max_target": int(max_target),
            "max_headers": int(max_headers),
            "max_head_bytes": int(max_head_bytes),
        },
    )
