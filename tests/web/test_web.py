"""The web app against a real simulator (mutual TLS), in-process through ASGITransport.

The browser is an ``httpx2.AsyncClient`` on the app; the simulator's portal auto-approves
"alice", so following its redirect by hand is the customer's consent. Outbound requests of
the app's utility client are counted by a transport wrapper (SECURITY b2: 0 connections for
a rejected notified URI).
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.to_thread
import httpx2
import pytest
from sqlalchemy import func, select

from greenbutton.simulator._data import Window
from greenbutton.simulator._notify import batch_list_xml
from greenbutton.simulator._oauth import token_calls
from greenbutton.storage._schema import ingest_jobs, readings
from greenbutton.web._notify import RejectedURI, validate_notified_uri
from tests.simulator_harness import SimulatorHandle
from tests.web_harness import BASE, XML, Gated, _jobs, connect, consent, running


@pytest.mark.anyio
async def test_connect_flow_account_page_and_replay(gb: SimulatorHandle, tmp_path: Path) -> None:
    async with running(gb, tmp_path) as (web, browser, _):
        home = await browser.get("/")
        assert home.status_code == 200 and "Connect your utility account" in home.text
        assert "//" not in re.sub(r"https?://www\.w3\.org", "", home.text.split("<body>")[1])

        r = await browser.get("/connect")
        assert r.status_code == 302
        url = r.headers["location"]
        assert url.startswith(gb.registration["authorize_url"])
        q = parse_qs(urlsplit(url).query)
        assert q["code_challenge_method"] == ["S256"] and len(q["state"][0]) >= 43
        assert "code_verifier" not in url
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie

        callback = await consent(gb, url)
        calls = len(token_calls(gb.sim))
        done = await browser.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/account"
        assert done.headers["referrer-policy"] == "no-referrer"
        assert done.headers["cache-control"] == "no-store"
        assert len(token_calls(gb.sim)) == calls + 1

        page = await browser.get("/account")
        assert page.status_code == 200
        assert "<svg" in page.text and "UsagePoint" in page.text
        assert "readings" in page.text and "<script" not in page.text
        key = web.tokens.keys()
        token = web.tokens.load([k for k in key if "/Subscription/" in k][0])
        assert token.access_token.reveal() not in page.text
        assert token.refresh_token.reveal() not in page.text

        # R11: the same callback again (reload) makes no token request
        again = await browser.get(callback)
        assert again.status_code == 400
        assert len(token_calls(gb.sim)) == calls + 1


@pytest.mark.anyio
async def test_callback_rejections(gb: SimulatorHandle, tmp_path: Path) -> None:
    async with running(gb, tmp_path) as (_, browser, _counting):
        calls = len(token_calls(gb.sim))
        # no session at all
        assert (await browser.get("/OAuthCallback?code=x&state=y")).status_code == 400
        # wrong state: rejected, and the pending flow is gone (the right state fails after)
        r = await browser.get("/connect")
        state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
        assert (await browser.get("/OAuthCallback?code=x&state=wrong")).status_code == 400
        assert (await browser.get(f"/OAuthCallback?code=x&state={state}")).status_code == 400
        # another browser's state (attacker starts, victim finishes)
        async with httpx2.AsyncClient(transport=browser._transport, base_url=BASE) as attacker:
            a = await attacker.get("/connect")
            astate = parse_qs(urlsplit(a.headers["location"]).query)["state"][0]
        await browser.get("/connect")
        assert (await browser.get(f"/OAuthCallback?code=x&state={astate}")).status_code == 400
        # the customer said no: shown safely, escaped and capped
        r = await browser.get("/connect")
        state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
        denied = await browser.get(
            "/OAuthCallback",
            params={
                "error": "access_denied",
                "error_description": "<script>alert(1)</script>",
                "state": state,
            },
        )
        assert denied.status_code == 400 and "access_denied" in denied.text
        assert "<script>alert" not in denied.text and "&lt;script&gt;" in denied.text
        assert len(token_calls(gb.sim)) == calls

        # /get_auth_code: the URL as text or JSON, bound to this session
        text = await browser.get("/get_auth_code")
        assert text.text.startswith(gb.registration["authorize_url"])
        js = await browser.get("/get_auth_code", headers={"Accept": "application/json"})
        assert js.json()["url"].startswith(gb.registration["authorize_url"])
        assert (await browser.get("/Goto_login")).status_code == 302


@pytest.mark.anyio
async def test_disconnect_needs_csrf_and_revokes(gb: SimulatorHandle, tmp_path: Path) -> None:
    async with running(gb, tmp_path) as (web, browser, _):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        page = (await browser.get("/account")).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        (grant,) = gb.sim.state.grants.values()
        assert grant.status == 1
        no = await browser.post("/disconnect", data={"account": "0"})
        bad = await browser.post("/disconnect", data={"account": "0", "csrf": "x" * 43})
        assert no.status_code == bad.status_code == 403 and grant.status == 1
        ok = await browser.post("/disconnect", data={"account": "0", "csrf": csrf.group(1)})
        assert ok.status_code == 303
        assert grant.status == 0
        assert [k for k in web.tokens.keys() if "/Subscription/" in k] == []
        assert (await browser.get("/account")).status_code == 303


# -- notifications ---------------------------------------------------------------------------


def _readings(web: Any) -> int:
    with web.store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(readings)).scalar_one())


def lookalikes(resource_url: str) -> list[str]:
    parts = urlsplit(resource_url)
    host, port, path = parts.hostname, parts.port, parts.path
    assert port is not None
    h = f"{host}:{port}"
    sub = f"{path}/Batch/Subscription/1"
    return [
        f"http://{h}{sub}",
        f"https://{h}@evil.test{sub}",
        f"https://evil.test#@{h}{sub}",
        f"https://{host}.evil.test:{port}{sub}",
        f"https://evil.test{sub}?u=https://{h}/",
        f"https://{host}:{port + 1}{sub}",
        f"https://{host}.:{port}{sub}",
        f"https://127.0.0.с:{port}{sub}",  # Cyrillic "с"
        f"https://[::ffff:127.0.0.1]:{port}{sub}",
        f"https://2130706433:{port}{sub}",
        f"https://0x7f.1:{port}{sub}",
        f"https://127.1:{port}{sub}",
        "https://169.254.169.254/latest/meta-data/",
        f"http:////{h}{sub}",
        "http://x@//internal:8082/",
        f"https://{h}{path}/../../admin",
        f"https://{h}{path}/%2e%2e/Batch/Subscription/1",
        f"https://{h}{path}/Batch%2FSubscription/1",
        f"https://{h}{path}/Batch/Subscription/1%5c..",
        "https://[not-an-ip]/",
        f"https://{h}{sub}?evil=1",
        f"https://{h}{sub}?correlationID=a&correlationID=b",
        f"https://{h}{path}/Authorization/1",
        "sftp://dc.example/file; touch /tmp/pwned",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_x",
        "javascript:alert(1)",
        f"https://{h}{sub}#frag",
        f"https://{h}{sub}\\x",
    ]


def test_validator_rebuilds_from_configuration() -> None:
    base = "https://dc.example/espi/1_1/resource"
    got = validate_notified_uri(
        "https://DC.example:443/espi/1_1/resource/Batch/Subscription/5?correlationID=c-1", base
    )
    assert got.url == f"{base}/Batch/Subscription/5?correlationID=c-1"
    assert (got.kind, got.resource_id) == ("subscription", "5")
    for bad in lookalikes("https://dc.example:443/espi/1_1/resource"):
        with pytest.raises(RejectedURI):
            validate_notified_uri(bad, base)


@pytest.mark.anyio
async def test_notification_endpoint(gb: SimulatorHandle, tmp_path: Path) -> None:
    async with running(gb, tmp_path, job_poll_seconds=60) as (web, browser, counting):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        before_rows = _readings(web)
        (grant,) = gb.sim.state.grants.values()
        end = int(time.time()) // 86400 * 86400
        uri = gb.sim.notifier.prepare(
            f"Batch/Subscription/{grant.subscription_id}",
            Window(published_min=end - 60 * 86400, published_max=end - 40 * 86400),
        )
        sent = len(counting.urls)

        # cheap rejections first (R39)
        assert (await browser.get("/espi/1_1/Notification")).status_code == 405
        body = batch_list_xml([uri])
        wrong = await browser.post(
            "/espi/1_1/Notification", content=body, headers={"Content-Type": "text/plain"}
        )
        assert wrong.status_code == 415
        big = b"<BatchList>" + b" " * (64 * 1024) + b"</BatchList>"
        assert (
            await browser.post("/espi/1_1/Notification", content=big, headers=XML)
        ).status_code == 413
        many = batch_list_xml([uri] * 1001)
        assert (
            await browser.post("/espi/1_1/Notification", content=many, headers=XML)
        ).status_code == 413
        broken = await browser.post("/espi/1_1/Notification", content=b"<BatchList", headers=XML)
        assert broken.status_code == 400

        # b2: every lookalike rejected, nothing queued, no outbound request
        for bad in lookalikes(gb.registration["resource_url"]):
            r = await browser.post(
                "/espi/1_1/Notification", content=batch_list_xml([bad]), headers=XML
            )
            assert r.status_code == 400, bad
        # R42: right host, a subscription nobody here authorized: not fetched
        other = uri.replace(f"/Subscription/{grant.subscription_id}?", "/Subscription/999999?")
        r = await browser.post(
            "/espi/1_1/Notification", content=batch_list_xml([other]), headers=XML
        )
        assert r.status_code == 200 and "unmatched 1" in r.text
        await anyio.sleep(0.2)
        assert _jobs(web) == [] and counting.urls[sent:] == []

        # a valid BatchList: 2xx after the job is committed; duplicates collapse (R44, R45)
        ok = await browser.post("/espi/1_1/Notification", content=body, headers=XML)
        assert ok.status_code == 200 and "queued 1" in ok.text
        dup = await browser.post(
            "/espi/1_1/Notification", content=batch_list_xml([uri, uri]), headers=XML
        )
        assert dup.status_code == 200 and "queued 0" in dup.text
        assert len(_jobs(web)) == 1

        # the background worker fetches it (not the request) and stores the readings
        with anyio.fail_after(20):
            while _jobs(web)[0][1] != "done":
                await anyio.sleep(0.05)
        assert _readings(web) > before_rows
        fetched = [u for u in counting.urls[sent:] if "correlationID" in u]
        assert fetched == [uri]
        again = await browser.post("/espi/1_1/Notification", content=body, headers=XML)
        assert again.status_code == 200 and "queued 0" in again.text


def _refreshes(gb: SimulatorHandle) -> int:
    return sum(c.grant_type == "refresh_token" for c in token_calls(gb.sim))


@pytest.mark.anyio
async def test_notification_arriving_during_a_refresh(gb: SimulatorHandle, tmp_path: Path) -> None:
    """b10: a BatchList POST while the authorization's token refresh is in flight is
    acknowledged only once its job is committed; the worker then fetches with the refreshed
    token, and the custodian sees exactly one refresh."""
    gate = Gated(gb)
    gate.open.set()
    async with running(gb, tmp_path, gate, job_poll_seconds=60) as (web, browser, _):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        (key,) = [k for k in web.tokens.keys() if "/Subscription/" in k]
        old = web.tokens.load(key)
        web.tokens.save(key, dataclasses.replace(old, expires_at=time.time() - 10))
        (grant,) = gb.sim.state.grants.values()
        end = int(time.time()) // 86400 * 86400
        uri = gb.sim.notifier.prepare(
            f"Batch/Subscription/{grant.subscription_id}",
            Window(published_min=end - 60 * 86400, published_max=end - 55 * 86400),
        )
        refreshes = _refreshes(gb)
        gate.arrived, gate.open = anyio.Event(), anyio.Event()
        answers: list[tuple[int, int]] = []

        async def notify() -> None:
            r = await browser.post(
                "/espi/1_1/Notification", content=batch_list_xml([uri]), headers=XML
            )
            # the job is committed by the time the 2xx is seen (R44)
            answers.append((r.status_code, len(await anyio.to_thread.run_sync(_jobs, web))))

        async with anyio.create_task_group() as tg:
            tg.start_soon(web.first_pull, key)  # needs the token: the refresh starts
            await gate.arrived.wait()  # ... and is now held open at the token endpoint
            tg.start_soon(notify)
            await anyio.sleep(0.3)  # pacing only: let the POST reach the app
            gate.open.set()
        assert answers == [(200, 1)]

        with anyio.fail_after(20):
            while _jobs(web)[0][1] != "done":
                await anyio.sleep(0.05)
        fresh = web.tokens.load(key)
        assert fresh.access_token.reveal() != old.access_token.reveal()
        assert gate.bearers == [f"Bearer {fresh.access_token.reveal()}"]
        assert _refreshes(gb) == refreshes + 1


@pytest.mark.anyio
async def test_two_notifications_in_the_same_second_make_one_job(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """b10 / R45: the same BatchList POSTed twice at once for one subscription: one job."""
    async with running(gb, tmp_path, job_poll_seconds=60) as (web, browser, counting):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        (grant,) = gb.sim.state.grants.values()
        end = int(time.time()) // 86400 * 86400
        uri = gb.sim.notifier.prepare(
            f"Batch/Subscription/{grant.subscription_id}",
            Window(published_min=end - 50 * 86400, published_max=end - 45 * 86400),
        )
        body = batch_list_xml([uri])
        texts: list[str] = []

        async def notify() -> None:
            r = await browser.post("/espi/1_1/Notification", content=body, headers=XML)
            assert r.status_code == 200
            texts.append(r.text)

        async with anyio.create_task_group() as tg:
            tg.start_soon(notify)
            tg.start_soon(notify)
        assert sorted(texts) == ["queued 0, unmatched 0\n", "queued 1, unmatched 0\n"]
        with anyio.fail_after(20):
            while _jobs(web)[0][1] != "done":
                await anyio.sleep(0.05)
        assert len(_jobs(web)) == 1
        assert [u for u in counting.urls if "correlationID" in u] == [uri]


@pytest.mark.anyio
async def test_an_open_circuit_pauses_the_worker_without_spending_attempts(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """R59: while the client's circuit breaker is open, a worker round stops at the first
    refused job, which keeps its attempt; nothing is fetched. Once a probe may go out, the
    next round fetches and stores every notified window."""
    import dataclasses

    from greenbutton import CircuitBreaker, CircuitOpenError

    async with running(gb, tmp_path, job_poll_seconds=60) as (web, browser, counting):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        now, refused = [0.0], []

        class Counted(CircuitBreaker):
            def before(self, url: str | None = None) -> bool:
                try:
                    return super().before(url)
                except CircuitOpenError:
                    refused.append(url)
                    raise

        breaker = Counted(failure_threshold=1, min_span_s=0, clock=lambda: now[0])
        breaker.failure()  # the custodian just failed: open
        web.client._policy = dataclasses.replace(web.client._policy, breaker=breaker)
        (grant,) = gb.sim.state.grants.values()
        end = int(time.time()) // 86400 * 86400
        uris = [
            gb.sim.notifier.prepare(
                f"Batch/Subscription/{grant.subscription_id}",
                Window(published_min=end - d * 86400, published_max=end - (d - 5) * 86400),
            )
            for d in (50, 40)
        ]
        before = len(counting.urls)
        r = await browser.post("/espi/1_1/Notification", content=batch_list_xml(uris), headers=XML)
        assert r.status_code == 200 and r.text == "queued 2, unmatched 0\n"
        j = ingest_jobs
        query = (
            select(j.c.state, j.c.attempts, j.c.created_at, j.c.updated_at)
            .where(~j.c.resource_uri.contains("/UsagePoint/"))  # not the first pull's windows
            .order_by(j.c.id)
        )
        with anyio.fail_after(20):  # the worker, woken by the POST, meets the open circuit
            while True:
                with web.store.connect() as conn:
                    rows = conn.execute(query).all()
                if refused and [(r[0], r[1]) for r in rows] == [("pending", 0)] * 2:
                    break
                await anyio.sleep(0.02)
        assert rows[1][2] == rows[1][3]  # the second job was never started: the round stopped
        assert len(refused) == 1
        assert not [u for u in counting.urls[before:] if "correlationID" in u]  # nothing sent

        now[0] += 3600  # cool-down over: the probe succeeds and closes the circuit
        await web.run_jobs()
        assert sorted(state for _, state in _jobs(web)) == ["done", "done"]
        assert sorted(u for u in counting.urls[before:] if "correlationID" in u) == sorted(uris)
