"""The sans-IO OAuth core (greenbutton.oauth): the authorization URL and callback (SECURITY
R01-R08, b3), token requests (R14, R15, R17), token responses (R16-R20, b4), the ESPI scope
grammar (ESPI_NOTES 2.3), the in-memory token store; then code exchange, refresh and client
credentials against the real simulator over mutual TLS."""

# ruff: noqa: S105, S106  (fixed test credentials and token-type literals)

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import httpx2
import pytest
from hypothesis import given, settings, strategies as st

from greenbutton import oauth
from greenbutton._errors import (
    CallbackError,
    ConfigurationError,
    InvalidClientError,
    InvalidGrantError,
    OAuthError,
    ServerError,
)
from greenbutton._secret import Secret
from greenbutton.models._profile import Credentials, UtilityProfile
from greenbutton.oauth import (
    AuthorizationRequest,
    InMemoryTokenStore,
    Token,
    TokenStore,
    authorization_request,
    basic_authorization,
    client_credentials_request,
    code_challenge_s256,
    code_request,
    format_scope,
    parse_callback,
    parse_retry_after,
    parse_revocation_response,
    parse_scope,
    parse_token_response,
    refresh_request,
    revoke_request,
)
from greenbutton.simulator._oauth import _parse_basic, token_calls
from greenbutton.simulator._state import CLIENT_SCOPE
from tests.simulator_harness import start_simulator

SCOPE = "FB=4_5_15;IntervalDuration=3600;BlockDuration=monthly;HistoryLength=13"
PGE_SCOPE = (
    "FB=1_3_4_5_8_13_14_15_18_19_31_32_35_37_38_39_40;IntervalDuration=900_3600;"
    "BlockDuration=Daily;HistoryLength=63072000;SubscriptionFrequency=Daily;AccountCollection=1;"
)
TOKEN_URL = "https://dc.example/datacustodian/oauth/v2/token"
REDIRECT = "https://tp.example/OAuthCallback"
PROFILE = UtilityProfile(
    name="test",
    authorize_url="https://dc.example/myAuthorization?clientId=42",
    token_url=TOKEN_URL,
    resource_url="https://dc.example/espi/1_1/resource",
    authorize_params=(("verified", "true"), ("login", "guest")),
    scope=SCOPE,
)
CLIENT_ID = "tp client:7"
# R14: ":", "+", "%", "/", space and non-ASCII must survive Basic encoding.
CLIENT_SECRET = "s3:cr+et%2F/ é"
# base64("tp+client%3A7:s3%3Acr%2Bet%252F%2F+%C3%A9"): each part form-urlencoded first.
BASIC = "Basic dHArY2xpZW50JTNBNzpzMyUzQWNyJTJCZXQlMjUyRiUyRislQzMlQTk="
CREDS = Credentials(
    client_id=CLIENT_ID,
    client_secret=Secret(CLIENT_SECRET),
    client_cert=Path("client.pem"),
    client_key=Path("client.key"),
)
VERIFIER = "v" * 43
NOW = 1_700_000_000.0
ESPI = "https://dc.example/espi/1_1/resource"


def counter_rng() -> Any:
    """A deterministic stand-in for secrets.token_urlsafe: distinct 43-char values."""
    n = iter(range(1000))

    def rng(nbytes: int) -> str:
        assert nbytes == 32
        return f"{next(n):02d}".ljust(43, "x")

    return rng


# -- authorization request (R01, R03, R17) ----------------------------------------------------


def test_authorization_url_exact() -> None:
    req = authorization_request(PROFILE, CLIENT_ID, REDIRECT, rng=counter_rng(), now=NOW)
    state, verifier = "00".ljust(43, "x"), "01".ljust(43, "x")
    challenge = code_challenge_s256(verifier)
    assert req.state == state and req.code_verifier == verifier
    assert req.code_challenge == challenge and req.created_at == NOW
    assert req.redirect_uri == REDIRECT and req.scope == SCOPE and req.profile_name == "test"
    assert req.url == (
        "https://dc.example/myAuthorization?clientId=42&response_type=code"
        "&client_id=tp+client%3A7&redirect_uri=https%3A%2F%2Ftp.example%2FOAuthCallback"
        "&scope=FB%3D4_5_15%3BIntervalDuration%3D3600%3BBlockDuration%3Dmonthly"
        "%3BHistoryLength%3D13"
        f"&state={state}&code_challenge={challenge}&code_challenge_method=S256"
        "&verified=true&login=guest"
    )
    # R03: the verifier and "plain" never appear in the URL; the repr shows no flow secrets.
    assert verifier not in req.url and "plain" not in req.url
    assert state not in repr(req) and verifier not in repr(req)


def test_authorization_url_parameters_in_order() -> None:
    req = authorization_request(PROFILE, CLIENT_ID, REDIRECT)
    pairs = parse_qsl(urlsplit(req.url).query, strict_parsing=True)
    assert [name for name, _ in pairs] == [
        "clientId",
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "verified",
        "login",
    ]
    values = dict(pairs)
    assert values["scope"] == SCOPE and values["client_id"] == CLIENT_ID
    assert values["code_challenge"] == code_challenge_s256(req.code_verifier)


def test_state_and_verifier_entropy_and_uniqueness() -> None:
    reqs = [authorization_request(PROFILE, CLIENT_ID, REDIRECT) for _ in range(200)]
    states = {r.state for r in reqs}
    verifiers = {r.code_verifier for r in reqs}
    assert len(states) == len(verifiers) == 200 and not states & verifiers
    for r in reqs[:20]:
        # >= 128 bits: 32 random bytes, base64url (R01); 43-128 unreserved chars (R03).
        assert len(base64.urlsafe_b64decode(r.state + "=")) == 32
        assert 43 <= len(r.code_verifier) <= 128
        digest = base64.urlsafe_b64decode(r.code_challenge + "=")
        assert len(digest) == 32 and "=" not in r.code_challenge


def test_rfc7636_appendix_b_challenge() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_scope_choice() -> None:
    bare = replace(PROFILE, scope=None)
    assert "scope" not in parse_qs(urlsplit(authorization_request(bare, "c", REDIRECT).url).query)
    other = authorization_request(PROFILE, "c", REDIRECT, scope=PGE_SCOPE)
    assert parse_qs(urlsplit(other.url).query)["scope"] == [PGE_SCOPE]
    assert other.scope == PGE_SCOPE


@pytest.mark.parametrize(
    ("profile", "client_id", "redirect"),
    [
        (replace(PROFILE, authorize_params=(("state", "x"),)), CLIENT_ID, REDIRECT),
        (replace(PROFILE, authorize_params=(("scope", "x"),)), CLIENT_ID, REDIRECT),
        (replace(PROFILE, authorize_url="http://dc.example/authorize"), CLIENT_ID, REDIRECT),
        (replace(PROFILE, authorize_url="ftp://dc.example/authorize"), CLIENT_ID, REDIRECT),
        (PROFILE, "", REDIRECT),
        (PROFILE, CLIENT_ID, ""),
    ],
)
def test_authorization_request_configuration_errors(
    profile: UtilityProfile, client_id: str, redirect: str
) -> None:
    with pytest.raises(ConfigurationError):
        authorization_request(profile, client_id, redirect)


def test_loopback_http_is_allowed_for_the_simulator() -> None:
    profile = replace(PROFILE, authorize_url="http://127.0.0.1:8443/myAuthorization")
    assert authorization_request(profile, "c", REDIRECT).url.startswith("http://127.0.0.1:8443/")


@pytest.mark.parametrize("value", ["short", "x" * 42 + "!", None])
def test_weak_rng_is_refused(value: str | None) -> None:
    with pytest.raises(ValueError, match="rng"):
        authorization_request(PROFILE, "c", REDIRECT, rng=lambda n: value or "s" * 43)


@settings(max_examples=200)
@given(st.text(st.characters(exclude_categories=["Cs"]), min_size=1))
def test_any_scope_survives_the_authorization_url(scope: str) -> None:
    req = authorization_request(PROFILE, CLIENT_ID, REDIRECT, scope=scope)
    pairs = parse_qsl(urlsplit(req.url).query, keep_blank_values=True, strict_parsing=True)
    assert dict(pairs)["scope"] == scope  # R17: byte-exact


# -- callback (R01, R02, R06, R07, R08; b3) ---------------------------------------------------


def pending(now: float = NOW) -> AuthorizationRequest:
    return authorization_request(PROFILE, CLIENT_ID, REDIRECT, now=now)


def test_callback_forms() -> None:
    p = pending()
    q = f"code=abc123&state={p.state}"
    for form in (q, "?" + q, f"{REDIRECT}?{q}", f"/OAuthCallback?{q}", f"  {REDIRECT}?{q}\n"):
        assert parse_callback(form, p, now=NOW + 1) == "abc123"
    # a bare query whose values hold a raw "://" is still a query, not a URL
    assert parse_callback(f"code=abc&state={p.state}&iss=https://dc", p, now=NOW) == "abc"
    # RFC 6749 A.11: any printable code comes back decoded
    assert parse_callback(f"code=a%2Bb+c&state={p.state}", p, now=NOW) == "a+b c"


def test_callback_expiry() -> None:
    p = pending()
    q = f"code=abc&state={p.state}"
    assert parse_callback(q, p, now=NOW + 600) == "abc"
    with pytest.raises(CallbackError) as exc:
        parse_callback(q, p, now=NOW + 11 * 60)  # b3: after 11 minutes
    assert exc.value.error == "expired" and not exc.value.from_server
    assert parse_callback(q, p, now=NOW + 1000, max_age=3600) == "abc"


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("code=abc", "state_mismatch"),  # missing state
        ("code=abc&state=wrong", "state_mismatch"),
        ("code=abc&state=", "state_mismatch"),
        ("code=abc&state={other}", "state_mismatch"),  # another flow's state
        ("code=abc&state=" + "s" * 10_000, "invalid_callback"),  # 10 KB state
        ("state={state}", "invalid_callback"),  # missing code
        ("code=&state={state}", "invalid_callback"),
        ("code=a%0Ab&state={state}", "invalid_callback"),  # control character
        ("code=abc&code=abd&state={state}", "invalid_callback"),  # duplicated code
        ("code=abc&state={state}&state={state}", "invalid_callback"),  # duplicated state
        ("code=abc&error=access_denied&state={state}", "invalid_callback"),
        ("code=%FF&state={state}", "invalid_callback"),  # not UTF-8
        ("code=" + "c" * 5000 + "&state={state}", "invalid_callback"),  # > 4 KiB
        ("error=access_denied&state=wrong", "state_mismatch"),  # forged error callback
    ],
)
def test_malformed_callbacks(query: str, error: str) -> None:
    p, other = pending(), pending()
    with pytest.raises(CallbackError) as exc:
        parse_callback(query.format(state=p.state, other=other.state), p, now=NOW)
    assert exc.value.error == error and not exc.value.from_server
    assert p.state not in str(exc.value)


@pytest.mark.parametrize(
    "code",
    ["access_denied", "invalid_scope", "server_error", "temporarily_unavailable", "x_custom"],
)
def test_error_callbacks(code: str) -> None:
    p = pending()
    query = f"error={code}&error_description=Customer+said+no&error_uri=https%3A%2F%2Fdc&state="
    with pytest.raises(CallbackError) as exc:
        parse_callback(query + p.state, p, now=NOW)
    e = exc.value
    assert isinstance(e, OAuthError) and e.from_server
    assert (e.error, e.description, e.uri) == (code, "Customer said no", "https://dc")
    assert code in str(e)


def test_error_description_is_plain_capped_text() -> None:
    p = pending()
    evil = quote("<script>alert(1)</script>\r\n" + "A" * 2000)
    with pytest.raises(CallbackError) as exc:
        parse_callback(f"error=access_denied&error_description={evil}&state={p.state}", p, now=NOW)
    description = exc.value.description
    assert description is not None and len(description) <= 300
    assert "\n" not in description and "\r" not in description
    # Plain text: the caller escapes it for HTML (R06); nothing here renders markup.
    assert description.startswith("<script>alert(1)</script>")


def test_error_code_outside_the_rfc_charset() -> None:
    p = pending()
    with pytest.raises(CallbackError) as exc:
        parse_callback(f"error=%22bad%5C&state={p.state}", p, now=NOW)
    assert exc.value.error == "invalid_error_code" and exc.value.from_server


@pytest.mark.parametrize(
    "url",
    [
        "https://tp.example/OtherCallback?code=a&state={s}",  # another DC's path (R08)
        "https://evil.example/OAuthCallback?code=a&state={s}",
        "http://tp.example/OAuthCallback?code=a&state={s}",
        "/other?code=a&state={s}",
    ],
)
def test_callback_at_another_redirect_uri(url: str) -> None:
    p = pending()
    with pytest.raises(CallbackError) as exc:
        parse_callback(url.format(s=p.state), p, now=NOW)
    assert exc.value.error == "redirect_mismatch"


# -- token requests (R14, R15) ------------------------------------------------------------------


def form(request: httpx2.Request) -> list[tuple[str, str]]:
    return parse_qsl(request.content.decode("ascii"), strict_parsing=True)


def assert_token_post(request: httpx2.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == TOKEN_URL and request.url.query == b""
    assert request.headers["authorization"] == BASIC
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["accept"] == "application/json"
    names = {name for name, _ in form(request)}
    assert not names & {"client_id", "client_secret"}  # Basic only (GBA OAD003)
    assert CLIENT_SECRET not in request.content.decode()


def test_code_request_exact() -> None:
    r = code_request(PROFILE, CREDS, "c0de/+=", redirect_uri=REDIRECT, code_verifier=VERIFIER)
    assert_token_post(r)
    assert r.content == (
        b"grant_type=authorization_code&code=c0de%2F%2B%3D"
        b"&redirect_uri=https%3A%2F%2Ftp.example%2FOAuthCallback&code_verifier=" + b"v" * 43
    )
    assert r.headers["content-length"] == str(len(r.content))


def test_refresh_request_exact() -> None:
    r = refresh_request(PROFILE, CREDS, Secret("rt-1+/"))
    assert_token_post(r)
    assert r.content == b"grant_type=refresh_token&refresh_token=rt-1%2B%2F"
    scoped = refresh_request(PROFILE, CREDS, Secret("rt"), scope=SCOPE)
    assert form(scoped) == [
        ("grant_type", "refresh_token"),
        ("refresh_token", "rt"),
        ("scope", SCOPE),  # R17: byte-exact through the body
    ]


def test_client_credentials_request_exact() -> None:
    r = client_credentials_request(PROFILE, CREDS)
    assert_token_post(r)
    assert r.content == b"grant_type=client_credentials"
    assert form(client_credentials_request(PROFILE, CREDS, scope=PGE_SCOPE)) == [
        ("grant_type", "client_credentials"),
        ("scope", PGE_SCOPE),
    ]


def test_revoke_request() -> None:
    url = "https://dc.example/oauth/revoke"
    r = revoke_request(PROFILE, CREDS, Secret("rt"), url=url)
    assert r.method == "POST" and str(r.url) == url
    assert r.headers["authorization"] == BASIC
    assert r.content == b"token=rt&token_type_hint=refresh_token"
    with pytest.raises(ConfigurationError, match="no token revocation endpoint"):
        revoke_request(PROFILE, CREDS, Secret("rt"))


@pytest.mark.parametrize(
    ("profile", "creds"),
    [
        (replace(PROFILE, token_url=TOKEN_URL + "?client_id=x"), CREDS),  # R15
        (replace(PROFILE, token_url="http://dc.example/token"), CREDS),
        (PROFILE, replace(CREDS, client_secret=Secret(""))),
        (PROFILE, replace(CREDS, client_id="")),
    ],
)
def test_token_request_configuration_errors(profile: UtilityProfile, creds: Credentials) -> None:
    with pytest.raises(ConfigurationError):
        client_credentials_request(profile, creds)


def test_bad_code_request_arguments() -> None:
    with pytest.raises(ValueError, match="code_verifier"):
        code_request(PROFILE, CREDS, "c", redirect_uri=REDIRECT, code_verifier="short")
    with pytest.raises(ValueError, match="code"):
        code_request(PROFILE, CREDS, "", redirect_uri=REDIRECT, code_verifier=VERIFIER)


@settings(max_examples=300)
@given(
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1),
)
def test_basic_round_trips_through_an_rfc6749_decoder(client_id: str, secret: str) -> None:
    header = basic_authorization(client_id, Secret(secret))
    assert header.isascii()
    assert _parse_basic(header) == (client_id, secret)


# -- token responses (R16-R20; b4) ------------------------------------------------------------


def response(
    status: int = 200,
    body: Any = None,
    *,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    if isinstance(body, dict | list):
        content = json.dumps(body).encode()
    elif isinstance(body, str):
        content = body.encode()
    else:
        content = body or b""
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    return httpx2.Response(
        status,
        content=content,
        headers=all_headers,
        request=httpx2.Request("POST", TOKEN_URL),
    )


OK: dict[str, Any] = {
    "access_token": "AT-1",
    "token_type": "Bearer",
    "expires_in": 3600,
    "refresh_token": "RT-1",
    "scope": SCOPE,
    "resourceURI": f"{ESPI}/Batch/Subscription/5550001",
    "authorizationURI": f"{ESPI}/Authorization/77",
}


def ok(**changes: Any) -> dict[str, Any]:
    body = {**OK, **changes}
    return {k: v for k, v in body.items() if v is not ...}


# (id, response, expected): expected is a dict of Token fields, or (exception class, error).
TOKEN_CASES: list[tuple[str, httpx2.Response, Any]] = [
    ("ok", response(200, OK), {"expires_at": NOW + 3600, "scope": SCOPE}),
    ("html-200", response(200, "<html>hi</html>", content_type="text/html"), "invalid_response"),
    ("json-as-html", response(200, OK, content_type="text/html"), "invalid_response"),
    ("no-access-token", response(200, ok(access_token=...)), "invalid_response"),
    ("null-access-token", response(200, ok(access_token=None)), "invalid_response"),
    ("empty-access-token", response(200, ok(access_token="")), "invalid_response"),
    ("number-access-token", response(200, ok(access_token=42)), "invalid_response"),
    ("non-ascii-token", response(200, ok(access_token="tök")), "invalid_response"),
    ("ctl-in-token", response(200, ok(access_token="a\r\nX-Evil: 1")), "invalid_response"),
    ("token-type-mac", response(200, ok(token_type="mac")), "invalid_response"),
    ("token-type-number", response(200, ok(token_type=1)), "invalid_response"),
    ("token-type-missing", response(200, ok(token_type=...)), {"token_type": "Bearer"}),
    ("token-type-lower", response(200, ok(token_type="bearer")), {"token_type": "Bearer"}),
    ("token-type-upper", response(200, ok(token_type="BEARER")), {"token_type": "Bearer"}),
    ("expires-string", response(200, ok(expires_in="3600")), {"expires_at": NOW + 3600}),
    ("expires-float", response(200, ok(expires_in=3600.7)), {"expires_at": NOW + 3600}),
    ("expires-str-float", response(200, ok(expires_in=" 60.9 ")), {"expires_at": NOW + 60}),
    ("expires-neg", response(200, ok(expires_in=-1)), "invalid_response"),
    ("expires-zero", response(200, ok(expires_in=0)), "invalid_response"),
    ("expires-null", response(200, ok(expires_in=None)), {"expires_at": None}),
    ("expires-missing", response(200, ok(expires_in=...)), {"expires_at": None}),
    ("expires-abc", response(200, ok(expires_in="abc")), "invalid_response"),
    ("expires-1e20", response(200, ok(expires_in=1e20)), "invalid_response"),
    ("expires-1e20-str", response(200, ok(expires_in="1e20")), "invalid_response"),
    ("expires-bool", response(200, ok(expires_in=True)), "invalid_response"),
    ("expires-10y", response(200, ok(expires_in=315_360_000)), {"expires_at": NOW + 315360000}),
    ("expires-over-10y", response(200, ok(expires_in=315_360_001)), "invalid_response"),
    ("expires-list", response(200, ok(expires_in=[1])), "invalid_response"),
    ("nan", response(200, b'{"access_token": "a", "expires_in": NaN}'), "invalid_response"),
    ("scope-missing", response(200, ok(scope=...)), {"scope": SCOPE}),  # the requested one
    ("scope-changed", response(200, ok(scope="FB=4_5")), {"scope": "FB=4_5"}),
    ("scope-trailing-semicolon", response(200, ok(scope=SCOPE + ";")), {"scope": SCOPE + ";"}),
    (
        "espi-extras",
        response(200, ok(customerResourceURI=f"{ESPI}/Batch/RetailCustomer/9", x_unknown=[1])),
        {
            "resource_uri": f"{ESPI}/Batch/Subscription/5550001",
            "authorization_uri": f"{ESPI}/Authorization/77",
            "customer_resource_uri": f"{ESPI}/Batch/RetailCustomer/9",
            "subscription_id": "5550001",
        },
    ),
    (
        "openespi-old-names",
        response(200, ok(resourceURI=..., authorizationURI=..., resource="r", authorization="a")),
        {"resource_uri": "r", "authorization_uri": "a"},
    ),
    ("espi-extras-wrong-type", response(200, ok(resourceURI=5)), {"resource_uri": None}),
    ("10mb", response(200, ok(pad="x" * 10 * 1024 * 1024)), "invalid_response"),
    (
        "duplicate-keys",
        response(200, b'{"access_token": "a", "access_token": "b"}'),
        "invalid_response",
    ),
    (
        "non-utf8",
        response(200, '{"access_token": "a", "x": "é"}'.encode("latin-1")),
        "invalid_response",
    ),
    ("utf16", response(200, json.dumps(OK).encode("utf-16")), "invalid_response"),
    ("text-plain-json", response(200, OK, content_type="text/plain"), {"expires_at": NOW + 3600}),
    ("no-content-type", response(200, OK, content_type=None), {"expires_at": NOW + 3600}),
    ("bom", response(200, b"\xef\xbb\xbf" + json.dumps(OK).encode()), {"scope": SCOPE}),
    ("json-array", response(200, [OK]), "invalid_response"),
    ("json-string", response(200, '"AT-1"'), "invalid_response"),
    ("empty-200", response(200, b""), "invalid_response"),
    ("xml-200", response(200, "<token/>", content_type="application/xml"), "invalid_response"),
    (
        "error-in-200",
        response(200, {"error": "invalid_grant"}),
        (InvalidGrantError, "invalid_grant"),
    ),
    ("201", response(201, OK), {"expires_at": NOW + 3600}),
    # RFC 6749 5.2 errors (R18)
    (
        "expired-code",
        response(400, {"error": "invalid_grant", "error_description": "Code expired."}),
        (InvalidGrantError, "invalid_grant"),
    ),
    (
        "invalid-request",
        response(400, {"error": "invalid_request"}),
        (OAuthError, "invalid_request"),
    ),
    ("invalid-scope", response(400, {"error": "invalid_scope"}), (OAuthError, "invalid_scope")),
    (
        "unsupported-grant",
        response(400, {"error": "unsupported_grant_type"}),
        (OAuthError, "unsupported_grant_type"),
    ),
    (
        "unauthorized-client",
        response(400, {"error": "unauthorized_client"}),
        (OAuthError, "unauthorized_client"),
    ),
    (
        "invalid-client-400",
        response(400, {"error": "invalid_client"}),
        (InvalidClientError, "invalid_client"),
    ),
    (
        "invalid-client-401",
        response(401, {"error": "invalid_client"}, headers={"WWW-Authenticate": "Basic"}),
        (InvalidClientError, "invalid_client"),
    ),
    (
        "401-no-www-auth",
        response(401, {"error": "invalid_client"}),
        (InvalidClientError, "invalid_client"),
    ),
    ("401-no-body", response(401, b"", content_type=None), (InvalidClientError, "invalid_client")),
    (
        "401-other-error",
        response(401, {"error": "unauthorized"}),
        (InvalidClientError, "unauthorized"),
    ),
    ("400-html", response(400, "<h1>Bad</h1>", content_type="text/html"), "invalid_response"),
    ("400-bad-error-code", response(400, {"error": 'a"b'}), "invalid_response"),
    ("403", response(403, b"forbidden", content_type="text/plain"), "invalid_response"),
    (
        "302-elsewhere",
        response(302, b"", headers={"Location": "https://evil.example/"}),
        "invalid_response",
    ),
    # 5xx and 429 (retry policy lives in the transport; here: type, status, Retry-After)
    ("429-2", response(429, b"", headers={"Retry-After": "2"}), (ServerError, 2.0)),
    (
        "429-date",
        response(
            429,
            b"",
            headers={
                "Retry-After": format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)
            },
        ),
        (ServerError, 30.0),
    ),
    ("429-abc", response(429, b"", headers={"Retry-After": "abc"}), (ServerError, None)),
    ("429-day", response(429, b"", headers={"Retry-After": "86400"}), (ServerError, 86400.0)),
    ("500", response(500, {"error": "server_error"}), (ServerError, None)),
    (
        "502",
        response(502, "<html>bad gateway</html>", content_type="text/html"),
        (ServerError, None),
    ),
    ("503-retry", response(503, b"", headers={"Retry-After": "5"}), (ServerError, 5.0)),
    ("503", response(503, b""), (ServerError, None)),
    ("504", response(504, b""), (ServerError, None)),
]


@pytest.mark.parametrize(("case", "resp", "expected"), TOKEN_CASES, ids=[c[0] for c in TOKEN_CASES])
def test_token_response_faults(case: str, resp: httpx2.Response, expected: Any) -> None:
    def run() -> Token:
        return parse_token_response(resp, kind="access", now=NOW, requested_scope=SCOPE)

    if isinstance(expected, dict):
        token = run()
        assert token.kind == "access" and token.token_type == "Bearer"
        assert token.access_token.reveal() == "AT-1"
        for name, value in expected.items():
            assert getattr(token, name) == value, name
        return
    if expected == "invalid_response":
        expected = (OAuthError, "invalid_response")
    cls, detail = expected
    with pytest.raises(cls) as exc:
        run()
    e = exc.value
    assert type(e) is cls
    if isinstance(e, ServerError):
        assert e.status_code == resp.status_code and e.retry_after == detail
        assert e.url == TOKEN_URL
    else:
        assert isinstance(e, OAuthError)
        assert e.error == detail and e.status_code == resp.status_code
    # Secrets and bodies never in messages (R49): the body's token values are not quoted.
    assert "AT-1" not in str(e) and "RT-1" not in str(e) and "X-Evil" not in str(e)


def test_granted_scope_change_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="greenbutton.oauth"):
        parse_token_response(response(200, ok(scope=SCOPE + ";")), kind="access", now=NOW,
                             requested_scope=SCOPE)  # fmt: skip
        assert not caplog.records  # a trailing ";" is the same scope
        parse_token_response(
            response(200, ok(scope="FB=4")), kind="access", now=NOW, requested_scope=SCOPE
        )
    (record,) = caplog.records
    assert "FB=4" in record.getMessage() and "AT-1" not in record.getMessage()


def test_error_description_is_scrubbed_of_known_tokens() -> None:
    previous = Token(kind="access", access_token=Secret("OLD-AT"), refresh_token=Secret("OLD-RT"))
    body = {"error": "invalid_grant", "error_description": "refresh token OLD-RT revoked\n"}
    with pytest.raises(InvalidGrantError) as exc:
        parse_token_response(response(400, body), kind="access", now=NOW, previous=previous)
    assert "OLD-RT" not in str(exc.value) and "OLD-RT" not in (exc.value.description or "")
    assert exc.value.description == "refresh token ********** revoked "


def test_pge_client_credentials_shape() -> None:
    body = {
        "client_access_token": "CAT-1",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": CLIENT_SCOPE,
        "refresh_token": "ignored",  # R19: never kept for client credentials
        "resourceURI": f"{ESPI}/Batch/Bulk/424242",
        "authorizationURI": f"{ESPI}/Authorization",
    }
    token = parse_token_response(response(200, body), kind="client", now=NOW)
    assert token.kind == "client" and token.access_token == Secret("CAT-1")
    assert token.refresh_token is None and token.scope == CLIENT_SCOPE
    assert token.resource_uri == f"{ESPI}/Batch/Bulk/424242"
    assert token.expires_at == NOW + 3600
    # The RI's shape (access_token) is accepted for client credentials too.
    body = {"access_token": "AT-9", "token_type": "bearer", "expires_in": "3600"}
    assert parse_token_response(response(200, body), kind="client", now=NOW).access_token == (
        Secret("AT-9")
    )


def test_refresh_keeps_or_rotates_the_refresh_token() -> None:
    first = parse_token_response(response(200, OK), kind="access", now=NOW)
    assert first.refresh_token == Secret("RT-1")
    # R20: no new refresh token -> the old one is kept; ESPI URIs and scope carry over.
    body = {"access_token": "AT-2", "token_type": "Bearer", "expires_in": 60}
    second = parse_token_response(response(200, body), kind="access", now=NOW + 10, previous=first)
    assert second.access_token == Secret("AT-2") and second.refresh_token == Secret("RT-1")
    assert second.expires_at == NOW + 70 and second.scope == SCOPE
    assert second.resource_uri == first.resource_uri
    assert second.authorization_uri == first.authorization_uri
    # Rotation: a new refresh token replaces the old one.
    body = {**body, "refresh_token": "RT-2", "resourceURI": f"{ESPI}/Batch/Subscription/9"}
    third = parse_token_response(response(200, body), kind="access", now=NOW, previous=second)
    assert third.refresh_token == Secret("RT-2") and third.subscription_id == "9"
    # An empty refresh_token is "none sent".
    body = {**body, "refresh_token": ""}
    fourth = parse_token_response(response(200, body), kind="access", now=NOW, previous=third)
    assert fourth.refresh_token == Secret("RT-2")


def test_token_repr_shows_no_values() -> None:
    token = parse_token_response(response(200, OK), kind="access", now=NOW)
    assert "AT-1" not in repr(token) and "RT-1" not in repr(token)


def test_retry_after() -> None:
    assert parse_retry_after(None, now=NOW) is None
    assert parse_retry_after(" 7 ", now=NOW) == 7.0
    assert parse_retry_after("-3", now=NOW) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=NOW) == 0.0  # in the past


def test_revocation_response() -> None:
    parse_revocation_response(response(200, b""), now=NOW)  # RFC 7009 2.2: even unknown
    with pytest.raises(ServerError) as exc:
        parse_revocation_response(response(503, b"", headers={"Retry-After": "9"}), now=NOW)
    assert exc.value.retry_after == 9.0
    with pytest.raises(OAuthError) as err:
        parse_revocation_response(response(400, {"error": "unsupported_token_type"}), now=NOW)
    assert err.value.error == "unsupported_token_type"


# -- scope grammar (ESPI_NOTES 2.3) -------------------------------------------------------------


def test_parse_pge_scope() -> None:
    scope = parse_scope(PGE_SCOPE)
    assert scope.text == str(scope) == PGE_SCOPE
    assert scope.function_blocks == {1, 3, 4, 5, 8, 13, 14, 15, 18, 19, 31, 32, 35, 37, 38, 39, 40}
    assert scope.interval_durations == (900, 3600)
    assert scope.block_duration == "Daily" and scope.history_length == 63_072_000
    assert scope.get("SubscriptionFrequency") == "Daily"
    assert scope.get_int("AccountCollection") == 1
    assert [k for k, _ in scope.params] == [
        "FB",
        "IntervalDuration",
        "BlockDuration",
        "HistoryLength",
        "SubscriptionFrequency",
        "AccountCollection",
    ]


def test_parse_scope_quirks() -> None:
    xsd = parse_scope("FB=1_3_4_5_13_14_39;IntervalDuration=3600;HistoryLength= 34128000 ;;")
    assert xsd.history_length == 34_128_000 and xsd.function_blocks == {1, 3, 4, 5, 13, 14, 39}
    click = parse_scope("FB=1_3;AdditionalScope=Usage_Billing;BR=4242;dataCustodianId=PGE")
    assert click.bulk_id == "4242" and click.get("AdditionalScope") == "Usage_Billing"
    assert click.get("dataCustodianId") == "PGE" and click.get("datacustodianid") is None
    legacy = parse_scope("38475")  # PG&E's legacy bare subscription id
    assert legacy.params == (("38475", None),) and legacy.function_blocks == frozenset()
    odd = parse_scope("FB=1_x_03;a=b=c;HistoryLength=13 months")
    assert odd.function_blocks == {1, 3} and odd.get("a") == "b=c"
    assert odd.history_length is None and odd.interval_durations == ()
    assert parse_scope("").params == () and parse_scope(" ; ").params == ()


_key = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters=";="), min_size=1
).filter(lambda s: s == s.strip())
_value = st.none() | st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters=";")
).filter(lambda s: s == s.strip())


@settings(max_examples=300)
@given(st.lists(st.tuples(_key, _value), max_size=8), st.booleans())
def test_scope_round_trip(params: list[tuple[str, str | None]], trailing: bool) -> None:
    text = format_scope(params, trailing=trailing)
    parsed = parse_scope(text)
    assert parsed.params == tuple(params) and parsed.text == text
    # ... and byte-exact through a token request body (R17)
    if text:
        body = refresh_request(PROFILE, CREDS, Secret("rt"), scope=text).content.decode()
        assert dict(parse_qsl(body, keep_blank_values=True))["scope"] == text


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_parse_scope_never_raises_and_keeps_the_text(text: str) -> None:
    assert parse_scope(text).text == text


@given(st.sets(st.integers(min_value=0, max_value=999), min_size=1))
def test_function_blocks_round_trip(fbs: set[int]) -> None:
    text = format_scope([("FB", "_".join(map(str, sorted(fbs))))], trailing=True)
    assert parse_scope(text).function_blocks == fbs


def test_format_scope_refuses_unparseable_pairs() -> None:
    for bad in [("a;b", "1"), ("a", "1;2"), ("", "1"), (" a", "1"), ("a=b", None)]:
        with pytest.raises(ValueError):
            format_scope([bad])


# -- token store --------------------------------------------------------------------------------


def test_in_memory_store() -> None:
    store: TokenStore = InMemoryTokenStore()
    token = Token(kind="client", access_token=Secret("CAT"))
    assert store.load("client") is None
    store.save("client", token)
    assert store.load("client") is token
    store.delete("client")
    store.delete("client")  # idempotent
    assert store.load("client") is None
    store.save("a", token)
    assert "CAT" not in repr(store) and "'a'" in repr(store)


def test_in_memory_store_threads() -> None:
    store = InMemoryTokenStore()

    def work(i: int) -> None:
        for j in range(200):
            store.save(f"k{i}", Token(kind="access", access_token=Secret(f"{i}-{j}")))
            assert store.load(f"k{i}") is not None

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.keys() == [f"k{i}" for i in range(8)]
    assert all(store.load(f"k{i}").access_token.reveal() == f"{i}-199" for i in range(8))  # type: ignore[union-attr]


def test_public_names() -> None:
    assert list(oauth.__all__) == sorted(oauth.__all__)
    for name in oauth.__all__:
        assert hasattr(oauth, name)


# -- against the simulator over mutual TLS -------------------------------------------------------


def test_flows_against_the_simulator(tmp_path: Path) -> None:
    with start_simulator(tmp_path / "sim", auto_approve="alice") as gb:
        reg = gb.registration
        profile = UtilityProfile(
            name="simulator",
            authorize_url=reg["authorize_url"],
            token_url=reg["token_url"],
            resource_url=reg["resource_url"],
            scope=reg["scope"],
        )
        creds = Credentials(
            client_id=reg["client_id"],
            client_secret=Secret(reg["client_secret"]),
            client_cert=Path(reg["client_cert"]),
            client_key=Path(reg["client_key"]),
            ca_cert=Path(reg["ca_cert"]),
        )
        ctx = ssl.create_default_context(cafile=str(creds.ca_cert))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(creds.client_cert, creds.client_key)
        subscription = gb.sim.state.customers["alice"].subscription_id

        # The customer's browser: authorize -> 302 to the redirect URI (auto-approve).
        pending_request = authorization_request(profile, creds.client_id, reg["redirect_uri"])
        with gb.client(client_cert=False) as browser:
            r = browser.get(pending_request.url)
        assert r.status_code == 302, r.text
        code = parse_callback(r.headers["location"], pending_request, now=time.time())

        with httpx2.Client(verify=ctx, trust_env=False, timeout=10.0) as api:

            def send(request: httpx2.Request) -> httpx2.Response:
                return api.send(request)  # never follows redirects

            exchange = code_request(
                profile,
                creds,
                code,
                redirect_uri=pending_request.redirect_uri,
                code_verifier=pending_request.code_verifier,
            )
            now = time.time()
            token = parse_token_response(
                send(exchange), kind="access", now=now, requested_scope=profile.scope
            )
            assert token.refresh_token is not None and token.scope == reg["scope"]
            assert token.resource_uri == f"{reg['resource_url']}/Batch/Subscription/{subscription}"
            assert token.authorization_uri is not None
            assert token.authorization_uri.startswith(f"{reg['resource_url']}/Authorization/")
            assert token.subscription_id == subscription
            assert token.expires_at == pytest.approx(now + 3600)
            # Refresh with rotation (R20): a new refresh token, ESPI extras kept.
            refreshed = parse_token_response(
                send(refresh_request(profile, creds, token.refresh_token)),
                kind="access",
                now=time.time(),
                previous=token,
            )
            assert refreshed.access_token != token.access_token
            assert refreshed.refresh_token not in (None, token.refresh_token)
            assert refreshed.resource_uri == token.resource_uri
            assert refreshed.authorization_uri == token.authorization_uri

            # Client credentials: PG&E's client_access_token shape (ESPI_NOTES 2.2).
            client = parse_token_response(
                send(client_credentials_request(profile, creds)), kind="client", now=time.time()
            )
            assert client.kind == "client" and client.refresh_token is None
            assert client.scope == CLIENT_SCOPE
            assert client.resource_uri is not None
            assert client.resource_uri.startswith(f"{reg['resource_url']}/Batch/Bulk/")
            status = api.get(
                f"{reg['resource_url']}/ReadServiceStatus",
                headers={"Authorization": f"Bearer {client.access_token.reveal()}"},
            )
            assert status.status_code == 200 and b"currentStatus" in status.content

            # A wrong secret: 401 invalid_client (configuration error, R18).
            wrong = replace(creds, client_secret=Secret("not-the-secret"))
            with pytest.raises(InvalidClientError) as bad:
                parse_token_response(
                    send(client_credentials_request(profile, wrong)), kind="client", now=0
                )
            assert bad.value.status_code == 401 and "not-the-secret" not in str(bad.value)

            # R14: an id and secret with ":", "+", "%", "/", space and non-ASCII authenticate.
            gb.sim.state.registration = replace(
                gb.sim.state.registration, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
            )
            nasty = replace(creds, client_id=CLIENT_ID, client_secret=Secret(CLIENT_SECRET))
            assert client_credentials_request(profile, nasty).headers["authorization"] == BASIC
            again = parse_token_response(
                send(client_credentials_request(profile, nasty)), kind="client", now=time.time()
            )
            assert again.kind == "client"

            # R20/RFC 9700 4.14.2: the rotated-out refresh token is refused (and the
            # simulator revokes the grant).
            gb.sim.state.registration = replace(
                gb.sim.state.registration,
                client_id=reg["client_id"],
                client_secret=reg["client_secret"],
            )
            with pytest.raises(InvalidGrantError):
                parse_token_response(
                    send(refresh_request(profile, creds, token.refresh_token)),
                    kind="access",
                    now=time.time(),
                    previous=token,
                )
            # R11: the code is single-use.
            with pytest.raises(InvalidGrantError):
                parse_token_response(send(exchange), kind="access", now=time.time())

        # R15: every token call was a form POST without a query string.
        calls = token_calls(gb.sim)
        assert len(calls) == 7
        assert {(c.method, c.content_type, c.query) for c in calls} == {
            ("POST", "application/x-www-form-urlencoded", "")
        }
