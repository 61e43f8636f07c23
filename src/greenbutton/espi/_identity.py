"""Identities that do not depend on where the custodian is reached (DESIGN 3.7, R65).

* A **utility** is its profile's ``name`` (``pge``, ``simulator``, a config profile), not
  its URL: a port or host change keeps every stored account.
* An **authorization** is (utility, subscription): its token-store key is
  ``"{utility}/Subscription/{subscription}"``, so the same customer connecting again
  updates their authorization (same row, same data) instead of adding one.

Usage points and meter readings are keyed by their self-link paths relative to the
resource endpoint (DESIGN 3.3), which carry no host either; a meter reading re-keyed by
the custodian is matched by storage (``storage._ingest``).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

__all__ = ["authorization_key", "parse_authorization_key", "subscription_of"]

_KEY = re.compile(r"(?P<utility>[^/\s]+)/Subscription/(?P<subscription>[^/\s]+)")


def subscription_of(resource_uri: str | None) -> str | None:
    """The subscription id a token's ``resourceURI`` names (``…/Subscription/{id}``, the
    ``Batch`` form included), else ``None``."""
    if not resource_uri:
        return None
    try:
        segments = [unquote(s) for s in urlsplit(resource_uri).path.split("/") if s]
    except ValueError:
        return None
    for i in range(len(segments) - 1, 0, -1):
        if segments[i - 1] == "Subscription":
            return segments[i] or None
    return None


def authorization_key(utility: str, subscription: str) -> str:
    """The token-store key of the customer grant for ``subscription`` at ``utility``."""
    return f"{utility}/Subscription/{subscription}"


def parse_authorization_key(key: str) -> tuple[str, str] | None:
    """``(utility, subscription)`` of a key :func:`authorization_key` made, else ``None``
    (keys of older versions were the authorization's URL)."""
    match = _KEY.fullmatch(key)
    return None if match is None else (match["utility"], match["subscription"])
