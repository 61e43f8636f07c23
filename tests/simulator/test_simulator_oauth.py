"""The simulator's authorization server, in-process: the code flow with PKCE through the real
login and consent forms, the GBA status table (SECURITY R68), PKCE downgrade (R04), exact
redirect URIs (R05), single-use codes (R11), Basic client auth (R14, b4), refresh rotation
(R20, R21) and client credentials (ESPI_NOTES 2.2)."""

# ruff: noqa: S105, S106  (fixed test credentials and token-type literals)

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import httpx2
import pytest
from starlette.applications import Starlette

from greenbutton.simulator import PATHS, Faults, Simulator, SimulatorConfig
from greenbutton.simulator._oauth import token_calls, token_route
from greenbutton.simulator._portal import SESSION_COOKIE, portal_middleware, portal_routes
from greenbutton.simulator._state import (
    CLIENT_SCOPE,
    DEFAULT_SCOPE,
    Customer,
    Registration,
    SimulatorState,
    UsagePointSpec,
)
from tests.simulator_harness import start_simulator

pytestmark = pytest.mark.anyio

CLIENT_ID = "tp client:7"
# R14: a secret with ":", "+", "%", "/", space and non-ASCII must survive Basic encoding.
CLIENT_SECRET = "s3:cr+et%2F/ é"
REDIRECT = "https://tp.example/OAuthCallback"
PORTAL = "https://portal.test"
API = "https://api.test"


def make_sim(tmp_path: Path, **config: Any) -> Simulator:
    registration = Registration(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT,
        notification_uri="https://tp.example/espi/1_1/Notification",
        bulk_id="424242",
    )
    customers = [
        Customer(
            username="alice",
            password="wonder land",
            retail_customer_id="1001",
            subscription_id="555000111",
            name="Alice Example",
            usage_points=(
                UsagePointSpec(id="900000001", profile="electric_15min"),
                UsagePointSpec(id="900000002", profile="gas_daily"),
            ),
        ),
        Customer(
            username="bob",
            password="builder",
            retail_customer_id="1002",
            subscription_id="555000222",
        ),
    ]
    dummy = tmp_path / "dummy.pem"  # no TLS in-process
    return Simulator(
        config=SimulatorConfig(state_dir=tmp_path, **config),
        state=SimulatorState(registration, customers),
        faults=Faults(),
        ca_cert=dummy,
        server_cert=dummy,
        server_key=dummy,
        client_cert=dummy,
        client_key=dummy,
        portal_url=PORTAL,
        api_url=API,
    )


@dataclass
class Env:
    sim: Simulator
    portal: httpx2.AsyncClient
    api: httpx2.AsyncClient


async def make_env(sim: Simulator) -> AsyncIterator[Env]:
    portal_app = Starlette(routes=portal_routes(sim), middleware=portal_middleware(sim))
    api_app = Starlette(routes=[token_route(sim)])
    async with (
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=portal_app), base_url=PORTAL
        ) as portal,
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=api_app), base_url=API) as api,
    ):
        yield Env(sim, portal, api)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async for e in make_env(make_sim(tmp_path)):
        yield e


@pytest.fixture
async def auto_env(tmp_path: Path) -> AsyncIterator[Env]:
    async for e in make_env(make_sim(tmp_path, auto_approve="alice")):
        yield e


# -- helpers -------------------------------------------------------------------------------


def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
    """RFC 6749 §2.3.1: form-urlencode each part, then base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": DEFAULT_SCOPE,
        "state": "st-" + secrets.token_urlsafe(16),
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def login_and_consent(
    env: Env, params: dict[str, str], decision: str = "approve"
) -> httpx2.Response:
    """Drive the browser part: authorize → login form → consent form → decision."""
    r = await env.portal.get(PATHS.AUTHORIZE, params=params)
    assert r.status_code == 303 and r.headers["location"] == PATHS.LOGIN
    r = await env.portal.get(PATHS.LOGIN)
    assert r.status_code == 200
    r = await env.portal.post(
        PATHS.LOGIN,
        data={
            "csrf_token": hidden(r.text, "csrf_token"),
            "username": "alice",
            "password": "wonder land",
        },
    )
    assert r.status_code == 303
    r = await env.portal.get(r.headers["location"])
    assert r.status_code == 200, r.text
    assert "900000001" in r.text and "900000002" in r.text and "Alice Example" in r.text
    return await env.portal.post(
        PATHS.AUTHORIZE,
        data={
            "csrf_token": hidden(r.text, "csrf_token"),
            "request_id": hidden(r.text, "request_id"),
            "decision": decision,
        },
    )


async def get_code(env: Env, **overrides: str | None) -> tuple[str, dict[str, str]]:
    """A code through auto-approve-free consent (``env``) or auto-approve (``auto_env``)."""
    params = authorize_params(**overrides)
    if env.sim.config.auto_approve:
        r = await env.portal.get(PATHS.AUTHORIZE, params=params)
        assert r.status_code == 302
    else:
        r = await login_and_consent(env, params)
        assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == [params["state"]]
    return query["code"][0], params


async def token(
    env: Env, data: dict[str, str], *, auth: str | None = None, **kwargs: Any
) -> httpx2.Response:
    headers = {"Authorization": auth if auth is not None else basic()}
    if auth == "":
        del headers["Authorization"]
    return await env.api.post(PATHS.TOKEN, data=data, headers=headers, **kwargs)


async def exchange(env: Env, code: str, verifier: str | None = None) -> httpx2.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        data["code_verifier"] = verifier
    return await token(env, data)


def assert_error(r: httpx2.Response, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"


# -- the whole flow ----------------------------------------------------------------------------


async def test_code_flow_with_login_consent_and_pkce(env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = await get_code(env, code_challenge=challenge, code_challenge_method="S256")
    r = await exchange(env, code, verifier)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == env.sim.config.access_token_ttl
    assert body["scope"] == DEFAULT_SCOPE
    assert len(body["access_token"]) >= 22 and len(body["refresh_token"]) >= 22  # >= 128 bits
    (grant,) = env.sim.state.grants.values()
    assert grant.customer == "alice" and grant.subscription_id == "555000111"
    assert grant.refresh_token == body["refresh_token"]
    assert body["resourceURI"] == f"{API}{PATHS.RESOURCE}/Batch/Subscription/555000111"
    assert body["authorizationURI"] == f"{API}{PATHS.RESOURCE}/Authorization/{grant.id}"
    live = env.sim.state.lookup_token(body["access_token"])
    assert live is not None and live.kind == "access" and live.authorization_id == grant.id


async def test_auto_approve_skips_login_and_consent(auto_env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = await get_code(auto_env, code_challenge=challenge, code_challenge_method="S256")
    r = await exchange(auto_env, code, verifier)
    assert r.status_code == 200
    (grant,) = auto_env.sim.state.grants.values()
    assert grant.customer == "alice"


async def test_code_flow_without_pkce(auto_env: Env) -> None:
    code, _ = await get_code(auto_env)
    assert (await exchange(auto_env, code)).status_code == 200


async def test_deny_redirects_with_access_denied(env: Env) -> None:
    params = authorize_params()
    r = await login_and_consent(env, params, decision="deny")
    assert r.status_code == 303
    query = query_of(r.headers["location"])
    assert r.headers["location"].startswith(REDIRECT + "?")
    assert query["error"] == ["access_denied"] and query["state"] == [params["state"]]
    assert "code" not in query and not env.sim.state.grants


async def test_signed_in_customer_goes_straight_to_consent(env: Env) -> None:
    await get_code(env)
    r = await env.portal.get(PATHS.AUTHORIZE, params=authorize_params())
    assert r.status_code == 200 and 'value="approve"' in r.text


# -- portal: cookies, CSRF, login ---------------------------------------------------------------


async def test_session_cookie_flags_and_page_headers(env: Env) -> None:
    r = await env.portal.get(PATHS.LOGIN)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "secure"} <= flags
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert '<form method="post"' in r.text and 'name="csrf_token"' in r.text


async def test_session_secret_differs_per_start(tmp_path: Path) -> None:
    sim = make_sim(tmp_path)
    (a,), (b,) = portal_middleware(sim), portal_middleware(sim)
    assert a.kwargs["secret_key"] != b.kwargs["secret_key"]


async def test_forged_consent_post_is_403(env: Env) -> None:
    params = authorize_params()
    await env.portal.get(PATHS.AUTHORIZE, params=params)
    r = await env.portal.get(PATHS.LOGIN)
    csrf = hidden(r.text, "csrf_token")
    await env.portal.post(
        PATHS.LOGIN, data={"csrf_token": csrf, "username": "alice", "password": "wonder land"}
    )
    r = await env.portal.get(PATHS.AUTHORIZE, params=params)
    request_id = hidden(r.text, "request_id")
    for forged in ({}, {"csrf_token": "x" * 32}, {"csrf_token": csrf}):  # pre-login token is dead
        r = await env.portal.post(
            PATHS.AUTHORIZE, data={**forged, "request_id": request_id, "decision": "approve"}
        )
        assert r.status_code == 403
        assert "location" not in r.headers
    # A cross-site POST without the victim's cookie is forbidden too.
    r = await httpx2.AsyncClient(transport=env.portal._transport, base_url=PORTAL).post(
        PATHS.AUTHORIZE, data={"csrf_token": csrf, "request_id": request_id, "decision": "approve"}
    )
    assert r.status_code == 403
    assert not env.sim.state.codes and not env.sim.state.grants


async def test_consent_answered_once(env: Env) -> None:
    params = authorize_params()
    await env.portal.get(PATHS.AUTHORIZE, params=params)
    r = await env.portal.get(PATHS.LOGIN)
    await env.portal.post(
        PATHS.LOGIN,
        data={
            "csrf_token": hidden(r.text, "csrf_token"),
            "username": "alice",
            "password": "wonder land",
        },
    )
    page = (await env.portal.get(PATHS.AUTHORIZE, params=params)).text
    form = {
        "csrf_token": hidden(page, "csrf_token"),
        "request_id": hidden(page, "request_id"),
        "decision": "approve",
    }
    assert (await env.portal.post(PATHS.AUTHORIZE, data=form)).status_code == 303
    assert (await env.portal.post(PATHS.AUTHORIZE, data=form)).status_code == 400
    assert len(env.sim.state.codes) == 1


async def test_login_rejects_bad_password_and_missing_csrf(env: Env) -> None:
    r = await env.portal.get(PATHS.LOGIN)
    csrf = hidden(r.text, "csrf_token")
    r = await env.portal.post(
        PATHS.LOGIN, data={"csrf_token": csrf, "username": "alice", "password": "nope"}
    )
    assert r.status_code == 401 and "wrong password" in r.text
    r = await env.portal.post(PATHS.LOGIN, data={"username": "alice", "password": "wonder land"})
    assert r.status_code == 403
    r = await env.portal.post(
        PATHS.LOGIN, data={"csrf_token": csrf, "username": "mallory", "password": "x"}
    )
    assert r.status_code == 401


async def test_login_page_escapes_input(env: Env) -> None:
    r = await env.portal.get(PATHS.LOGIN)
    r = await env.portal.post(
        PATHS.LOGIN,
        data={
            "csrf_token": hidden(r.text, "csrf_token"),
            "username": '"><script>alert(1)</script>',
            "password": "x",
        },
    )
    assert r.status_code == 401 and "<script>alert(1)" not in r.text


# -- authorize endpoint: the GBA table (R68), R05, PKCE policy -----------------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": None}, "invalid_request"),  # GBA: missing response_type → 302
        ({"response_type": "token"}, "unsupported_response_type"),  # R13
        ({"scope": "FB=1_2_3;IntervalDuration=1"}, "invalid_scope"),
        ({"scope": DEFAULT_SCOPE + " " + DEFAULT_SCOPE}, "invalid_scope"),
        ({"code_challenge": pkce()[1], "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": pkce()[1]}, "invalid_request"),  # method omitted = plain
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
    ],
)
async def test_authorize_errors_redirect(
    auto_env: Env, overrides: dict[str, str | None], error: str
) -> None:
    params = authorize_params(**overrides)
    r = await auto_env.portal.get(PATHS.AUTHORIZE, params=params)
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["error"] == [error] and query["state"] == [params["state"]]
    assert "code" not in query and not auto_env.sim.state.codes


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT + "/",  # trailing slash
        REDIRECT.replace("OAuthCallback", "oauthcallback"),  # case
        REDIRECT + "?x=1",  # extra query parameter
        REDIRECT.replace("tp.example", "tp.example:8443"),  # other port
        "https://tp.example@evil.example/OAuthCallback",  # userinfo
        "http://tp.example/OAuthCallback",  # scheme
        "https://evil.example/OAuthCallback",
        "",
        None,  # missing: no default, the URI is required
    ],
)
async def test_authorize_bad_redirect_uri_is_400_without_redirect(
    auto_env: Env, redirect_uri: str | None
) -> None:
    r = await auto_env.portal.get(
        PATHS.AUTHORIZE, params=authorize_params(redirect_uri=redirect_uri)
    )
    assert r.status_code == 400
    assert "location" not in r.headers
    assert not auto_env.sim.state.codes


async def test_authorize_unknown_client_is_401_without_redirect(auto_env: Env) -> None:
    r = await auto_env.portal.get(PATHS.AUTHORIZE, params=authorize_params(client_id="other"))
    assert r.status_code == 401 and "location" not in r.headers
    r = await auto_env.portal.get(PATHS.AUTHORIZE, params=authorize_params(client_id=None))
    assert r.status_code == 400 and "location" not in r.headers


async def test_authorize_repeated_parameter_is_400(auto_env: Env) -> None:
    query = urlencode(authorize_params()) + "&state=again"
    r = await auto_env.portal.get(f"{PATHS.AUTHORIZE}?{query}")
    assert r.status_code == 400 and "location" not in r.headers


async def test_authorize_accepts_scope_with_trailing_semicolon(auto_env: Env) -> None:
    code, _ = await get_code(auto_env, scope=DEFAULT_SCOPE + ";")
    r = await exchange(auto_env, code)
    assert r.json()["scope"] == DEFAULT_SCOPE + ";"  # the granted scope, byte for byte (R17)


# -- token endpoint: client authentication (R14, b4) ---------------------------------------------


async def test_token_requires_basic(env: Env) -> None:
    data = {"grant_type": "client_credentials"}
    for auth in ("", "Bearer abc", "Basic", "Basic !!!", basic(secret="wrong"), basic("other")):
        r = await token(env, data, auth=auth)
        assert_error(r, 401, "invalid_client")
        assert r.headers["www-authenticate"].startswith("Basic ")
    # Body credentials alone are not accepted either: Basic is the only method.
    r = await token(env, {**data, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, auth="")
    assert_error(r, 401, "invalid_client")


async def test_basic_plus_body_client_id_is_400(env: Env) -> None:
    r = await token(env, {"grant_type": "client_credentials", "client_id": CLIENT_ID})
    assert_error(r, 400, "invalid_request")


async def test_token_get_is_405(env: Env) -> None:
    r = await env.api.get(PATHS.TOKEN, headers={"Authorization": basic()})
    assert r.status_code == 405 and r.headers["allow"] == "POST"


async def test_token_request_shape_errors(env: Env) -> None:
    assert_error(await token(env, {"grant_type": "password"}), 400, "unsupported_grant_type")
    assert_error(await token(env, {"grant_type": "implicit"}), 400, "unsupported_grant_type")
    assert_error(await token(env, {}), 400, "invalid_request")
    r = await env.api.post(
        PATHS.TOKEN + "?grant_type=client_credentials",
        content=b"grant_type=client_credentials",
        headers={"Authorization": basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(r, 400, "invalid_request")  # R15: nothing in the query string
    r = await env.api.post(
        PATHS.TOKEN,
        json={"grant_type": "client_credentials"},
        headers={"Authorization": basic()},
    )
    assert_error(r, 400, "invalid_request")
    r = await env.api.post(
        PATHS.TOKEN,
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"Authorization": basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(r, 400, "invalid_request")
    r = await env.api.post(
        PATHS.TOKEN,
        content=b"a=" + b"x" * 70_000,
        headers={"Authorization": basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


async def test_token_calls_are_recorded(env: Env) -> None:
    await token(env, {"grant_type": "client_credentials"})
    (call,) = token_calls(env.sim)
    assert call.method == "POST" and call.query == "" and call.status == 200
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.grant_type == "client_credentials"


async def test_parameters_in_the_query_string_are_accepted_like_pge_and_recorded(
    env: Env,
) -> None:
    """Issue 14: PG&E answers a token POST whose parameters are in the query string (Open
    Energy View's client-credentials and refresh calls, ESPI_NOTES 2.1); the simulator does
    too and records it, so a test can tell such a client from one following R15."""
    r = await env.api.post(
        PATHS.TOKEN + "?grant_type=client_credentials", headers={"Authorization": basic()}
    )
    assert r.status_code == 200 and r.json()["client_access_token"]
    (call,) = token_calls(env.sim)
    assert call.from_query and call.grant_type == "client_credentials" and call.status == 200
    await token(env, {"grant_type": "client_credentials"})  # a form body: not flagged
    assert [c.from_query for c in token_calls(env.sim)] == [True, False]


async def test_strict_token_requests_refuse_the_query_string(tmp_path: Path) -> None:
    async for strict in make_env(make_sim(tmp_path, strict_token_requests=True)):
        r = await strict.api.post(
            PATHS.TOKEN + "?grant_type=client_credentials", headers={"Authorization": basic()}
        )
        assert_error(r, 400, "invalid_request")
        (call,) = token_calls(strict.sim)
        assert not call.from_query and call.status == 400


# -- authorization_code grant: R04, R05, R11 -----------------------------------------------------


async def test_code_is_single_use_and_reuse_revokes(auto_env: Env) -> None:
    code, _ = await get_code(auto_env)
    first = (await exchange(auto_env, code)).json()
    assert auto_env.sim.state.lookup_token(first["access_token"]) is not None
    assert_error(await exchange(auto_env, code), 400, "invalid_grant")
    assert auto_env.sim.state.lookup_token(first["access_token"]) is None
    (grant,) = auto_env.sim.state.grants.values()
    assert grant.status == 0
    r = await token(
        auto_env, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert_error(r, 400, "invalid_grant")


async def test_expired_code(auto_env: Env) -> None:
    code, _ = await get_code(auto_env)
    issued = auto_env.sim.state.codes[code]
    issued.expires_at -= auto_env.sim.config.code_ttl + 1  # as if issued code_ttl+1 s ago
    assert_error(await exchange(auto_env, code), 400, "invalid_grant")


async def test_unknown_code(auto_env: Env) -> None:
    assert_error(await exchange(auto_env, "nope"), 400, "invalid_grant")
    r = await token(auto_env, {"grant_type": "authorization_code", "redirect_uri": REDIRECT})
    assert_error(r, 400, "invalid_request")


@pytest.mark.parametrize(
    "redirect_uri", [REDIRECT + "/", REDIRECT.upper(), REDIRECT + "?a=1", "", None]
)
async def test_token_redirect_uri_must_match(auto_env: Env, redirect_uri: str | None) -> None:
    code, _ = await get_code(auto_env)
    data = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    r = await token(auto_env, data)
    assert r.status_code == 400 and r.json()["error"] in {"invalid_request", "invalid_grant"}
    assert (await exchange(auto_env, code)).status_code == 200  # the code was not consumed


async def test_pkce_downgrade_verifier_without_challenge(auto_env: Env) -> None:
    code, _ = await get_code(auto_env)
    assert_error(await exchange(auto_env, code, pkce()[0]), 400, "invalid_grant")


async def test_pkce_downgrade_challenge_without_verifier(auto_env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = await get_code(auto_env, code_challenge=challenge, code_challenge_method="S256")
    assert_error(await exchange(auto_env, code), 400, "invalid_grant")
    assert_error(await exchange(auto_env, code, pkce()[0]), 400, "invalid_grant")  # wrong one
    assert_error(await exchange(auto_env, code, "short"), 400, "invalid_grant")
    assert (await exchange(auto_env, code, verifier)).status_code == 200


# -- refresh_token grant: R20, R21, OAD011, OAD013 ------------------------------------------------


async def refresh(env: Env, refresh_token: str, **extra: str) -> httpx2.Response:
    return await token(
        env, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    )


async def test_refresh_rotates_and_kills_old_access_token(auto_env: Env) -> None:
    state = auto_env.sim.state
    code, _ = await get_code(auto_env)
    first = (await exchange(auto_env, code)).json()
    r = await refresh(auto_env, first["refresh_token"])
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == DEFAULT_SCOPE
    assert second["resourceURI"] == first["resourceURI"]
    assert second["authorizationURI"] == first["authorizationURI"]
    assert state.lookup_token(first["access_token"]) is None  # GBA OAD013
    assert state.lookup_token(second["access_token"]) is not None
    third = (await refresh(auto_env, second["refresh_token"])).json()
    assert state.lookup_token(second["access_token"]) is None
    assert state.lookup_token(third["access_token"]) is not None


async def test_old_refresh_token_reuse_revokes_the_grant(auto_env: Env) -> None:
    state = auto_env.sim.state
    code, _ = await get_code(auto_env)
    first = (await exchange(auto_env, code)).json()
    second = (await refresh(auto_env, first["refresh_token"])).json()
    assert_error(await refresh(auto_env, first["refresh_token"]), 400, "invalid_grant")
    (grant,) = state.grants.values()
    assert grant.status == 0
    assert state.lookup_token(second["access_token"]) is None
    assert_error(await refresh(auto_env, second["refresh_token"]), 400, "invalid_grant")


async def test_refresh_with_other_scope_is_400(auto_env: Env) -> None:
    code, _ = await get_code(auto_env)
    first = (await exchange(auto_env, code)).json()
    r = await refresh(auto_env, first["refresh_token"], scope="FB=4_5_15")
    assert_error(r, 400, "invalid_scope")
    assert_error(await refresh(auto_env, "unknown"), 400, "invalid_grant")


async def test_refresh_of_revoked_authorization(auto_env: Env) -> None:
    code, _ = await get_code(auto_env)
    first = (await exchange(auto_env, code)).json()
    auto_env.sim.faults.revoke_all = True
    assert_error(await refresh(auto_env, first["refresh_token"]), 400, "invalid_grant")
    auto_env.sim.faults.revoke_all = False
    (grant,) = auto_env.sim.state.grants.values()
    auto_env.sim.state.revoke_authorization(grant.id)
    assert_error(await refresh(auto_env, first["refresh_token"]), 400, "invalid_grant")


async def test_expire_tokens_fault(auto_env: Env) -> None:
    auto_env.sim.faults.expire_tokens = True
    code, _ = await get_code(auto_env)
    body = (await exchange(auto_env, code)).json()
    assert body["expires_in"] == auto_env.sim.config.access_token_ttl  # the lie a client meets
    assert auto_env.sim.state.lookup_token(body["access_token"]) is None
    auto_env.sim.faults.expire_tokens = False
    again = (await refresh(auto_env, body["refresh_token"])).json()
    assert auto_env.sim.state.lookup_token(again["access_token"]) is not None


# -- client_credentials grant ---------------------------------------------------------------------


@pytest.mark.parametrize("scope", [None, CLIENT_SCOPE, DEFAULT_SCOPE])
async def test_client_credentials_pge_shape(env: Env, scope: str | None) -> None:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    r = await token(env, data)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    body = r.json()
    assert "access_token" not in body and "refresh_token" not in body
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == env.sim.config.access_token_ttl
    assert body["scope"] == CLIENT_SCOPE
    assert body["resourceURI"] == f"{API}{PATHS.RESOURCE}/Batch/Bulk/424242"
    assert body["authorizationURI"] == f"{API}{PATHS.RESOURCE}/Authorization"
    live = env.sim.state.lookup_token(body["client_access_token"])
    assert live is not None and live.kind == "client" and live.authorization_id is None
    assert not env.sim.state.grants


async def test_client_credentials_bad_scope(env: Env) -> None:
    r = await token(env, {"grant_type": "client_credentials", "scope": "FB=1_3"})
    assert_error(r, 400, "invalid_scope")


async def test_customer_code_cannot_be_used_by_another_registration(tmp_path: Path) -> None:
    """A code is bound to its client: a simulator whose registration changed refuses it."""
    sim = make_sim(tmp_path, auto_approve="alice")
    async for env in make_env(sim):
        code, _ = await get_code(env)
        sim.state.registration = replace(sim.state.registration, client_id="someone else")
        r = await token(
            env,
            {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
            auth=basic("someone else"),
        )
        assert_error(r, 400, "invalid_grant")


# -- over real sockets and real TLS ----------------------------------------------------------------


def _portal_app(sim: Simulator) -> Starlette:
    return Starlette(routes=portal_routes(sim), middleware=portal_middleware(sim))


def _api_app(sim: Simulator) -> Starlette:
    return Starlette(routes=[token_route(sim)])


def test_full_flow_over_tls(tmp_path: Path) -> None:
    """Browser on the portal (no client certificate): login, consent; third party on the API
    (mutual TLS, Basic): code exchange with PKCE, refresh, client credentials."""
    with start_simulator(
        tmp_path / "sim", portal_app=_portal_app, api_app=_api_app, customers=1
    ) as gb:
        reg = gb.registration
        customer = reg["customers"][0]
        verifier, challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": reg["client_id"],
            "redirect_uri": reg["redirect_uri"],
            "scope": reg["scope"],
            "state": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        with gb.portal_client() as browser:
            r = browser.get(reg["authorize_url"], params=params)
            assert r.status_code == 303 and r.headers["location"] == PATHS.LOGIN
            r = browser.get(PATHS.LOGIN)
            r = browser.post(
                PATHS.LOGIN,
                data={
                    "csrf_token": hidden(r.text, "csrf_token"),
                    "username": customer["username"],
                    "password": customer["password"],
                },
            )
            r = browser.get(r.headers["location"])
            assert r.status_code == 200
            r = browser.post(
                PATHS.AUTHORIZE,
                data={
                    "csrf_token": hidden(r.text, "csrf_token"),
                    "request_id": hidden(r.text, "request_id"),
                    "decision": "approve",
                },
            )
        assert r.status_code == 303
        callback = query_of(r.headers["location"])
        assert callback["state"] == [params["state"]]
        auth = basic(reg["client_id"], reg["client_secret"])
        with gb.api_client() as api:
            r = api.post(
                reg["token_url"],
                data={
                    "grant_type": "authorization_code",
                    "code": callback["code"][0],
                    "redirect_uri": reg["redirect_uri"],
                    "code_verifier": verifier,
                },
                headers={"Authorization": auth},
            )
            assert r.status_code == 200, r.text
            first = r.json()
            assert first["resourceURI"].startswith(reg["resource_url"] + "/Batch/Subscription/")
            r = api.post(
                reg["token_url"],
                data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                headers={"Authorization": auth},
            )
            assert r.status_code == 200
            assert gb.sim.state.lookup_token(first["access_token"]) is None
            r = api.post(
                reg["token_url"],
                data={"grant_type": "client_credentials"},
                headers={"Authorization": auth},
            )
            assert r.status_code == 200 and "client_access_token" in r.json()


def test_templates_ship_with_the_package() -> None:
    """The pages are package data (hatchling includes them from src/greenbutton)."""
    templates = importlib.resources.files("greenbutton.simulator") / "templates"
    for name in ("base.html", "login.html", "consent.html", "message.html"):
        assert (templates / name).is_file()


async def test_auto_approve_of_unknown_customer_is_a_server_error(tmp_path: Path) -> None:
    async for env in make_env(make_sim(tmp_path, auto_approve="nobody")):
        r = await env.portal.get(PATHS.AUTHORIZE, params=authorize_params())
        assert r.status_code == 500 and "location" not in r.headers


async def test_consent_post_needs_a_signed_in_customer_and_a_decision(env: Env) -> None:
    r = await env.portal.get(PATHS.LOGIN)
    csrf = hidden(r.text, "csrf_token")
    r = await env.portal.post(PATHS.AUTHORIZE, data={"csrf_token": csrf, "decision": "approve"})
    assert r.status_code == 403
    params = authorize_params()
    await env.portal.get(PATHS.AUTHORIZE, params=params)
    await env.portal.post(
        PATHS.LOGIN, data={"csrf_token": csrf, "username": "bob", "password": "builder"}
    )
    page = (await env.portal.get(PATHS.AUTHORIZE, params=params)).text
    assert "No usage points" in page
    form = {"csrf_token": hidden(page, "csrf_token"), "request_id": hidden(page, "request_id")}
    r = await env.portal.post(PATHS.AUTHORIZE, data={**form, "decision": "maybe"})
    assert r.status_code == 400 and not env.sim.state.codes
