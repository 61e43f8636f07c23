"""The operator console (DESIGN 3.7): ``/admin`` refuses anyone but an operator made with
``greenbutton admin add-user``; the login form is CSRF-protected, a login always makes a new
session, failures are rate-limited; an operator sees each authorization's freshness, each
failed job's reason (and retries it, CSRF-protected), the limits and the certificate's
expiry; no customer token is ever on the page. Against the real simulator over mTLS."""

# ruff: noqa: S105  (fixed test passwords)

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner
from cryptography import x509

from greenbutton.cli import cli
from greenbutton.storage import create_job, fail_job
from tests.simulator_harness import SimulatorHandle
from tests.web_harness import connect, running

PASSWORD = "a long operator passphrase"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _add_operator(tmp_path: Path, name: str = "ops") -> None:
    r = CliRunner().invoke(
        cli,
        ["admin", "add-user", name, "--database", f"sqlite:///{tmp_path / 'web.db'}"],
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 0, r.output
    assert PASSWORD not in r.output


async def _login(browser: httpx2.AsyncClient, name: str, password: str) -> httpx2.Response:
    form = await browser.get("/admin/login")
    assert form.status_code == 200
    return await browser.post(
        "/admin/login", data={"csrf": _csrf(form.text), "username": name, "password": password}
    )


def _cookie(response: httpx2.Response, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert headers, response.headers
    return headers[0]


@pytest.mark.anyio
async def test_console_needs_an_operator_and_shows_the_state(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    async with running(gb, tmp_path) as (web, browser, _):
        _, done = await connect(gb, browser)  # a customer connects: their browser session
        assert done.status_code == 303
        # a customer's session is no operator's
        assert (await browser.get("/admin")).headers["location"] == "/admin/login"

        # the form without its cookie-bound token, or with another form's token: refused
        r = await browser.post("/admin/login", data={"username": "ops", "password": PASSWORD})
        assert r.status_code == 403
        form = await browser.get("/admin/login")
        other = httpx2.AsyncClient(transport=browser._transport, base_url=str(browser.base_url))
        async with other:
            r = await other.post(
                "/admin/login",
                data={"csrf": _csrf(form.text), "username": "ops", "password": PASSWORD},
            )
        assert r.status_code == 403

        _add_operator(tmp_path)
        assert (await _login(browser, "ops", "not the password")).status_code == 401
        unknown = await _login(browser, "nobody", PASSWORD)
        assert unknown.status_code == 401 and "Wrong name or password" in unknown.text

        ok = await _login(browser, "ops", PASSWORD)
        assert ok.status_code == 303 and ok.headers["location"] == "/admin"
        set_cookie = _cookie(ok, "gb_admin").lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        first = browser.cookies["gb_admin"]

        # a failed job with its reason, then the console
        uri = web.resource_url + "/Batch/Subscription/9/UsagePoint/1"
        job = await _in_thread(create_job, web.store, uri)
        await _in_thread(fail_job, web.store, job, "HTTPStatusError: 503 Service Unavailable")
        page = await browser.get("/admin")
        assert page.status_code == 200
        html = page.text
        (key,) = [k for k in web.tokens.keys() if "/Subscription/" in k]
        assert key in html and "fresh" in html  # the first pull stored today's data
        assert "HTTPStatusError: 503 Service Unavailable" in html
        assert f'action="/admin/jobs/{job}/retry"' in html
        assert "closed" in html  # the circuit
        cert = x509.load_pem_x509_certificate(Path(gb.registration["client_cert"]).read_bytes())
        assert cert.not_valid_after_utc.strftime("%Y-%m-%d") in html
        token = web.tokens.load(key)
        assert token.access_token.reveal() not in html
        assert token.refresh_token.reveal() not in html

        # retry: only with the session's token
        r = await browser.post(f"/admin/jobs/{job}/retry", data={"csrf": "forged"})
        assert r.status_code == 403
        r = await browser.post(f"/admin/jobs/{job}/retry", data={"csrf": _csrf(html)})
        assert r.status_code == 303
        assert "will be tried again" in (await browser.get(r.headers["location"])).text

        # a login makes a new session and ends the one this browser had (fixation): the
        # form comes from elsewhere, the old session cookie is still sent with the POST
        fresh = httpx2.AsyncClient(transport=browser._transport, base_url=str(browser.base_url))
        async with fresh:
            form = await fresh.get("/admin/login")
        browser.cookies.set("gb_admin_login", fresh.cookies["gb_admin_login"])
        again = await browser.post(
            "/admin/login", data={"csrf": _csrf(form.text), "username": "ops", "password": PASSWORD}
        )
        assert again.status_code == 303
        second = browser.cookies["gb_admin"]
        assert second != first
        stale = httpx2.AsyncClient(
            transport=browser._transport,
            base_url=str(browser.base_url),
            cookies={"gb_admin": first},
        )
        async with stale:
            assert (await stale.get("/admin")).status_code == 303

        # sign out: the session is gone on the server
        page = await browser.get("/admin")
        r = await browser.post("/admin/logout", data={"csrf": _csrf(page.text)})
        assert r.status_code == 303
        replay = httpx2.AsyncClient(
            transport=browser._transport,
            base_url=str(browser.base_url),
            cookies={"gb_admin": second},
        )
        async with replay:
            assert (await replay.get("/admin")).headers["location"] == "/admin/login"


@pytest.mark.anyio
async def test_failed_logins_are_rate_limited(gb: SimulatorHandle, tmp_path: Path) -> None:
    async with running(gb, tmp_path) as (web, browser, _):
        _add_operator(tmp_path)
        for _ in range(4):
            assert (await _login(browser, "ops", "wrong guess")).status_code == 401
        locked = await _login(browser, "ops", "wrong guess")
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        # locked: the right password does not get in either, until the lock ends
        assert (await _login(browser, "ops", PASSWORD)).status_code == 429
        assert "gb_admin" not in browser.cookies


async def _in_thread(fn: Any, *args: Any) -> Any:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(fn, *args)


@pytest.mark.anyio
async def test_address_limit_counts_the_forwarded_client_behind_a_trusted_proxy(
    gb: SimulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from greenbutton.web import _admin

    monkeypatch.setattr(_admin, "ADDRESS_FAILURES", 3)
    options = {"trusted_proxies": ("127.0.0.1/32",), "notify_allow": ("127.0.0.1/32",)}
    async with running(gb, tmp_path, **options) as (web, browser, _):
        _add_operator(tmp_path)
        one = {"X-Forwarded-For": "203.0.113.7"}
        for _ in range(3):  # unknown names: only the address counts
            form = await browser.get("/admin/login")
            r = await browser.post(
                "/admin/login",
                data={"csrf": _csrf(form.text), "username": "guess", "password": "x"},
                headers=one,
            )
            assert r.status_code == 401
        form = await browser.get("/admin/login")
        data = {"csrf": _csrf(form.text), "username": "ops", "password": PASSWORD}
        blocked = await browser.post("/admin/login", data=data, headers=one)
        assert blocked.status_code == 429
        # another client behind the same proxy is not blocked by them
        form = await browser.get("/admin/login")
        data["csrf"] = _csrf(form.text)
        other = await browser.post(
            "/admin/login", data=data, headers={"X-Forwarded-For": "198.51.100.9"}
        )
        assert other.status_code == 303
