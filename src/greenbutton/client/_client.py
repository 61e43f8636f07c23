"""``Client`` and ``AsyncClient``: the ESPI REST surface for third parties (DESIGN 2.3).

Both are thin: every method builds a flow from :mod:`greenbutton.espi._operations` and hands it
to :func:`~greenbutton.client._flows.run_sync` or :func:`~.run_async`, so the
behaviour (token class per resource, bounded 401 handling, single-flight refresh, date-window
paging, retries, rate limit, deadline, body cap) exists once.

An *authorization* is named by its token-store key (by default the token's
``authorizationURI``, as returned by :meth:`Client.exchange_code`) or given as a
:class:`~greenbutton.oauth.Token`. Data methods return a parsed
:class:`~greenbutton.models.Document`, or the body bytes with ``raw=True``. A call on an
authorization the token store marks ``reauth_required`` (see
:class:`~greenbutton.oauth.SupportsStatus`) raises ``InvalidGrantError`` before any request.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Literal, TypedDict, TypeVar, Unpack, overload

import anyio.to_thread
import httpx2

from .._errors import InvalidGrantError
from .._secret import Secret
from ..espi import _operations as ops
from ..espi._operations import Accepted, Context
from ..espi._paths import Paths, TimeLike
from ..models import Credentials, Document, UtilityProfile
from ..models._resources import ServiceStatus
from ..oauth import REAUTH_REQUIRED, SupportsStatus, Token, TokenStore
from ..oauth._authorize import AuthorizationRequest, authorization_request
from ..parse import Limits
from ._breaker import CircuitBreaker
from ._config import load_config
from ._flows import Flow, Locks, Policy, run_async, run_sync
from ._ratelimit import make_limiter, profile_quotas
from ._rotation import Rotation, RotationTracker, rotation_aware, with_files
from ._transport import make_async_client, make_client

__all__ = ["AsyncClient", "AsyncClientOptions", "Client", "ClientOptions"]

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
            rng=rng or random.Random(),  # noqa: S311 - backoff jitter, not cryptography
            sleep=sleep,
        )
        self._locks = Locks()

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


class Client(_Base):
    """Blocking client; thread-safe (token refresh is single-flight across threads).

    ``profile`` and ``credentials`` come from :func:`~greenbutton.load_config` (a config file
    and the environment, DESIGN 3.5); :meth:`from_config` does both. Keyword arguments:

    * ``token_store``: where grants live (default: in memory); ``transport``: replaces the
      network layer, for tests; ``timeout``: per request (seconds or an ``httpx2.Timeout``).
    * ``max_attempts`` per request (retries of idempotent calls, 5xx/429, connect errors) and
      ``deadline``, seconds for one whole call (R56).
    * ``rate_limit_per_s`` overrides the profile's limit (R58). The limit, and the profile's
      hourly and daily quotas, are shared by every process on the machine using the same
      profile name and client id, through a state file in ``rate_limit_dir`` (default
      ``GREENBUTTON_RATE_DIR``, else the user cache folder); ``rate_limit_shared=False``
      limits this client only. A request over a quota is not sent:
      :class:`~greenbutton.QuotaExhaustedError` says when to try again.
    * ``circuit_breaker`` (R59): True for a :class:`~greenbutton.CircuitBreaker` with its
      defaults (open after 5 failed operations in a row over at least 10 s, 30-45 s
      cool-down), False for none, or an instance to configure or share.
    * ``leeway``: seconds before expiry a token counts as expired; ``limits``: parser
      :class:`~greenbutton.Limits`; ``client_scope``: the scope of client-credentials tokens;
      ``cert_check_interval``: how often (s) to look for a renewed certificate (None: never).
    * ``clock`` (wall clock for expiry), ``rng`` (backoff jitter) and ``sleep``: injected,
      for tests.
    """

    def __init__(
        self,
        profile: UtilityProfile,
        credentials: Credentials,
        *,
        token_store: TokenStore | None = None,
        transport: httpx2.BaseTransport | None = None,
        timeout: float | httpx2.Timeout | None = None,
        max_attempts: int = 4,
        deadline: float | None = 300.0,
        rate_limit_per_s: float | None = None,
        rate_limit_shared: bool = True,
        rate_limit_dir: str | PathLike[str] | None = None,
        circuit_breaker: CircuitBreaker | bool = True,
        leeway: float = 60.0,
        limits: Limits | None = None,
        client_scope: str | None = None,
        cert_check_interval: float | None = 30.0,
        clock: Callable[[], float] = _wall_clock,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            profile,
            credentials,
            token_store=token_store,
            max_attempts=max_attempts,
            deadline=deadline,
            rate_limit_per_s=rate_limit_per_s,
            rate_limit_shared=rate_limit_shared,
            rate_limit_dir=rate_limit_dir,
            circuit_breaker=circuit_breaker,
            leeway=leeway,
            limits=limits,
            client_scope=client_scope,
            cert_check_interval=cert_check_interval,
            clock=clock,
            rng=rng,
            sleep=sleep,
        )
        self._http = make_client(
            profile, credentials, transport=transport, timeout=_timeout(timeout)
        )
        self._rotation: Rotation[httpx2.Client] = Rotation(
            self._http,
            credentials,
            lambda creds: make_client(
                profile, creds, transport=transport, timeout=_timeout(timeout)
            ),
            self._tracker,
            self._cert_check_interval,
        )

    @classmethod
    def for_simulator(
        cls, registration: str | PathLike[str], **options: Unpack[ClientOptions]
    ) -> Client:
        """A client for the simulator whose ``registration.json`` is at ``registration``."""
        profile, creds = cls._simulator_config(registration)
        return cls(profile, creds, **options)

    @classmethod
    def from_config(
        cls,
        path: str | PathLike[str] | None = None,
        *,
        profile: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> Client:
        """A client for ``profile`` (else ``GREENBUTTON_PROFILE``, else the file's default) of
        the config file at ``path`` (default: :func:`~greenbutton.default_config_path`), with
        the environment's overrides: :func:`~greenbutton.load_config`."""
        utility, creds = load_config(None if path is None else Path(path), profile=profile)
        return cls(utility, creds, **options)

    def _run(self, flow: Flow[T]) -> T:
        changed = self._rotation.changed()
        if changed is not None:
            reloaded, old = self._rotation.try_reload(changed)
            self._after_reload(changed if reloaded else None, old)
        http = self._rotation.leases.acquire()
        try:
            return run_sync(flow, http, policy=self._policy, locks=self._locks)
        finally:
            idle = self._rotation.leases.release(http)
            if idle is not None:
                idle.close()

    def reload_certificate(
        self,
        cert: str | PathLike[str] | None = None,
        key: str | PathLike[str] | None = None,
    ) -> None:
        """Use a new client certificate (R31): rebuild the SSL context and connection pool
        from ``cert``/``key`` (default: the current paths, re-read), with the start-up
        checks (``ConfigurationError`` leaves the old certificate in use). Access tokens
        obtained before are refreshed over the new certificate before their next use.

        The client also notices on its own when the certificate or key file changes on disk
        (checked at most every ``cert_check_interval`` seconds, 30 by default, None: never)
        and reloads; calls already running finish on the old connections.
        """
        creds = with_files(self.credentials, cert, key)
        self._after_reload(creds, self._rotation.reload(creds))

    def _after_reload(self, creds: Credentials | None, old: httpx2.Client | None) -> None:
        if creds is not None:
            self._use_credentials(creds)
            self._http = self._rotation.leases.current
        if old is not None:
            old.close()

    def close(self) -> None:
        """Close the connection pools (calls still running finish first)."""
        for http in self._rotation.leases.drain():
            http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- OAuth --------------------------------------------------------------------------------

    def exchange_code(
        self,
        callback: str,
        pending: AuthorizationRequest | None = None,
        *,
        redirect_uri: str | None = None,
        code_verifier: str | None = None,
        key: str | None = None,
    ) -> tuple[str, Token]:
        """Exchange the callback (URL or query, checked against ``pending``) or a bare code
        for tokens (RFC 6749 4.1.3); stores them and returns ``(key, token)``."""
        return self._run(
            ops.exchange_code(
                self._context,
                callback,
                pending,
                redirect_uri=redirect_uri,
                code_verifier=code_verifier,
                key=key,
            )
        )

    def refresh(self, authorization: Authorization) -> Token:
        """Refresh the grant's access token now (RFC 6749 6); a rotated refresh token is saved
        before it is used (R20)."""
        return self._run(ops.force_refresh(self._context, self._key(authorization)))

    def client_token(self) -> Token:
        """The client-credentials token (RFC 6749 4.4) for Bulk, Authorization and
        ReadServiceStatus calls; cached until near expiry (R19)."""
        return self._run(ops.client_token(self._context))

    # -- customer data ------------------------------------------------------------------------

    @overload
    def usage_points(
        self, authorization: Authorization, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    def usage_points(self, authorization: Authorization, *, raw: Literal[True]) -> bytes: ...

    @overload
    def usage_points(
        self, authorization: Authorization, *, raw: bool = False
    ) -> Document | bytes: ...

    def usage_points(self, authorization: Authorization, *, raw: bool = False) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint``: the metering points the grant covers (ESPI
        UsagePoint feed), to pick what to fetch."""
        return self._run(ops.usage_points(self._context, self._key(authorization), raw=raw))

    @overload
    def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: bool = False
    ) -> Document | bytes: ...

    def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: bool = False
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint/{id}``: one usage point's resource, without its
        readings (ESPI UsagePoint)."""
        k = self._key(authorization)
        return self._run(ops.usage_points(self._context, k, usage_point, raw=raw))

    @overload
    def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[True],
    ) -> list[bytes]: ...

    @overload
    def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]: ...

    def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]:
        """``Batch/Subscription/{sub}/UsagePoint/{id}`` over ``[start, end)``, the PG&E "sync"
        call: one usage point with its readings, paged by date window and merged."""
        k = self._key(authorization)
        return self._run(
            ops.usage_point(self._context, k, usage_point, start=start, end=end, raw=raw)
        )

    @overload
    def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[True],
    ) -> list[bytes]: ...

    @overload
    def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]: ...

    def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]:
        """``Batch/Subscription/{sub}`` over ``[start, end)``: every usage point of the grant
        with its readings, paged by date window and merged."""
        k = self._key(authorization)
        return self._run(ops.subscription(self._context, k, start=start, end=end, raw=raw))

    def request_subscription_async(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> Accepted:
        """``Batch/Subscription/{sub}``, the PG&E "async" call: 202 now, a BatchList
        notification later whose URIs :meth:`get` fetches."""
        k = self._key(authorization)
        return self._run(ops.request_subscription_async(self._context, k, start=start, end=end))

    @overload
    def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes: ...

    def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint/{id}/MeterReading[/{mr}]``: a usage point's
        reading series and what each measures (ESPI MeterReading)."""
        return self._run(
            ops.customer_resource(
                self._context,
                self._key(authorization),
                lambda p, s: p.meter_readings(s, usage_point, meter_reading),
                raw=raw,
            )
        )

    @overload
    def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | bytes: ...

    def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | bytes:
        """``.../MeterReading/{mr}/IntervalBlock[/{ib}]`` over ``[start, end)``: the interval
        readings themselves (ESPI IntervalBlock)."""
        return self._run(
            ops.customer_resource(
                self._context,
                self._key(authorization),
                lambda p, s: p.interval_blocks(s, usage_point, meter_reading, interval_block),
                raw=raw,
                start=start,
                end=end,
            )
        )

    @overload
    def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes: ...

    def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint/{id}/UsageSummary[/{us}]``: billing-period totals
        and costs (ESPI UsageSummary)."""
        return self._run(
            ops.customer_resource(
                self._context,
                self._key(authorization),
                lambda p, s: p.usage_summaries(s, usage_point, usage_summary),
                raw=raw,
            )
        )

    @overload
    def reading_types(
        self,
        authorization: Authorization,
        reading_type: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    def reading_types(
        self, authorization: Authorization, reading_type: str | None = None, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    def reading_types(
        self, authorization: Authorization, reading_type: str | None = None, *, raw: bool = False
    ) -> Document | bytes: ...

    def reading_types(
        self, authorization: Authorization, reading_type: str | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """``ReadingType[/{id}]``: unit, multiplier and interval of reading series, to scale
        raw values (ESPI ReadingType)."""
        url = self.paths.reading_types(reading_type)
        return self._run(ops.shared_resource(self._context, self._key(authorization), url, raw=raw))

    @overload
    def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: bool = False
    ) -> Document | bytes: ...

    def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """``LocalTimeParameters[/{id}]``: time zone offset and DST rules, to show local times
        (ESPI LocalTimeParameters)."""
        url = self.paths.local_time_parameters(ltp)
        return self._run(ops.shared_resource(self._context, self._key(authorization), url, raw=raw))

    @overload
    def retail_customer(
        self,
        authorization: Authorization,
        retail_customer: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    def retail_customer(
        self,
        authorization: Authorization,
        retail_customer: str | None = None,
        *,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    def retail_customer(
        self,
        authorization: Authorization,
        retail_customer: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes: ...

    def retail_customer(
        self, authorization: Authorization, retail_customer: str | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """``RetailCustomer/{id}``: the customer's account record, when the grant's scope
        covers it (ESPI RetailCustomer)."""
        k = self._key(authorization)
        return self._run(ops.retail_customer(self._context, k, retail_customer, raw=raw))

    @overload
    def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: bool = False
    ) -> Document | bytes: ...

    def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """A URI from a BatchList notification, fetched verbatim (``correlationID`` kept);
        checked to be the custodian's before it is sent."""
        k = None if authorization is None else self._key(authorization)
        return self._run(ops.get(self._context, uri, k, raw=raw))

    # -- third-party administration -------------------------------------------------------------

    def bulk(
        self,
        bulk_id: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> Accepted:
        """``Batch/Bulk/{id}`` over ``[start, end)`` with the client token: every customer of a
        bulk grant; 202 now, a BatchList notification later."""
        return self._run(ops.bulk(self._context, bulk_id, start=start, end=end))

    @overload
    def authorizations(self, *, raw: Literal[False] = False) -> Document: ...

    @overload
    def authorizations(self, *, raw: Literal[True]) -> bytes: ...

    @overload
    def authorizations(self, *, raw: bool = False) -> Document | bytes: ...

    def authorizations(self, *, raw: bool = False) -> Document | bytes:
        """``Authorization``: every grant the custodian holds for this third party (client
        token), to reconcile the local ones."""
        return self._run(ops.authorizations(self._context, raw=raw))

    @overload
    def authorization(self, authorization_id: str, *, raw: Literal[False] = False) -> Document: ...

    @overload
    def authorization(self, authorization_id: str, *, raw: Literal[True]) -> bytes: ...

    @overload
    def authorization(self, authorization_id: str, *, raw: bool = False) -> Document | bytes: ...

    def authorization(self, authorization_id: str, *, raw: bool = False) -> Document | bytes:
        """``Authorization/{id}``: one grant's status, scope and resourceURI (client token)."""
        return self._run(ops.authorizations(self._context, authorization_id, raw=raw))

    def revoke(self, authorization: str) -> None:
        """Revoke at the custodian (ESPI DELETE) and drop the local token; ``authorization``
        is the grant's store key or the custodian's authorization id."""
        self._run(ops.revoke(self._context, authorization))

    @overload
    def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: bool = False
    ) -> Document | bytes: ...

    def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: bool = False
    ) -> Document | bytes:
        """``ApplicationInformation/{id}``: this third party's registration (endpoints,
        scopes), read with the registration access token."""
        return self._run(
            ops.application_information(
                self._context, application_id, _secret(registration_token), raw=raw
            )
        )

    @overload
    def service_status(self, *, raw: Literal[False] = False) -> ServiceStatus: ...

    @overload
    def service_status(self, *, raw: Literal[True]) -> bytes: ...

    @overload
    def service_status(self, *, raw: bool = False) -> ServiceStatus | bytes: ...

    def service_status(self, *, raw: bool = False) -> ServiceStatus | bytes:
        """``ReadServiceStatus``: whether the custodian's data service is up (ESPI
        ServiceStatus), with the client token."""
        return self._run(ops.service_status(self._context, raw=raw))


class AsyncClient(_Base):
    """The same arguments and methods as :class:`Client`, awaitable; token refresh is
    single-flight across tasks (SECURITY R52). Token-store I/O, including a wait for another
    process's lock on a token, runs in worker threads, never on the event loop."""

    def __init__(
        self,
        profile: UtilityProfile,
        credentials: Credentials,
        *,
        token_store: TokenStore | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        timeout: float | httpx2.Timeout | None = None,
        max_attempts: int = 4,
        deadline: float | None = 300.0,
        rate_limit_per_s: float | None = None,
        rate_limit_shared: bool = True,
        rate_limit_dir: str | PathLike[str] | None = None,
        circuit_breaker: CircuitBreaker | bool = True,
        leeway: float = 60.0,
        limits: Limits | None = None,
        client_scope: str | None = None,
        cert_check_interval: float | None = 30.0,
        clock: Callable[[], float] = _wall_clock,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            profile,
            credentials,
            token_store=token_store,
            max_attempts=max_attempts,
            deadline=deadline,
            rate_limit_per_s=rate_limit_per_s,
            rate_limit_shared=rate_limit_shared,
            rate_limit_dir=rate_limit_dir,
            circuit_breaker=circuit_breaker,
            leeway=leeway,
            limits=limits,
            client_scope=client_scope,
            cert_check_interval=cert_check_interval,
            clock=clock,
            rng=rng,
            sleep=sleep,
        )
        self._http = make_async_client(
            profile, credentials, transport=transport, timeout=_timeout(timeout)
        )
        self._rotation: Rotation[httpx2.AsyncClient] = Rotation(
            self._http,
            credentials,
            lambda creds: make_async_client(
                profile, creds, transport=transport, timeout=_timeout(timeout)
            ),
            self._tracker,
            self._cert_check_interval,
        )

    @classmethod
    def for_simulator(
        cls, registration: str | PathLike[str], **options: Unpack[AsyncClientOptions]
    ) -> AsyncClient:
        """An async client for the simulator whose ``registration.json`` is at
        ``registration``."""
        profile, creds = cls._simulator_config(registration)
        return cls(profile, creds, **options)

    @classmethod
    def from_config(
        cls,
        path: str | PathLike[str] | None = None,
        *,
        profile: str | None = None,
        **options: Unpack[AsyncClientOptions],
    ) -> AsyncClient:
        """:meth:`Client.from_config`, for the async client (the file is read here, once)."""
        utility, creds = load_config(None if path is None else Path(path), profile=profile)
        return cls(utility, creds, **options)

    async def _akey(self, authorization: Authorization) -> str:
        # The store lookups behind a key (a database query) run off the event loop.
        return await anyio.to_thread.run_sync(self._key, authorization)

    async def _run(self, flow: Flow[T]) -> T:
        changed = self._rotation.changed()  # two stat calls at most, once per interval
        if changed is not None:
            reloaded, old = await anyio.to_thread.run_sync(self._rotation.try_reload, changed)
            await self._after_reload(changed if reloaded else None, old)
        http = self._rotation.leases.acquire()
        try:
            return await run_async(flow, http, policy=self._policy, locks=self._locks)
        finally:
            idle = self._rotation.leases.release(http)
            if idle is not None:
                await idle.aclose()

    async def reload_certificate(
        self,
        cert: str | PathLike[str] | None = None,
        key: str | PathLike[str] | None = None,
    ) -> None:
        """:meth:`Client.reload_certificate`; the files are read in a worker thread."""
        creds = with_files(self.credentials, cert, key)
        await self._after_reload(
            creds, await anyio.to_thread.run_sync(self._rotation.reload, creds)
        )

    async def _after_reload(
        self, creds: Credentials | None, old: httpx2.AsyncClient | None
    ) -> None:
        if creds is not None:
            self._use_credentials(creds)
            self._http = self._rotation.leases.current
        if old is not None:
            await old.aclose()

    async def aclose(self) -> None:
        """Close the connection pools (calls still running finish first)."""
        for http in self._rotation.leases.drain():
            await http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def exchange_code(
        self,
        callback: str,
        pending: AuthorizationRequest | None = None,
        *,
        redirect_uri: str | None = None,
        code_verifier: str | None = None,
        key: str | None = None,
    ) -> tuple[str, Token]:
        """Exchange the callback (URL or query, checked against ``pending``) or a bare code
        for tokens (RFC 6749 4.1.3); stores them and returns ``(key, token)``."""
        return await self._run(
            ops.exchange_code(
                self._context,
                callback,
                pending,
                redirect_uri=redirect_uri,
                code_verifier=code_verifier,
                key=key,
            )
        )

    async def refresh(self, authorization: Authorization) -> Token:
        """Refresh the grant's access token now (RFC 6749 6); a rotated refresh token is saved
        before it is used (R20)."""
        return await self._run(ops.force_refresh(self._context, await self._akey(authorization)))

    async def client_token(self) -> Token:
        """The client-credentials token (RFC 6749 4.4) for Bulk, Authorization and
        ReadServiceStatus calls; cached until near expiry (R19)."""
        return await self._run(ops.client_token(self._context))

    @overload
    async def usage_points(
        self, authorization: Authorization, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def usage_points(self, authorization: Authorization, *, raw: Literal[True]) -> bytes: ...

    @overload
    async def usage_points(
        self, authorization: Authorization, *, raw: bool = False
    ) -> Document | bytes: ...

    async def usage_points(
        self, authorization: Authorization, *, raw: bool = False
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint``: the metering points the grant covers (ESPI
        UsagePoint feed), to pick what to fetch."""
        return await self._run(
            ops.usage_points(self._context, await self._akey(authorization), raw=raw)
        )

    @overload
    async def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    async def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: bool = False
    ) -> Document | bytes: ...

    async def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: bool = False
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint/{id}``: one usage point's resource, without its
        readings (ESPI UsagePoint)."""
        k = await self._akey(authorization)
        return await self._run(ops.usage_points(self._context, k, usage_point, raw=raw))

    @overload
    async def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[True],
    ) -> list[bytes]: ...

    @overload
    async def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]: ...

    async def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]:
        """``Batch/Subscription/{sub}/UsagePoint/{id}`` over ``[start, end)``, the PG&E "sync"
        call: one usage point with its readings, paged by date window and merged."""
        k = await self._akey(authorization)
        return await self._run(
            ops.usage_point(self._context, k, usage_point, start=start, end=end, raw=raw)
        )

    @overload
    async def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[True],
    ) -> list[bytes]: ...

    @overload
    async def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]: ...

    async def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]:
        """``Batch/Subscription/{sub}`` over ``[start, end)``: every usage point of the grant
        with its readings, paged by date window and merged."""
        k = await self._akey(authorization)
        return await self._run(ops.subscription(self._context, k, start=start, end=end, raw=raw))

    async def request_subscription_async(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> Accepted:
        """``Batch/Subscription/{sub}``, the PG&E "async" call: 202 now, a BatchList
        notification later whose URIs :meth:`get` fetches."""
        k = await self._akey(authorization)
        return await self._run(
            ops.request_subscription_async(self._context, k, start=start, end=end)
        )

    @overload
    async def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    async def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes: ...

    async def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint/{id}/MeterReading[/{mr}]``: a usage point's
        reading series and what each measures (ESPI MeterReading)."""
        return await self._run(
            ops.customer_resource(
                self._context,
                await self._akey(authorization),
                lambda p, s: p.meter_readings(s, usage_point, meter_reading),
                raw=raw,
            )
        )

    @overload
    async def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    async def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | bytes: ...

    async def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | bytes:
        """``.../MeterReading/{mr}/IntervalBlock[/{ib}]`` over ``[start, end)``: the interval
        readings themselves (ESPI IntervalBlock)."""
        return await self._run(
            ops.customer_resource(
                self._context,
                await self._akey(authorization),
                lambda p, s: p.interval_blocks(s, usage_point, meter_reading, interval_block),
                raw=raw,
                start=start,
                end=end,
            )
        )

    @overload
    async def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    async def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes: ...

    async def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint/{id}/UsageSummary[/{us}]``: billing-period totals
        and costs (ESPI UsageSummary)."""
        return await self._run(
            ops.customer_resource(
                self._context,
                await self._akey(authorization),
                lambda p, s: p.usage_summaries(s, usage_point, usage_summary),
                raw=raw,
            )
        )

    @overload
    async def reading_types(
        self,
        authorization: Authorization,
        reading_type: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def reading_types(
        self, authorization: Authorization, reading_type: str | None = None, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    async def reading_types(
        self, authorization: Authorization, reading_type: str | None = None, *, raw: bool = False
    ) -> Document | bytes: ...

    async def reading_types(
        self, authorization: Authorization, reading_type: str | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """``ReadingType[/{id}]``: unit, multiplier and interval of reading series, to scale
        raw values (ESPI ReadingType)."""
        url = self.paths.reading_types(reading_type)
        return await self._run(
            ops.shared_resource(self._context, await self._akey(authorization), url, raw=raw)
        )

    @overload
    async def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    async def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: bool = False
    ) -> Document | bytes: ...

    async def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """``LocalTimeParameters[/{id}]``: time zone offset and DST rules, to show local times
        (ESPI LocalTimeParameters)."""
        url = self.paths.local_time_parameters(ltp)
        return await self._run(
            ops.shared_resource(self._context, await self._akey(authorization), url, raw=raw)
        )

    @overload
    async def retail_customer(
        self,
        authorization: Authorization,
        retail_customer: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def retail_customer(
        self,
        authorization: Authorization,
        retail_customer: str | None = None,
        *,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    async def retail_customer(
        self,
        authorization: Authorization,
        retail_customer: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes: ...

    async def retail_customer(
        self, authorization: Authorization, retail_customer: str | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """``RetailCustomer/{id}``: the customer's account record, when the grant's scope
        covers it (ESPI RetailCustomer)."""
        k = await self._akey(authorization)
        return await self._run(ops.retail_customer(self._context, k, retail_customer, raw=raw))

    @overload
    async def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    async def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: bool = False
    ) -> Document | bytes: ...

    async def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """A URI from a BatchList notification, fetched verbatim (``correlationID`` kept);
        checked to be the custodian's before it is sent."""
        k = None if authorization is None else await self._akey(authorization)
        return await self._run(ops.get(self._context, uri, k, raw=raw))

    async def bulk(
        self,
        bulk_id: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> Accepted:
        """``Batch/Bulk/{id}`` over ``[start, end)`` with the client token: every customer of a
        bulk grant; 202 now, a BatchList notification later."""
        return await self._run(ops.bulk(self._context, bulk_id, start=start, end=end))

    @overload
    async def authorizations(self, *, raw: Literal[False] = False) -> Document: ...

    @overload
    async def authorizations(self, *, raw: Literal[True]) -> bytes: ...

    @overload
    async def authorizations(self, *, raw: bool = False) -> Document | bytes: ...

    async def authorizations(self, *, raw: bool = False) -> Document | bytes:
        """``Authorization``: every grant the custodian holds for this third party (client
        token), to reconcile the local ones."""
        return await self._run(ops.authorizations(self._context, raw=raw))

    @overload
    async def authorization(
        self, authorization_id: str, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def authorization(self, authorization_id: str, *, raw: Literal[True]) -> bytes: ...

    @overload
    async def authorization(
        self, authorization_id: str, *, raw: bool = False
    ) -> Document | bytes: ...

    async def authorization(self, authorization_id: str, *, raw: bool = False) -> Document | bytes:
        """``Authorization/{id}``: one grant's status, scope and resourceURI (client token)."""
        return await self._run(ops.authorizations(self._context, authorization_id, raw=raw))

    async def revoke(self, authorization: str) -> None:
        """Revoke at the custodian (ESPI DELETE) and drop the local token; ``authorization``
        is the grant's store key or the custodian's authorization id."""
        await self._run(ops.revoke(self._context, authorization))

    @overload
    async def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    async def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: bool = False
    ) -> Document | bytes: ...

    async def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: bool = False
    ) -> Document | bytes:
        """``ApplicationInformation/{id}``: this third party's registration (endpoints,
        scopes), read with the registration access token."""
        return await self._run(
            ops.application_information(
                self._context, application_id, _secret(registration_token), raw=raw
            )
        )

    @overload
    async def service_status(self, *, raw: Literal[False] = False) -> ServiceStatus: ...

    @overload
    async def service_status(self, *, raw: Literal[True]) -> bytes: ...

    @overload
    async def service_status(self, *, raw: bool = False) -> ServiceStatus | bytes: ...

    async def service_status(self, *, raw: bool = False) -> ServiceStatus | bytes:
        """``ReadServiceStatus``: whether the custodian's data service is up (ESPI
        ServiceStatus), with the client token."""
        return await self._run(ops.service_status(self._context, raw=raw))
