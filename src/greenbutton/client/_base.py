"""What both clients share, with no I/O (httpx ``BaseClient``): the keyword options, the
profile, credentials, token store and policy, the store key of an authorization, and the
authorization URL. :mod:`._client` adds the sync and async plumbing (transport, certificate
rotation, close); the ESPI methods are written once in :mod:`._api_async` and generated into
:mod:`._api_sync` (``scripts/unasync.py``)."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import TypedDict, TypeVar

import httpx2

from .._errors import InvalidGrantError
from .._secret import Secret
from ..espi import _operations as ops
from ..espi._operations import Context
from ..espi._paths import Paths
from ..models import Credentials, Document, UtilityProfile
from ..oauth import REAUTH_REQUIRED, SupportsStatus, Token, TokenStore
from ..oauth._authorize import AuthorizationRequest, authorization_request
from ..parse import Limits
from ._breaker import CircuitBreaker
from ._flows import Locks, Policy
from ._ratelimit import make_limiter, profile_quotas
from ._rotation import RotationTracker, rotation_aware
from ._transport import ClientStats, Reserving

__all__ = ["AsyncClientOptions", "Authorization", "ClientOptions"]

T = TypeVar("T")
Authorization = str | Token
Result = Document | bytes


def _memory_store() -> TokenStore:
    from ..oauth import InMemoryTokenStore

    store: TokenStore = InMemoryTokenStore()
    return store


def _secret(value: Secret | str) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


def _wall_clock() -> float:
    # Looked up on every call (not bound at import) so the process's wall clock, jumps
    # included, is what expiry decisions see; waits never use it (R55).
    return time.time()


def _timeout(value: float | httpx2.Timeout | None) -> httpx2.Timeout | None:
    return value if value is None or isinstance(value, httpx2.Timeout) else httpx2.Timeout(value)


def _reauth_required(key: str) -> InvalidGrantError:
    exc = InvalidGrantError("invalid_grant", "marked reauth_required in the token store")
    # No token endpoint answered this time: say what the store says instead.
    exc.args = (
        f"the authorization {key} needs re-authorization (its refresh token was refused "
        "earlier): the customer must authorize again",
    )
    return exc


def _breaker(option: CircuitBreaker | bool, profile: UtilityProfile) -> CircuitBreaker | None:
    if isinstance(option, CircuitBreaker):
        return option
    return CircuitBreaker(name=f"data custodian {profile.name!r}") if option else None


class _Options(TypedDict, total=False):
    """The keyword arguments both clients take besides ``transport`` (see :class:`Client`);
    for :meth:`Client.for_simulator` and :meth:`Client.from_config`."""

    token_store: TokenStore | None
    timeout: float | httpx2.Timeout | None
    max_attempts: int
    deadline: float | None
    rate_limit_per_s: float | None
    rate_limit_shared: bool
    rate_limit_dir: str | PathLike[str] | None
    circuit_breaker: CircuitBreaker | bool
    leeway: float
    limits: Limits | None
    client_scope: str | None
    cert_check_interval: float | None
    clock: Callable[[], float]
    rng: random.Random | None
    sleep: Callable[[float], None]


class ClientOptions(_Options, total=False):
    """:class:`Client`'s keyword arguments, as a ``TypedDict``."""

    transport: httpx2.BaseTransport | None


class AsyncClientOptions(_Options, total=False):
    """:class:`AsyncClient`'s keyword arguments, as a ``TypedDict``."""

    transport: httpx2.AsyncBaseTransport | None


class _Base:
    """Configuration shared by both clients, no I/O (httpx ``BaseClient``); the arguments are
    described on :class:`Client`."""

    def __init__(
        self,
        profile: UtilityProfile,
        credentials: Credentials,
        *,
        token_store: TokenStore | None = None,
        max_attempts: int = 4,
        deadline: float | None = 300.0,
        rate_limit_per_s: float | None = None,
        leeway: float = 60.0,
        limits: Limits | None = None,
        client_scope: str | None = None,
        cert_check_interval: float | None = 30.0,
        clock: Callable[[], float] = _wall_clock,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rate_limit_shared: bool = True,
        rate_limit_dir: str | PathLike[str] | None = None,
        circuit_breaker: CircuitBreaker | bool = True,
    ) -> None:
        self.profile = profile
        self.credentials = credentials
        self.token_store = token_store if token_store is not None else _memory_store()
        rate = rate_limit_per_s if rate_limit_per_s is not None else profile.rate_limit_per_s
        # Flows see the store through the tracker: after a certificate reload, tokens from
        # before it read as expired and are refreshed over the new certificate (R31).
        self._tracker = RotationTracker()
        self._cert_check_interval = cert_check_interval
        self._context = Context(
            profile=profile,
            credentials=credentials,
            store=rotation_aware(self.token_store, self._tracker),
            clock=clock,
            leeway=leeway,
            limits=limits,
            client_scope=client_scope,
            refresh_deadline=getattr(self.token_store, "refresh_deadline", None),  # R63
        )
        #: What this client's requests cost (latency, rate-limit waits): ``/metrics`` reads it.
        self.stats = ClientStats()
        self._policy = Policy(
            max_attempts=max_attempts,
            deadline=deadline,
            max_body_bytes=profile.max_body_bytes,
            limiter=make_limiter(
                rate,
                profile_name=profile.name,
                client_id=credentials.client_id,
                shared=rate_limit_shared,
                directory=None if rate_limit_dir is None else Path(rate_limit_dir),
                quotas=profile_quotas(profile),
            ),
            breaker=_breaker(circuit_breaker, profile),
            stats=self.stats,  # the exchange loop records fetch latencies here
            rng=rng or random.Random(),  # noqa: S311 - backoff jitter, not cryptography
            sleep=sleep,
        )
        self._locks = Locks()
        limiter = self._policy.limiter
        for part in (limiter, getattr(limiter, "inner", None)):  # a quota limiter wraps one
            if isinstance(part, Reserving):
                part.stats = self.stats

    def _use_credentials(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._context = dataclasses.replace(self._context, credentials=credentials)

    @staticmethod
    def _simulator_config(
        registration: str | PathLike[str],
    ) -> tuple[UtilityProfile, Credentials]:
        """Profile and credentials from a simulator's ``registration.json`` (or its folder)."""
        from ._config import credentials_from_registration

        path = Path(registration)
        return UtilityProfile.simulator(path), credentials_from_registration(path)

    @property
    def paths(self) -> Paths:
        """The ESPI URL templates of this client's utility (``Subscription/{id}/...``)."""
        return self._context.paths

    def _key(self, authorization: Authorization) -> str:
        """The store key of ``authorization``, refused at once when the store says the grant
        needs re-authorization (no request is sent for a dead grant; R24, R53)."""
        key = ops.grant_key(self._context, authorization)
        store = self.token_store
        if isinstance(store, SupportsStatus) and store.status(key) == REAUTH_REQUIRED:
            raise _reauth_required(key)
        return key

    def authorization_url(
        self, redirect_uri: str | None = None, *, scope: str | None = None
    ) -> AuthorizationRequest:
        """A fresh authorization request (state + PKCE S256); send the customer to its
        ``url`` and keep it for :meth:`exchange_code`."""
        redirect = redirect_uri or self.credentials.redirect_uri
        if not redirect:
            from .._errors import ConfigurationError

            raise ConfigurationError("no redirect URI configured: pass redirect_uri")
        return authorization_request(
            self.profile, self.credentials.client_id, redirect, scope=scope
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(profile={self.profile.name!r})"
