"""Issue 9's bar: a document with one hostile number leaves ``serve`` responsive.

The utility (the simulator, over real mTLS sockets) serves its usual data with one value
replaced, as a compromised or buggy custodian might: a ``powerOfTenMultiplier`` of
99,999,999,999 (computing ``10**p`` exactly held the GIL: the event loop stopped and
``GET /`` never answered), a reading start of 10^14 seconds (inside int64, outside any
datetime), a numeric ``dstStartRule`` above 10^9 (``OverflowError`` in the time zone code).
While the web app's connect pulls and stores that document through the job engine, the
home page keeps answering; the job ends with a typed result (done, or failed with the
parser's reason), never an untyped exception or a hang. SECURITY R36, R37.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from sqlalchemy import select

from greenbutton.storage._schema import ingest_jobs
from greenbutton.web import WebConfig, create_app
from tests.conftest import WEB_BASE as BASE
from tests.simulator_harness import SimulatorHandle


def _last(pattern: str, replacement: str) -> Any:
    def edit(body: bytes) -> bytes:
        matches = list(re.finditer(pattern.encode(), body))
        assert matches, pattern
        m = matches[-1]
        return body[: m.start(1)] + replacement.encode() + body[m.end(1) :]

    return edit


def _reading_start(body: bytes) -> bytes:
    """The last IntervalReading's start, 10^14: inside int64, past any datetime."""
    at = [m.end() for m in re.finditer(rb"<(?:\w+:)?IntervalReading>", body)][-1]
    m = re.compile(rb"<(?:\w+:)?start>(\d+)<").search(body, at)
    assert m is not None
    return body[: m.start(1)] + b"100000000000000" + body[m.end(1) :]


HOSTILE = {
    "multiplier": (_last(r"<(?:\w+:)?powerOfTenMultiplier>(-?\d+)<", "99999999999"), True),
    "start": (_reading_start, True),
    "dst-rule": (_last(r"<(?:\w+:)?dstStartRule>([^<]*)<", "99999999999"), False),
}


class Tampering(httpx2.AsyncBaseTransport):
    """The real mTLS transport; data windows come back with one value replaced."""

    def __init__(self, gb: SimulatorHandle, edit: Any) -> None:
        self.inner = httpx2.AsyncHTTPTransport(verify=gb.ssl_context())
        self.edit = edit
        self.tampered = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if "/UsagePoint/" not in request.url.path or "published-min" not in str(request.url):
            return response
        body = await response.aread()
        self.tampered += 1
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx2.Response(response.status_code, headers=headers, content=self.edit(body))

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def serving(config: WebConfig) -> AsyncIterator[tuple[Any, httpx2.AsyncClient]]:
    app = create_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as browser,
    ):
        yield app.state.greenbutton, browser


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(HOSTILE))
async def test_one_hostile_number_leaves_the_site_responsive(
    gb: SimulatorHandle, tmp_path: Path, kind: str
) -> None:
    edit, must_fail = HOSTILE[kind]
    transport = Tampering(gb, edit)
    config = WebConfig.for_simulator(
        gb.state_dir, database_url=f"sqlite:///{tmp_path / 'web.db'}", transport=transport
    )
    answered: list[int] = []
    async with serving(config) as (web, browser):
        r = await browser.get("/connect")
        assert r.status_code == 302

        def consent() -> str:
            with gb.portal_client() as portal:
                return str(portal.get(r.headers["location"]).headers["location"])

        callback = await anyio.to_thread.run_sync(consent)
        done = anyio.Event()

        async def home_page() -> None:
            while not done.is_set():
                answered.append((await browser.get("/")).status_code)
                await anyio.sleep(0.02)

        with anyio.fail_after(30):  # a hang guard: the old code never returned
            async with anyio.create_task_group() as tg:
                tg.start_soon(home_page)
                result = await browser.get(callback)  # the first pull runs the jobs
                done.set()
        assert result.status_code == 303
        assert (await browser.get("/")).status_code == 200
        with web.store.connect() as conn:
            jobs = conn.execute(select(ingest_jobs.c.state, ingest_jobs.c.error)).all()
    assert transport.tampered >= 1 and answered and set(answered) == {200}
    assert jobs and all(state in ("done", "failed") for state, _ in jobs), jobs
    errors = [str(error) for _, error in jobs if error]
    assert not any("interrupted" in e for e in errors), errors  # never an untyped exception
    if must_fail:
        assert any(e.startswith("ParseError") for e in errors), errors
