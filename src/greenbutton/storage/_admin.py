"""Operators of the console at /admin: password hashes, login checks, sessions (DESIGN 3.7).

Passwords are hashed with scrypt (RFC 7914) from the standard library: it is memory-hard
(each guess costs ``128 * n * r`` bytes, 128 MiB here, so GPU and ASIC rigs gain little over
this machine) and needs no new dependency (argon2id would need argon2-cffi, which is not in
the lock). The parameters are OWASP's minimum for scrypt (N=2^17, r=8, p=1) and are stored
in each hash (``scrypt$17$8$1$salt$hash``), so raising them later keeps old hashes valid.

Guessing is rate-limited where every process sees it, in the database: after
``LOCK_AFTER`` failures in a row an operator's login is refused for ``LOCK_SECONDS``,
whatever the password; a success resets the count. An unknown name costs a hash like a
known one, so timing does not tell which names exist. Sessions are rows keyed by the
SHA-256 of a 256-bit random id (a dump names no live cookie); a login always makes a new
one (session fixation), and they end ``idle`` seconds after last use or ``lifetime`` after
login. Blocking (scrypt, the database): call these from a worker thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, not_, select, update
from sqlalchemy.exc import IntegrityError

from .._errors import ConfigurationError
from ._schema import admin_sessions, admin_users
from ._store import Store

__all__ = [
    "LOCK_AFTER",
    "LOCK_SECONDS",
    "AdminLogin",
    "add_admin_user",
    "admin_logout",
    "admin_session",
    "check_admin_login",
    "hash_password",
    "verify_password",
]

LOCK_AFTER = 5  # failed logins in a row before the account is locked
LOCK_SECONDS = 900.0  # how long it stays locked
_N_LOG2, _R, _P = 17, 8, 1
_MAXMEM = 256 * 1024 * 1024
_MIN_PASSWORD = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n_log2: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=2**n_log2, r=r, p=p, maxmem=_MAXMEM, dklen=32
    )


def hash_password(password: str) -> str:
    """A scrypt hash of ``password`` with a random salt and its parameters."""
    salt = os.urandom(16)
    digest = _scrypt(password, salt, _N_LOG2, _R, _P)
    return f"scrypt${_N_LOG2}${_R}${_P}${_b64(salt)}${_b64(digest)}"


#: Verified against when the name is unknown, so that costs the same as a wrong password.
_DUMMY = f"scrypt${_N_LOG2}${_R}${_P}${_b64(b'0' * 16)}${_b64(b'0' * 32)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison)."""
    try:
        kind, n_log2, r, p, salt, digest = stored.split("$")
        if kind != "scrypt" or not (10 <= int(n_log2) <= 20):
            return False
        got = _scrypt(password, _unb64(salt), int(n_log2), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def add_admin_user(store: Store, name: str, password: str, *, replace: bool = False) -> bool:
    """Create operator ``name`` (or, with ``replace``, set a new password and unlock it);
    True when a new operator was created."""
    name = name.strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise ConfigurationError("an operator name is 1-64 printable characters")
    if len(password) < _MIN_PASSWORD:
        raise ConfigurationError(f"the password must be at least {_MIN_PASSWORD} characters")
    hashed = hash_password(password)
    now = time.time()
    u = admin_users
    try:
        with store.begin() as conn:
            found = conn.execute(select(u.c.id).where(u.c.name == name)).scalar()
            if found is None:
                conn.execute(
                    insert(u).values(
                        name=name, password_hash=hashed, created_at=now, updated_at=now
                    )
                )
                return True
            if not replace:
                raise ConfigurationError(
                    f"operator {name!r} exists; add --replace to set a new password"
                )
            conn.execute(
                update(u)
                .where(u.c.id == found)
                .values(password_hash=hashed, failed_logins=0, locked_until=None, updated_at=now)
            )
            conn.execute(delete(admin_sessions).where(admin_sessions.c.user_id == found))
            return False
    except IntegrityError:  # created by another process meanwhile
        raise ConfigurationError(f"operator {name!r} exists; add --replace") from None


@dataclass(frozen=True, slots=True)
class AdminLogin:
    """The outcome of a login: ``session`` (the new session id) on success; else
    ``retry_after`` seconds when the operator is locked out."""

    session: str | None = None
    name: str | None = None
    retry_after: float | None = None


def _id_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def check_admin_login(
    store: Store, name: str, password: str, *, now: float | None = None
) -> AdminLogin:
    """Check a login; on success a new session row (its id returned), the failure count
    reset; on failure the count raised (locked at ``LOCK_AFTER``)."""
    now = time.time() if now is None else now
    u = admin_users
    with store.connect() as conn:
        row = conn.execute(
            select(u.c.id, u.c.password_hash, u.c.locked_until).where(u.c.name == name)
        ).first()
    if row is not None and row.locked_until is not None and row.locked_until > now:
        return AdminLogin(retry_after=float(row.locked_until) - now)
    ok = verify_password(password, _DUMMY if row is None else str(row.password_hash))
    if row is None:
        return AdminLogin()
    with store.begin() as conn:
        if not ok:
            conn.execute(
                update(u).where(u.c.id == row.id).values(failed_logins=u.c.failed_logins + 1)
            )
            failures = conn.execute(select(u.c.failed_logins).where(u.c.id == row.id)).scalar()
            if int(failures or 0) >= LOCK_AFTER:
                conn.execute(
                    update(u)
                    .where(u.c.id == row.id)
                    .values(failed_logins=0, locked_until=now + LOCK_SECONDS)
                )
                return AdminLogin(retry_after=LOCK_SECONDS)
            return AdminLogin()
        sid = secrets.token_urlsafe(32)
        conn.execute(
            update(u)
            .where(u.c.id == row.id)
            .values(failed_logins=0, locked_until=None, last_login_at=now)
        )
        conn.execute(
            insert(admin_sessions).values(
                id_hash=_id_hash(sid), user_id=row.id, created_at=now, seen_at=now
            )
        )
    return AdminLogin(session=sid, name=name)


def admin_session(
    store: Store, sid: str, *, idle: float, lifetime: float, now: float | None = None
) -> str | None:
    """The operator's name for a live session id, or None; marks it used. Expired rows
    are deleted on the way."""
    now = time.time() if now is None else now
    s, u = admin_sessions, admin_users
    live = and_(s.c.seen_at > now - idle, s.c.created_at > now - lifetime)
    with store.begin() as conn:
        conn.execute(delete(s).where(not_(live)))
        name = conn.execute(
            select(u.c.name)
            .select_from(s.join(u, u.c.id == s.c.user_id))
            .where(s.c.id_hash == _id_hash(sid), live)
        ).scalar()
        if name is not None:
            conn.execute(update(s).where(s.c.id_hash == _id_hash(sid)).values(seen_at=now))
    return None if name is None else str(name)


def admin_logout(store: Store, sid: str) -> None:
    """End the session ``sid`` (nothing when it is gone already)."""
    with store.begin() as conn:
        conn.execute(delete(admin_sessions).where(admin_sessions.c.id_hash == _id_hash(sid)))
