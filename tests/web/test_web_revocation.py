"""Disconnect done right (SECURITY R22; RFC 7009 2.2.1): the local tokens are deleted whatever
the utility answers, a revocation it does not confirm (503, no answer) stays owed and is
retried by the web app's worker, and the customer is told which of the two happened.

The utility is a real simulator with its fault switches (``sim.faults``); the app runs
in-process with its lifespan (the worker).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from greenbutton.oauth import Token
from greenbutton.storage import (
    DatabaseTokenStore,
    Store,
    cancel_revocation,
    claim_revocation,
    due_revocations,
    pending_revocations_of,
    queue_revocation,
    revocation_done,
    revocation_failed,
)
from tests.simulator_harness import SimulatorHandle
from tests.web_harness import connect, running

FAR = 2_000_000_000.0  # a moment after any back-off: "later", without waiting for it


async def _disconnect(browser: Any) -> Any:
    page = (await browser.get("/account")).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    return await browser.post("/disconnect", data={"account": "0", "csrf": csrf.group(1)})


def _grants(web: Any) -> list[str]:
    """The customer grants' keys (``{utility}/Subscription/{id}``, or older URL keys)."""
    return [k for k in web.tokens.keys() if "/Subscription/" in k or "/Authorization/" in k]


@pytest.mark.anyio
async def test_confirmed_revocation(gb: SimulatorHandle, tmp_path: Path) -> None:
    """The utility answers: tokens gone, the grant revoked there, nothing owed, and the
    customer reads that the utility confirmed."""
    async with running(gb, tmp_path, job_poll_seconds=60) as (web, browser, _):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        (grant,) = gb.sim.state.grants.values()
        out = await _disconnect(browser)
        assert out.status_code == 303 and out.headers["location"] == "/?disconnected=confirmed"
        assert grant.status == 0 and _grants(web) == []
        assert pending_revocations_of(web.store, web.namespace) == []
        home = await browser.get(out.headers["location"])
        assert "the utility confirmed it" in home.text


@pytest.mark.anyio
async def test_a_503_keeps_a_retried_revocation_and_deletes_tokens(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """R22: the utility answers 503 (Retry-After: 1) to everything: the local tokens are
    deleted anyway, the customer reads that the utility will be told, the revocation stays
    owed with its reason and a back-off of at least Retry-After; once the utility is back,
    the worker's next round revokes the grant there and nothing is owed."""
    async with running(gb, tmp_path, job_poll_seconds=60) as (web, browser, _):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        (grant,) = gb.sim.state.grants.values()
        (key,) = _grants(web)
        gb.sim.faults.burst_status, gb.sim.faults.retry_after = 503, 1
        gb.sim.faults.status_burst = 1000
        started = time.time()
        out = await _disconnect(browser)
        assert out.status_code == 303 and out.headers["location"] == "/?disconnected=pending"
        assert _grants(web) == [] and web.tokens.load(key) is None  # gone here at once
        assert grant.status == 1  # ... while the utility still thinks it is active
        (owed,) = pending_revocations_of(web.store, web.namespace)
        assert owed.authorization_id == grant.id and owed.attempts == 1 and owed.error
        assert due_revocations(web.store, web.namespace, now=started + 1) == []
        home = await browser.get(out.headers["location"])
        assert "will be told again shortly" in home.text
        assert (await browser.get("/account")).status_code == 303

        # still down: another owed attempt, a longer back-off, still no tokens
        assert await web.revocations.run_due(now=FAR) == 0
        (owed,) = pending_revocations_of(web.store, web.namespace)
        assert owed.attempts == 2 and grant.status == 1

        gb.sim.faults.status_burst = 0  # the utility is back
        queue_revocation(web.store, owed.authorization_uri, utility=web.namespace)  # due now
        web._wake.set()
        with anyio.fail_after(20):
            while pending_revocations_of(web.store, web.namespace):
                await anyio.sleep(0.05)
        assert grant.status == 0 and _grants(web) == []


@pytest.mark.anyio
async def test_no_answer_is_bounded_and_retried(gb: SimulatorHandle, tmp_path: Path) -> None:
    """R22 / R56: a utility that does not answer within ``revoke_timeout`` does not hold
    the customer's disconnect: it returns in about that time with the tokens deleted and
    the revocation owed ("no answer"); a later round confirms it."""
    options = {"job_poll_seconds": 60, "revoke_timeout": 0.5}
    async with running(gb, tmp_path, **options) as (web, browser, _):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        (grant,) = gb.sim.state.grants.values()
        page = (await browser.get("/account")).text
        gb.sim.faults.latency_ms = 5000
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        clock = time.monotonic()
        out = await browser.post("/disconnect", data={"account": "0", "csrf": csrf.group(1)})
        assert time.monotonic() - clock < 4.0
        assert out.headers["location"] == "/?disconnected=pending" and _grants(web) == []
        (owed,) = pending_revocations_of(web.store, web.namespace)
        assert owed.error == "no answer within 0.5 s"

        gb.sim.faults.latency_ms = 0
        assert await web.revocations.run_due(now=FAR) == 1
        assert pending_revocations_of(web.store, web.namespace) == []
        assert grant.status == 0


def test_owed_revocations_in_storage(store_url: str, tmp_path: Path, secret_key: str) -> None:
    """The storage side of R22: queueing deletes the tokens in the same transaction and
    names the grant by the token's authorizationURI; one claim per due attempt; the
    back-off doubles and honours a longer Retry-After; the same grant connected again
    cancels what is owed; a confirmation removes it."""
    key = "sim/Subscription/5"
    uri = "https://dc.example/espi/1_1/resource/Authorization/7"
    token = Token(kind="access", access_token=_secret("at"), authorization_uri=uri)
    with Store.open(store_url, data_dir=tmp_path) as store:
        tokens = DatabaseTokenStore(store)
        tokens.save(key, token)
        owed = queue_revocation(store, key, utility="sim", now=1000.0)
        assert tokens.load(key) is None
        assert owed.authorization_uri == uri and owed.authorization_id == "7"
        assert [o.id for o in due_revocations(store, "sim", now=1000.0)] == [owed.id]
        assert due_revocations(store, "other", now=1000.0) == []

        assert claim_revocation(store, owed.id, now=1000.0)
        assert not claim_revocation(store, owed.id, now=1000.0)  # claimed: not twice
        assert revocation_failed(store, owed.id, "ServerError", now=1000.0) == 30.0
        assert due_revocations(store, "sim", now=1029.0) == []
        assert claim_revocation(store, owed.id, now=1030.0)
        assert revocation_failed(store, owed.id, "ServerError", now=1030.0) == 60.0
        assert claim_revocation(store, owed.id, now=1090.0)
        delay = revocation_failed(store, owed.id, "ServerError", retry_after=500, now=1090.0)
        assert delay == 500.0
        (row,) = pending_revocations_of(store, "sim")
        assert row.attempts == 3 and row.error == "ServerError"

        assert not cancel_revocation(store, uri, utility="other")
        assert cancel_revocation(store, uri, utility="sim")  # the same grant again
        assert pending_revocations_of(store, "sim") == []
        tokens.save(key, token)
        again = queue_revocation(store, key, utility="sim", now=2000.0)
        assert again.authorization_uri == uri
        again = queue_revocation(store, uri, utility="sim", now=2001.0)  # one row, due again
        assert [o.id for o in due_revocations(store, "sim", now=2001.0)] == [again.id]
        revocation_done(store, again.id)
        assert pending_revocations_of(store, "sim") == []


def _secret(value: str) -> Any:
    from greenbutton._secret import Secret

    return Secret(value)
