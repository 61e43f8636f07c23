"""``InMemoryTokenStore``: the :class:`~greenbutton.oauth.TokenStore` for one process.

For tests, notebooks and short CLI runs; tokens are gone when the process ends (the
encrypted database store comes with storage). Thread-safe: a lock guards every call, so a
refresh saved by one thread is what the next ``load`` in any thread sees (R20, R21).
"""

from __future__ import annotations

import threading

from ._token import Token

__all__ = ["InMemoryTokenStore"]


class InMemoryTokenStore:
    """Tokens by key in a dict, behind a lock. The repr lists keys, never token values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}

    def load(self, key: str) -> Token | None:
        with self._lock:
            return self._tokens.get(key)

    def save(self, key: str, token: Token) -> None:
        with self._lock:
            self._tokens[key] = token

    def delete(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._tokens)

    def __repr__(self) -> str:
        return f"InMemoryTokenStore(keys={self.keys()!r})"
