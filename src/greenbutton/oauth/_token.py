"""The token model and the ``TokenStore`` protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from .._secret import Secret

__all__ = ["Token", "TokenKind", "TokenStore"]

TokenKind = Literal["access", "client"]


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
