"""The classic interface of PG&E's original OAuth2 SDK (DESIGN 5), kept working.

::

    from greenbutton.classic import OAuth2, ClientCredentials, Api

    creds = {"client_key": "...", "client_secret_key": "..."}
    certs = {"crt": "client.crt.pem", "key": "client.key.pem"}  # optional "ca": CA bundle
    oauth = OAuth2(creds, certs)
    oauth.get_access_token(token_url, code, redirect_uri)
    oauth.get_refresh_token(token_url)            # the last refresh token it got
    ClientCredentials(creds, certs).get_client_access_token(token_url)
    api = Api(certs)
    api.sync_request(batch_url, subscription_id, usage_point, pmin, pmax, access_token)
    api.async_request(batch_url, subscription_id, pmin, pmax, access_token)

Every call returns a dict and never raises: on success ``{"status": 200, ...}`` with the
original SDK's keys; on any failure ``{"status": <HTTP status, or 0 without one>, "error":
"<message>"}``. Underneath is the modern stack: mutual TLS, Basic client authentication done
right (R14), retries, timeouts and the body cap, sans-IO flows run by the sync driver.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx2

from ._errors import APIStatusError, GreenButtonError, OAuthError
from ._flows import Flow, Locks, Policy, run_sync
from ._profile import Credentials, UtilityProfile, loopback_literals
from ._secret import Secret
from ._transport import make_client
from .espi._operations import authorized, fixed_source
from .espi._paths import Paths
from .oauth import Token, basic_authorization, parse_token_response, refresh_request

__all__ = ["Api", "ClientCredentials", "OAuth2"]

Answer = dict[str, Any]


def _failure(exc: BaseException) -> Answer:
    status = 0
    if isinstance(exc, OAuthError | APIStatusError):
        status = exc.status_code or 0
    message = " ".join(str(exc).split()) or type(exc).__name__
    return {"status": status, "error": message}


def _credentials(creds: dict[str, Any] | None, certs: dict[str, Any]) -> Credentials:
    creds = creds or {}
    ca = certs.get("ca")
    return Credentials(
        client_id=str(creds.get("client_key") or ""),
        client_secret=Secret(str(creds.get("client_secret_key") or "")),
        client_cert=Path(certs["crt"]),
        client_key=Path(certs["key"]),
        ca_cert=Path(ca) if ca else None,
    )


def _profile(*, token_url: str = "", resource_url: str = "") -> UtilityProfile:
    # The classic calls name their URL per call; PG&E's conventions otherwise (epoch times).
    some = token_url or resource_url
    return UtilityProfile(
        name="classic",
        authorize_url=some,
        token_url=token_url or some,
        resource_url=resource_url or some,
        published_format="epoch",
        local=loopback_literals(token_url or some, resource_url or some),  # the simulator, R47
    )


class _Base:
    def __init__(self, creds: dict[str, Any] | None, certs: dict[str, Any]):
        self._creds_in = creds
        self._certs = dict(certs)
        self._policy = Policy()
        self._locks = Locks()

    def _run(self, profile: UtilityProfile, flow: Flow[Answer]) -> Answer:
        try:
            creds = _credentials(self._creds_in, self._certs)
            with make_client(profile, creds) as http:
                return run_sync(flow, http, policy=self._policy, locks=self._locks)
        except (GreenButtonError, OSError, ValueError, KeyError, TypeError) as exc:
            return _failure(exc)


def _token_answer(token: Token, now: float, *, client: bool = False) -> Answer:
    expires_in = None if token.expires_at is None else max(0, round(token.expires_at - now))
    if client:
        return {
            "status": 200,
            "client_access_token": token.access_token.reveal(),
            "token_type": token.token_type,
            "expires_in": expires_in,
            "scope": token.scope,
        }
    return {
        "status": 200,
        "access_token": token.access_token.reveal(),
        "refresh_token": None if token.refresh_token is None else token.refresh_token.reveal(),
        "token_type": token.token_type,
        "expires_in": expires_in,
        "scope": token.scope,
        "resourceURI": token.resource_uri,
        "authorizationURI": token.authorization_uri,
    }


class OAuth2(_Base):
    """Authorization-code exchange and refresh, as in PG&E's original SDK."""

    def __init__(self, creds: dict[str, Any], certs: dict[str, Any]):
        super().__init__(creds, certs)
        self._last: Token | None = None

    def get_access_token(self, url: str, code: str, redirect_uri: str) -> Answer:
        """Exchange ``code`` at the token endpoint ``url`` (the classic flow has no PKCE)."""

        def flow() -> Flow[Answer]:
            creds = _credentials(self._creds_in, self._certs)
            if not code or not redirect_uri:
                raise ValueError("code and redirect_uri are required")
            form = [
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ]
            request = httpx2.Request(
                "POST",
                url,
                headers={
                    "Authorization": basic_authorization(creds.client_id, creds.client_secret),
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                content=urlencode(form).encode("ascii"),
            )
            response = yield request
            now = time.time()
            self._last = parse_token_response(response, kind="access", now=now)
            return _token_answer(self._last, now)

        return self._run(_profile(token_url=url), flow())

    def get_refresh_token(self, url: str, refresh_token: str | None = None) -> Answer:
        """Refresh with ``refresh_token``, or the last refresh token this object received."""

        def flow() -> Flow[Answer]:
            previous = self._last
            if refresh_token is not None:
                previous = Token(
                    kind="access",
                    access_token=Secret("-"),
                    refresh_token=Secret(refresh_token),
                )
            if previous is None or previous.refresh_token is None:
                raise ValueError("no refresh token: call get_access_token first or pass one")
            profile = _profile(token_url=url)
            creds = _credentials(self._creds_in, self._certs)
            response = yield refresh_request(profile, creds, previous.refresh_token)
            now = time.time()
            self._last = parse_token_response(response, kind="access", now=now, previous=previous)
            return _token_answer(self._last, now)

        return self._run(_profile(token_url=url), flow())


class ClientCredentials(_Base):
    """The ``client_access_token`` (client-credentials grant) for Bulk and admin calls."""

    def get_client_access_token(self, url: str) -> Answer:
        def flow() -> Flow[Answer]:
            creds = _credentials(self._creds_in, self._certs)
            profile = _profile(token_url=url)
            from .oauth import client_credentials_request

            response = yield client_credentials_request(profile, creds)
            now = time.time()
            token = parse_token_response(response, kind="client", now=now)
            return _token_answer(token, now, client=True)

        return self._run(_profile(token_url=url), flow())


def _epoch(value: Any, name: str) -> str:
    text = str(value).strip()
    if not text.isdigit() or len(text) > 11:
        raise ValueError(f"{name} must be epoch seconds, got {value!r}")
    return text


class Api(_Base):
    """The PG&E data calls: "sync" (one usage point, 200) and "async" (subscription, 202)."""

    def __init__(self, certs: dict[str, Any]):
        super().__init__(None, certs)

    def _get(self, url: str, path: list[str], params: dict[str, str], token: str) -> Answer:
        base = url.rstrip("/")
        resource = base.removesuffix("/Batch") if base.endswith("/Batch") else base

        def flow() -> Flow[Answer]:
            if not token:
                raise ValueError("access_token is required")
            target = Paths(resource).url("Batch", *path)
            response = yield from authorized("GET", target, fixed_source(Secret(token)), params)
            return {"status": response.status_code, "data": response.text}

        return self._run(_profile(resource_url=resource), flow())

    def sync_request(
        self,
        url: str,
        subscription_id: str,
        usage_point: str,
        published_min: str | int,
        published_max: str | int,
        access_token: str,
    ) -> Answer:
        """``GET Batch/Subscription/{id}/UsagePoint/{up}`` -> ``{"status": 200, "data": xml}``."""
        try:
            from .espi._paths import segment

            path = ["Subscription", segment(str(subscription_id))]
            path += ["UsagePoint", segment(str(usage_point))]
            params = {
                "published-min": _epoch(published_min, "published_min"),
                "published-max": _epoch(published_max, "published_max"),
            }
        except (ValueError, TypeError) as exc:
            return _failure(exc)
        return self._get(url, path, params, access_token)

    def async_request(
        self,
        url: str,
        subscription_id: str,
        published_min: str | int,
        published_max: str | int,
        access_token: str,
    ) -> Answer:
        """``GET Batch/Subscription/{id}`` -> ``{"status": 202, "data": body}``."""
        try:
            from .espi._paths import segment

            path = ["Subscription", segment(str(subscription_id))]
            params = {
                "published-min": _epoch(published_min, "published_min"),
                "published-max": _epoch(published_max, "published_max"),
            }
        except (ValueError, TypeError) as exc:
            return _failure(exc)
        return self._get(url, path, params, access_token)
