"""Browser sessions kept server-side, in the database: a signed random id in the cookie.

The cookie carries only the session id (256 random bits, signed so a forged or truncated
id is dropped before any lookup). The row is keyed by the SHA-256 of the id (a database
dump names no live cookie) and holds the session as Fernet ciphertext under the app's
secret key (SECURITY R48): the CSRF token, the pending authorization (state + PKCE
verifier, R01, R03) and the accounts this browser connected. No token or verifier reaches
the browser (R51), and every process sharing the database sees the same sessions, so a
callback may land on another worker or after a restart.

A session has two lifetimes, both enforced here on the server's clock whatever the cookie
says: it ends ``idle_timeout`` seconds after it was last used and ``absolute_timeout`` seconds
after it was created. Every privilege change (an account connected or disconnected)
:meth:`Sessions.rotate` s it: a new id and CSRF token, the old row deleted in the same
transaction, so an id someone obtained before the login (session fixation, OWASP Session
Management; RFC 9700 4.1) opens nothing afterwards. Signing in again (a returning customer
going through the utility's authorization) is such a change too; signing out deletes the
row (:meth:`Sessions.end`). Over HTTPS, or behind a TLS-terminating
proxy, the cookie is ``__Host-gb_session`` with ``Secure`` (R51): the browser then never sends
it over plain HTTP and no sibling domain can plant one.

Writes are compare-and-swap on the ciphertext read (Fernet ciphertext is never the same
twice), so taking the pending authorization is atomic across threads and processes: of
two callbacks racing with the same state, exactly one gets it (R01, R11). Blocking: call
these methods from a worker thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from cryptography.fernet import InvalidToken, MultiFernet
from itsdangerous import BadSignature, TimestampSigner
from sqlalchemy import Connection

from ..oauth import AuthorizationRequest
from ..storage import (
    SECRET_KEY_ENV,
    Store,
    secret_key_file,
    web_session_delete_expired,
    web_session_delete_if,
    web_session_get,
    web_session_insert,
    web_session_replace_if,
    web_session_touch,
)

__all__ = ["COOKIE_NAME", "SECURE_COOKIE_NAME", "Session", "Sessions", "derived_cookie_key"]

COOKIE_NAME = "gb_session"
#: The cookie's name when it is ``Secure``: browsers accept a ``__Host-`` cookie only with
#: ``Secure``, ``Path=/`` and no ``Domain``, so it cannot be set by another (sub)domain.
SECURE_COOKIE_NAME = "__Host-gb_session"
_CAS_ATTEMPTS = 8
_CLEANUP_EVERY = 300.0  # s between opportunistic deletions of expired rows
_TOUCH_EVERY = 60.0  # s: seen_at is refreshed at most this often (no write per page view)
T = TypeVar("T")


@dataclass(slots=True)
class Session:
    """What the server remembers about one browser (a snapshot as read)."""

    id: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    pending: AuthorizationRequest | None = None
    accounts: list[str] = field(default_factory=list)  # token-store keys, in connect order

    def csrf_ok(self, value: str | None) -> bool:
        """Constant-time comparison with the form's token."""
        return value is not None and hmac.compare_digest(value.encode(), self.csrf.encode())


def derived_cookie_key(store: Store) -> bytes:
    """A cookie-signing key derived from the secret key the token store uses, so every
    process with that key (and a restarted one) accepts the same cookies."""
    value = os.environ.get(SECRET_KEY_ENV, "").strip()
    if value:
        material = value.split(",")[0].strip().encode()
    else:
        material = secret_key_file(store).read_bytes().strip()
    return hmac.new(material, b"greenbutton.web.session-cookie", hashlib.sha256).digest()


def _id_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class _Changed(Exception):
    """The row changed between read and write: roll back and try again."""


class Sessions:
    """Sessions in the ``web_sessions`` table: gone ``idle_timeout`` seconds after last use
    or ``absolute_timeout`` seconds after creation, whichever comes first."""

    def __init__(
        self,
        store: Store,
        fernet: MultiFernet,
        cookie_key: bytes,
        *,
        idle_timeout: float = 86400.0,
        absolute_timeout: float = 7 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < idle_timeout <= absolute_timeout:
            raise ValueError("need 0 < idle_timeout <= absolute_timeout")
        self._store = store
        self._fernet = fernet
        self._signer = TimestampSigner(cookie_key, salt="greenbutton.web.session")
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        self._clock = clock
        self._last_cleanup = 0.0

    # -- encoding -------------------------------------------------------------------------

    def _encode(self, session: Session) -> bytes:
        pending = None if session.pending is None else asdict(session.pending)
        data = {"csrf": session.csrf, "pending": pending, "accounts": session.accounts}
        return self._fernet.encrypt(json.dumps(data).encode())

    def _decode(self, sid: str, blob: bytes) -> Session | None:
        try:
            data = json.loads(self._fernet.decrypt(blob))
            pending = data.get("pending")
            return Session(
                id=sid,
                csrf=str(data["csrf"]),
                pending=None if pending is None else AuthorizationRequest(**pending),
                accounts=[str(k) for k in data.get("accounts", [])],
            )
        except (InvalidToken, ValueError, TypeError, KeyError):
            return None  # another key, or tampered: an unknown browser, not an error page

    def _sid(self, cookie: str | None) -> str | None:
        if not cookie or len(cookie) > 512:
            return None
        try:
            return self._signer.unsign(cookie, max_age=int(self.absolute_timeout)).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    # -- operations -----------------------------------------------------------------------

    def get(self, cookie: str | None) -> Session | None:
        """The live session named by a cookie value, or None (bad signature, expired, gone)."""
        sid = self._sid(cookie)
        if sid is None:
            return None
        now = self._clock()
        with self._store.connect() as conn:
            row = web_session_get(conn, _id_hash(sid), **self._live(now))
        if row is None:
            return None
        blob, seen_at = row
        if seen_at < now - _TOUCH_EVERY:
            with self._store.begin() as conn:
                web_session_touch(conn, _id_hash(sid), now)
        return self._decode(sid, blob)

    def _live(self, now: float) -> dict[str, float]:
        """The bounds of a session still alive at ``now`` (both lifetimes)."""
        return {"seen_after": now - self.idle_timeout, "created_after": now - self.absolute_timeout}

    def _insert(self, conn: Connection, session: Session, now: float) -> str:
        if now - self._last_cleanup > _CLEANUP_EVERY:
            self._last_cleanup = now
            web_session_delete_expired(conn, **self._live(now))
        web_session_insert(conn, _id_hash(session.id), self._encode(session), now)
        return self._signer.sign(session.id).decode()

    def create(self) -> tuple[Session, str]:
        """A new session (stored) and its signed cookie value."""
        session = Session(id=secrets.token_urlsafe(32))
        with self._store.begin() as conn:
            cookie = self._insert(conn, session, self._clock())
        return session, cookie

    def rotate(self, sid: str, change: Callable[[Session], None]) -> tuple[Session, str] | None:
        """The session ``sid`` with ``change`` applied, moved to a new id and CSRF token;
        the old id is dead once this returns (one transaction: insert new, delete old,
        compare-and-swap on the ciphertext read). Call it at every privilege change, so an
        id known before it (session fixation) opens nothing after. None when ``sid`` is
        gone or expired. The new session's lifetimes start now."""
        key = _id_hash(sid)
        for _ in range(_CAS_ATTEMPTS):
            now = self._clock()
            try:
                with self._store.begin() as conn:
                    row = web_session_get(conn, key, **self._live(now))
                    old = None if row is None else self._decode(sid, row[0])
                    if row is None or old is None:
                        return None
                    change(old)
                    new = Session(
                        id=secrets.token_urlsafe(32), pending=old.pending, accounts=old.accounts
                    )
                    if not web_session_delete_if(conn, key, row[0]):
                        raise _Changed
                    cookie = self._insert(conn, new, now)
            except _Changed:
                continue
            return new, cookie
        raise RuntimeError("the session kept changing under us")  # pragma: no cover

    def _modify(self, sid: str, change: Callable[[Session], tuple[bool, T]]) -> T | None:
        """Apply ``change`` to the stored session, compare-and-swap on the ciphertext read;
        ``change`` returns (write it?, result). None when the session is gone."""
        key = _id_hash(sid)
        for _ in range(_CAS_ATTEMPTS):
            with self._store.begin() as conn:
                row = web_session_get(conn, key)
                if row is None:
                    return None
                blob = row[0]
                session = self._decode(sid, blob)
                if session is None:
                    return None
                write, result = change(session)
                if not write:
                    return result
                done = web_session_replace_if(
                    conn, key, blob, self._encode(session), seen_at=self._clock()
                )
            if done:
                return result
        raise RuntimeError("the session kept changing under us")  # pragma: no cover

    def set_pending(self, sid: str, pending: AuthorizationRequest) -> None:
        """Remember ``pending`` for this browser, replacing an older flow."""

        def change(session: Session) -> tuple[bool, None]:
            session.pending = pending
            return True, None

        self._modify(sid, change)

    def take_pending(self, sid: str) -> AuthorizationRequest | None:
        """The pending authorization, removed atomically: single-use across processes."""

        def change(session: Session) -> tuple[bool, AuthorizationRequest | None]:
            pending, session.pending = session.pending, None
            return pending is not None, pending

        return self._modify(sid, change)

    def add_account(self, sid: str, key: str) -> tuple[Session, str] | None:
        """Connect ``key`` to this browser: a privilege change, so a new id (:meth:`rotate`)."""

        def change(session: Session) -> None:
            if key not in session.accounts:
                session.accounts.append(key)

        return self.rotate(sid, change)

    def end(self, sid: str) -> bool:
        """Sign out: the session row goes, so its cookie (and any copy of it) opens nothing.
        The accounts stay connected; signing in again at the utility brings them back.
        False when the session was already gone."""
        key = _id_hash(sid)
        for _ in range(_CAS_ATTEMPTS):
            with self._store.begin() as conn:
                row = web_session_get(conn, key)
                if row is None:
                    return False
                if web_session_delete_if(conn, key, row[0]):
                    return True
        raise RuntimeError("the session kept changing under us")  # pragma: no cover

    def remove_account(self, sid: str, key: str) -> tuple[Session, str] | None:
        """Disconnect ``key`` from this browser: a new id as well (:meth:`rotate`)."""

        def change(session: Session) -> None:
            if key in session.accounts:
                session.accounts.remove(key)

        return self.rotate(sid, change)
