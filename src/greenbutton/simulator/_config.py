"""Simulator settings: fixed at start (``SimulatorConfig``) and switchable at run time
(``Faults``, mutated in place through the admin endpoint or by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["PATHS", "Faults", "ServerKey", "SimulatorConfig", "Style"]

#: Wire styles (DESIGN 3.7 ``--style``): ESPI 4.0-clean, or PG&E's.
Style = Literal["espi", "pge"]
#: The custodian's own TLS key (``--server-key``): RSA 2048 (GBA TC008), or EC P-256.
ServerKey = Literal["rsa", "ec"]


class PATHS:
    """URL paths, mirroring PG&E Share My Data so one utility profile serves both (DESIGN 4)."""

    AUTHORIZE = "/myAuthorization"
    LOGIN = "/login"
    #: The signed-in customer's authorizations: see and revoke them (GBA PSH002).
    MY_AUTHORIZATIONS = "/myAuthorizations"
    TOKEN = "/datacustodian/oauth/v2/token"  # noqa: S105 - a URL path, not a secret
    RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
    ADMIN_FAULTS = "/_simulator/faults"
    ADMIN_STATS = "/_simulator/stats"
    # The third party's side (the web app), relative to --third-party-url.
    THIRD_PARTY_REDIRECT = "/OAuthCallback"
    THIRD_PARTY_NOTIFY = "/espi/1_1/Notification"


@dataclass(slots=True)
class Faults:
    """Fault injection (DESIGN 4). Every field can change while the simulator runs."""

    latency_ms: int = 0  # added to every API response (one request round trip)
    # added once per new TCP connection (its first request), for the connection set-up a
    # WAN charges: TCP + TLS 1.3 handshakes are about 2 round trips, so use 2 x latency_ms
    connect_latency_ms: int = 0
    rate_limit_per_s: float = 0.0  # > 0: answer 429 + Retry-After above this request rate
    status_burst: int = 0  # answer the next N API requests with `burst_status`
    burst_status: int = 503
    retry_after: int = 1  # seconds, on 429 and 503
    malformed_xml: bool = False  # truncate every XML body
    drop_notifications: bool = False  # do not POST BatchLists
    duplicate_notifications: bool = False  # POST every BatchList twice
    expire_tokens: bool = False  # every access token is treated as expired
    revoke_all: bool = False  # every authorization is treated as revoked
    body_stall_ms: int = 0  # pause after a response body's first chunk (a slow download)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorConfig:
    """Start-up settings of ``greenbutton simulator`` (DESIGN 3.6)."""

    state_dir: Path
    host: str = "127.0.0.1"
    portal_port: int = 0  # 0 = a free port
    api_port: int = 0
    auto_approve: str | None = None  # username whose consent is given without pages
    third_party_url: str = "http://127.0.0.1:3000"
    customers: int = 3
    seed: int = 20_240_101
    history_days: int = 730  # synthetic history length, ending yesterday (UTC)
    data_dir: Path | None = None  # serve these real ESPI files instead of synthetic data
    code_ttl: int = 600  # authorization code lifetime, s (PG&E: 600)
    access_token_ttl: int = 3600  # s (PG&E: 3600)
    notification_interval: float | None = None  # s between "new daily data" notifications
    allow_insecure_bind: bool = False  # a non-loopback host needs this and fresh secrets
    # RFC 8705 §3: bind access tokens to the client certificate they were issued over
    bind_tokens: bool = False
    #: The custodian's own limit (DESIGN 3.7 ``--rate-limit``): above this many API
    #: requests in any second, 429 + Retry-After; written to registration.json so the
    #: ``simulator`` profile keeps under it. 0 = none.
    rate_limit: float = 0.0
    #: Refuse token requests whose parameters are in the query string (RFC 6749 strictly);
    #: by default they are accepted like PG&E does, and recorded (``TokenCall.from_query``).
    strict_token_requests: bool = False
    #: Wire format (DESIGN 3.7 ``--style``): ``espi`` (ESPI 4.0-clean, the default) or
    #: ``pge`` (PG&E's prefixes, declarations, ``xsi:type``, milliseconds, element names).
    style: Style = "espi"
    #: Where on the third party's web app the BatchList notifications go (``--notification-
    #: path``), appended to ``third_party_url``: the registration's notification URI.
    notification_path: str = PATHS.THIRD_PARTY_NOTIFY
    #: ``--server-key``: None keeps what the state folder has (RSA when it has none, or an
    #: EC key of a version before RSA was the default); "rsa" or "ec" re-issues if it differs.
    server_key: ServerKey | None = None
    faults: Faults = field(default_factory=Faults)
