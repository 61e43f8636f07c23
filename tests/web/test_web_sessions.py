"""Browser sessions in the database (``web_sessions``): shared by every app instance on the
same database, surviving a restart, single-use pending authorizations across instances
(SECURITY R01, R11), and nothing readable at rest (R48, R51).

Two (or three) ``create_app`` instances on one database stand for two workers or a
restart; each is driven in-process through ``ASGITransport`` with its own lifespan.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import select

from greenbutton.simulator._oauth import token_calls
from greenbutton.storage import Store
from greenbutton.storage._schema import web_sessions
from greenbutton.web import WebConfig, create_app
from tests.simulator_harness import SimulatorHandle
from tests.web_harness import BASE, Counting, consent


@asynccontextmanager
async def instance(
    gb: SimulatorHandle, url: str, cookies: httpx2.Cookies
) -> AsyncIterator[tuple[Any, httpx2.AsyncClient]]:
    """One app instance on database ``url`` and a browser sharing the cookie jar."""
    config = WebConfig.for_simulator(gb.state_dir, database_url=url, transport=Counting(gb))
    app = create_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url=BASE, cookies=cookies
        ) as browser,
    ):
        yield app.state.greenbutton, browser


def _rows(url: str) -> list[tuple[str, bytes]]:
    with Store.open(url) as store, store.connect() as conn:
        rows = conn.execute(select(web_sessions.c.id_hash, web_sessions.c.data_enc)).all()
    return [(str(h), bytes(d)) for h, d in rows]


@pytest.mark.anyio
async def test_sessions_are_shared_single_use_and_encrypted(
    gb: SimulatorHandle,
    store_url: str,
    tmp_path: Path,
) -> None:
    cookies = httpx2.Cookies()
    async with AsyncExitStack() as stack:
        one, b1 = await stack.enter_async_context(instance(gb, store_url, cookies))
        two, b2 = await stack.enter_async_context(instance(gb, store_url, cookies))

        r = await b1.get("/connect")
        assert r.status_code == 302
        b2.cookies.update(r.cookies)
        state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
        sid_cookie = r.cookies["gb_session"]

        # at rest: the row is keyed by a hash and holds ciphertext only; decrypting it with
        # the app's key yields the verifier, which appears nowhere in the database
        ((id_hash, blob),) = _rows(store_url)
        sid = sid_cookie.split(".")[0]
        assert sid not in id_hash and len(id_hash) == 64
        fernet = Fernet(os.environ["GREENBUTTON_SECRET_KEY"].encode())
        pending = json.loads(fernet.decrypt(blob))["pending"]
        verifier = pending["code_verifier"]
        assert pending["state"] == state and len(verifier) >= 43
        assert verifier.encode() not in blob and state.encode() not in blob
        if store_url.startswith("sqlite"):
            raw = b"".join(p.read_bytes() for p in tmp_path.glob("gb.db*"))
            assert raw and verifier.encode() not in raw and state.encode() not in raw

        # started on instance one, finished on instance two
        callback = await consent(gb, r.headers["location"])
        calls = len(token_calls(gb.sim))
        done = await b2.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/account"
        assert len(token_calls(gb.sim)) == calls + 1
        # connecting renewed the session id (fixation); the browser keeps the new cookie
        sid_cookie = done.cookies["gb_session"]
        assert sid_cookie.split(".")[0] != sid
        for browser in (b1, b2):
            browser.cookies.clear()
            browser.cookies.set("gb_session", sid_cookie)
        page = await b1.get("/account")  # the other instance knows the account too
        assert page.status_code == 200 and '<section class="account"' in page.text

        # replaying the callback on either instance: rejected, no token request
        for browser in (b1, b2):
            again = await browser.get(callback)
            assert again.status_code == 400
        assert len(token_calls(gb.sim)) == calls + 1

    # a restart: a new instance on the same database still knows this browser
    async with instance(gb, store_url, cookies) as (_, b3):
        b3.cookies.set("gb_session", sid_cookie)
        page = await b3.get("/account")
        assert page.status_code == 200 and '<section class="account"' in page.text
        # a forged cookie (right shape, bad signature) is an unknown browser
        b3.cookies.set("gb_session", sid + ".AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAA")
        assert (await b3.get("/account")).status_code == 303


@pytest.mark.anyio
async def test_racing_callbacks_take_the_pending_flow_once(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """Two instances, one callback each at the same moment: one token request in total."""
    import anyio

    url = f"sqlite:///{tmp_path / 'race.db'}"
    cookies = httpx2.Cookies()
    async with AsyncExitStack() as stack:
        _, b1 = await stack.enter_async_context(instance(gb, url, cookies))
        _, b2 = await stack.enter_async_context(instance(gb, url, cookies))
        r = await b1.get("/connect")
        b2.cookies.update(r.cookies)
        callback = await consent(gb, r.headers["location"])
        calls = len(token_calls(gb.sim))
        statuses: list[int] = []

        async def hit(browser: httpx2.AsyncClient) -> None:
            statuses.append((await browser.get(callback)).status_code)

        async with anyio.create_task_group() as tg:
            tg.start_soon(hit, b1)
            tg.start_soon(hit, b2)
        assert sorted(statuses) == [303, 400]
        assert len(token_calls(gb.sim)) == calls + 1


def test_sessions_expire_and_old_rows_are_cleaned_up(
    store_url: str,
) -> None:
    """A session unused for ``idle_timeout`` is gone; a later ``create`` deletes its row."""
    from greenbutton.web._sessions import Sessions

    now = [1_000_000.0]
    with Store.open(store_url) as store:
        sessions = Sessions(
            store,
            MultiFernet([Fernet(Fernet.generate_key())]),
            b"k" * 32,
            idle_timeout=3600,
            clock=lambda: now[0],
        )
        old, old_cookie = sessions.create()
        assert sessions.get(old_cookie) is not None
        now[0] += 3601
        assert sessions.get(old_cookie) is None  # expired by the server's clock
        _, cookie = sessions.create()  # opportunistic cleanup
        assert len(_rows(store_url)) == 1 and sessions.get(cookie) is not None
        # another app's key cannot read the rows: an unknown browser, not an error
        other = Sessions(
            store,
            MultiFernet([Fernet(Fernet.generate_key())]),
            b"k" * 32,
            idle_timeout=3600,
            clock=lambda: now[0],
        )
        assert other.get(cookie) is None
