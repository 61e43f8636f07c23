"""The web app's test harness: its address, a counting transport, the app with its
lifespan and a browser on it, and the customer's consent at the simulator's portal.

Shared by the web tests (fixtures themselves live in ``conftest.py``)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2
import pytest

from greenbutton.web import WebConfig, create_app
from tests.conftest import WEB_BASE, notified_jobs

from .simulator_harness import SimulatorHandle

BASE = WEB_BASE  # the app's address as the simulator knows it (no socket)
XML = {"Content-Type": "application/xml"}


class Counting(httpx2.AsyncBaseTransport):
    """The real mTLS transport, with every outbound request recorded."""

    def __init__(self, gb: SimulatorHandle) -> None:
        self.inner = httpx2.AsyncHTTPTransport(verify=gb.ssl_context())
        self.urls: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.urls.append(str(request.url))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Gated(Counting):
    """Token-endpoint requests wait until ``open`` is set (a refresh held in flight); the
    bearer of every notified fetch is recorded."""

    def __init__(self, gb: SimulatorHandle) -> None:
        super().__init__(gb)
        self.token_url = str(gb.registration["token_url"])
        self.arrived = anyio.Event()
        self.open = anyio.Event()
        self.bearers: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if str(request.url).startswith(self.token_url):
            self.arrived.set()
            await self.open.wait()
        if "correlationID" in str(request.url):
            self.bearers.append(request.headers.get("authorization", ""))
        return await super().handle_async_request(request)


@asynccontextmanager
async def running(
    gb: SimulatorHandle,
    tmp_path: Path,
    counting: Counting | None = None,
    *,
    raise_app_exceptions: bool = True,
    **options: Any,
) -> AsyncIterator[tuple[Any, httpx2.AsyncClient, Counting]]:
    """The app with its lifespan (ingest worker) and a browser on it (with
    ``raise_app_exceptions=False`` the browser sees the 500 page an error gives)."""
    counting = counting or Counting(gb)
    config = WebConfig.for_simulator(
        gb.state_dir,
        database_url=f"sqlite:///{tmp_path / 'web.db'}",
        transport=counting,
        **options,
    )
    app = create_app(config)
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=transport, base_url=BASE) as browser,
    ):
        yield app.state.greenbutton, browser, counting


async def consent(gb: SimulatorHandle, authorize_url: str) -> str:
    """The customer at the utility: the portal redirects back with a code."""

    def go() -> str:
        with gb.portal_client() as portal:
            r = portal.get(authorize_url)
        assert r.status_code == 302, r.text
        return str(r.headers["location"])

    return await anyio.to_thread.run_sync(go)


async def connect(gb: SimulatorHandle, browser: httpx2.AsyncClient) -> tuple[str, httpx2.Response]:
    r = await browser.get("/connect")
    assert r.status_code == 302
    callback = await consent(gb, r.headers["location"])
    assert callback.startswith(BASE + "/OAuthCallback?")
    return callback, await browser.get(callback)


# -- connect, account page, replay --------------------------------------------------------------


def _jobs(web: Any) -> list[tuple[str, str]]:
    return notified_jobs(web.store)


# -- a real browser against the web app (tests/web/test_browser*.py) ------------------------

CHROMIUM = Path(os.environ.get("GREENBUTTON_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# What this machine's closed network needs (no background fetches, no QUIC, no first-run UI);
# --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable(reason: str) -> None:
    """Skip a browser test with the reason, or fail it under ``CI`` (required there)."""
    if os.environ.get("CI"):
        pytest.fail(f"the browser test is required in CI: {reason}")
    pytest.skip(f"browser test not run: {reason}")


@contextmanager
def serve_web_app(config: WebConfig, sock: socket.socket) -> Iterator[Any]:
    """The web app under uvicorn in a thread on an already bound socket; yields its state."""
    import uvicorn

    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="greenbutton-web", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web app did not start")
            time.sleep(0.02)
        yield app.state.greenbutton
    finally:
        server.should_exit = True
        thread.join(10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(10)


@contextmanager
def site_on_loopback(tmp_path: Path, **options: Any) -> Iterator[tuple[str, SimulatorHandle, Any]]:
    """(web app URL, simulator, web app state): the web app under uvicorn and the simulator,
    both on real loopback sockets; ``options`` go to ``WebConfig.for_simulator``. The
    caller sets ``GREENBUTTON_SECRET_KEY``. The app's socket is bound first, so the simulator
    registers its real address as the redirect URI."""
    from tests.simulator_harness import start_simulator

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with start_simulator(tmp_path / "sim", third_party_url=base) as gb:
            config = WebConfig.for_simulator(
                gb.state_dir, database_url=f"sqlite:///{tmp_path / 'web.db'}", **options
            )
            with serve_web_app(config, sock) as web:
                yield base, gb, web
    finally:
        sock.close()
