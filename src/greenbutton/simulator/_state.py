"""What the simulated data custodian knows: the registered third party, its customers and
their subscriptions (persisted in the state folder), and the grants it has issued (codes,
authorizations, tokens; in memory, so a restart is like a utility that forgot its sessions).

Secrets are 128-bit+ random values from :mod:`secrets` (SECURITY R69); identifiers are
opaque random strings, never sequential (GBA TC010/TC011). The dataclass reprs leave the
secret fields out (``field(repr=False)``): oauthlib logs ``request.client`` (our
:class:`Registration`) with ``%r``, and tracebacks print locals' reprs (SECURITY R49).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._util import write_private_json
from ..client import get_logger

__all__ = [
    "AuthorizationGrant",
    "Customer",
    "IssuedCode",
    "Registration",
    "SimulatorState",
    "Token",
    "TokenKind",
    "UsagePointSpec",
]

TokenKind = Literal["access", "client", "registration"]

#: The scope the simulator offers (PG&E-style, ESPI_NOTES 2.3).
DEFAULT_SCOPE = (
    "FB=1_3_4_5_8_10_13_14_15_16_18_19_31_32_35_37_38_39_40;IntervalDuration=900_3600;"
    "BlockDuration=Daily;HistoryLength=63072000;SubscriptionFrequency=Daily;AccountCollection=1"
)
#: Scope of client-credentials tokens (the RI's third-party admin role).
CLIENT_SCOPE = "ThirdParty_Admin_Access"
#: How many request arrivals :attr:`SimulatorState.arrivals` remembers.
ARRIVALS_KEPT = 100_000


def new_secret(nbytes: int = 24) -> str:
    """A URL-safe random secret (>= 128 bits)."""
    return secrets.token_urlsafe(max(nbytes, 16))


def new_id() -> str:
    """An opaque identifier (PG&E ids are numbers; ours are random digits, not sequential)."""
    return str(secrets.randbelow(9 * 10**11) + 10**11)


log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class UsagePointSpec:
    """One synthetic usage point: what it meters and how its data is generated."""

    id: str
    profile: Literal["electric_15min", "electric_hourly", "solar_net", "gas_daily"]
    with_cost: bool = False
    seed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Customer:
    """A utility customer who can log in to the portal and authorize the third party."""

    username: str
    password: str = field(repr=False)  # a repr is for logs and tracebacks (R49)
    retail_customer_id: str
    subscription_id: str
    usage_points: tuple[UsagePointSpec, ...] = ()
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """The third party's registration with this data custodian."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    notification_uri: str
    scope: str = DEFAULT_SCOPE
    bulk_id: str = ""
    registration_access_token: str = field(default="", repr=False)
    application_information_id: str = ""


@dataclass(slots=True, kw_only=True)
class IssuedCode:
    code: str = field(repr=False)
    client_id: str
    customer: str  # username
    redirect_uri: str
    scope: str
    expires_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    used: bool = False


@dataclass(slots=True, kw_only=True)
class AuthorizationGrant:
    """One customer's consent to the third party (the ESPI Authorization resource)."""

    id: str
    customer: str
    subscription_id: str
    scope: str
    status: int = 1  # 1 active, 0 revoked (ESPI AuthorizationStatus)
    created_at: float = field(default_factory=time.time)
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(slots=True, kw_only=True)
class Token:
    value: str = field(repr=False)
    kind: TokenKind
    scope: str
    expires_at: float
    authorization_id: str | None = None  # access tokens only
    revoked: bool = False


class SimulatorState:
    """Registration, customers and grants, safe to use from several threads."""

    def __init__(self, registration: Registration, customers: list[Customer]):
        self.registration = registration
        self.customers = {c.username: c for c in customers}
        self.by_subscription = {c.subscription_id: c for c in customers}
        self.codes: dict[str, IssuedCode] = {}
        self.grants: dict[str, AuthorizationGrant] = {}
        self.tokens: dict[str, Token] = {}
        self.lock = threading.RLock()
        #: Where :meth:`persist_grants` keeps the grants (``None``: in memory only). A real
        #: custodian remembers its customers' consents across restarts; so does this one,
        #: so a restarted simulator keeps every stored account syncing (DESIGN 3.7).
        self.grants_file: Path | None = None
        #: (time.monotonic(), method, path) of every API request as it arrived, faults
        #: included, newest last: what a custodian's rate limiter would count (R58, R59).
        self.arrivals: deque[tuple[float, str, str]] = deque(maxlen=ARRIVALS_KEPT)
        #: ``/_simulator/stats`` (DESIGN 3.7): all API requests, the most that arrived in
        #: any one second, and the 429s answered.
        self.requests = 0
        self.max_requests_per_second = 0
        self.responses_429 = 0
        self._last_second: deque[float] = deque()

    def record_arrival(self, method: str, path: str) -> None:
        """Note one API request (called by the fault middleware before any fault)."""
        now = time.monotonic()
        with self.lock:
            self.arrivals.append((now, method, path))
            self.requests += 1
            window = self._last_second
            window.append(now)
            while now - window[0] >= 1.0:
                window.popleft()
            self.max_requests_per_second = max(self.max_requests_per_second, len(window))

    def stats(self) -> dict[str, int]:
        """What ``GET /_simulator/stats`` answers."""
        with self.lock:
            return {
                "requests": self.requests,
                "max_requests_per_second": self.max_requests_per_second,
                "responses_429": self.responses_429,
            }

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write registration and customers (0600: the file holds the client secret)."""
        data = {
            "registration": asdict(self.registration),
            "customers": [asdict(c) for c in self.customers.values()],
        }
        write_private_json(path, data)

    @classmethod
    def load(cls, path: Path) -> SimulatorState:
        data = json.loads(path.read_text())
        customers = [
            Customer(
                **{k: v for k, v in c.items() if k != "usage_points"},
                usage_points=tuple(UsagePointSpec(**u) for u in c["usage_points"]),
            )
            for c in data["customers"]
        ]
        return cls(Registration(**data["registration"]), customers)

    def persist_grants(self) -> None:
        """Write the grants (with their current refresh tokens, 0600) to ``grants_file``.
        Access tokens are not kept: after a restart a client's 401 leads to a refresh."""
        if self.grants_file is None:
            return
        with self.lock:
            data = {"format": 1, "grants": [asdict(g) for g in self.grants.values()]}
            write_private_json(self.grants_file, data)

    def load_grants(self, path: Path) -> None:
        """Adopt the grants a previous run persisted in ``path`` (none if it is missing or
        unreadable: the customers authorize again), then persist there from now on."""
        self.grants_file = path
        try:
            data = json.loads(path.read_text())
            grants = [AuthorizationGrant(**g) for g in data["grants"]]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s: %s", path.name, type(exc).__name__)
            return
        with self.lock:
            self.grants.update({g.id: g for g in grants if g.customer in self.customers})

    # -- grants ---------------------------------------------------------------------------

    def issue_token(
        self,
        kind: TokenKind,
        scope: str,
        ttl: float,
        authorization_id: str | None = None,
    ) -> Token:
        token = Token(
            value=new_secret(),
            kind=kind,
            scope=scope,
            expires_at=time.time() + ttl,
            authorization_id=authorization_id,
        )
        with self.lock:
            self.tokens[token.value] = token
        return token

    def lookup_token(self, value: str) -> Token | None:
        """The live token with this value (None when unknown, expired or revoked)."""
        with self.lock:
            token = self.tokens.get(value)
            if token is None or token.revoked or token.expires_at <= time.time():
                return None
            if token.authorization_id is not None:
                grant = self.grants.get(token.authorization_id)
                if grant is None or grant.status != 1:
                    return None
            return token

    def revoke_authorization(self, authorization_id: str) -> bool:
        """Revoke a grant and every token issued under it."""
        with self.lock:
            grant = self.grants.get(authorization_id)
            if grant is None:
                return False
            grant.status = 0
            grant.refresh_token = None
            for token in self.tokens.values():
                if token.authorization_id == authorization_id:
                    token.revoked = True
            self.persist_grants()
            return True


def registration_json(
    *,
    state: SimulatorState,
    client_cert: Path,
    client_key: Path,
    ca_cert: Path,
    authorize_url: str,
    token_url: str,
    resource_url: str,
    rate_limit: float = 0.0,
) -> dict[str, Any]:
    """The contract of DESIGN 3.6 and 3.7: what scripts and tests read from
    ``registration.json``."""
    reg = state.registration
    extra: dict[str, Any] = {"rate_limit_per_second": rate_limit} if rate_limit > 0 else {}
    return {
        "client_id": reg.client_id,
        "client_secret": reg.client_secret,
        "client_cert": str(client_cert.resolve()),
        "client_key": str(client_key.resolve()),
        "ca_cert": str(ca_cert.resolve()),
        "authorize_url": authorize_url,
        "token_url": token_url,
        "resource_url": resource_url,
        "redirect_uri": reg.redirect_uri,
        "notification_uri": reg.notification_uri,
        "scope": reg.scope,
        "customers": [
            {"username": c.username, "password": c.password} for c in state.customers.values()
        ],
        "registration_access_token": reg.registration_access_token,
        "application_information_id": reg.application_information_id,
        "bulk_id": reg.bulk_id,
        **extra,
    }
