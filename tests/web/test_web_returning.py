"""Customers who come back (issue 11.2): sign in again through the utility, sign out, and
"Connect another account" while the utility still has the customer signed in.

The app runs in-process (ASGITransport) against a real simulator over mutual TLS; each
``httpx2.AsyncClient`` on the app is one browser with its own cookie jar. The simulator
auto-approves its first customer, so every consent is the same customer's: exactly the
case where a second authorization must update the first, never add a duplicate.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import func, select

from greenbutton.storage import authorization_id, authorization_versions
from greenbutton.storage._schema import readings
from greenbutton.web._sessions import COOKIE_NAME
from tests.simulator_harness import SimulatorHandle
from tests.web_harness import BASE, connect, consent, running


def _count(web: object) -> int:
    with web.store.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(readings)).scalar_one())


def _customer_keys(web: object) -> list[str]:
    return [k for k in authorization_versions(web.store) if "/Subscription/" in k]  # type: ignore[attr-defined]


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


@pytest.mark.anyio
async def test_sign_in_from_a_new_browser_lands_on_the_same_account(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    async with running(gb, tmp_path) as (web, browser, _):
        _, done = await connect(gb, browser)
        assert done.status_code == 303 and done.headers["location"] == "/account"
        (key,) = _customer_keys(web)
        row_id = authorization_id(web.store, key)
        stored = _count(web)
        assert stored > 0
        before = authorization_versions(web.store)[key]

        async with httpx2.AsyncClient(transport=browser._transport, base_url=BASE) as other:
            # a new browser knows nobody: the account page sends it home, where Sign in is
            assert (await other.get("/account")).status_code == 303
            home = await other.get("/")
            assert 'href="/signin"' in home.text and "Sign in with your utility" in home.text
            start = await other.get("/signin")
            assert start.status_code == 302
            pre_login = other.cookies[COOKIE_NAME]
            back = await other.get(await consent(gb, start.headers["location"]))
            assert back.status_code == 303
            assert back.headers["location"] == "/account?notice=welcome"
            signed_in = other.cookies[COOKIE_NAME]
            assert signed_in != pre_login  # a new session id at sign-in (fixation)
            page = await other.get(back.headers["location"])
            assert page.status_code == 200 and "Welcome back" in page.text
            assert "<svg" in page.text

            # the id known before sign-in opens nothing now
            async with httpx2.AsyncClient(
                transport=browser._transport, base_url=BASE, cookies={COOKIE_NAME: pre_login}
            ) as stale:
                assert (await stale.get("/account")).status_code == 303

        # one customer, one authorization: the same row, updated, with its data kept
        assert _customer_keys(web) == [key]
        assert authorization_id(web.store, key) == row_id
        assert authorization_versions(web.store)[key] > before
        assert _count(web) >= stored


@pytest.mark.anyio
async def test_connect_another_while_the_utility_still_signs_in_the_same_customer(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    async with running(gb, tmp_path) as (web, browser, _):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        (key,) = _customer_keys(web)
        page = await browser.get("/account")
        assert page.text.count('<section class="account"') == 1

        _, again = await connect(gb, browser)  # the portal approves the same customer
        assert again.status_code == 303
        assert again.headers["location"] == "/account?notice=same"
        told = await browser.get(again.headers["location"])
        assert "nothing was added" in told.text and "sign out on the utility" in told.text
        assert told.text.count('<section class="account"') == 1  # still one account shown
        assert _customer_keys(web) == [key]


@pytest.mark.anyio
async def test_sign_out_ends_the_session_and_keeps_the_account(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    async with running(gb, tmp_path) as (web, browser, _):
        await connect(gb, browser)
        (key,) = _customer_keys(web)
        page = (await browser.get("/account")).text
        assert 'action="/signout"' in page
        cookie = browser.cookies[COOKIE_NAME]

        assert (await browser.post("/signout")).status_code == 403
        assert (await browser.post("/signout", data={"csrf": "x" * 43})).status_code == 403
        assert (await browser.get("/account")).status_code == 200  # still signed in

        out = await browser.post("/signout", data={"csrf": _csrf(page)})
        assert out.status_code == 303 and out.headers["location"] == "/?signedout=1"
        assert COOKIE_NAME not in browser.cookies
        home = await browser.get(out.headers["location"])
        assert "You are signed out" in home.text
        assert (await browser.get("/account")).status_code == 303

        # a copy of the old cookie is dead too, but the account stays connected
        async with httpx2.AsyncClient(
            transport=browser._transport, base_url=BASE, cookies={COOKIE_NAME: cookie}
        ) as copy:
            assert (await copy.get("/account")).status_code == 303
        assert _customer_keys(web) == [key]
        assert web.tokens.load(key) is not None
