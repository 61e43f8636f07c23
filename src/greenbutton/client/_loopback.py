"""Catch the authorization redirect on a loopback address (RFC 8252 7.3, SECURITY R12).

A terminal or desktop program that registered ``http://127.0.0.1:PORT/path`` (or
``[::1]``) as its redirect URI binds that address for one flow, sends the customer's
browser to the authorization URL and waits for the redirect back::

    pending = client.authorization_url()
    with LoopbackCallback(pending) as listener:      # bound and listening
        webbrowser.open(pending.url)
        target = listener.wait(timeout=300)          # '/OAuthCallback?code=...&state=...'
    key, token = client.exchange_code(target, pending)

This is network I/O (a socket server), so it lives with the client, beside ``_client.py``,
and not in ``oauth/``, whose core is sans-IO (STYLE 1: it takes URLs, ids and secrets);
it only calls :func:`~greenbutton.oauth.parse_callback` to tell this flow's redirect from
any other. The listener binds the loopback IP literal only (never ``0.0.0.0``), answers
404 off the callback path and 400 for another flow's ``state`` (and keeps waiting), stops
at the first callback carrying this flow's state (a code or the custodian's error), never
logs the query (it holds the code) and is closed on the way out of the ``with`` block.
"""

from __future__ import annotations

import socket
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from .._errors import CallbackError, ConfigurationError
from ..oauth import AuthorizationRequest, parse_callback

__all__ = ["LoopbackCallback", "loopback_address"]


def loopback_address(redirect_uri: str) -> tuple[str, int, str] | None:
    """(IP literal, port, path) when ``redirect_uri`` is plain http on a loopback IP with a
    port, else None (then the redirect cannot be caught here)."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1") or not parts.port:
        return None
    return parts.hostname, parts.port, parts.path or "/"


class _Server(HTTPServer):
    def __init__(self, address: tuple[str, int], pending: AuthorizationRequest, path: str):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.pending = pending
        self.callback_path = path
        self.target: str | None = None
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    timeout = 10  # a client that connects and says nothing does not hold the flow

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        if urlsplit(self.path).path != server.callback_path:
            self._answer(404, "Not found.")
            return
        try:
            parse_callback(self.path, server.pending, now=time.time())
        except CallbackError as exc:
            if exc.error == "state_mismatch":  # not our flow: ignore it, keep waiting
                self._answer(400, "This is not the authorization this program started.")
                return
        server.target = self.path
        self._answer(200, "Authorization received. You can close this window.")

    def _answer(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>greenbutton</title><p>{text}</p>\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the query holds the code
        pass


class LoopbackCallback:
    """The loopback listener of one pending authorization (module docstring).

    Binds on :meth:`listen` or ``__enter__`` (a :class:`~greenbutton.ConfigurationError`
    when the address is taken; already on construction when the redirect URI is not a
    loopback one); :meth:`wait` returns the callback's request target, or raises
    :class:`TimeoutError`.
    """

    def __init__(self, pending: AuthorizationRequest) -> None:
        address = loopback_address(pending.redirect_uri)
        if address is None:
            raise ConfigurationError(
                f"the redirect URI {pending.redirect_uri} is not http://127.0.0.1:PORT/... "
                "(or [::1]): its redirect cannot be caught on this machine"
            )
        self.host, self.port, self.path = address
        self.pending = pending
        self._server: _Server | None = None

    def listen(self) -> LoopbackCallback:
        """Bind the address (done by ``__enter__`` when not yet); returns the listener."""
        if self._server is not None:
            return self
        try:
            self._server = _Server((self.host, self.port), self.pending, self.path)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {self.host} port {self.port} for the redirect "
                f"({exc.strerror or exc}); free that port"
            ) from None
        return self

    def __enter__(self) -> LoopbackCallback:
        return self.listen()

    @property
    def server_address(self) -> tuple[Any, ...]:
        """The bound socket address (IP literal, port, ...)."""
        if self._server is None:
            raise RuntimeError("not listening: use the listener in a with block")
        return tuple(self._server.server_address)

    def wait(self, timeout: float) -> str:
        """Serve requests until this flow's callback arrives; its request target."""
        server = self._server
        if server is None:
            raise RuntimeError("not listening: use the listener in a with block")
        deadline = time.monotonic() + timeout
        while server.target is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no redirect arrived within {timeout:g} s")
            server.timeout = left
            server.handle_request()
        return server.target

    def close(self) -> None:
        """Stop listening (also done by ``with``); closing twice is fine."""
        if self._server is not None:
            self._server.server_close()
            self._server = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
