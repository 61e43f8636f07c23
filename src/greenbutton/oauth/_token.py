"""The token model and the ``TokenStore`` protocol."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from .._secret import Secret

__all__ = [
    "LockedToken",
    "REAUTH_REQUIRED",
    "SupportsLockedRefresh",
    "SupportsStatus",
    "Token",
    "TokenKind",
    "TokenStore",
]

TokenKind = Literal["access", "client"]

#: :meth:`SupportsStatus.status` of an authorization whose refresh token was refused (R53).
REAUTH_REQUIRED = "reauth_required"


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """An OAuth token set as received (RFC 6749 5.1 plus the ESPI members).

    ``expires_at`` is local receipt time + ``expires_in`` (monotonic-free, wall clock, so it
    can be stored; SECURITY R54). The repr shows the kind, scope and expiry, never values.
    """

    kind: TokenKind
    access_token: Secret = field(repr=False)
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name
    expires_at: float | None = None
    refresh_token: Secret | None = field(default=None, repr=False)
    scope: str | None = None
    resource_uri: str | None = None
    authorization_uri: str | None = None
    customer_resource_uri: str | None = None

    @property
    def subscription_id(self) -> str | None:
        """The last path segment of ``resourceURI`` (ESPI_NOTES 2.1, 2.6)."""
        if not self.resource_uri:
            return None
        return self.resource_uri.split("?")[0].rstrip("/").rpartition("/")[2] or None

    def expires_within(self, seconds: float, now: float) -> bool:
        return self.expires_at is not None and self.expires_at - now <= seconds


class TokenStore(Protocol):
    """Where tokens live between calls. ``key`` names a grant (e.g. the authorization URI or
    ``"client"`` for the client-credentials token). ``save`` must be durable before it
    returns: a rotated refresh token is persisted before it is used (SECURITY R20)."""

    def load(self, key: str) -> Token | None: ...

    def save(self, key: str, token: Token) -> None: ...

    def delete(self, key: str) -> None: ...


class LockedToken(Protocol):
    """One key's stored token while :meth:`SupportsLockedRefresh.locked` holds its lock."""

    def load(self) -> Token | None:
        """The stored token as of now (read under the lock: another process's refresh that
        finished before we got the lock is visible)."""
        ...

    def save(self, token: Token) -> None:
        """Store ``token``; durable when the ``locked`` block ends without an exception."""
        ...


@runtime_checkable
class SupportsLockedRefresh(Protocol):
    """Optional ``TokenStore`` extension: a lock on one key that other *processes* respect
    (SECURITY R52), e.g. a database row lock.

    The client's refresh runs inside ``with store.locked(key) as row:``: it re-reads the
    token with ``row.load()``, refreshes only if it is still unusable, and saves the rotated
    set with ``row.save()``. The block's exit commits and releases the lock; an exception
    (the process dying included) releases it without saving. A store may mark the
    authorization as needing re-authorization when an ``InvalidGrantError`` leaves the
    block (R53)."""

    def locked(self, key: str) -> AbstractContextManager[LockedToken]: ...


@runtime_checkable
class SupportsStatus(Protocol):
    """Optional ``TokenStore`` extension: what the store knows about an authorization.

    The client asks before every call on a grant: :data:`REAUTH_REQUIRED` (a refresh token
    that was refused, here or in another process) raises ``InvalidGrantError`` at once, with
    no request, so a dead grant costs no token-endpoint call per attempt (R18, R24, R53)."""

    def status(self, key: str) -> str | None: ...
