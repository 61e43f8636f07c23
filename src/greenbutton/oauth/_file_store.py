"""``FileTokenStore``: the :class:`~greenbutton.oauth.TokenStore` in a private JSON file.

Beside :class:`~greenbutton.oauth.InMemoryTokenStore`: the same protocol, for a library
user or a terminal that keeps customer grants between runs without a database (the
encrypted database store is :class:`greenbutton.storage.DatabaseTokenStore`). It does file
I/O only, never network I/O, so it sits in ``oauth/`` with the protocol it implements.

The file is mode 0600 from its first byte and replaced atomically (``_util.atomic_file``,
fsync then rename), holds tokens only, never the client secret (SECURITY R50), and has one
section per utility (its resource URL)::

    {"version": 1, "tokens": {"<resource URL>": {"<key>": {"access_token": ..., ...}}}}

Customer (``access``) tokens are saved durably, so a rotated refresh token is on disk
before it is used (R20); client-credentials tokens stay in memory (R19 caches them per
run). One lock serialises a process's threads; two processes writing one file at once is
last-writer-wins (use the database store for that).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from .._secret import Secret
from .._util import read_json_file, user_data_dir, write_private_json
from ._token import Token

__all__ = ["FileTokenStore"]

_TOKEN_FIELDS = (
    "kind",
    "token_type",
    "expires_at",
    "scope",
    "resource_uri",
    "authorization_uri",
    "customer_resource_uri",
)


class FileTokenStore:
    """Tokens of one utility (its resource URL) in a 0600 JSON file (module docstring).
    The repr lists keys, never token values."""

    def __init__(self, path: str | os.PathLike[str], utility: str) -> None:
        self.path = Path(path)
        self.utility = utility
        self._lock = threading.Lock()
        self._memory: dict[str, Token] = {}

    @staticmethod
    def default_path() -> Path:
        """``tokens.json`` in the per-user data folder (``_util.user_data_dir``)."""
        return user_data_dir() / "tokens.json"

    def entries(self) -> dict[str, dict[str, Any]]:
        """This utility's stored entries by key, as in the file (``saved_at`` included):
        for copying grants elsewhere (``greenbutton sync`` imports them)."""
        with self._lock:
            return {k: v for k, v in self._section().items() if isinstance(v, dict)}

    def _section(self) -> dict[str, Any]:
        section = read_json_file(self.path).get("tokens", {}).get(self.utility, {})
        return section if isinstance(section, dict) else {}

    def load(self, key: str) -> Token | None:
        """The token stored under ``key``, or None."""
        with self._lock:
            if key in self._memory:
                return self._memory[key]
            raw = self._section().get(key)
        if not isinstance(raw, dict):
            return None
        try:
            refresh = raw.get("refresh_token")
            fields: dict[str, Any] = {k: raw[k] for k in _TOKEN_FIELDS if raw.get(k) is not None}
            return Token(
                access_token=Secret(raw["access_token"]),
                refresh_token=Secret(refresh) if refresh else None,
                **fields,
            )
        except (KeyError, TypeError):
            raise ConfigurationError(f"{self.path}: unreadable token for {key}") from None

    def save(self, key: str, token: Token) -> None:
        """Store ``token`` under ``key``: a customer's access token in the file (rewritten
        atomically, mode 0600); client-credentials tokens only in memory."""
        with self._lock:
            if token.kind != "access":
                self._memory[key] = token
                return
            data = read_json_file(self.path)
            data["version"] = 1
            section = data.setdefault("tokens", {}).setdefault(self.utility, {})
            entry = {k: getattr(token, k) for k in _TOKEN_FIELDS}
            entry["access_token"] = token.access_token.reveal()
            entry["refresh_token"] = token.refresh_token.reveal() if token.refresh_token else None
            entry["saved_at"] = time.time()
            section[key] = entry
            write_private_json(self.path, data)

    def delete(self, key: str) -> None:
        """Forget the token under ``key`` (nothing happens when there is none)."""
        with self._lock:
            self._memory.pop(key, None)
            data = read_json_file(self.path)
            section = data.get("tokens", {}).get(self.utility, {})
            if key in section:
                del section[key]
                write_private_json(self.path, data)

    def keys(self) -> list[str]:
        """Stored customer authorizations of this utility."""
        with self._lock:
            return sorted(self._section())

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r}, keys={self.keys()!r})"
