"""Token-endpoint requests (RFC 6749 4.1.3, 4.4.2, 6; RFC 7009 2.1), built, never sent.

Every request is a POST of an ``application/x-www-form-urlencoded`` body to the profile's
token URL, with no query string (R15), ``Accept: application/json`` and the client
authenticated by HTTP Basic only, the way RFC 6749 2.3.1 says and PG&E expects (R14):
client id and secret are each form-urlencoded *before* base64, and neither goes in the body
(GBA OAD003 answers 400 to both). The caller's driver sends the request over mutual TLS.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx2

from .._errors import ConfigurationError
from .._secret import Secret
from .._urls import check_url
from ..models import Credentials, UtilityProfile

__all__ = [
    "basic_authorization",
    "client_credentials_request",
    "code_request",
    "refresh_request",
    "revoke_request",
]

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_FORM = "application/x-www-form-urlencoded"


def basic_authorization(client_id: str, client_secret: Secret | str) -> str:
    """The ``Authorization`` value for client_secret_basic (RFC 6749 2.3.1, RFC 7617).

    ``quote_plus`` (the form-urlencoding of UTF-8) runs on each part first, so a ``:`` in
    the id, or ``%``, ``+``, spaces and non-ASCII in the secret, reach the server intact.
    """
    secret = client_secret.reveal() if isinstance(client_secret, Secret) else client_secret
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode("ascii")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _token_url(profile: UtilityProfile) -> str:
    check_url(profile.token_url, what="the token URL")
    parts = urlsplit(profile.token_url)
    if parts.query or parts.fragment:
        # R15: nothing is ever sent in a token request's query string.
        raise ConfigurationError("the token URL must not have a query string or fragment")
    return profile.token_url


def _post(url: str, creds: Credentials, form: list[tuple[str, str]]) -> httpx2.Request:
    if not creds.client_id:
        raise ConfigurationError("client_id is empty")
    if not creds.client_secret:
        raise ConfigurationError("client_secret is empty")
    headers = {
        "Authorization": basic_authorization(creds.client_id, creds.client_secret),
        "Content-Type": _FORM,
        "Accept": "application/json",
    }
    return httpx2.Request("POST", url, headers=headers, content=urlencode(form).encode("ascii"))


def _required(value: str, name: str) -> str:
    if not value:
        raise ValueError(f"{name} is empty")
    return value


def code_request(
    profile: UtilityProfile,
    creds: Credentials,
    code: str,
    *,
    redirect_uri: str,
    code_verifier: str,
) -> httpx2.Request:
    """Exchange an authorization code (RFC 6749 4.1.3) with its PKCE verifier (RFC 7636 4.5).

    ``redirect_uri`` must be byte-identical to the one in the authorization request (R05).
    """
    if not _VERIFIER.fullmatch(code_verifier):
        raise ValueError("code_verifier must be 43-128 unreserved characters (RFC 7636 4.1)")
    form = [
        ("grant_type", "authorization_code"),
        ("code", _required(code, "code")),
        ("redirect_uri", _required(redirect_uri, "redirect_uri")),
        ("code_verifier", code_verifier),
    ]
    return _post(_token_url(profile), creds, form)


def refresh_request(
    profile: UtilityProfile,
    creds: Credentials,
    refresh_token: Secret,
    *,
    scope: str | None = None,
) -> httpx2.Request:
    """Refresh an access token (RFC 6749 6). Leave ``scope`` out unless narrowing it: a
    different scope is refused (GBA OAD011) and the original one is implied."""
    form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", _required(refresh_token.reveal(), "refresh_token")),
        *([("scope", scope)] if scope else []),
    ]
    return _post(_token_url(profile), creds, form)


def client_credentials_request(
    profile: UtilityProfile,
    creds: Credentials,
    *,
    scope: str | None = None,
) -> httpx2.Request:
    """Get the data custodian's ``client_access_token`` (RFC 6749 4.4.2, ESPI_NOTES 2.2).

    ``scope`` None leaves it out (the server's default for the client); pass the registered
    scope where the custodian wants it (R19)."""
    form = [("grant_type", "client_credentials"), *([("scope", scope)] if scope else [])]
    return _post(_token_url(profile), creds, form)


def revoke_request(
    profile: UtilityProfile,
    creds: Credentials,
    token: Secret,
    *,
    url: str | None = None,
    token_type_hint: str | None = "refresh_token",  # noqa: S107 - an RFC 7009 hint name
) -> httpx2.Request:
    """Revoke a token at an RFC 7009 endpoint (2.1), when the custodian has one (R22).

    ``url`` defaults to the profile's ``revocation_url`` if it defines one; ESPI custodians
    usually have none and revoke by ``DELETE Authorization/{id}`` instead (ESPI_NOTES 2.1).
    """
    target = url if url is not None else getattr(profile, "revocation_url", None)
    if not target:
        raise ConfigurationError(f"{profile.name}: no token revocation endpoint is configured")
    check_url(target, what="the revocation URL")
    if urlsplit(target).query:
        raise ConfigurationError("the revocation URL must not have a query string")
    form = [
        ("token", _required(token.reveal(), "token")),
        *([("token_type_hint", token_type_hint)] if token_type_hint else []),
    ]
    return _post(target, creds, form)
