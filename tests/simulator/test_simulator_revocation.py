"""Customer-side revocation and the Authorization-change notification (GBA PSH002, issue 14),
over real sockets and TLS: a signed-in customer sees and revokes their authorizations in the
portal; the third party gets a BatchList naming the Authorization URI; the grant's access
and refresh tokens stop working at once."""

from __future__ import annotations

import queue
import re
from pathlib import Path

import httpx2
import pytest

import greenbutton
from greenbutton.oauth import InMemoryTokenStore
from greenbutton.simulator import PATHS
from tests.simulator_harness import SimulatorHandle, notification_receiver, start_simulator


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def sign_in(gb: SimulatorHandle, browser: httpx2.Client, username: str) -> httpx2.Response:
    """Open the authorizations page signed out, sign in, land back on it."""
    r = browser.get(PATHS.MY_AUTHORIZATIONS)
    assert r.status_code == 303 and r.headers["location"] == PATHS.LOGIN
    page = browser.get(PATHS.LOGIN)
    password = next(
        c["password"] for c in gb.registration["customers"] if c["username"] == username
    )
    r = browser.post(
        PATHS.LOGIN,
        data={
            "csrf_token": hidden(page.text, "csrf_token"),
            "username": username,
            "password": password,
        },
    )
    assert r.status_code == 303 and r.headers["location"] == PATHS.MY_AUTHORIZATIONS
    return browser.get(PATHS.MY_AUTHORIZATIONS)


def test_customer_revokes_in_the_portal_and_the_third_party_is_notified(tmp_path: Path) -> None:
    with notification_receiver() as inbox, start_simulator(
        tmp_path / "sim", auto_approve="alice", customers=2, third_party_url=inbox.base_url
    ) as gb:  # fmt: skip
        tokens = InMemoryTokenStore()
        key, token = gb.authorize(tokens)
        auth_id = gb.authorization_id(tokens, key)
        resource = gb.registration["resource_url"]
        with gb.api_client() as api:
            bearer = {"Authorization": f"Bearer {token.access_token.reveal()}"}
            usage = token.resource_uri.replace("/Batch/Subscription/", "/Subscription/")  # type: ignore[union-attr]
            assert api.get(f"{usage}/UsagePoint", headers=bearer).status_code == 200

            with gb.portal_client() as browser:
                page = sign_in(gb, browser, "alice")
                assert page.status_code == 200
                assert auth_id in page.text and "active" in page.text
                assert page.headers["cache-control"] == "no-store"
                r = browser.post(
                    PATHS.MY_AUTHORIZATIONS,
                    data={
                        "csrf_token": hidden(page.text, "csrf_token"),
                        "authorization_id": auth_id,
                    },
                )
                assert r.status_code == 303
                page = browser.get(PATHS.MY_AUTHORIZATIONS)
                assert "The authorization was revoked." in page.text
                assert "revoked" in page.text and 'name="authorization_id"' not in page.text

            # PSH002: a BatchList naming the Authorization URI, as for new data
            path, headers, body = inbox.posts.get(timeout=10)
            assert path == PATHS.THIRD_PARTY_NOTIFY
            assert headers["Content-Type"] == "application/xml"
            batch = greenbutton.parse(body).batch_list
            assert batch is not None
            assert batch.resources == (f"{resource}/Authorization/{auth_id}",)

            # the grant's tokens stop working at once (401, RFC 6750 invalid_token)
            r = api.get(f"{usage}/UsagePoint", headers=bearer)
            assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
            refresh = api.post(
                gb.registration["token_url"],
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": token.refresh_token.reveal(),  # type: ignore[union-attr]
                },
                auth=(gb.registration["client_id"], gb.registration["client_secret"]),
            )
            assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"

        # the third party follows the notification with our SDK and sees status 0
        with gb.sdk_client(tokens) as client:
            doc = client.get(batch.resources[0])
            (auth,) = doc.authorizations
            assert auth.status == 0


def test_customers_reach_only_their_own_authorizations(tmp_path: Path) -> None:
    with notification_receiver() as inbox, start_simulator(
        tmp_path / "sim", auto_approve="alice", customers=2, third_party_url=inbox.base_url
    ) as gb:  # fmt: skip
        tokens = InMemoryTokenStore()
        key, _ = gb.authorize(tokens)
        auth_id = gb.authorization_id(tokens, key)
        bob = gb.registration["customers"][1]["username"]
        with gb.portal_client() as browser:
            page = sign_in(gb, browser, bob)
            assert auth_id not in page.text
            assert "You have not authorized any application." in page.text
            csrf = hidden(browser.get(PATHS.LOGIN).text, "csrf_token")  # bob's session token
            r = browser.post(
                PATHS.MY_AUTHORIZATIONS, data={"csrf_token": csrf, "authorization_id": auth_id}
            )
            assert r.status_code == 404
            forged = browser.post(
                PATHS.MY_AUTHORIZATIONS, data={"csrf_token": "x" * 32, "authorization_id": auth_id}
            )
            assert forged.status_code == 403
        with gb.portal_client() as stranger:  # not signed in
            r = stranger.post(PATHS.MY_AUTHORIZATIONS, data={"authorization_id": auth_id})
            assert r.status_code == 403
        assert gb.sim.state.grants[auth_id].status == 1
        assert gb.sim.notifier.wait_idle()
        assert not [n for n in gb.sim.notifier.sent if "/Authorization/" in n.uris[0]]
        with pytest.raises(queue.Empty):  # nothing was POSTed at all
            inbox.posts.get(timeout=0.5)
