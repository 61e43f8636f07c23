"""The web app's test harness: its address, a counting transport, the app with its
lifespan and a browser on it, and the customer's consent at the simulator's portal.

Shared by the web tests (fixtures themselves live in ``conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2

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
    gb: SimulatorHandle, tmp_path: Path, counting: Counting | None = None, **options: Any
) -> AsyncIterator[tuple[Any, httpx2.AsyncClient, Counting]]:
    """The app with its lifespan (ingest worker) and a browser on it."""
    counting = counting or Counting(gb)
    config = WebConfig.for_simulator(
        gb.state_dir,
        database_url=f"sqlite:///{tmp_path / 'web.db'}",
        transport=counting,
        **options,
    )
    app = create_app(config)
    transport = httpx2.ASGITransport(app=app)
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
