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
"<message>"}``.

Each object is a thin wrapper over one :class:`~greenbutton.Client` (built at its first call),
so classic calls go through the same stack as modern ones: mutual TLS, Basic client
authentication done right (R14), retries, timeouts, the body cap, the circuit breaker (R59)
and the machine-wide rate limit and quotas (R58). The profile is ``profile=`` when given, else
taken from the first call's URL: PG&E's quirks (1 request/s, 2,000/h, 20,000/day, under the
profile name ``pge``, so classic and modern calls of one client id share one budget) for
``*.pge.com``, no client-side limit elsewhere. ``Api`` has no client id in its 2015 signature;
give it ``client_id=`` to count its calls against the same budget as ``OAuth2``'s. Any other
keyword argument is the :class:`~greenbutton.Client`'s (``circuit_breaker``, ``timeout``,
``rate_limit_dir`` ...).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, Self, Unpack
from urllib.parse import urlencode

import httpx2

from ._errors import APIStatusError, GreenButtonError, OAuthError
from ._secret import Secret
from .client._client import Client, ClientOptions
from .espi._flow import Flow
from .espi._operations import authorized, fixed_source
from .espi._paths import Paths, segment
from .models._profile import PGE, Credentials, UtilityProfile, _is_pge, loopback_literals
from .oauth import (
    Token,
    basic_authorization,
    client_credentials_request,
    parse_token_response,
    refresh_request,
)

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


def _profile(url: str) -> UtilityProfile:
    """The profile of a classic object that was given none, from its first call's URL (the
    classic calls name their URL per call; each request is checked again when sent)."""
    if _is_pge(url):
        return dataclasses.replace(PGE, token_url=url, resource_url=url)
    return UtilityProfile(
        name="classic",
        authorize_url=url,
        token_url=url,
        resource_url=url,
        published_format="epoch",
        local=loopback_literals(url),  # the simulator, R47
    )


class _Base:
    def __init__(
        self,
        creds: dict[str, Any] | None,
        certs: dict[str, Any],
        *,
        profile: UtilityProfile | None = None,
        **options: Unpack[ClientOptions],
    ):
        self._creds_in = creds
        self._certs = dict(certs)
        self._profile = profile
        self._options = options
        self._client: Client | None = None
        self._lock = threading.Lock()

    def _client_for(self, url: str) -> Client:
        # Built once, so every call shares its limiter, breaker and connection pool; a failed
        # build (a missing certificate) is an error answer and is tried again next call.
        with self._lock:
            if self._client is None:
                creds = _credentials(self._creds_in, self._certs)
                client = Client(self._profile or _profile(url), creds, **self._options)
                # The 2015 SDK had no close(): its connections go when the object does.
                weakref.finalize(self, client.close)
                self._client = client
            return self._client

    def _run(self, url: str, flow: Flow[Answer]) -> Answer:
        try:
            return self._client_for(url)._run(flow)
        except (GreenButtonError, OSError, ValueError, KeyError, TypeError) as exc:
            return _failure(exc)

    @property
    def client(self) -> Client | None:
        """The modern client underneath (None before the first call)."""
        return self._client

    def close(self) -> None:
        """Close the client's connections (the original SDK had no close; optional)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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

    def __init__(
        self,
        creds: dict[str, Any],
        certs: dict[str, Any],
        *,
        profile: UtilityProfile | None = None,
        **options: Unpack[ClientOptions],
    ):
        super().__init__(creds, certs, profile=profile, **options)
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

        return self._run(url, flow())

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
            creds = _credentials(self._creds_in, self._certs)
            response = yield refresh_request(_profile(url), creds, previous.refresh_token)
            now = time.time()
            self._last = parse_token_response(response, kind="access", now=now, previous=previous)
            return _token_answer(self._last, now)

        return self._run(url, flow())


class ClientCredentials(_Base):
    """The ``client_access_token`` (client-credentials grant) for Bulk and admin calls."""

    def __init__(
        self,
        creds: dict[str, Any],
        certs: dict[str, Any],
        *,
        profile: UtilityProfile | None = None,
        **options: Unpack[ClientOptions],
    ):
        super().__init__(creds, certs, profile=profile, **options)

    def get_client_access_token(self, url: str) -> Answer:
        """A client-credentials token from the token endpoint ``url`` (RFC 6749 4.4)."""

        def flow() -> Flow[Answer]:
            creds = _credentials(self._creds_in, self._certs)
            response = yield client_credentials_request(_profile(url), creds)
            now = time.time()
            token = parse_token_response(response, kind="client", now=now)
            return _token_answer(token, now, client=True)

        return self._run(url, flow())


def _epoch(value: Any, name: str) -> str:
    text = str(value).strip()
    if not text.isdigit() or len(text) > 11:
        raise ValueError(f"{name} must be epoch seconds, got {value!r}")
    return text


class Api(_Base):
    """The PG&E data calls: "sync" (one usage point, 200) and "async" (subscription, 202)."""

    def __init__(
        self,
        certs: dict[str, Any],
        *,
        profile: UtilityProfile | None = None,
        client_id: str | None = None,
        **options: Unpack[ClientOptions],
    ):
        creds = {"client_key": client_id} if client_id else None
        super().__init__(creds, certs, profile=profile, **options)

    def _get(self, url: str, path: list[str], params: dict[str, str], token: str) -> Answer:
        base = url.rstrip("/")
        resource = base.removesuffix("/Batch") if base.endswith("/Batch") else base

        def flow() -> Flow[Answer]:
            if not token:
                raise ValueError("access_token is required")
            target = Paths(resource).url("Batch", *path)
            response = yield from authorized("GET", target, fixed_source(Secret(token)), params)
            return {"status": response.status_code, "data": response.text}

        return self._run(resource, flow())

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
            path = ["Subscription", segment(str(subscription_id))]
            params = {
                "published-min": _epoch(published_min, "published_min"),
                "published-max": _epoch(published_max, "published_max"),
            }
        except (ValueError, TypeError) as exc:
            return _failure(exc)
        return self._get(url, path, params, access_token)
