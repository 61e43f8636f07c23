"""Client certificate rotation without manual steps (SECURITY R31, RFC 8705 §3, §6).

A custodian that binds access tokens to the client certificate (``cnf`` / ``x5t#S256``)
refuses them over a connection with a new certificate. So when the certificate changes, the
client (a) builds a new SSL context and connection pool from the new files, re-running the
start-up checks of :func:`~greenbutton.client._transport.build_ssl_context`, and (b) treats every
access token it did not obtain since then as stale, so the next call refreshes over the new
certificate *before* it sends the token to the resource server. The refresh token survives
the rotation: RFC 8705 §7.1 binds a confidential client's refresh token to the client (its
authentication at the token endpoint), not to the certificate. A 401 that still happens (a
call that was already running on the old pool) takes the usual one-refresh path (R24).

The pieces, used by :mod:`greenbutton.client._client`:

* :class:`CertificateWatch`: notices changed certificate or key files by ``(inode, mtime,
  size)``, at most once per interval (a ``stat`` pair, no reads);
* :class:`RotationTracker` and :func:`rotation_aware`: the token store as the flows see it,
  where a token not saved through it since the last rotation reads as expired;
* :class:`Leases`: the current HTTP client plus retired ones that running calls still use,
  so a reload never closes a pool under another thread's or task's request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Generic, TypeVar

from .._errors import ConfigurationError
from ..models import Credentials
from ..oauth import LockedToken, SupportsLockedRefresh, Token, TokenStore
from ._redact import get_logger

__all__ = [
    "CertificateWatch",
    "Leases",
    "Rotation",
    "RotationTracker",
    "rotation_aware",
    "with_files",
]

log = get_logger("greenbutton.rotation")

H = TypeVar("H")
Signature = tuple[tuple[int, int, int, int] | None, ...]


def _stat(path: os.PathLike[str]) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # missing for a moment (being replaced): compare as "changed"
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def file_signature(creds: Credentials) -> Signature:
    """What identifies the current certificate and key files without reading them."""
    return (_stat(creds.client_cert), _stat(creds.client_key))


class CertificateWatch:
    """Has the certificate or key file changed since the last accepted signature?

    :meth:`poll` stats the files at most once per ``interval`` seconds (monotonic clock)
    and answers False in between, so it costs nothing on the hot path.
    """

    def __init__(
        self,
        creds: Credentials,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._creds = creds
        self._accepted = file_signature(creds)
        self._next = clock() + interval

    def accept(self, creds: Credentials, signature: Signature) -> None:
        """The context now in use was built from ``creds`` when the files had ``signature``."""
        with self._lock:
            self._creds = creds
            self._accepted = signature

    def accepted(self, signature: Signature) -> bool:
        with self._lock:
            return signature == self._accepted

    def poll(self) -> tuple[Credentials, Signature] | None:
        """``(credentials, new signature)`` when a check is due and the files changed."""
        now = self._clock()
        with self._lock:
            if now < self._next:
                return None
            self._next = now + self.interval
            creds, accepted = self._creds, self._accepted
        current = file_signature(creds)
        return None if current == accepted else (creds, current)


def _digest(token: Token) -> bytes:
    return hashlib.sha256(token.access_token.reveal().encode()).digest()


class RotationTracker:
    """Which stored access tokens were obtained over the current certificate.

    Before the first rotation every token counts as current. After one, only a token saved
    through :func:`rotation_aware` since then does (by key and SHA-256 of its value, so no
    token value is kept here); any other reads as expired and is refreshed first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rotated = False
        self._fresh: dict[str, bytes] = {}
        self.rotations = 0

    def rotated(self) -> None:
        with self._lock:
            self._rotated = True
            self._fresh.clear()
            self.rotations += 1

    def saved(self, key: str, token: Token) -> None:
        with self._lock:
            if self._rotated:
                self._fresh[key] = _digest(token)

    def view(self, key: str, token: Token | None) -> Token | None:
        """``token``, or a copy that reads as expired when it predates the rotation."""
        if token is None:
            return None
        with self._lock:
            stale = self._rotated and self._fresh.get(key) != _digest(token)
        # Expired is exactly how the flows should treat it: refresh (single-flight, R52)
        # with the refresh token, which the rotation did not invalidate. Never saved back.
        return dataclasses.replace(token, expires_at=0.0) if stale else token


class _Store:
    """The token store as the flows see it (see :class:`RotationTracker`)."""

    def __init__(self, inner: TokenStore, tracker: RotationTracker) -> None:
        self.inner = inner
        self.tracker = tracker

    def load(self, key: str) -> Token | None:
        return self.tracker.view(key, self.inner.load(key))

    def save(self, key: str, token: Token) -> None:
        self.inner.save(key, token)
        self.tracker.saved(key, token)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


class _Row:
    def __init__(self, row: LockedToken, key: str, tracker: RotationTracker) -> None:
        self._row, self._key, self._tracker = row, key, tracker

    def load(self) -> Token | None:
        return self._tracker.view(self._key, self._row.load())

    def save(self, token: Token) -> None:
        self._row.save(token)
        self._tracker.saved(self._key, token)


class _LockingStore(_Store):
    """:class:`_Store` for a store with a cross-process lock (``SupportsLockedRefresh``)."""

    def locked(self, key: str) -> AbstractContextManager[LockedToken]:
        return self._locked(key)

    @contextmanager
    def _locked(self, key: str) -> Iterator[LockedToken]:
        inner = self.inner
        assert isinstance(inner, SupportsLockedRefresh)
        with inner.locked(key) as row:
            yield _Row(row, key, self.tracker)


def rotation_aware(store: TokenStore, tracker: RotationTracker) -> TokenStore:
    """``store`` seen through ``tracker``; keeps its ``SupportsLockedRefresh`` ability."""
    if isinstance(store, SupportsLockedRefresh):
        return _LockingStore(store, tracker)
    return _Store(store, tracker)


class Leases(Generic[H]):
    """The current HTTP client, and retired ones kept open until their last call ends."""

    def __init__(self, current: H) -> None:
        self._lock = threading.Lock()
        self._current = current
        self._users: dict[int, int] = {}
        self._retired: dict[int, H] = {}

    @property
    def current(self) -> H:
        return self._current

    def acquire(self) -> H:
        with self._lock:
            http = self._current
            self._users[id(http)] = self._users.get(id(http), 0) + 1
            return http

    def release(self, http: H) -> H | None:
        """Returns ``http`` when it was retired and this was its last user: close it."""
        with self._lock:
            left = self._users[id(http)] - 1
            if left:
                self._users[id(http)] = left
                return None
            del self._users[id(http)]
            return self._retired.pop(id(http), None)

    def replace(self, new: H) -> H | None:
        """Make ``new`` current; returns the old one when nothing uses it: close it."""
        with self._lock:
            old, self._current = self._current, new
            if id(old) in self._users:
                self._retired[id(old)] = old
                return None
            return old

    def drain(self) -> list[H]:
        """Every client still open (for the owner's close)."""
        with self._lock:
            everything = [self._current, *self._retired.values()]
            self._retired.clear()
            return everything


def with_files(
    creds: Credentials,
    cert: str | os.PathLike[str] | None,
    key: str | os.PathLike[str] | None,
) -> Credentials:
    """``creds`` with the certificate and/or key file replaced (None keeps the current)."""
    return dataclasses.replace(
        creds,
        client_cert=creds.client_cert if cert is None else Path(cert),
        client_key=creds.client_key if key is None else Path(key),
    )


class Rotation(Generic[H]):
    """One client's certificate state: the HTTP clients (:class:`Leases`), the file watch
    and the token tracker, and the reload that swaps them together."""

    def __init__(
        self,
        http: H,
        creds: Credentials,
        factory: Callable[[Credentials], H],
        tracker: RotationTracker,
        interval: float | None,
    ) -> None:
        self.leases = Leases(http)
        self.tracker = tracker
        self.watch = None if interval is None else CertificateWatch(creds, interval)
        self._factory = factory
        self._lock = threading.Lock()

    def changed(self) -> Credentials | None:
        """The credentials to reload when a file check is due and found a change."""
        if self.watch is None:
            return None
        polled = self.watch.poll()
        return None if polled is None else polled[0]

    def reload(self, creds: Credentials, *, only_if_changed: bool = False) -> H | None:
        """Build a new HTTP client from ``creds`` (start-up checks included: raises
        ``ConfigurationError`` and changes nothing when they fail), make it current and
        mark every token obtained so far as stale. Returns an old client to close, if idle.
        ``only_if_changed``: skip when another thread already reloaded these files."""
        signature = file_signature(creds)  # before reading: a later change is seen next time
        with self._lock:
            if only_if_changed and self.watch is not None and self.watch.accepted(signature):
                return None
            http = self._factory(creds)
            self.tracker.rotated()
            old = self.leases.replace(http)
            if self.watch is not None:
                self.watch.accept(creds, signature)
        log.info("client certificate reloaded from %s", creds.client_cert)
        return old

    def try_reload(self, creds: Credentials) -> tuple[bool, H | None]:
        """:meth:`reload` for a change noticed on disk: files caught half-written (a new
        certificate beside the old key) leave the current context in use, and are tried
        again at the next check. Returns ``(reloaded, old client to close)``."""
        try:
            return True, self.reload(creds, only_if_changed=True)
        except ConfigurationError as exc:
            log.warning(
                "client certificate files changed but cannot be used yet (%s); "
                "still using the previous certificate",
                exc,
            )
            return False, None
