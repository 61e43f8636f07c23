"""Start a real simulator (real sockets, real TLS) from a test.

Usage::

    from tests.simulator_harness import start_simulator

    def test_something(tmp_path):
        with start_simulator(tmp_path, customers=2) as gb:
            with gb.api_client() as client:          # client cert + simulator CA
                r = client.post(gb.registration["token_url"], ...)
            gb.sim.faults.malformed_xml = True       # switch a fault while it runs

or as a fixture (``from tests.simulator_harness import simulator`` in a test module, then a
``simulator`` argument). Keyword arguments of :func:`start_simulator` are
``SimulatorConfig`` fields; ``portal_app``/``api_app`` replace the real apps (for tests of
the listeners themselves, see :func:`placeholder_app`).

To see the BatchList notifications the simulator POSTs, start a
:func:`notification_receiver` first and pass its ``base_url`` as ``third_party_url``::

    with notification_receiver() as inbox, start_simulator(
        tmp_path, third_party_url=inbox.base_url
    ) as gb:
        ...
        body = inbox.wait(timeout=5)             # the first POST's body (bytes)
"""

from __future__ import annotations

import dataclasses
import json
import queue
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from greenbutton import Client
from greenbutton.oauth import Token, TokenStore
from greenbutton.simulator import Simulator, SimulatorConfig
from greenbutton.simulator._server import AppFactory, RunningSimulator, run_in_thread

__all__ = [
    "NotificationInbox",
    "SimulatorHandle",
    "notification_receiver",
    "placeholder_app",
    "simulator",
    "start_simulator",
]


@dataclass
class SimulatorHandle:
    """A running simulator and what a third party would have: registration and credentials."""

    running: RunningSimulator
    registration: dict[str, Any]

    @property
    def sim(self) -> Simulator:
        """The live Simulator: state, grants, faults (mutable while it runs)."""
        return self.running.sim

    @property
    def state_dir(self) -> Path:
        return self.running.state_dir

    @property
    def portal_url(self) -> str:
        return self.running.portal_url

    @property
    def api_url(self) -> str:
        return self.running.api_url

    def ssl_context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        """Trusts the simulator's CA; presents the third party's certificate if asked."""
        ctx = ssl.create_default_context(cafile=self.registration["ca_cert"])
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if client_cert:
            ctx.load_cert_chain(self.registration["client_cert"], self.registration["client_key"])
        return ctx

    def client(self, *, client_cert: bool = True, **kwargs: Any) -> httpx2.Client:
        """An ``httpx2.Client`` for either listener (no redirects followed, no env proxies)."""
        kwargs.setdefault("timeout", 10.0)
        kwargs.setdefault("trust_env", False)
        return httpx2.Client(verify=self.ssl_context(client_cert=client_cert), **kwargs)

    def api_client(self, **kwargs: Any) -> httpx2.Client:
        """With the client certificate and ``base_url`` = the API listener."""
        return self.client(client_cert=True, base_url=self.api_url, **kwargs)

    def portal_client(self, **kwargs: Any) -> httpx2.Client:
        """Like a browser: no client certificate, ``base_url`` = the portal listener."""
        return self.client(client_cert=False, base_url=self.portal_url, **kwargs)

    def sdk_client(self, tokens: TokenStore) -> Client:
        """The SDK's ``Client`` for this simulator, keeping tokens in ``tokens``."""
        return Client.for_simulator(self.state_dir / "registration.json", token_store=tokens)

    def authorize(self, tokens: TokenStore) -> tuple[str, Token]:
        """A real authorization-code grant (needs ``auto_approve``): ``(key, token)``."""
        with self.sdk_client(tokens) as client:
            pending = client.authorization_url()
            with self.portal_client() as browser:
                r = browser.get(pending.url)
            return client.exchange_code(r.headers["location"], pending)

    @staticmethod
    def authorization_id(tokens: TokenStore, key: str) -> str:
        """The custodian's id of the grant stored under ``key`` (its authorizationURI's last
        segment: keys are ``{utility}/Subscription/{id}``, not the URL)."""
        token = tokens.load(key)
        assert token is not None and token.authorization_uri, key
        return token.authorization_uri.rstrip("/").rsplit("/", 1)[1]

    def authorize_expired(self, tokens: TokenStore) -> str:
        """:meth:`authorize`, then the stored access token made expired (locally): the
        next call must refresh. Returns the key."""
        key, token = self.authorize(tokens)
        tokens.save(key, dataclasses.replace(token, expires_at=time.time() - 3600))
        return key


@contextmanager
def start_simulator(
    state_dir: Path,
    *,
    portal_app: AppFactory | None = None,
    api_app: AppFactory | None = None,
    **config: Any,
) -> Iterator[SimulatorHandle]:
    """Run a simulator on free loopback ports with its state in ``state_dir`` (a tmp dir)."""
    cfg = SimulatorConfig(state_dir=Path(state_dir), **config)
    with run_in_thread(cfg, portal_app=portal_app, api_app=api_app) as running:
        on_disk = json.loads(running.registration_path.read_text())
        assert on_disk == running.registration
        yield SimulatorHandle(running, on_disk)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimulatorHandle]:
    """A simulator with the real apps and default settings, in its own tmp state folder."""
    with start_simulator(tmp_path / "simulator") as handle:
        yield handle


def placeholder_app(sim: Simulator) -> Starlette:
    """A stand-in app that echoes the request line: proves the TLS layer let it through."""

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(
            {"method": request.method, "path": request.url.path, "scheme": request.url.scheme},
            status_code=404 if request.url.path.startswith("/missing") else 200,
        )

    return Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])


@dataclass
class NotificationInbox:
    """What a :func:`notification_receiver` got: one (path, headers, body) per POST."""

    base_url: str
    posts: queue.Queue[tuple[str, dict[str, str], bytes]] = field(default_factory=queue.Queue)
    status: int = 200  # what the receiver answers; tests may change it

    def wait(self, timeout: float = 10.0) -> bytes:
        """The body of the next POST (raises ``queue.Empty`` after ``timeout`` s)."""
        return self.posts.get(timeout=timeout)[2]


@contextmanager
def notification_receiver() -> Iterator[NotificationInbox]:
    """A plain-HTTP third-party stand-in on a free loopback port that records every POST.

    (The simulator may talk plain HTTP to a loopback third party; HTTPS receivers with
    certificate checks belong to the web app's own tests.)
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    inbox = NotificationInbox(base_url=f"http://127.0.0.1:{server.server_address[1]}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            inbox.posts.put((self.path, dict(self.headers.items()), body))
            self.send_response(inbox.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield inbox
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
