"""Tokens and client secrets encrypted at rest, and the cross-process single-flight refresh.

Every token and secret column holds Fernet ciphertext (authenticated encryption, SECURITY
R48); the key lives outside the database, in ``$GREENBUTTON_SECRET_KEY`` (comma-separated
keys, newest first, for rotation) or a 0600 key file in the data directory. A wrong key or
tampered ciphertext raises :class:`TokenDecryptionError`; it is never read as "no token".

Token writes use their own short transactions, never an ingest's (R53, R66). The plain
writes re-run on a deadlock or a dropped connection (:meth:`Store.transaction`); the locked
refresh never does: once the authorization server has rotated the token, a lost commit must
end as ``reauth_required`` or an error, not as a second refresh.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .._errors import InvalidGrantError, SecretKeyError, TokenDecryptionError
from .._secret import Secret
from ..espi._identity import parse_authorization_key, subscription_of
from ..oauth import Token
from ._schema import authorizations, utilities
from ._store import StorageError, Store, default_data_dir

__all__ = [
    "KEY_FILE_NAME",
    "SECRET_KEY_ENV",
    "DatabaseTokenStore",
    "SecretKeyError",
    "TokenDecryptionError",
    "load_fernet",
]

SECRET_KEY_ENV = "GREENBUTTON_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret
KEY_FILE_NAME = "secret.key"
#: Share of the store's lock timeout a refresh may spend on HTTP while it holds the lock.
REFRESH_LOCK_SHARE = 0.5


def _key_file(path: Path) -> bytes:
    """Read the key file, creating it (0600, atomically) when it does not exist."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, Fernet.generate_key() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic; a concurrent creator's key wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    st = os.lstat(path)
    if not os.path.isfile(path) or os.path.islink(path):
        raise SecretKeyError(f"the key file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise SecretKeyError(
            f"the key file {path} can be read by other users; run `chmod 600 {path}`"
        )
    if st.st_uid != os.getuid():
        raise SecretKeyError(f"the key file {path} belongs to another user")
    return path.read_bytes().strip()


def load_fernet(data_dir: Path | None = None) -> MultiFernet:
    """The key ring: ``$GREENBUTTON_SECRET_KEY`` if set, else the data directory's key file."""
    value = os.environ.get(SECRET_KEY_ENV, "").strip()
    try:
        if value:
            keys = [k.strip().encode() for k in value.split(",") if k.strip()]
            return MultiFernet([Fernet(k) for k in keys])
        path = (data_dir or default_data_dir()) / KEY_FILE_NAME
        return MultiFernet([Fernet(_key_file(path))])
    except (ValueError, TypeError) as exc:
        raise SecretKeyError(f"the encryption key is not a Fernet key: {exc}") from None


def _ring(key: MultiFernet | Fernet | bytes | str | None, store: Store) -> MultiFernet:
    if key is None:
        return load_fernet(store.data_dir)
    if isinstance(key, MultiFernet):
        return key
    if isinstance(key, Fernet):
        return MultiFernet([key])
    try:
        return MultiFernet([Fernet(key)])
    except (ValueError, TypeError) as exc:
        raise SecretKeyError(f"the encryption key is not a Fernet key: {exc}") from None


def _identity(key: str, token: Token) -> dict[str, str | None]:
    """The identity columns of a grant stored under ``key`` (DESIGN 3.7): from a key of the
    ``{utility}/Subscription/{id}`` form, else (an older key) the subscription alone,
    which ``storage.adopt_authorizations`` completes; nothing for other tokens."""
    parsed = parse_authorization_key(key) if token.kind == "access" else None
    if parsed is not None:
        return {"utility": parsed[0], "subscription": parsed[1]}
    sub = subscription_of(token.resource_uri) if token.kind == "access" else None
    return {} if sub is None else {"subscription": sub}


class DatabaseTokenStore:
    """The :class:`~greenbutton.oauth.TokenStore` protocol over the ``authorizations`` table.

    ``key`` is a Fernet key, a ``MultiFernet`` ring, or ``None`` for :func:`load_fernet`.
    """

    def __init__(self, store: Store, key: MultiFernet | Fernet | bytes | str | None = None):
        self._store = store
        self._fernet = _ring(key, store)

    # -- encryption ---------------------------------------------------------------------

    def _encrypt(self, secret: Secret | None) -> bytes | None:
        return None if secret is None else self._fernet.encrypt(secret.reveal().encode())

    def _decrypt(self, blob: bytes | None, what: str) -> Secret | None:
        if blob is None:
            return None
        try:
            return Secret(self._fernet.decrypt(bytes(blob)).decode())
        except InvalidToken:
            raise TokenDecryptionError(
                f"the stored {what} cannot be decrypted: wrong key or tampered data"
            ) from None

    # -- TokenStore -----------------------------------------------------------------------

    def load(self, key: str) -> Token | None:
        with self._store.connect() as conn:
            return self._load(conn, key)

    def save(self, key: str, token: Token) -> None:
        self._store.transaction(lambda conn: self._save(conn, key, token))

    def delete(self, key: str) -> None:
        stmt = delete(authorizations).where(authorizations.c.key == key)
        self._store.transaction(lambda conn: conn.execute(stmt))

    def keys(self) -> list[str]:
        with self._store.connect() as conn:
            rows = conn.execute(select(authorizations.c.key).order_by(authorizations.c.key))
            return [str(k) for k in rows.scalars()]

    def status(self, key: str) -> str | None:
        """``active``, ``reauth_required`` (the refresh token was refused), or ``None``."""
        with self._store.connect() as conn:
            value = conn.execute(
                select(authorizations.c.status).where(authorizations.c.key == key)
            ).scalar()
            return None if value is None else str(value)

    def _load(self, conn: Connection, key: str, *, lock: bool = False) -> Token | None:
        a = authorizations
        stmt = select(
            a.c.kind, a.c.access_token_enc, a.c.token_type, a.c.expires_at,
            a.c.refresh_token_enc, a.c.scope, a.c.resource_uri, a.c.authorization_uri,
            a.c.customer_resource_uri,
        ).where(a.c.key == key)  # fmt: skip
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).mappings().first()
        if row is None:
            return None
        access = self._decrypt(row["access_token_enc"], "access token")
        assert access is not None
        return Token(
            kind=row["kind"],
            access_token=access,
            token_type=row["token_type"],
            expires_at=row["expires_at"],
            refresh_token=self._decrypt(row["refresh_token_enc"], "refresh token"),
            scope=row["scope"],
            resource_uri=row["resource_uri"],
            authorization_uri=row["authorization_uri"],
            customer_resource_uri=row["customer_resource_uri"],
        )

    def _save(self, conn: Connection, key: str, token: Token) -> None:
        values: dict[str, Any] = {
            "key": key, "kind": token.kind, "token_type": token.token_type,
            "access_token_enc": self._encrypt(token.access_token),
            "refresh_token_enc": self._encrypt(token.refresh_token),
            "expires_at": token.expires_at, "scope": token.scope,
            "resource_uri": token.resource_uri, "authorization_uri": token.authorization_uri,
            "customer_resource_uri": token.customer_resource_uri, "status": "active",
            "updated_at": time.time(), **_identity(key, token),
        }  # fmt: skip
        dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
        stmt = dialect.insert(authorizations).values(**values, version=1)
        changed = {k: v for k, v in values.items() if k != "key"}
        changed["version"] = authorizations.c.version + 1
        conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=changed))

    # -- single-flight refresh ----------------------------------------------------------

    @property
    def refresh_deadline(self) -> float:
        """Seconds the refresh request sent under :meth:`locked` may take, retries included.

        On SQLite the lock is the whole database's write lock, so every other writer waits
        for the refresh's HTTP exchange; bounding it well below the store's lock timeout
        (which is how long they wait) keeps a slow token endpoint from making them fail
        with "database is locked" (R63). The client's flow sets it on that one request; a
        refresh cut short fails with :class:`~greenbutton.RequestTimeout` and rolls back,
        keeping the stored token (R53)."""
        return REFRESH_LOCK_SHARE * self._store.lock_timeout

    @contextmanager
    def locked(self, key: str) -> Iterator[_LockedRow]:
        """Hold ``key``'s token row locked against other threads and processes (R52).

        One write transaction: ``BEGIN IMMEDIATE`` on SQLite (the database's write lock, taken
        at once), ``SELECT ... FOR UPDATE`` on PostgreSQL (taken by the row's first
        ``load``). Leaving the block commits what ``save`` wrote, in this short transaction
        of its own (R53, R66); an exception rolls back and releases the lock. An
        ``InvalidGrantError`` leaving the block (the refresh token was refused) marks the
        authorization ``reauth_required`` and the token is kept, not dropped (R53).
        This is :class:`~greenbutton.oauth.SupportsLockedRefresh`, which the client's
        refresh uses.
        """
        try:
            with self._store.begin() as conn:
                yield _LockedRow(self, conn, key)
        except InvalidGrantError:
            with self._store.begin() as conn:
                conn.execute(
                    update(authorizations)
                    .where(authorizations.c.key == key)
                    .values(status="reauth_required", updated_at=time.time())
                )
            raise

    def refresh(
        self,
        key: str,
        refresh: Callable[[Token], Token],
        *,
        leeway: float = 60.0,
        now: Callable[[], float] = time.time,
    ) -> Token:
        """Refresh ``key``'s token at most once across threads and processes (R52).

        Under :meth:`locked`, expiry is re-checked: whoever waited finds the fresh token and
        returns it without calling ``refresh``. The new token set is committed as soon as
        ``refresh`` returns (R53). A refused refresh token (``invalid_grant``) marks the
        authorization ``reauth_required``.
        """
        with self.locked(key) as row:
            token = row.load()
            if token is None:
                raise StorageError(f"no stored token for {key!r}")
            if not token.expires_within(leeway, now()):
                return token
            fresh = refresh(token)
            row.save(fresh)
            return fresh

    # -- client secrets and key rotation -----------------------------------------------

    def save_client(
        self,
        utility: str,
        client_id: str,
        client_secret: Secret | None,
        registration_token: Secret | None = None,
    ) -> None:
        """Store a utility's client credentials (secret and registration token encrypted)."""
        now = time.time()
        values: dict[str, Any] = {
            "name": utility, "client_id": client_id,
            "client_secret_enc": self._encrypt(client_secret),
            "registration_token_enc": self._encrypt(registration_token), "updated_at": now,
        }  # fmt: skip

        def write(conn: Connection) -> None:
            dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
            stmt = dialect.insert(utilities).values(**values, created_at=now)
            changed = {k: v for k, v in values.items() if k != "name"}
            conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=changed))

        self._store.transaction(write)

    def load_client(self, utility: str) -> tuple[str | None, Secret | None, Secret | None] | None:
        """``(client_id, client_secret, registration_token)`` of a utility, or ``None``."""
        with self._store.connect() as conn:
            row = conn.execute(select(utilities).where(utilities.c.name == utility)).mappings()
            found = row.first()
        if found is None:
            return None
        return (
            found["client_id"],
            self._decrypt(found["client_secret_enc"], "client secret"),
            self._decrypt(found["registration_token_enc"], "registration token"),
        )

    def rotate(self) -> int:
        """Re-encrypt every stored secret with the ring's first key; returns rows touched."""
        return self._store.transaction(self._rotate)

    def _rotate(self, conn: Connection) -> int:
        count = 0
        for table, cols in (
            (authorizations, ("access_token_enc", "refresh_token_enc")),
            (utilities, ("client_secret_enc", "registration_token_enc")),
        ):
            for row in conn.execute(select(table)).mappings().all():
                new: dict[str, Any] = {}
                for c in cols:
                    if row[c] is not None:
                        try:
                            new[c] = self._fernet.rotate(bytes(row[c]))
                        except InvalidToken:
                            raise TokenDecryptionError(
                                "a stored secret cannot be decrypted with any key"
                            ) from None
                if new:
                    conn.execute(update(table).where(table.c.id == row["id"]).values(**new))
                    count += 1
        return count

    def __repr__(self) -> str:
        return f"DatabaseTokenStore({self._store!r})"


class _LockedRow:
    """A :class:`~greenbutton.oauth.LockedToken`: reads and writes on the locking
    connection (a second connection would wait for our own lock)."""

    __slots__ = ("_conn", "_key", "_tokens")

    def __init__(self, tokens: DatabaseTokenStore, conn: Connection, key: str) -> None:
        self._tokens = tokens
        self._conn = conn
        self._key = key

    def load(self) -> Token | None:
        return self._tokens._load(self._conn, self._key, lock=True)

    def save(self, token: Token) -> None:
        self._tokens._save(self._conn, self._key, token)
