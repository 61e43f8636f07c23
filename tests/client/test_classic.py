"""The classic interface of PG&E's original SDK (DESIGN 5), end to end over mutual TLS."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from greenbutton.classic import Api, ClientCredentials, OAuth2
from tests.simulator_harness import start_simulator

TOKEN_KEYS = {
    "status",
    "access_token",
    "refresh_token",
    "token_type",
    "expires_in",
    "scope",
    "resourceURI",
    "authorizationURI",
}


def test_classic_end_to_end(tmp_path: Path) -> None:
    with start_simulator(tmp_path / "sim", auto_approve="alice") as gb:
        reg = gb.registration
        creds = {"client_key": reg["client_id"], "client_secret_key": reg["client_secret"]}
        certs = {"crt": reg["client_cert"], "key": reg["client_key"], "ca": reg["ca_cert"]}
        query = urlencode(
            {
                "response_type": "code",
                "client_id": reg["client_id"],
                "redirect_uri": reg["redirect_uri"],
                "scope": reg["scope"],
                "state": secrets.token_urlsafe(16),
            }
        )
        with gb.portal_client() as browser:
            r = browser.get(f"{reg['authorize_url']}?{query}")
        code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
        oauth = OAuth2(creds, certs)
        first = oauth.get_access_token(reg["token_url"], code, reg["redirect_uri"])
        assert set(first) == TOKEN_KEYS and first["status"] == 200
        again = oauth.get_refresh_token(reg["token_url"])
        assert again["status"] == 200 and again["access_token"] != first["access_token"]
        client = ClientCredentials(creds, certs).get_client_access_token(reg["token_url"])
        assert set(client) == {"status", "client_access_token", "token_type", "expires_in", "scope"}
        sub = first["resourceURI"].rsplit("/", 1)[1]
        api = Api(certs)
        batch = reg["resource_url"] + "/Batch/"
        points = gb.sim.state.by_subscription[sub].usage_points
        now = int(time.time())
        sync = api.sync_request(
            batch, sub, points[0].id, str(now - 3 * 86400), now, again["access_token"]
        )
        assert sync["status"] == 200 and sync["data"].startswith("<?xml")
        later = api.async_request(batch, sub, now - 86400, now, again["access_token"])
        assert later["status"] == 202 and set(later) == {"status", "data"}
        # failures are dicts, never exceptions
        bad = api.sync_request(batch, sub, points[0].id, "yesterday", now, "x")
        assert bad["status"] == 0 and "epoch" in bad["error"]
        denied = api.async_request(batch, sub, now - 86400, now, "not-a-token")
        assert denied["status"] == 401 and denied["error"]
        reused = oauth.get_access_token(reg["token_url"], code, reg["redirect_uri"])
        assert reused["status"] == 400 and "invalid_grant" in reused["error"]
        no_cert = Api({"crt": "/nonexistent.crt", "key": "/nonexistent.key"})
        gone = no_cert.async_request(batch, sub, now - 86400, now, "x")
        assert gone["status"] == 0 and gone["error"]
        # One modern client under each object, kept between calls (its pool, limiter and
        # breaker); closed here so no connection outlives the simulator.
        assert oauth.client is not None and api.client is not None and no_cert.client is None
        oauth.close()
        api.close()
        assert oauth.client is None
