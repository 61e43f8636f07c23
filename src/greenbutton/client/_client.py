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

import random
import time
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TypeVar, Unpack

import anyio.to_thread
import httpx2

from ..espi._flow import Flow
from ..models import Credentials, UtilityProfile
from ..oauth import TokenStore
from ..parse import Limits
from ._api_async import _AsyncAPI
from ._api_sync import _SyncAPI
from ._base import (
    AsyncClientOptions,
    ClientOptions,
    _timeout,
    _wall_clock,
)
from ._breaker import CircuitBreaker
from ._config import load_config
from ._flows import run_async, run_sync
from ._rotation import Rotation, with_files
from ._transport import make_async_client, make_client

__all__ = ["AsyncClient", "AsyncClientOptions", "Client", "ClientOptions"]

T = TypeVar("T")


class Client(_SyncAPI):
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

    ``stats`` holds this client's request latencies and rate-limit waits as histograms
    (``stats.fetch_seconds``, ``stats.rate_limit_wait_seconds``); ``/metrics`` shows them.
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


class AsyncClient(_AsyncAPI):
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
