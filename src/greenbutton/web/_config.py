"""``WebConfig``: what the web app needs, passed to :func:`create_app` (no globals)."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import httpx2

from .._errors import ConfigurationError
from ..models import Credentials, UtilityProfile

__all__ = ["WebConfig"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")


def _networks(values: Sequence[str], what: str) -> tuple[Network, ...]:
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(f"{what} {value!r} is not an IP address or CIDR") from None
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebConfig:
    """Settings of one web app instance.

    ``database_url`` is a SQLAlchemy URL (default: ``$GREENBUTTON_DATABASE_URL``, else
    SQLite in the data directory); tokens are encrypted with ``$GREENBUTTON_SECRET_KEY``
    or the key file (SECURITY R48). ``session_key`` signs session cookies (default: derived
    from that secret key, so every process on the database accepts them; sessions live in
    the database, see ``_sessions``).
    ``transport`` replaces the network for the utility client (tests count requests).

    Sessions end ``session_idle_seconds`` after their last use and
    ``session_lifetime_seconds`` after they began (enforced server-side); each connect or
    disconnect moves the browser to a new session id (session fixation). ``secure_cookies``
    makes the cookie ``__Host-gb_session; Secure`` (R51): set it behind a TLS-terminating
    proxy; serving HTTPS ourselves implies it.

    Serving (:func:`uvicorn_config`, ``greenbutton serve``): a request's head must arrive
    within ``head_timeout`` seconds and its body within ``body_timeout`` more, at most
    ``max_connections`` connections are served at once (others get 503), an idle kept-alive
    connection closes after ``keep_alive_timeout`` and a head is at most ``max_head_bytes``.

    Disconnecting deletes the local tokens at once and tries the revocation for at most
    ``revoke_timeout`` seconds; one not confirmed is retried by the worker (R22).

    ``tls_cert``/``tls_key`` serve the app over HTTPS (session cookies then get
    ``Secure``). With ``client_ca`` the TLS layer asks for a client certificate and the
    notification endpoint answers 403 unless the connection presented one verified
    against that CA (SECURITY R32, R40); ``client_subject`` (an RFC 4514 subject or a
    common name) pins it further.

    Behind a TLS-terminating reverse proxy (R32): ``trusted_proxies`` (IPs or CIDRs) are
    the only TCP peers whose forwarding headers count; ``client_cert_header`` names the
    header (RFC 9440 ``Client-Cert``) carrying the custodian's certificate, verified
    against ``client_ca`` and the pin like a direct one. A peer that is not a trusted proxy
    sending such headers is refused. ``notify_allow`` (CIDRs) restricts the notification
    endpoint to source addresses (R40): the TCP peer, or behind a trusted proxy the
    rightmost ``X-Forwarded-For`` address that is not one.
    """

    profile: UtilityProfile
    credentials: Credentials
    database_url: str | None = None
    redirect_uri: str | None = None  # default: the registered one (credentials)
    session_key: bytes | None = None
    pending_ttl: float = 600.0  # R02
    first_pull_days: int = 30
    max_notification_bytes: int = 64 * 1024  # R39
    max_notification_uris: int = 1000  # R39
    job_attempts: int = 5  # R46: bounded retries of a notified fetch
    job_poll_seconds: float = 30.0
    transport: httpx2.AsyncBaseTransport | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    client_subject: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    client_cert_header: str | None = None
    notify_allow: tuple[str, ...] = ()
    secure_cookies: bool = False
    session_idle_seconds: float = 86400.0
    session_lifetime_seconds: float = 7 * 86400.0
    revoke_timeout: float = 10.0  # R22: the disconnect's own attempt; the worker retries
    head_timeout: float = 10.0  # s for a request's line and headers (serving, see _tls)
    body_timeout: float = 30.0  # s for a request's body after its head
    max_connections: int = 200  # open connections at once; more get 503
    keep_alive_timeout: int = 5  # s an idle kept-alive connection stays open
    max_head_bytes: int = 16 * 1024  # request line + headers (h11); larger: 400

    def __post_init__(self) -> None:
        if (
            min(self.head_timeout, self.body_timeout, self.revoke_timeout) <= 0
            or min(self.max_connections, self.keep_alive_timeout, self.max_head_bytes) < 1
        ):
            raise ConfigurationError("timeouts and connection limits must be positive")
        if not 0 < self.session_idle_seconds <= self.session_lifetime_seconds:
            raise ConfigurationError(
                "sessions need 0 < idle timeout <= lifetime (session_idle_seconds, "
                "session_lifetime_seconds)"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigurationError("HTTPS needs both a certificate and its key")
        if self.client_ca is not None and self.tls_cert is None and not self.client_cert_header:
            raise ConfigurationError(
                "a client CA needs HTTPS (a certificate and key) or a client-certificate "
                "header from a trusted proxy"
            )
        if self.client_subject is not None and self.client_ca is None:
            raise ConfigurationError("a client-certificate subject pin needs a client CA")
        if self.client_cert_header is not None:
            if not _HEADER_NAME.fullmatch(self.client_cert_header):
                raise ConfigurationError("the client-certificate header name is not a token")
            if not self.trusted_proxies:
                raise ConfigurationError("a client-certificate header needs a trusted proxy")
            if self.client_ca is None:
                raise ConfigurationError(
                    "a client-certificate header needs a client CA to verify it against"
                )
        if self.trusted_proxies and self.client_cert_header is None and not self.notify_allow:
            raise ConfigurationError(
                "a trusted proxy is only used with a client-certificate header or a "
                "notification allowlist"
            )
        _networks(self.trusted_proxies, "trusted proxy")
        _networks(self.notify_allow, "notification allowlist entry")

    @property
    def proxy_networks(self) -> tuple[Network, ...]:
        """``trusted_proxies`` parsed."""
        return _networks(self.trusted_proxies, "trusted proxy")

    @property
    def allow_networks(self) -> tuple[Network, ...]:
        """``notify_allow`` parsed."""
        return _networks(self.notify_allow, "notification allowlist entry")

    @property
    def https(self) -> bool:
        """Whether the app is served over TLS (by :func:`uvicorn_config`)."""
        return self.tls_cert is not None

    @classmethod
    def for_simulator(cls, state_dir: str | PathLike[str], **options: Any) -> WebConfig:
        """The simulator whose state folder (or ``registration.json``) is ``state_dir``
        as the utility (DESIGN 3.6)."""
        from ..client import credentials_from_registration

        path = Path(state_dir)
        return cls(
            profile=UtilityProfile.simulator(path),
            credentials=credentials_from_registration(path),
            **options,
        )

    @classmethod
    def from_config(
        cls, path: str | PathLike[str] | None, profile: str | None, **options: Any
    ) -> WebConfig:
        """The utility of profile ``profile`` in the config file ``path`` (DESIGN 3.7,
        ``load_config``: None picks the default file and profile), like ``sync``. The web
        app needs the registered redirect URI: a profile without one is refused."""
        from ..client import load_config

        utility, credentials = load_config(None if path is None else Path(path), profile=profile)
        if not (options.get("redirect_uri") or credentials.redirect_uri):
            raise ConfigurationError(
                f"profile {utility.name!r} has no redirect_uri: set it in its config table to "
                "the redirect URI you registered with the utility (…/OAuthCallback on this "
                "server)"
            )
        return cls(profile=utility, credentials=credentials, **options)

    def replace(self, **changes: Any) -> WebConfig:
        return dataclasses.replace(self, **changes)
