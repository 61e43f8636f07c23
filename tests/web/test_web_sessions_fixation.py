"""Session fixation and the session cookie's form (SECURITY R51; RFC 9700 4.1; OWASP Session
Management): the session id is renewed at every privilege change, so an id obtained before
the login opens nothing after it; over HTTPS or behind a TLS proxy the cookie is
``__Host-gb_session; Secure``; idle and absolute lifetimes are the server's.

The app runs in-process against a real simulator; each "browser" is its own cookie jar.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from cryptography.fernet import Fernet, MultiFernet

from greenbutton.storage import Store
from greenbutton.web._sessions import Sessions
from tests.simulator_harness import SimulatorHandle
from tests.web_harness import BASE, consent, running

COOKIE = "gb_session"


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


@pytest.mark.anyio
async def test_an_id_planted_before_login_opens_nothing_after(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """R51 / session fixation: the attacker gets a session id, plants it in the victim's
    browser, the victim connects with it; the attacker's id no longer opens ``/account``
    (nor disconnects anything). Disconnecting renews the id again."""
    async with running(gb, tmp_path, job_poll_seconds=60) as (_, browser, _counting):
        transport = browser._transport
        async with (
            httpx2.AsyncClient(transport=transport, base_url=BASE) as attacker,
            httpx2.AsyncClient(transport=transport, base_url=BASE) as victim,
        ):
            planted = (await attacker.get("/connect")).cookies[COOKIE]
            victim.cookies.set(COOKIE, planted)

            r = await victim.get("/connect")  # the victim's flow runs in the planted session
            assert r.status_code == 302 and COOKIE not in r.cookies  # no new id yet
            done = await victim.get(await consent(gb, r.headers["location"]))
            assert done.status_code == 303 and done.headers["location"] == "/account"
            renewed = done.cookies[COOKIE]
            assert renewed.split(".")[0] != planted.split(".")[0]
            victim.cookies.clear()  # as a browser does: the new cookie replaces the planted one
            victim.cookies.set(COOKIE, renewed)

            page = await victim.get("/account")
            assert page.status_code == 200 and '<section class="account"' in page.text
            assert (await attacker.get("/account")).status_code == 303  # the old id is dead
            home = await attacker.get("/")
            assert "Disconnect" not in home.text
            stolen = await attacker.post(
                "/disconnect", data={"account": "0", "csrf": _csrf(page.text)}
            )
            assert stolen.status_code == 403

            # disconnecting is a privilege change too: a new id, the connected one dead
            connected = renewed
            out = await victim.post("/disconnect", data={"account": "0", "csrf": _csrf(page.text)})
            assert out.status_code == 303
            assert out.cookies[COOKIE].split(".")[0] != connected.split(".")[0]
            attacker.cookies.set(COOKIE, connected)
            assert (await attacker.get("/account")).status_code == 303


@pytest.mark.anyio
async def test_reconnecting_renews_the_id_again(gb: SimulatorHandle, tmp_path: Path) -> None:
    """A second connect from a signed-in browser (another account, or the same again) is a
    privilege change: the id it had while signed in stops working."""
    async with running(gb, tmp_path, job_poll_seconds=60) as (_, browser, _counting):
        ids = []
        for _ in range(2):
            r = await browser.get("/connect")
            done = await browser.get(await consent(gb, r.headers["location"]))
            assert done.status_code == 303
            ids.append(done.cookies[COOKIE])
        assert ids[0].split(".")[0] != ids[1].split(".")[0]
        async with httpx2.AsyncClient(transport=browser._transport, base_url=BASE) as old:
            old.cookies.set(COOKIE, ids[0])
            assert (await old.get("/account")).status_code == 303
        assert (await browser.get("/account")).status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize("base", ["https://127.0.0.1:3999", BASE])
async def test_secure_cookies_are_host_prefixed(
    gb: SimulatorHandle, tmp_path: Path, base: str
) -> None:
    """R51: with ``secure_cookies`` (behind a TLS proxy the app itself sees plain HTTP) the
    cookie is ``__Host-gb_session`` with ``Secure``, ``Path=/`` and no ``Domain``; the plain
    name is not accepted in its place."""
    async with running(gb, tmp_path, secure_cookies=True, job_poll_seconds=60) as (_, b, _c):
        async with httpx2.AsyncClient(transport=b._transport, base_url=base) as browser:
            r = await browser.get("/connect")
            header = r.headers["set-cookie"]
            name, _, attributes = header.partition(";")
            assert name.startswith("__Host-gb_session=")
            attrs = {a.strip().split("=")[0].lower() for a in attributes.split(";")}
            assert {"secure", "httponly", "path"} <= attrs and "domain" not in attrs
            assert "path=/;" in header.lower().replace(" ", "") + ";"
            value = name.partition("=")[2]
            browser.cookies.clear()  # cookies by hand below, whatever the jar would send
            target = urlsplit(await consent(gb, r.headers["location"]))
            callback = f"{target.path}?{target.query}"
            wrong = await browser.get(callback, headers={"Cookie": f"{COOKIE}={value}"})
            assert wrong.status_code == 400  # the unprefixed name is not our cookie
            right = {"Cookie": f"__Host-gb_session={value}"}
            done = await browser.get(callback, headers=right)
            assert done.status_code == 303 and done.headers["location"] == "/account"
            assert done.headers["set-cookie"].startswith("__Host-gb_session=")


def test_idle_and_absolute_lifetimes_are_the_servers(store_url: str) -> None:
    """A session ends ``idle_timeout`` after its last use *and* ``absolute_timeout`` after it
    began, whatever the cookie says; use in between does not extend the absolute one.
    ``rotate`` kills the old id at once and the new one's lifetimes start then."""
    now = [1_000_000.0]
    with Store.open(store_url) as store:
        sessions = Sessions(
            store,
            MultiFernet([Fernet(Fernet.generate_key())]),
            b"k" * 32,
            idle_timeout=3600,
            absolute_timeout=7200,
            clock=lambda: now[0],
        )
        session, cookie = sessions.create()
        for _ in range(2):
            now[0] += 3000  # used every 50 minutes: idle never reached
            assert sessions.get(cookie) is not None
        now[0] += 1300  # 7300 s after creation
        assert sessions.get(cookie) is None

        session, cookie = sessions.create()
        rotated = sessions.rotate(session.id, lambda s: s.accounts.append("acct"))
        assert rotated is not None
        new, new_cookie = rotated
        assert new.id != session.id and new.csrf != session.csrf
        assert sessions.get(cookie) is None  # the old id is dead
        got = sessions.get(new_cookie)
        assert got is not None and got.accounts == ["acct"]
        assert sessions.rotate(session.id, lambda s: None) is None
        now[0] += 3599
        assert sessions.get(new_cookie) is not None
        now[0] += 3599  # idle again, but less than absolute since the rotation
        assert sessions.get(new_cookie) is not None
        now[0] += 3601  # past 7200 s since the rotation
        assert sessions.get(new_cookie) is None
