"""Transport: the mutual-TLS context, the httpx2 client factory, retry policy, deadlines, the
per-utility rate limit and the mapping of httpx2 errors onto ours.

Nothing here knows OAuth or ESPI. The rules it enforces, and why:

* **TLS fails closed** (SECURITY R28-R30). One :class:`ssl.SSLContext` per client, built by
  :func:`build_ssl_context`: system trust (plus the custodian's CA bundle when given), TLS >=
  1.2, hostname check and ``CERT_REQUIRED``, the client certificate loaded with
  ``load_cert_chain``. It is passed as ``verify=ctx`` (``cert=`` is deprecated in httpx). Bad
  certificate material is a :class:`ConfigurationError` at start-up, not a handshake failure
  at the first request: a key readable by others, a key that does not match, an expired or
  not-yet-valid certificate, a wrong password, a missing file.
* **No redirects** (R25): a 3xx is an answer for the caller to refuse, never followed with our
  certificate or token. **No environment** (``trust_env=False``, b7): proxies and ``.netrc``
  from the environment are not applied to credentialed calls.
* **https only**, except ``http://`` to a loopback *IP literal* (the simulator, tests), decided on
  the parsed URL with no environment escape hatch (authlib 1.8 fixed a loopback-lookalike
  bypass in exactly this check). Checked for the profile at construction and for every request.
* **Retries are pure functions** (STYLE 3, R57): :func:`retry_delay` decides, with the RNG and
  the wall clock injected; the drivers sleep. GETs are retried on connect errors, read
  timeouts, 429, 502, 503 and 504; other requests (token POSTs above all: a refresh may have
  rotated the token) only when the request provably never left (a connect-phase failure) or
  on 429/503, which say it was not processed. TLS failures are never retried (R28).
* **Egress guard** (R47, defence in depth behind :func:`check_url`): the client's transport
  resolves the custodian host once per new connection, refuses unless every address is
  public unicast (loopback, link-local incl. 169.254.169.254, RFC 1918 and other private or
  special-purpose ranges, unique-local, multicast, unspecified, and IPv4 inside IPv6 such as
  ``::ffff:10.0.0.1`` judged by that IPv4) and connects to the checked IP literal, so a DNS
  answer that changes in between (rebinding) cannot move the connection. It is an httpcore2
  network backend (:class:`GuardedBackend`), not socket code of ours: httpcore2 still
  connects, and passes the URL's host name as ``server_hostname``, so SNI and the TLS
  hostname check are unchanged, as is the Host header. A profile marked ``local`` (the
  simulator, loopback URLs from the config file) may reach loopback and private addresses.
  Refusals are :class:`EgressDenied` (a :class:`ConnectError`), raised before any socket.
* **Errors carry no secrets** (R49): :func:`map_transport_error` keeps the URL without its query
  and names the TLS hint; the httpx2 exception is chained as ``__cause__``.
* **What the process's requests cost** (``/metrics``, DESIGN 3.7): :class:`ClientStats` holds
  two :class:`Histogram` s per client, the latency of each resource request (recorded by the
  exchange loop, :mod:`._send_async`) and the time each request waited for the rate limit
  (recorded by :class:`Reserving`, so every limiter, the database one included, counts).
  They are plain counters, not ``prometheus_client`` objects: the client layer does not
  depend on that optional extra; storage's ``ClientCollector`` turns them into series.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import ipaddress
import math
import os
import random
import socket
import ssl
import stat
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread
import httpcore2
import httpx2

from .._errors import (
    ConfigurationError,
    ConnectError,
    EgressDenied,
    GreenButtonError,
    GreenButtonWarning,
    RequestTimeout,
    TransportError,
)
from .._urls import check_url, safe_url
from .._util import parse_retry_after  # the one Retry-After rule (issue 13.4)
from ..models import Credentials, UtilityProfile
from ._redact import get_logger, install_redaction, redact

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "TLS_HINT",
    "USER_AGENT",
    "AsyncGuardedBackend",
    "ClientStats",
    "Deadline",
    "EgressDenied",
    "EgressGuard",
    "GuardedBackend",
    "Histogram",
    "RateLimiter",
    "Resolver",
    "address_problem",
    "build_ssl_context",
    "check_url",
    "make_async_client",
    "make_client",
    "map_transport_error",
    "parse_retry_after",
    "resolve",
    "retry_delay",
    "safe_url",
]

log = get_logger("greenbutton.transport")


def _version() -> str:
    try:
        return metadata.version("greenbutton")
    except metadata.PackageNotFoundError:  # running from a source tree without metadata
        return "0"


USER_AGENT = f"greenbutton/{_version()}"

#: Connect fast, read long (a Bulk download streams for minutes between reads of its body
#: chunks only when the custodian is slow, so 60 s per read is generous, not unbounded); the
#: overall cap is a :class:`Deadline`, not these.
DEFAULT_TIMEOUT = httpx2.Timeout(connect=10.0, read=60.0, write=30.0, pool=30.0)

#: Enough parallelism for bounded-concurrency bulk syncs; the rate limiter is the real bound.
DEFAULT_LIMITS = httpx2.Limits(
    max_connections=10, max_keepalive_connections=10, keepalive_expiry=30.0
)

TLS_HINT = "check the client certificate and the custodian CA"

# -- TLS ----------------------------------------------------------------------------------


def _readable(path: Path, what: str, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{what} not found: {path} (set {setting})") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{what} is a directory, not a file: {path}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror}") from None


def _check_key_mode(path: Path) -> None:
    """R29: a private key readable by group or others is refused, not silently used."""
    if os.name != "posix":
        return  # Windows ACLs are not mode bits; nothing meaningful to check here
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            f"client key {path} is readable by group or others (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _check_cert_and_key(
    cert_pem: bytes,
    key_pem: bytes,
    creds: Credentials,
    *,
    now: float,
    warn_days: int,
) -> None:
    """Readable errors for what ``load_cert_chain`` would only call ``PEM lib`` or mismatch."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise ConfigurationError(
            f"client certificate {creds.client_cert} is not a PEM certificate"
        ) from None
    cert = certs[0]  # the leaf; any others are its chain
    password = creds.key_password.reveal().encode() if creds.key_password else None
    try:
        key = serialization.load_pem_private_key(key_pem, password=password)
    except TypeError:
        if password is None:
            raise ConfigurationError(
                f"client key {creds.client_key} is encrypted: set the key password "
                "(key_password_env in the config file or GREENBUTTON_KEY_PASSWORD)"
            ) from None
        raise ConfigurationError(
            f"client key {creds.client_key} is not encrypted but a key password was given; "
            "remove the key password setting"
        ) from None
    except ValueError:
        if password is not None:
            raise ConfigurationError(
                f"cannot decrypt client key {creds.client_key}: wrong key password"
            ) from None
        raise ConfigurationError(
            f"client key {creds.client_key} is not a PEM private key"
        ) from None

    def spki(public_key: PublicKeyTypes) -> bytes:
        return public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    if spki(key.public_key()) != spki(cert.public_key()):
        raise ConfigurationError(
            f"client key {creds.client_key} does not match certificate {creds.client_cert}"
        )
    not_before = cert.not_valid_before_utc.timestamp()
    not_after = cert.not_valid_after_utc.timestamp()
    if now < not_before:
        raise ConfigurationError(
            f"client certificate {creds.client_cert} is not yet valid "
            f"(valid from {_utc(not_before)}); check the system clock or the certificate"
        )
    if now >= not_after:
        raise ConfigurationError(
            f"client certificate {creds.client_cert} expired on {_utc(not_after)}; "
            "renew it with the data custodian"
        )
    days_left = (not_after - now) / 86400
    if days_left <= warn_days:
        warnings.warn(
            f"client certificate {creds.client_cert} expires on {_utc(not_after)} "
            f"(in {math.floor(days_left)} days); renew it with the data custodian",
            GreenButtonWarning,
            stacklevel=3,
        )


def build_ssl_context(
    creds: Credentials,
    *,
    now: float | None = None,
    warn_days: int = 30,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
) -> ssl.SSLContext:
    """The mutual-TLS context for one client (SECURITY R28-R30).

    Raises :class:`ConfigurationError` with a one-line reason when the certificate material
    cannot be used, and warns (:class:`GreenButtonWarning`) ``warn_days`` before expiry.
    ``now`` (epoch seconds) is for tests; ``minimum_version`` may be raised to TLS 1.3.
    """
    if minimum_version < ssl.TLSVersion.TLSv1_2:
        raise ConfigurationError("TLS versions below 1.2 are not allowed")
    cert_pem = _readable(
        creds.client_cert, "client certificate", "client_cert or GREENBUTTON_CLIENT_CERT"
    )
    key_pem = _readable(creds.client_key, "client key", "client_key or GREENBUTTON_CLIENT_KEY")
    _check_key_mode(creds.client_key)
    _check_cert_and_key(
        cert_pem, key_pem, creds, now=time.time() if now is None else now, warn_days=warn_days
    )
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if creds.ca_cert is not None:
        _readable(creds.ca_cert, "custodian CA bundle", "ca_cert or GREENBUTTON_CA_CERT")
        try:
            ctx.load_verify_locations(cafile=str(creds.ca_cert))
        except ssl.SSLError:
            raise ConfigurationError(
                f"custodian CA bundle {creds.ca_cert} holds no PEM certificate"
            ) from None
    ctx.minimum_version = minimum_version
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    password = creds.key_password.reveal() if creds.key_password else None
    try:
        ctx.load_cert_chain(str(creds.client_cert), str(creds.client_key), password)
    except (ssl.SSLError, OSError) as exc:  # checked above; this is a last line of defence
        raise ConfigurationError(
            f"cannot load client certificate {creds.client_cert} with key "
            f"{creds.client_key}: {getattr(exc, 'reason', None) or exc.__class__.__name__}"
        ) from None
    return ctx


# -- URLs ---------------------------------------------------------------------------------


def _check_profile(profile: UtilityProfile) -> None:
    check_url(profile.token_url, what=f"profile {profile.name!r} token_url")
    check_url(profile.resource_url, what=f"profile {profile.name!r} resource_url")
    check_url(profile.authorize_url, what=f"profile {profile.name!r} authorize_url")


# -- egress guard (R47) ---------------------------------------------------------------------

#: (host, port) -> the addresses it resolves to, as strings; :func:`resolve` by default,
#: a stub in tests.
Resolver = Callable[[str, int], Sequence[str]]

# Special-purpose ranges (IANA IPv4/IPv6 special-purpose address registries) listed here, not
# only ``ipaddress``'s is_private/is_global, whose tables have been wrong in some CPython
# releases (gh-113171, CVE-2024-4032). Either check refusing is enough to refuse.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48",
        "100::/64", "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16",
        "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo client), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_problem(address: str) -> str | None:
    """Why ``address`` (an IP literal) is not a public unicast address, or None if it is.

    IPv4 carried inside IPv6 (``::ffff:10.0.0.1``, NAT64, 6to4, Teredo) is judged by the
    IPv4 address it reaches.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            problem = address_problem(str(inner))
            return f"carries {inner}: {problem}" if problem else None
    for label, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local (cloud metadata lives here)", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return label
    if any(ip in net for net in _NOT_PUBLIC if net.version == ip.version):
        return "special-purpose"
    if not ip.is_global:
        return "not global"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection, in resolver order, once."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class EgressGuard:
    """Resolve once, check every address, return them for the connection to use (R47).

    ``allow_local`` (a profile marked ``local``: the simulator) admits loopback, private and
    link-local addresses; unspecified and multicast addresses are never a custodian.
    """

    def __init__(self, *, allow_local: bool = False, resolver: Resolver | None = None):
        self.allow_local = allow_local
        self.resolver = resolver or resolve

    def addresses(self, host: str, port: int) -> list[str]:
        try:
            found = list(self.resolver(host, port))
        except OSError as exc:  # gaierror: as httpcore2 reports it, a (retryable) connect error
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not found:
            raise httpcore2.ConnectError(f"{host} resolves to no address")
        for address in found:
            problem = address_problem(address)
            if problem is None:
                continue
            if self.allow_local and not problem.startswith(("unspecified", "multicast")):
                continue
            raise EgressDenied(
                f"refusing to connect to {host}: it resolves to {address}, which is "
                f"{problem}, not a public address; only a profile marked local (the "
                "simulator) may reach such addresses (SECURITY R47)",
                url=f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}",
            )
        return found


class GuardedBackend(httpcore2.NetworkBackend):
    """An httpcore2 network backend that connects only to addresses its guard checked.

    ``connect_tcp`` gets the URL's host; it resolves it once through the guard and hands the
    checked IP literals to the real backend, so a DNS answer that changes between check and
    connect (rebinding) cannot redirect the connection. TLS is unaffected: httpcore2 passes
    the URL's host as ``server_hostname``, so SNI and the hostname check use the name, and
    the Host header comes from the request.
    """

    def __init__(self, guard: EgressGuard, inner: httpcore2.NetworkBackend | None = None):
        self.guard = guard
        self.inner = inner if inner is not None else httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        failure: Exception | None = None
        for address in self.guard.addresses(host, port):
            try:
                return self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc  # try the next checked address, as create_connection would
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        raise EgressDenied("Unix sockets are not a data custodian (SECURITY R47)")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class AsyncGuardedBackend(httpcore2.AsyncNetworkBackend):
    """The async twin of :class:`GuardedBackend`; resolution runs in a worker thread."""

    def __init__(self, guard: EgressGuard, inner: httpcore2.AsyncNetworkBackend | None = None):
        self.guard = guard
        self.inner = inner if inner is not None else httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        failure: Exception | None = None
        addresses = await anyio.to_thread.run_sync(self.guard.addresses, host, port)
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise EgressDenied("Unix sockets are not a data custodian (SECURITY R47)")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx2.HTTPTransport):
    """``httpx2.HTTPTransport`` whose connection pool connects through a :class:`GuardedBackend`.

    httpx2 2.16 takes no ``network_backend`` argument, so the pool it builds is replaced
    by an ``httpcore2.ConnectionPool`` (public API) with the same TLS context and limits.
    """

    def __init__(self, ssl_context: ssl.SSLContext, limits: httpx2.Limits, guard: EgressGuard):
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self._pool = httpcore2.ConnectionPool(
            ssl_context=ssl_context,
            network_backend=GuardedBackend(guard),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )


class AsyncGuardedTransport(httpx2.AsyncHTTPTransport):
    """The async twin of :class:`GuardedTransport`."""

    def __init__(self, ssl_context: ssl.SSLContext, limits: httpx2.Limits, guard: EgressGuard):
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context,
            network_backend=AsyncGuardedBackend(guard),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )


# -- clients ------------------------------------------------------------------------------


def _on_request(request: httpx2.Request) -> None:
    check_url(request.url, what="request URL")
    log.debug("%s %s", request.method, safe_url(request.url))


def _on_response(response: httpx2.Response) -> None:
    method, url = response.request.method, safe_url(response.request.url)
    status = response.status_code
    # The fields again as extras, for structured (JSON) logs; the URL without its query.
    extra = {"method": method, "url": url, "status": status}
    log.debug("%s %s -> %d", method, url, status, extra=extra)


async def _on_request_async(request: httpx2.Request) -> None:
    _on_request(request)


async def _on_response_async(response: httpx2.Response) -> None:
    _on_response(response)


def _client_kwargs(
    profile: UtilityProfile,
    creds: Credentials,
    *,
    timeout: httpx2.Timeout | None,
    limits: httpx2.Limits | None,
) -> dict[str, object]:
    _check_profile(profile)
    install_redaction()  # idempotent: whoever makes a client gets redacted library logs (R49)
    kwargs: dict[str, object] = {
        "timeout": timeout if timeout is not None else DEFAULT_TIMEOUT,
        "follow_redirects": False,
        "trust_env": False,
        "headers": {"User-Agent": USER_AGENT},
    }
    return kwargs


def make_client(
    profile: UtilityProfile,
    creds: Credentials,
    *,
    transport: httpx2.BaseTransport | None = None,
    timeout: httpx2.Timeout | None = None,
    limits: httpx2.Limits | None = None,
    resolver: Resolver | None = None,
) -> httpx2.Client:
    """An ``httpx2.Client`` for one data custodian: mutual TLS, no redirects, explicit timeouts,
    connections only to checked public addresses unless ``profile.local`` (R47).

    ``transport`` replaces the network layer, TLS and egress guard included, and is for
    tests (``httpx2.MockTransport``); with it the certificate files are not read.
    ``resolver`` replaces DNS resolution (tests).
    """
    kwargs = _client_kwargs(profile, creds, timeout=timeout, limits=limits)
    if transport is None:
        guard = EgressGuard(allow_local=profile.local, resolver=resolver)
        transport = GuardedTransport(build_ssl_context(creds), limits or DEFAULT_LIMITS, guard)
    return httpx2.Client(
        transport=transport,
        event_hooks={"request": [_on_request], "response": [_on_response]},
        **kwargs,  # type: ignore[arg-type]
    )


def make_async_client(
    profile: UtilityProfile,
    creds: Credentials,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    timeout: httpx2.Timeout | None = None,
    limits: httpx2.Limits | None = None,
    resolver: Resolver | None = None,
) -> httpx2.AsyncClient:
    """The ``httpx2.AsyncClient`` twin of :func:`make_client`."""
    kwargs = _client_kwargs(profile, creds, timeout=timeout, limits=limits)
    if transport is None:
        guard = EgressGuard(allow_local=profile.local, resolver=resolver)
        ctx = build_ssl_context(creds)
        transport = AsyncGuardedTransport(ctx, limits or DEFAULT_LIMITS, guard)
    return httpx2.AsyncClient(
        transport=transport,
        event_hooks={"request": [_on_request_async], "response": [_on_response_async]},
        **kwargs,  # type: ignore[arg-type]
    )


# -- errors -------------------------------------------------------------------------------

_TLS_WORDS = ("ssl", "tls", "certificate", "handshake", "alert")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_tls(exc: BaseException) -> bool:
    for link in _chain(exc):
        if isinstance(link, GreenButtonError):
            continue  # our own messages mention certificates in hints; look at the causes
        if isinstance(link, ssl.SSLError | ssl.CertificateError):
            return True
        if any(word in str(link).lower() for word in _TLS_WORDS):
            return True
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    # httpx2 messages do not carry URLs or headers today; redact anyway, in case one does.
    return redact(text.replace("\r", " ").replace("\n", " "))[:300]


def map_transport_error(exc: Exception, url: str | httpx2.URL) -> TransportError:
    """Our :class:`TransportError` for an httpx2 (or socket/TLS) failure on ``url``.

    TLS failures, and the post-handshake disconnects and read errors by which a server
    rejects a client certificate under TLS 1.3, become :class:`ConnectError` with the hint
    to check the certificate and CA; timeouts become :class:`RequestTimeout`. The result
    has ``__cause__`` set to ``exc`` and its message never shows the query of ``url``.
    """
    where = safe_url(url)
    mapped: TransportError
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, httpx2.TimeoutException):
        phase = {
            httpx2.ConnectTimeout: "connecting to",
            httpx2.ReadTimeout: "waiting for an answer from",
            httpx2.WriteTimeout: "sending the request to",
            httpx2.PoolTimeout: "waiting for a free connection to",
        }.get(type(exc), "talking to")
        mapped = RequestTimeout(f"timed out {phase} {where}", url=where)
    elif isinstance(exc, httpx2.ConnectError | ssl.SSLError | ConnectionError) and _is_tls(exc):
        mapped = ConnectError(
            f"TLS handshake with {where} failed ({_reason(exc)}); {TLS_HINT}", url=where
        )
    elif isinstance(exc, httpx2.ConnectError | ConnectionRefusedError | OSError):
        mapped = ConnectError(f"cannot connect to {where}: {_reason(exc)}", url=where)
    elif isinstance(exc, httpx2.ReadError | httpx2.WriteError | httpx2.RemoteProtocolError):
        # Under TLS 1.3 the server checks our certificate after the handshake: a rejected
        # or missing one shows up here, as a dropped connection, not as a TLS error.
        mapped = ConnectError(
            f"connection to {where} was closed or reset ({_reason(exc)}); "
            f"if this happens on every call, {TLS_HINT}",
            url=where,
        )
    elif isinstance(exc, httpx2.DecodingError):
        mapped = TransportError(f"cannot decode the response from {where}", url=where)
    else:
        mapped = TransportError(
            f"request to {where} failed: {exc.__class__.__name__}: {_reason(exc)}", url=where
        )
    mapped.__cause__ = exc
    return mapped


# -- retry policy -------------------------------------------------------------------------

_Phase = Literal["not_sent", "tls", "read_timeout", "ambiguous", "final"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_STATUSES_IDEMPOTENT = frozenset({429, 502, 503, 504})
#: 429 and 503 say "not processed": safe to repeat even for a token POST (R57).
RETRY_STATUSES_ANY = frozenset({429, 503})


def _phase(error: BaseException) -> _Phase:
    """Where a failed attempt stopped, which decides whether repeating it is safe."""
    links = _chain(error)
    if any(isinstance(x, RequestTimeout) and x.__cause__ is None for x in links):
        return "final"  # our own deadline: no time left to retry in
    if _is_tls(error):
        return "tls"
    for link in links:
        if isinstance(link, httpx2.ConnectTimeout | httpx2.PoolTimeout | httpx2.ConnectError):
            return "not_sent"
        if isinstance(link, ConnectionRefusedError):
            return "not_sent"
        if isinstance(link, httpx2.ReadTimeout):
            return "read_timeout"
        if isinstance(link, httpx2.TransportError | ConnectionError):
            return "ambiguous"  # reset/closed after (part of) the request went out
    return "final"


def retry_delay(
    method: str,
    status: int | None,
    headers: Mapping[str, str] | None,
    attempt: int,
    *,
    error: BaseException | None = None,
    is_token_request: bool = False,
    rng: random.Random,
    max_attempts: int = 4,
    base: float = 0.5,
    cap: float = 30.0,
    now: float | None = None,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None: do not retry.

    ``attempt`` counts the attempts made so far (1 after the first failed). Give ``status``
    (and ``headers``) for an HTTP answer, or ``error`` for a failure without one. The delay
    is exponential backoff with full jitter, ``rng.uniform(0, min(cap, base * 2**(attempt-1)))``
    (AWS "Exponential Backoff and Jitter"), unless the server sent ``Retry-After``: then
    exactly that, a past HTTP-date meaning 0. A ``Retry-After`` above ``cap`` returns None:
    the caller defers the job (``ServerError.retry_after`` tells it until when) instead of
    sleeping for hours (R57, b8). A ``Retry-After`` that cannot be parsed is ignored, and the
    backoff applies. ``now`` (epoch seconds) is for HTTP-dates in tests.
    """
    if attempt >= max_attempts:
        return None
    idempotent = method.upper() in IDEMPOTENT_METHODS and not is_token_request
    if status is not None:
        allowed = RETRY_STATUSES_IDEMPOTENT if idempotent else RETRY_STATUSES_ANY
        if status not in allowed:
            return None
        header = _header(headers, "retry-after")
        wait = parse_retry_after(header, now=now)
        if wait is not None:
            return wait if wait <= cap else None
    elif error is not None:
        phase = _phase(error)
        if phase == "not_sent":
            pass  # nothing reached the server: safe for any method, token POSTs included
        elif phase in ("read_timeout", "ambiguous"):
            if not idempotent:
                return None  # the server may have acted (a rotated refresh token): R57
        else:
            return None  # TLS failures and our own deadline are final (R28)
    else:
        return None
    return rng.uniform(0.0, min(cap, base * 2 ** (attempt - 1)))


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    if isinstance(headers, httpx2.Headers):
        return headers.get(name)
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


class Deadline:
    """An overall time budget for one operation, on a monotonic clock (R55, R56).

    Per-phase httpx2 timeouts bound each read; this bounds the whole call, retries and
    backoff included: ``timeout()`` shrinks the per-phase limits to what is left.
    """

    __slots__ = ("_clock", "_end", "total_s")

    def __init__(self, total_s: float, clock: Callable[[], float] = time.monotonic):
        self.total_s = total_s
        self._clock = clock
        self._end = clock() + total_s

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._end - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def allows(self, delay: float) -> bool:
        """Would sleeping ``delay`` seconds still leave time for another attempt?"""
        return delay < self.remaining()

    def check(self, url: str | httpx2.URL | None = None) -> None:
        """Raise :class:`RequestTimeout` when the budget is spent."""
        if self.expired:
            where = f" for {safe_url(url)}" if url is not None else ""
            raise RequestTimeout(
                f"gave up after the overall deadline of {self.total_s:g} s{where}",
                url=safe_url(url) if url is not None else None,
            )

    def timeout(self, base: httpx2.Timeout = DEFAULT_TIMEOUT) -> httpx2.Timeout:
        """``base`` with every phase capped at the time left (raises when none is left)."""
        self.check()
        left = self.remaining()

        def cap(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx2.Timeout(
            connect=cap(base.connect),
            read=cap(base.read),
            write=cap(base.write),
            pool=cap(base.pool),
        )


# -- what the requests cost (/metrics) ---------------------------------------------------


class Histogram:
    """Counts of observed values by upper bound, with their sum: the shape of a Prometheus
    histogram (cumulative ``le`` buckets, ``_count``, ``_sum``). Hand-written, a dozen lines,
    because the client layer must not need ``prometheus_client`` (an optional extra);
    thread-safe, so threads and tasks of one client share it."""

    __slots__ = ("_counts", "_lock", "_sum", "bounds")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self._counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        slot = bisect.bisect_left(self.bounds, value)  # the first bound >= value
        with self._lock:
            self._counts[slot] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[tuple[float, int]], float]:
        """``([(upper bound, observations <= it), ..., (inf, count)], sum)``."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, n in zip((*self.bounds, math.inf), counts, strict=True):
            running += n
            cumulative.append((bound, running))
        return cumulative, total


#: Seconds: a resource request takes tens of milliseconds to minutes (a Bulk file).
FETCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Seconds: 0 (the request did not wait) up to the minutes a busy 1 request/s limit queues.
WAIT_BUCKETS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class ClientStats:
    """What one client's requests cost, for ``/metrics``: ``fetch_seconds`` (each attempt
    at a resource request, from sending it to its body read or its failure) and
    ``rate_limit_wait_seconds`` (each reservation of the rate limit, 0 when none was
    needed; a request over a quota is refused, not waited for, and not counted)."""

    __slots__ = ("fetch_seconds", "rate_limit_wait_seconds")

    def __init__(self) -> None:
        self.fetch_seconds = Histogram(FETCH_BUCKETS)
        self.rate_limit_wait_seconds = Histogram(WAIT_BUCKETS)


class Reserving:
    """``acquire`` / ``acquire_async`` written once for every limiter: reserve a slot
    (``_reserve``; ``_reserve_async`` where reserving itself may block, a lock or a database
    round trip), then wait for it with the injected ``_sleep`` / ``_async_sleep``. The wait
    is recorded in ``stats`` (the owning client's, set by it) once it is over."""

    _sleep: Callable[[float], None]
    _async_sleep: Callable[[float], Awaitable[object]]
    stats: ClientStats | None = None

    def _reserve(self) -> float:
        raise NotImplementedError

    async def _reserve_async(self) -> float:
        return self._reserve()  # in memory: reserving never blocks

    def acquire(self) -> float:
        """Block until a request may go; returns the seconds waited."""
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        if self.stats is not None:
            self.stats.rate_limit_wait_seconds.observe(wait)
        return wait

    async def acquire_async(self) -> float:
        """:meth:`acquire` for coroutines: neither reserving nor the wait blocks the loop."""
        wait = await self._reserve_async()
        if wait > 0:
            await self._async_sleep(wait)
        if self.stats is not None:
            self.stats.rate_limit_wait_seconds.observe(wait)
        return wait


class RateLimiter(Reserving):
    """A token bucket for one data custodian's request rate (R58; PG&E: 1 request/s).

    Implemented as GCRA (a token bucket kept as one "theoretical arrival time"): each
    ``acquire`` reserves the next free slot under a lock and then sleeps outside it, so
    threads and asyncio tasks can share one limiter and callers are served in arrival order.
    ``burst`` requests may go back to back after an idle period (default 1: never more than
    ``rate_per_s`` requests in any window of ``1/rate_per_s`` seconds). In-process only: a
    client uses :class:`~greenbutton.client._ratelimit.SharedRateLimiter` (every process on the
    machine) where it can, and this where it cannot or is told not to.
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ):
        if not rate_per_s > 0 or math.isinf(rate_per_s):
            raise ConfigurationError(f"rate limit must be a positive number, not {rate_per_s}")
        if burst < 1:
            raise ConfigurationError(f"rate limit burst must be at least 1, not {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._interval = 1.0 / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._lock = threading.Lock()  # held only to reserve a slot, never while sleeping
        self._tat: float | None = None  # theoretical arrival time of the next request

    def _reserve(self) -> float:
        with self._lock:
            now = self._clock()
            tat = now if self._tat is None else max(self._tat, now)
            wait = max(0.0, tat - (self.burst - 1) * self._interval - now)
            self._tat = tat + self._interval
            return wait
